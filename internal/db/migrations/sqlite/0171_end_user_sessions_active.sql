-- The sessions that still count as connected devices, for max_devices:
-- counting a user's active sessions (on every sign-in under a limit)
-- must not walk every session the user ever had.
CREATE INDEX end_user_sessions_active ON end_user_sessions (tenant_id, user_id, last_seen_at) WHERE revoked_at IS NULL;
