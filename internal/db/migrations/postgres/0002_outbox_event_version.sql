-- Each domain event carries the version of its type (outbox.Define), so a
-- consumer can tell a payload of a new version from the old one. Rows
-- recorded before this migration are version 1, the only one there was.
ALTER TABLE outbox_events ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
