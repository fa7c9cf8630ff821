-- A customer's timeline: one row per domain event that names a customer,
-- written by the timeline consumer (internal/timeline). The key is the
-- event id, so a redelivered event is not indexed twice; the page query
-- reads a customer's rows newest first through timeline_entries_customer.
-- data is a small JSON object of the facts the entry's sentence needs
-- (number, amount, currency…), copied from the event's typed payload.
CREATE TABLE timeline_entries (
    tenant_id   TEXT NOT NULL,
    event_id    TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    type        TEXT NOT NULL,
    occurred_at BIGINT NOT NULL,
    object_type TEXT NOT NULL,
    object_id   TEXT NOT NULL,
    data        TEXT NOT NULL,
    PRIMARY KEY (tenant_id, event_id)
) WITHOUT ROWID;
CREATE INDEX timeline_entries_customer ON timeline_entries (tenant_id, customer_id, occurred_at, event_id);
