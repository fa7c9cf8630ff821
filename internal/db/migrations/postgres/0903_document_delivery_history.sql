-- Delivery status history of invoices and credit notes (issue 22): one row
-- per transition of one delivery (an e-mail delivery of the notifications
-- queue, or a webhook message), so the document shows queued, sent,
-- delivered, failed with reason and retried in order. Owned by
-- notifications; webhooks' outcomes are recorded here through an observer
-- the app wires, in the transaction that records them.
CREATE TABLE notification_delivery_history (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL,
    subject_type    TEXT NOT NULL,
    subject_id      TEXT NOT NULL,
    delivery_id     TEXT NOT NULL,
    channel         TEXT NOT NULL,
    recipient       TEXT NOT NULL,
    formats         TEXT NOT NULL,
    status          TEXT NOT NULL,
    reason          TEXT NOT NULL,
    attempt         INTEGER NOT NULL,
    next_attempt_at BIGINT,
    at              BIGINT NOT NULL
);
CREATE INDEX notification_delivery_history_subject
    ON notification_delivery_history (tenant_id, subject_type, subject_id, delivery_id, at, id);
-- The next transition of a delivery copies its queued row (subject,
-- channel, recipient, formats): found by delivery id.
CREATE INDEX notification_delivery_history_delivery ON notification_delivery_history (delivery_id, status);
