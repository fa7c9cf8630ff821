package abacus

import "context"

// Scope is a permission an API key or token carries.
type Scope string

const (
	ScopeIngest Scope = "ingest" // send usage events
	ScopeRead   Scope = "read"   // read domain objects
	ScopeWrite  Scope = "write"  // create and change domain objects
	ScopeAdmin  Scope = "admin"  // manage keys, members and tenant settings
)

// Scopes lists every scope in a stable order.
var Scopes = []Scope{ScopeIngest, ScopeRead, ScopeWrite, ScopeAdmin}

// ValidScope reports whether s is a known scope.
func ValidScope(s Scope) bool {
	for _, v := range Scopes {
		if v == s {
			return true
		}
	}
	return false
}

// Principal is who is calling: a tenant and the key, user or client acting
// for it. The HTTP layer puts it on the request context after
// authentication; stores read the tenant from it.
type Principal struct {
	TenantID string
	// Kind is "api_key", "user" or "client".
	Kind   string
	ID     string
	Scopes []Scope
}

// Has reports whether p carries scope s. Admin implies every other scope.
func (p *Principal) Has(s Scope) bool {
	for _, v := range p.Scopes {
		if v == s || v == ScopeAdmin {
			return true
		}
	}
	return false
}

type principalKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the principal on ctx, or nil.
func PrincipalFrom(ctx context.Context) *Principal {
	p, _ := ctx.Value(principalKey{}).(*Principal)
	return p
}

// TenantFrom returns the tenant of the principal on ctx. Stores call it on
// every tenant-owned query, so a query without a tenant fails closed.
func TenantFrom(ctx context.Context) (string, error) {
	if p := PrincipalFrom(ctx); p != nil && p.TenantID != "" {
		return p.TenantID, nil
	}
	return "", Errorf(KindUnauthorized, "tenant_required", "this operation needs an authenticated tenant")
}
