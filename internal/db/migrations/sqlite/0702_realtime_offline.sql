-- Offline notifications (issue 16). A conversation whose new messages went
-- to a member with no live connection waits here until due_at (a short
-- delay); then each member still offline, with messages from others they
-- have neither read nor been notified of, gets one notification, and
-- notified_seq moves to last_seq. muted_until: the member muted the
-- conversation's notifications until then (NULL: not muted).
CREATE TABLE realtime_offline_pending (
    tenant_id       TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    last_seq        BIGINT NOT NULL,
    due_at          BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, conversation_id)
) WITHOUT ROWID;
CREATE INDEX realtime_offline_pending_due ON realtime_offline_pending (due_at);
ALTER TABLE conversation_members ADD COLUMN notified_seq BIGINT NOT NULL DEFAULT 0;
ALTER TABLE conversation_members ADD COLUMN muted_until BIGINT;
