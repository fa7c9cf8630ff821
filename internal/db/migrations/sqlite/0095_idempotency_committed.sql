-- An Idempotency-Key claim is marked in the handler's own write
-- transaction (committed_at), so a claim whose effect committed is never
-- taken for abandoned and run again after a crash. claim identifies one
-- claim of a key, so a handler whose claim was taken over cannot mark or
-- answer for the next one; request_id is the request that made it, for a
-- client asking what became of it. Claims made before this have none.
ALTER TABLE idempotency_keys ADD COLUMN claim TEXT NOT NULL DEFAULT '';
ALTER TABLE idempotency_keys ADD COLUMN request_id TEXT NOT NULL DEFAULT '';
ALTER TABLE idempotency_keys ADD COLUMN committed_at BIGINT;
