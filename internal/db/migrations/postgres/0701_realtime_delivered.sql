-- Delivery receipts (issue 16): the latest message a member's device has
-- confirmed receiving, beside last_read_seq.
ALTER TABLE conversation_members ADD COLUMN last_delivered_seq BIGINT NOT NULL DEFAULT 0;
