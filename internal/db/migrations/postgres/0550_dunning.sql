-- Dunning (issue 15, payments/dunning). Settings are JSON documents per
-- tenant and per plan (the plan's overrides); one run per overdue invoice.
CREATE TABLE dunning_settings (
    tenant_id  TEXT NOT NULL,
    plan_id    TEXT NOT NULL, -- '' for the tenant's own settings
    settings   TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, plan_id)
);

CREATE TABLE dunning_runs (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL,
    invoice_id      TEXT NOT NULL,
    invoice_number  TEXT NOT NULL,
    customer_id     TEXT NOT NULL,
    subscription_id TEXT NOT NULL,
    amount          TEXT NOT NULL,
    currency        TEXT NOT NULL,
    status          TEXT NOT NULL,
    policy          TEXT NOT NULL,
    first_failed_at BIGINT NOT NULL,
    attempts        INTEGER NOT NULL,
    step_index      INTEGER NOT NULL,
    next_step       TEXT NOT NULL,
    next_at         BIGINT,
    hard_declined   INTEGER NOT NULL,
    decline_code    TEXT NOT NULL,
    final_action    TEXT NOT NULL,
    lease_owner     TEXT,
    lease_until     BIGINT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    ended_at        BIGINT
);
CREATE UNIQUE INDEX dunning_runs_invoice ON dunning_runs (tenant_id, invoice_id);
CREATE INDEX dunning_runs_due ON dunning_runs (next_at) WHERE next_at IS NOT NULL;
CREATE INDEX dunning_runs_subscription ON dunning_runs (tenant_id, subscription_id, status);

-- Disputes that suspended a subscription (to restore it when won).
CREATE TABLE dunning_disputes (
    tenant_id       TEXT NOT NULL,
    dispute_id      TEXT NOT NULL,
    invoice_id      TEXT NOT NULL,
    subscription_id TEXT NOT NULL,
    status          TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, dispute_id)
);

CREATE TABLE dunning_events_seen (
    tenant_id TEXT NOT NULL,
    event_id  TEXT NOT NULL,
    seen_at   BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, event_id)
);
