package identity

import "github.com/abacusbilling/abacus"

// Module declares identity's boundary (see abacus.Module; checked by
// test/arch). Tenants, staff, end users, keys and tokens. tenants and api_keys
// were created by the platform migration (0001); identity owns them.
var Module = abacus.Module{
	Name: "identity",
	Tables: []string{
		"tenants", "api_keys", "users", "memberships", "sessions", "refresh_tokens",
		"email_tokens", "totp_secrets", "recovery_codes", "oauth_clients", "signing_keys",
		"audit_events", "mail_outbox",
	},
	Uses: []string{
		"abacus", "db", "httpapi", "notifications", "outbox",
	},
}
