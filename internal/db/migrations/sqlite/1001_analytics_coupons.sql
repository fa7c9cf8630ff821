-- Analytics (issue 19): coupons in MRR. A subscription's MRR before
-- discounts and its fixed fee per billing interval (the share an
-- amount-off coupon takes); rows journaled before this had no discounts,
-- so their MRR is their base.
ALTER TABLE analytics_subscriptions ADD COLUMN base_mrr TEXT NOT NULL DEFAULT '0';
ALTER TABLE analytics_subscriptions ADD COLUMN fee TEXT NOT NULL DEFAULT '0';
UPDATE analytics_subscriptions SET base_mrr = mrr;
CREATE INDEX analytics_subscriptions_customer ON analytics_subscriptions (tenant_id, customer_id);

-- The coupon redemptions that still lower MRR (coupon.redeemed), until the
-- first invoice they no longer discount is finalized (then deleted).
CREATE TABLE analytics_redemptions (
    tenant_id       TEXT NOT NULL,
    redemption_id   TEXT NOT NULL,
    customer_id     TEXT NOT NULL,
    subscription_id TEXT NOT NULL,  -- '' = every subscription of the customer
    currency        TEXT NOT NULL,  -- amount_off's currency, '' for a percentage
    percent_off     TEXT NOT NULL,  -- decimal, 0 for an amount
    amount_off      TEXT NOT NULL,  -- decimal, 0 for a percentage
    invoices_left   INTEGER NOT NULL, -- invoices it still discounts; -1 forever
    PRIMARY KEY (tenant_id, redemption_id)
);
CREATE INDEX analytics_redemptions_customer ON analytics_redemptions (tenant_id, customer_id);
