-- A cycle that fails to bill is deferred instead of holding up every
-- other cycle: how often it failed in a row and the last error, for
-- operators (cleared by the next success).
ALTER TABLE billing_cycles ADD COLUMN failures INTEGER NOT NULL DEFAULT 0;
ALTER TABLE billing_cycles ADD COLUMN last_error TEXT;
