package identity

import "github.com/abacusbilling/abacus/internal/outbox"

// Identity's domain events (see outbox.Define). An API key's payload
// describes the key (prefix, scopes, expiry), never the key or its hash.
var (
	TenantCreated = outbox.Define[Tenant]("tenant.created", 1, "tenant", "A tenant signed up.")
	APIKeyCreated = outbox.Define[APIKey]("api_key.created", 1, "api_key", "An API key was created.")
	APIKeyRevoked = outbox.Define[APIKey]("api_key.revoked", 1, "api_key", "An API key was revoked; it no longer authenticates.")
)
