-- Catalog and subscriptions (issue 5). Times are unix micros, decimals TEXT, JSON TEXT.
CREATE TABLE customers (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL,
    external_id TEXT,
    name        TEXT NOT NULL,
    email       TEXT NOT NULL,
    currency    TEXT NOT NULL,
    address     TEXT NOT NULL,
    tax_id      TEXT NOT NULL,
    tax_status  TEXT NOT NULL,
    timezone    TEXT NOT NULL,
    metadata    TEXT NOT NULL,
    subjects    TEXT NOT NULL,
    archived_at BIGINT,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE UNIQUE INDEX customers_external ON customers (tenant_id, external_id);
CREATE INDEX customers_tenant ON customers (tenant_id, id);

-- A usage subject maps to exactly one customer of a tenant.
CREATE TABLE customer_subjects (
    tenant_id   TEXT NOT NULL,
    subject     TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    PRIMARY KEY (tenant_id, subject)
);
CREATE INDEX customer_subjects_customer ON customer_subjects (tenant_id, customer_id);

CREATE TABLE features (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL,
    key         TEXT NOT NULL,
    name        TEXT NOT NULL,
    kind        TEXT NOT NULL,
    value       TEXT,
    meter_slug  TEXT NOT NULL,
    usage_limit TEXT,
    enforcement TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE UNIQUE INDEX features_key ON features (tenant_id, key);

CREATE TABLE plans (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL,
    key         TEXT NOT NULL,
    name        TEXT NOT NULL,
    description TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE UNIQUE INDEX plans_key ON plans (tenant_id, key);

CREATE TABLE plan_versions (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL,
    plan_id      TEXT NOT NULL REFERENCES plans (id),
    version      INTEGER NOT NULL,
    status       TEXT NOT NULL,
    body         TEXT NOT NULL,
    published_at BIGINT,
    archived_at  BIGINT,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);
CREATE UNIQUE INDEX plan_versions_number ON plan_versions (tenant_id, plan_id, version);

CREATE TABLE subscriptions (
    id                 TEXT PRIMARY KEY,
    tenant_id          TEXT NOT NULL,
    customer_id        TEXT NOT NULL REFERENCES customers (id),
    plan_id            TEXT NOT NULL,
    version_id         TEXT NOT NULL REFERENCES plan_versions (id),
    status             TEXT NOT NULL,
    quantity           TEXT NOT NULL,
    overrides          TEXT NOT NULL,
    timezone           TEXT NOT NULL,
    interval_unit      TEXT NOT NULL,
    interval_count     INTEGER NOT NULL,
    anchor             BIGINT NOT NULL,
    started_at         BIGINT NOT NULL,
    trial_end          BIGINT,
    ends_at            BIGINT,
    canceled_at        BIGINT,
    ended_at           BIGINT,
    paused_at          BIGINT,
    pending_version_id TEXT,
    pending_at         BIGINT,
    next_action_at     BIGINT,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL
);
CREATE INDEX subscriptions_customer ON subscriptions (tenant_id, customer_id);
CREATE INDEX subscriptions_tenant ON subscriptions (tenant_id, id);
CREATE INDEX subscriptions_due ON subscriptions (next_action_at) WHERE next_action_at IS NOT NULL;

-- Phases: which version and quantity applied over which span, so billing
-- prices each part of a period on the version that was in force.
CREATE TABLE subscription_phases (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL,
    subscription_id TEXT NOT NULL REFERENCES subscriptions (id),
    version_id      TEXT NOT NULL,
    quantity        TEXT NOT NULL,
    overrides       TEXT NOT NULL,
    paused          INTEGER NOT NULL,
    starts_at       BIGINT NOT NULL,
    ends_at         BIGINT
);
CREATE INDEX subscription_phases_sub ON subscription_phases (tenant_id, subscription_id, starts_at);

CREATE TABLE subscription_changes (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL,
    subscription_id TEXT NOT NULL REFERENCES subscriptions (id),
    type            TEXT NOT NULL,
    from_status     TEXT NOT NULL,
    to_status       TEXT NOT NULL,
    effective_at    BIGINT NOT NULL,
    data            TEXT NOT NULL,
    created_at      BIGINT NOT NULL
);
CREATE INDEX subscription_changes_sub ON subscription_changes (tenant_id, subscription_id, id);

-- Proration lines of mid-period changes, waiting for the next invoice.
CREATE TABLE subscription_prorations (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL,
    subscription_id TEXT NOT NULL REFERENCES subscriptions (id),
    change_id       TEXT NOT NULL,
    effective_at    BIGINT NOT NULL,
    lines           TEXT NOT NULL,
    invoiced_at     BIGINT,
    created_at      BIGINT NOT NULL
);
CREATE INDEX subscription_prorations_pending ON subscription_prorations (tenant_id, subscription_id) WHERE invoiced_at IS NULL;

-- One row per threshold crossed: the unique key makes the event once-only.
CREATE TABLE entitlement_thresholds (
    tenant_id       TEXT NOT NULL,
    subscription_id TEXT NOT NULL,
    feature_key     TEXT NOT NULL,
    period_start    BIGINT NOT NULL,
    threshold       INTEGER NOT NULL,
    used            TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, subscription_id, feature_key, period_start, threshold)
);
