-- Billing: settings, gapless sequences, billing cycles, invoices, taxes,
-- coupons, credit ledger and credit notes. Money is TEXT (decimal), times
-- BIGINT unix micros.
CREATE TABLE billing_settings (
    tenant_id          TEXT PRIMARY KEY,
    invoice_prefix     TEXT NOT NULL,
    credit_note_prefix TEXT NOT NULL,
    grace_seconds      BIGINT NOT NULL,
    due_days           INTEGER NOT NULL,
    seller             TEXT NOT NULL,
    payment_terms      TEXT NOT NULL,
    updated_at         BIGINT NOT NULL
);

-- One counter row per tenant and series; updated under the row lock in the
-- finalizing transaction, so numbers are gapless.
CREATE TABLE billing_sequences (
    tenant_id TEXT NOT NULL,
    series    TEXT NOT NULL,
    last      BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, series)
);

-- The next cycle boundary to bill of each subscription.
CREATE TABLE billing_cycles (
    subscription_id TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL,
    bill_from       BIGINT NOT NULL,
    next_index      INTEGER NOT NULL,
    next_at         BIGINT NOT NULL,
    done            INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX billing_cycles_due ON billing_cycles (next_at) WHERE done = 0;

CREATE TABLE invoices (
    id               TEXT PRIMARY KEY,
    tenant_id        TEXT NOT NULL,
    customer_id      TEXT NOT NULL,
    subscription_id  TEXT NOT NULL,
    period_start     BIGINT NOT NULL,
    cycle_index      INTEGER NOT NULL,
    service_start    BIGINT,
    service_end      BIGINT,
    status           TEXT NOT NULL,
    number           TEXT,
    currency         TEXT NOT NULL,
    subtotal         TEXT NOT NULL,
    discount_total   TEXT NOT NULL,
    tax_total        TEXT NOT NULL,
    total            TEXT NOT NULL,
    credits_applied  TEXT NOT NULL,
    amount_due       TEXT NOT NULL,
    finalize_at      BIGINT NOT NULL,
    refreshed_at     BIGINT NOT NULL,
    finalized_at     BIGINT,
    due_at           BIGINT,
    paid_at          BIGINT,
    voided_at        BIGINT,
    uncollectible_at BIGINT,
    document         TEXT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE UNIQUE INDEX invoices_cycle ON invoices (tenant_id, subscription_id, period_start);
CREATE UNIQUE INDEX invoices_number ON invoices (tenant_id, number);
CREATE INDEX invoices_tenant ON invoices (tenant_id, id);
CREATE INDEX invoices_drafts ON invoices (finalize_at) WHERE status = 'draft';

CREATE TABLE invoice_lines (
    id               TEXT PRIMARY KEY,
    tenant_id        TEXT NOT NULL,
    invoice_id       TEXT NOT NULL REFERENCES invoices (id),
    position         INTEGER NOT NULL,
    kind             TEXT NOT NULL,
    description      TEXT NOT NULL,
    charge_key       TEXT NOT NULL,
    meter            TEXT NOT NULL,
    quantity         TEXT NOT NULL,
    unit_amount      TEXT,
    amount           TEXT NOT NULL,
    net_amount       TEXT NOT NULL,
    period_start     BIGINT NOT NULL,
    period_end       BIGINT NOT NULL,
    tax              TEXT NOT NULL,
    redemption_id    TEXT,
    details          TEXT NOT NULL
);
CREATE INDEX invoice_lines_invoice ON invoice_lines (invoice_id, position);
CREATE INDEX invoice_lines_redemption ON invoice_lines (redemption_id) WHERE redemption_id IS NOT NULL;

CREATE TABLE tax_rates (
    id               TEXT PRIMARY KEY,
    tenant_id        TEXT NOT NULL,
    name             TEXT NOT NULL,
    percentage       TEXT NOT NULL,
    category         TEXT NOT NULL,
    inclusive        INTEGER NOT NULL,
    country          TEXT NOT NULL,
    exemption_reason TEXT NOT NULL,
    created_at       BIGINT NOT NULL
);
CREATE INDEX tax_rates_tenant ON tax_rates (tenant_id, id);

CREATE TABLE tax_assignments (
    tenant_id   TEXT NOT NULL,
    target_type TEXT NOT NULL,
    target_id   TEXT NOT NULL,
    tax_rate_id TEXT NOT NULL REFERENCES tax_rates (id),
    PRIMARY KEY (tenant_id, target_type, target_id)
);

CREATE TABLE coupons (
    id               TEXT PRIMARY KEY,
    tenant_id        TEXT NOT NULL,
    code             TEXT NOT NULL,
    name             TEXT NOT NULL,
    percent_off      TEXT,
    amount_off       TEXT,
    currency         TEXT NOT NULL,
    duration         TEXT NOT NULL,
    duration_periods INTEGER NOT NULL,
    max_redemptions  INTEGER NOT NULL,
    redeem_by        BIGINT,
    created_at       BIGINT NOT NULL
);
CREATE UNIQUE INDEX coupons_code ON coupons (tenant_id, code);

CREATE TABLE coupon_redemptions (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL,
    coupon_id       TEXT NOT NULL REFERENCES coupons (id),
    customer_id     TEXT NOT NULL,
    subscription_id TEXT NOT NULL,
    created_at      BIGINT NOT NULL
);
CREATE INDEX coupon_redemptions_coupon ON coupon_redemptions (tenant_id, coupon_id);
CREATE INDEX coupon_redemptions_customer ON coupon_redemptions (tenant_id, customer_id);

-- The credit ledger: balances are sums of entries, never a stored number.
-- usage, expiry and void_restore entries name the grant they draw on.
CREATE TABLE credit_entries (
    id             TEXT PRIMARY KEY,
    tenant_id      TEXT NOT NULL,
    customer_id    TEXT NOT NULL,
    currency       TEXT NOT NULL,
    kind           TEXT NOT NULL,
    amount         TEXT NOT NULL,
    grant_id       TEXT NOT NULL,
    expires_at     BIGINT,
    invoice_id     TEXT,
    credit_note_id TEXT,
    description    TEXT NOT NULL,
    created_at     BIGINT NOT NULL
);
CREATE INDEX credit_entries_customer ON credit_entries (tenant_id, customer_id, currency, id);
CREATE INDEX credit_entries_grant ON credit_entries (grant_id);
CREATE INDEX credit_entries_expiry ON credit_entries (expires_at) WHERE expires_at IS NOT NULL;

CREATE TABLE credit_notes (
    id                TEXT PRIMARY KEY,
    tenant_id         TEXT NOT NULL,
    invoice_id        TEXT NOT NULL REFERENCES invoices (id),
    customer_id       TEXT NOT NULL,
    number            TEXT NOT NULL,
    currency          TEXT NOT NULL,
    reason            TEXT NOT NULL,
    subtotal          TEXT NOT NULL,
    tax_total         TEXT NOT NULL,
    total             TEXT NOT NULL,
    refund_to_credits INTEGER NOT NULL,
    document          TEXT NOT NULL,
    created_at        BIGINT NOT NULL
);
CREATE UNIQUE INDEX credit_notes_number ON credit_notes (tenant_id, number);
CREATE INDEX credit_notes_invoice ON credit_notes (tenant_id, invoice_id);
CREATE INDEX credit_notes_tenant ON credit_notes (tenant_id, id);
