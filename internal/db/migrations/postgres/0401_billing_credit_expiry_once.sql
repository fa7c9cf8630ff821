-- A grant expires at most once: two billing workers that both see an
-- expired grant race to write its expiry entry; the loser's insert
-- conflicts here and is skipped (ON CONFLICT DO NOTHING).
CREATE UNIQUE INDEX credit_entries_expired_once ON credit_entries (tenant_id, grant_id) WHERE kind = 'expiry';
