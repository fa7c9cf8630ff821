-- Payments (issue 15): gateway credentials per tenant, collection per
-- customer, payment methods, the payments ledger per invoice, disputes and
-- the gateway events already handled. Times are unix micros; amounts are
-- decimal text in the invoice's currency; secrets are sealed (AES-256-GCM,
-- internal/seal), never stored in clear.
CREATE TABLE payment_providers (
    tenant_id      TEXT NOT NULL,
    provider       TEXT NOT NULL,
    secret_key     TEXT NOT NULL,
    webhook_secret TEXT NOT NULL,
    key_hint       TEXT NOT NULL, -- last four characters of the secret key, for display
    api_base       TEXT NOT NULL,
    updated_at     BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, provider)
);

CREATE TABLE payment_customers (
    tenant_id         TEXT NOT NULL,
    customer_id       TEXT NOT NULL,
    collection_method TEXT NOT NULL, -- charge_automatically | send_invoice
    provider_customer TEXT NOT NULL, -- the gateway's customer (cus_…), '' until set up
    default_method_id TEXT NOT NULL, -- payment_methods.id, '' for none
    updated_at        BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, customer_id)
);

CREATE TABLE payment_methods (
    id                 TEXT PRIMARY KEY,
    tenant_id          TEXT NOT NULL,
    customer_id        TEXT NOT NULL,
    provider           TEXT NOT NULL,
    provider_reference TEXT NOT NULL,
    brand              TEXT NOT NULL,
    last4              TEXT NOT NULL,
    exp_month          INTEGER NOT NULL,
    exp_year           INTEGER NOT NULL,
    status             TEXT NOT NULL, -- active | detached
    expiry_notified_at BIGINT,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL
);
CREATE UNIQUE INDEX payment_methods_reference ON payment_methods (tenant_id, provider, provider_reference);
CREATE INDEX payment_methods_customer ON payment_methods (tenant_id, customer_id);
CREATE INDEX payment_methods_expiry ON payment_methods (exp_year, exp_month) WHERE status = 'active';

-- The ledger: one row per payment (an attempt Abacus started, a payment
-- the gateway reported, or one recorded by hand). rank orders statuses so
-- that a late event never moves a payment back (see payments/doc.go).
CREATE TABLE payments (
    id                 TEXT PRIMARY KEY,
    tenant_id          TEXT NOT NULL,
    invoice_id         TEXT NOT NULL,
    customer_id        TEXT NOT NULL,
    provider           TEXT NOT NULL,
    provider_reference TEXT NOT NULL,
    attempt            INTEGER NOT NULL, -- collection attempt (1…); 0 when Abacus did not start it
    idempotency_key    TEXT NOT NULL,
    status             TEXT NOT NULL,
    rank               INTEGER NOT NULL,
    amount             TEXT NOT NULL,
    currency           TEXT NOT NULL,
    amount_refunded    TEXT NOT NULL,
    decline_code       TEXT NOT NULL,
    decline_kind       TEXT NOT NULL, -- hard | soft | ''
    failure_message    TEXT NOT NULL,
    note               TEXT NOT NULL,
    paid_at            BIGINT,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL
);
CREATE INDEX payments_invoice ON payments (tenant_id, invoice_id);
CREATE INDEX payments_tenant ON payments (tenant_id, id);
CREATE UNIQUE INDEX payments_attempt ON payments (tenant_id, invoice_id, attempt) WHERE attempt > 0;
CREATE UNIQUE INDEX payments_reference ON payments (tenant_id, provider, provider_reference) WHERE provider_reference <> '';
CREATE INDEX payments_unsettled ON payments (status) WHERE status = 'pending';

CREATE TABLE payment_disputes (
    id                 TEXT PRIMARY KEY,
    tenant_id          TEXT NOT NULL,
    payment_id         TEXT NOT NULL,
    invoice_id         TEXT NOT NULL,
    provider           TEXT NOT NULL,
    provider_reference TEXT NOT NULL,
    kind               TEXT NOT NULL, -- dispute | inquiry | early_fraud_warning
    status             TEXT NOT NULL,
    rank               INTEGER NOT NULL,
    outcome            TEXT NOT NULL, -- won | lost | ''
    amount             TEXT NOT NULL,
    currency           TEXT NOT NULL,
    reason             TEXT NOT NULL,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL
);
CREATE UNIQUE INDEX payment_disputes_reference ON payment_disputes (tenant_id, provider, provider_reference);
CREATE INDEX payment_disputes_invoice ON payment_disputes (tenant_id, invoice_id);

-- Gateway events handled, by the gateway's event id: each is processed once.
CREATE TABLE payment_gateway_events (
    tenant_id   TEXT NOT NULL,
    provider    TEXT NOT NULL,
    id          TEXT NOT NULL,
    type        TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, provider, id)
);
