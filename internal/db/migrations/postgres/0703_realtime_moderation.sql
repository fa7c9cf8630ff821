-- Moderation (issue 16): users a user blocked (no messages between them in
-- a conversation of two, none of theirs notified), and messages reported
-- to the tenant's staff, with a copy of the text as it was reported.
CREATE TABLE realtime_blocks (
    tenant_id  TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    blocked_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, user_id, blocked_id)
);
CREATE TABLE realtime_reports (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    seq             BIGINT NOT NULL,
    reporter_id     TEXT NOT NULL,
    sender_id       TEXT NOT NULL,
    text            TEXT NOT NULL,
    reason          TEXT NOT NULL,
    status          TEXT NOT NULL, -- open, resolved, dismissed
    resolution      TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    resolved_at     BIGINT
);
CREATE INDEX realtime_reports_tenant ON realtime_reports (tenant_id, status, id);
CREATE UNIQUE INDEX realtime_reports_once ON realtime_reports (tenant_id, conversation_id, seq, reporter_id);
