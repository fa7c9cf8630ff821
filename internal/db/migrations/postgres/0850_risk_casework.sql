-- Risk casework (issue 18, part B): labels, allow/block lists, review cases
-- and score models. Times are unix micros. The link graph has no table: it
-- is rebuilt from risk_events and risk_labels at start.

-- A customer's current label. customer_id is the tenant's own customer id
-- (as risk events carry it). source: staff, dispute (a lost chargeback),
-- review (a resolved case).
CREATE TABLE risk_labels (
    tenant_id   TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    label       TEXT NOT NULL, -- fraud, legitimate
    source      TEXT NOT NULL,
    note        TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, customer_id)
);

-- Allow and block lists. action: block, allow, watch (only lists.<name>).
CREATE TABLE risk_lists (
    tenant_id   TEXT NOT NULL,
    id          TEXT NOT NULL,
    name        TEXT NOT NULL,
    action      TEXT NOT NULL,
    description TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX risk_lists_name ON risk_lists (tenant_id, name);

-- A list entry: an identifier of a type (customer_id, device_id, ip,
-- email, …) by the value events store (the keyed hash for personal
-- identifiers); expires_at NULL never expires.
CREATE TABLE risk_list_entries (
    tenant_id  TEXT NOT NULL,
    id         TEXT NOT NULL,
    list_id    TEXT NOT NULL,
    kind       TEXT NOT NULL,
    value      TEXT NOT NULL,
    note       TEXT NOT NULL,
    expires_at BIGINT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX risk_list_entries_value ON risk_list_entries (tenant_id, list_id, kind, value);

-- Review cases: opened by review decisions. status: open, resolved.
CREATE TABLE risk_cases (
    tenant_id   TEXT NOT NULL,
    id          TEXT NOT NULL,
    decision_id TEXT NOT NULL,
    event_id    TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    status      TEXT NOT NULL,
    assignee    TEXT NOT NULL,
    resolution  TEXT NOT NULL, -- the label given on resolving: fraud, legitimate
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    resolved_at BIGINT,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX risk_cases_status ON risk_cases (tenant_id, status, id);
CREATE UNIQUE INDEX risk_cases_decision ON risk_cases (tenant_id, decision_id);

CREATE TABLE risk_case_comments (
    tenant_id  TEXT NOT NULL,
    id         TEXT NOT NULL,
    case_id    TEXT NOT NULL,
    author     TEXT NOT NULL,
    body       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX risk_case_comments_case ON risk_case_comments (tenant_id, case_id, id);

-- Score models, one row per version; model is the JSON of score.Model.
CREATE TABLE risk_models (
    tenant_id  TEXT NOT NULL,
    version    INTEGER NOT NULL,
    kind       TEXT NOT NULL, -- logistic
    model      TEXT NOT NULL,
    examples   INTEGER NOT NULL,
    positives  INTEGER NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, version)
);
