-- Analytics (issue 19). The journal: the facts of every domain event the
-- projection consumed, once per event id, in arrival order (seq). Every
-- other analytics table is derived from it and rebuilt from it.
CREATE TABLE analytics_events (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id    TEXT NOT NULL,
    event_id     TEXT NOT NULL,
    type         TEXT NOT NULL,
    at           BIGINT NOT NULL,        -- effective time, unix micros
    customer_id  TEXT NOT NULL DEFAULT '',
    ref_id       TEXT NOT NULL DEFAULT '', -- subscription, invoice or payment id
    currency     TEXT NOT NULL DEFAULT '',
    amount       TEXT NOT NULL DEFAULT '0', -- decimal: MRR, invoice total, payment amount
    amount2      TEXT NOT NULL DEFAULT '0', -- decimal: amount due, amount refunded
    amount3      TEXT NOT NULL DEFAULT '0', -- decimal: the invoice's amount due after a payment
    status       TEXT NOT NULL DEFAULT '',
    detail       TEXT NOT NULL DEFAULT ''  -- small JSON of type-specific facts
);
CREATE UNIQUE INDEX analytics_events_event ON analytics_events (event_id);
CREATE INDEX analytics_events_tenant ON analytics_events (tenant_id, seq);

-- Each subscription's MRR as last journaled.
CREATE TABLE analytics_subscriptions (
    tenant_id       TEXT NOT NULL,
    subscription_id TEXT NOT NULL,
    customer_id     TEXT NOT NULL,
    currency        TEXT NOT NULL,
    status          TEXT NOT NULL,
    mrr             TEXT NOT NULL,
    PRIMARY KEY (tenant_id, subscription_id)
);

-- Each customer's MRR per currency: now, at the start of the last day
-- booked, and whether it ever ended a day before that with MRR > 0.
CREATE TABLE analytics_customers (
    tenant_id     TEXT NOT NULL,
    customer_id   TEXT NOT NULL,
    currency      TEXT NOT NULL,
    mrr           TEXT NOT NULL,
    day           INTEGER NOT NULL,  -- last day booked (days since 1970-01-01, UTC)
    day_start_mrr TEXT NOT NULL,
    ever_paid     INTEGER NOT NULL,  -- 1: ended an earlier day with MRR > 0
    collected     TEXT NOT NULL DEFAULT '0',
    refunded      TEXT NOT NULL DEFAULT '0',
    PRIMARY KEY (tenant_id, customer_id, currency)
);

-- A customer's MRR at the end of each day it changed (retention cohorts).
CREATE TABLE analytics_customer_days (
    tenant_id   TEXT NOT NULL,
    currency    TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    day         INTEGER NOT NULL,
    mrr         TEXT NOT NULL,
    PRIMARY KEY (tenant_id, currency, customer_id, day)
);

-- The daily snapshot per tenant and currency: the day's movements and
-- flows (MRR and customers at a date are the sums up to it).
CREATE TABLE analytics_daily (
    tenant_id             TEXT NOT NULL,
    currency              TEXT NOT NULL,
    day                   INTEGER NOT NULL,
    new_mrr               TEXT NOT NULL DEFAULT '0',
    expansion             TEXT NOT NULL DEFAULT '0',
    contraction           TEXT NOT NULL DEFAULT '0',
    churn                 TEXT NOT NULL DEFAULT '0',
    reactivation          TEXT NOT NULL DEFAULT '0',
    new_customers         INTEGER NOT NULL DEFAULT 0,
    reactivated_customers INTEGER NOT NULL DEFAULT 0,
    churned_customers     INTEGER NOT NULL DEFAULT 0,
    trials_started        INTEGER NOT NULL DEFAULT 0,
    trials_converted      INTEGER NOT NULL DEFAULT 0,
    trials_lapsed         INTEGER NOT NULL DEFAULT 0,
    invoiced              TEXT NOT NULL DEFAULT '0',
    collected             TEXT NOT NULL DEFAULT '0',
    refunded              TEXT NOT NULL DEFAULT '0',
    outstanding           TEXT NOT NULL DEFAULT '0', -- change of the amount due on open invoices
    PRIMARY KEY (tenant_id, currency, day)
);

-- Per invoice and payment, what the last event said (for the deltas).
CREATE TABLE analytics_documents (
    tenant_id TEXT NOT NULL,
    id        TEXT NOT NULL,  -- invoice or payment id
    currency  TEXT NOT NULL,
    amount    TEXT NOT NULL,  -- invoice: amount due while open; payment: amount refunded
    PRIMARY KEY (tenant_id, id)
);

-- One row every journal write and rebuild updates first, so a rebuild and
-- a batch of the consumer never interleave (on PostgreSQL, a row lock).
CREATE TABLE analytics_lock (
    id         INTEGER PRIMARY KEY,
    rebuilt_at BIGINT NOT NULL DEFAULT 0
);
INSERT INTO analytics_lock (id, rebuilt_at) VALUES (1, 0);
