-- Retention of received documents (issue 22): each tenant keeps them for
-- retention_years (default 10, legal archiving); a document's original
-- cannot be deleted before its retain_until, fixed when it was received.
CREATE TABLE inbound_settings (
    tenant_id       TEXT PRIMARY KEY,
    retention_years INTEGER NOT NULL,
    updated_at      BIGINT NOT NULL
);
ALTER TABLE inbound_documents ADD COLUMN retain_until BIGINT NOT NULL DEFAULT 0;
-- Documents received before this migration: ten years of 365.25 days.
UPDATE inbound_documents SET retain_until = received_at + 315576000000000;
