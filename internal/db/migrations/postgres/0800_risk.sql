-- Risk decisions (issue 18). Times are unix micros; amounts decimal TEXT.
-- Personal identifiers in risk_events.data are keyed hashes per tenant
-- (internal/risk/identify.go); the e-mail domain and IP prefix are kept in
-- clear for features.

-- Every accepted risk event, normalized: the source of truth the velocity
-- counters are rebuilt from and backtests replay. decision_id is the
-- decision the event got when it was sent.
CREATE TABLE risk_events (
    tenant_id   TEXT NOT NULL,
    id          TEXT NOT NULL,
    type        TEXT NOT NULL,
    time        BIGINT NOT NULL,
    customer_id TEXT NOT NULL,
    data        TEXT NOT NULL, -- the normalized event (JSON)
    decision_id TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX risk_events_time ON risk_events (tenant_id, time);
CREATE INDEX risk_events_received ON risk_events (received_at);

-- Every decision with what it was based on (features, rules and versions,
-- shadow results, rule errors), so it can be explained later. event_id is
-- "" for a pure question (POST /api/v1/risk/decisions).
CREATE TABLE risk_decisions (
    tenant_id  TEXT NOT NULL,
    id         TEXT NOT NULL,
    event_id   TEXT NOT NULL,
    decision   TEXT NOT NULL,
    body       TEXT NOT NULL, -- the decision as answered and explained (JSON)
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

-- Rules: one row per version. status: draft, active, retired; mode:
-- enforce, shadow; action: block, review, allow.
CREATE TABLE risk_rules (
    tenant_id    TEXT NOT NULL,
    id           TEXT NOT NULL,
    version      INTEGER NOT NULL,
    name         TEXT NOT NULL,
    description  TEXT NOT NULL,
    action       TEXT NOT NULL,
    mode         TEXT NOT NULL,
    logic        TEXT NOT NULL, -- JsonLogic (JSON)
    status       TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    activated_at BIGINT,
    retired_at   BIGINT,
    PRIMARY KEY (tenant_id, id, version)
);

-- Velocity counter definitions; their values live in memory, rebuilt from
-- risk_events.
CREATE TABLE risk_counters (
    tenant_id      TEXT NOT NULL,
    id             TEXT NOT NULL,
    name           TEXT NOT NULL,
    counter_key    TEXT NOT NULL,
    op             TEXT NOT NULL,
    counter_of     TEXT NOT NULL,
    window_seconds BIGINT NOT NULL,
    event_types    TEXT NOT NULL, -- JSON array; [] = every type
    created_at     BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX risk_counters_name ON risk_counters (tenant_id, name);

-- Per-tenant settings: the decision when no rule matches.
CREATE TABLE risk_settings (
    tenant_id        TEXT PRIMARY KEY,
    default_decision TEXT NOT NULL,
    updated_at       BIGINT NOT NULL
);

-- A tenant's own JSON Schema per event type, checked beside the built-in one.
CREATE TABLE risk_event_schemas (
    tenant_id  TEXT NOT NULL,
    event_type TEXT NOT NULL,
    schema     TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, event_type)
);
