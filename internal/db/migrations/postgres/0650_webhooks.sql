-- Outbound webhooks (issue 14). Times are unix micros; secrets are encrypted
-- (AES-256-GCM, see internal/webhooks/secret.go), never stored in clear.
CREATE TABLE webhook_endpoints (
    id               TEXT PRIMARY KEY,
    tenant_id        TEXT NOT NULL,
    url              TEXT NOT NULL,
    description      TEXT NOT NULL,
    event_types      TEXT NOT NULL, -- JSON array; [] = every type
    enabled          INTEGER NOT NULL, -- 1 or 0
    disabled_reason  TEXT NOT NULL,
    rate_limit       INTEGER NOT NULL, -- deliveries per second; 0 = no limit
    secret           TEXT NOT NULL,
    old_secret       TEXT NOT NULL,
    old_secret_until BIGINT NOT NULL,
    failing_since    BIGINT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE INDEX webhook_endpoints_tenant ON webhook_endpoints (tenant_id, id);

-- One row per domain event the webhooks consumer took in for a tenant with
-- endpoints: the id makes the consumer idempotent, the body is signed and
-- sent for every message of the event, and replays read it again.
CREATE TABLE webhook_events (
    id         TEXT PRIMARY KEY,
    tenant_id  TEXT NOT NULL,
    type       TEXT NOT NULL,
    body       TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX webhook_events_tenant_time ON webhook_events (tenant_id, created_at);

-- One message per (event, endpoint); its id is the webhook-id header, the
-- same on every attempt. status: pending, delivered, failed.
CREATE TABLE webhook_messages (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL,
    endpoint_id     TEXT NOT NULL,
    event_id        TEXT NOT NULL,
    event_type      TEXT NOT NULL,
    status          TEXT NOT NULL,
    attempts        INTEGER NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    lease_until     BIGINT NOT NULL,
    created_at      BIGINT NOT NULL,
    delivered_at    BIGINT,
    UNIQUE (event_id, endpoint_id)
);
CREATE INDEX webhook_messages_endpoint ON webhook_messages (endpoint_id, status, next_attempt_at, id);
CREATE INDEX webhook_messages_endpoint_id ON webhook_messages (endpoint_id, id);

CREATE TABLE webhook_attempts (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL,
    message_id      TEXT NOT NULL,
    attempt         INTEGER NOT NULL,
    at              BIGINT NOT NULL,
    status_code     INTEGER NOT NULL, -- 0: no HTTP answer (see error)
    latency_us      BIGINT NOT NULL,
    error           TEXT NOT NULL,
    response        TEXT NOT NULL, -- the first bytes of the answer
    next_attempt_at BIGINT
);
CREATE INDEX webhook_attempts_message ON webhook_attempts (message_id, attempt);
