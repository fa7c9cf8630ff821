-- Idempotency-Key rows are deleted once older than http.idempotency_retention
-- (internal/httpapi, keyretention.go), oldest first in bounded batches: the
-- batch is read through this index instead of scanning every key.
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
