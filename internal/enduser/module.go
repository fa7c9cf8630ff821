package enduser

import "github.com/abacusbilling/abacus"

// Module declares enduser's boundary (see abacus.Module; checked by
// test/arch). End users of a tenant's own apps, their apps (OIDC clients),
// sessions (devices), tokens and signing keys. It reuses identity's
// building blocks (password, token, totp, throttle) and its read API for
// tenants, never identity's tables.
var Module = abacus.Module{
	Name: "enduser",
	Tables: []string{
		"end_users", "end_user_apps", "end_user_sessions", "end_user_refresh_tokens",
		"end_user_email_tokens", "end_user_mfa", "end_user_recovery_codes",
		"end_user_signing_keys", "end_user_settings", "end_user_auth_codes",
	},
	Uses: []string{
		"abacus", "db", "httpapi", "identity", "outbox",
	},
}
