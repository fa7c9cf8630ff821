package identity

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/identity/token"
)

// Role is a user's role in a tenant.
type Role string

// Roles, from most to least powerful. Billing is read/write on billing
// objects only (see permissions.go).
const (
	RoleOwner   Role = "owner"
	RoleAdmin   Role = "admin"
	RoleMember  Role = "member"
	RoleViewer  Role = "viewer"
	RoleBilling Role = "billing"
)

// Roles lists every role.
var Roles = []Role{RoleOwner, RoleAdmin, RoleMember, RoleViewer, RoleBilling}

// ValidRole reports whether r is a known role.
func ValidRole(r Role) bool { return slices.Contains(Roles, r) }

// ScopeBillingOnly marks a principal restricted to billing routes. It is
// never a scope a route asks for; Authorize looks for it.
const ScopeBillingOnly abacus.Scope = "restrict:billing"

// RoleScopes returns the scopes a membership role grants.
func RoleScopes(r Role) []abacus.Scope {
	switch r {
	case RoleOwner, RoleAdmin:
		return []abacus.Scope{abacus.ScopeAdmin}
	case RoleMember:
		return []abacus.Scope{abacus.ScopeIngest, abacus.ScopeRead, abacus.ScopeWrite}
	case RoleViewer:
		return []abacus.Scope{abacus.ScopeRead}
	case RoleBilling:
		return []abacus.Scope{abacus.ScopeRead, abacus.ScopeWrite, ScopeBillingOnly}
	}
	return nil
}

var (
	errTokenRevoked = abacus.Errorf(abacus.KindUnauthorized, "token_revoked",
		"the session or membership behind this access token has ended; sign in again")
	errClientRevoked = abacus.Errorf(abacus.KindUnauthorized, "token_revoked",
		"the OAuth client behind this access token was revoked; ask an admin for a new client")
)

// Authenticate turns a bearer credential into a principal: API keys
// (abk_…) are looked up by hash; anything else must be an access JWT
// signed by one of the tenant-independent signing keys.
//
// For a JWT, the principal's scopes come from the bearer's current
// membership role (users) or the client's current scopes (clients), not
// from the token alone: that check is cached for 10 seconds per node, so a
// removed member, a revoked session or a revoked client loses access
// within 10 seconds, not at the token's expiry. Errors are
// KindUnauthorized: invalid_api_key, token_expired, token_invalid,
// token_revoked.
func (s *Service) Authenticate(ctx context.Context, cred string) (*abacus.Principal, error) {
	if strings.HasPrefix(cred, KeyPrefix) || strings.Count(cred, ".") != 2 {
		return s.authenticateKey(ctx, cred)
	}
	ring, err := s.keyring(ctx)
	if err != nil {
		return nil, err
	}
	claims, err := ring.Verify(cred)
	if err != nil {
		if e, ok := abacus.AsError(err); ok && e.Code == token.CodeTokenInvalid {
			// Perhaps another node rotated: re-read the keys once.
			s.reloadForKid(ctx, kidOf(cred))
			if ring, rerr := s.keyring(ctx); rerr == nil {
				claims, err = ring.Verify(cred)
			}
		}
		if err != nil {
			return nil, err
		}
	}
	if claims.TenantID == "" {
		return nil, abacus.Errorf(abacus.KindUnauthorized, token.CodeTokenInvalid, "the access token names no tenant; sign in again")
	}
	session, _, _ := strings.Cut(claims.ID, ".")
	cacheKey := claims.TenantID + "|" + claims.Subject + "|" + session + "|" + strings.Join(scopeStrings(claims.Scopes), " ")
	now := s.clock.Now()
	s.a.authMu.Lock()
	c, ok := s.a.authCache[cacheKey]
	s.a.authMu.Unlock()
	if ok && now.Before(c.until) {
		return c.p, c.err
	}
	var p *abacus.Principal
	switch {
	case strings.HasPrefix(claims.Subject, "usr_"):
		p, err = s.checkUserToken(ctx, claims.TenantID, claims.Subject, session, now)
	case strings.HasPrefix(claims.Subject, "cli_"):
		p, err = s.checkClientToken(ctx, claims.TenantID, claims.Subject, claims.Scopes)
	default:
		err = abacus.Errorf(abacus.KindUnauthorized, token.CodeTokenInvalid, "the access token's subject is unknown; sign in again")
	}
	if err != nil && abacus.ErrorKind(err) == abacus.KindInternal {
		return nil, err // do not cache faults
	}
	s.a.authMu.Lock()
	if len(s.a.authCache) > 100_000 {
		clear(s.a.authCache)
	}
	s.a.authCache[cacheKey] = cachedAuth{p: p, err: err, until: now.Add(authCacheTTL)}
	s.a.authMu.Unlock()
	return p, err
}

// forgetAuth drops cached JWT checks on this node after a revocation, so
// the node that made the change enforces it at once.
func (s *Service) forgetAuth() {
	s.a.authMu.Lock()
	clear(s.a.authCache)
	s.a.authMu.Unlock()
}

func (s *Service) checkUserToken(ctx context.Context, tenant, user, session string, now time.Time) (*abacus.Principal, error) {
	var role string
	var revoked db.NullTime
	var expires db.Time
	err := s.db.QueryRowContext(ctx, `SELECT m.role, s.revoked_at, s.expires_at FROM memberships m
		JOIN sessions s ON s.user_id = m.user_id AND s.tenant_id = m.tenant_id
		WHERE m.tenant_id = $1 AND m.user_id = $2 AND s.id = $3`, tenant, user, session).Scan(&role, &revoked, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errTokenRevoked
	}
	if err != nil {
		return nil, fmt.Errorf("checking access token: %w", err)
	}
	if revoked.Valid || !now.Before(expires.Time) {
		return nil, errTokenRevoked
	}
	return &abacus.Principal{TenantID: tenant, Kind: "user", ID: user, Scopes: RoleScopes(Role(role))}, nil
}

func (s *Service) checkClientToken(ctx context.Context, tenant, client string, asked []abacus.Scope) (*abacus.Principal, error) {
	var scopes string
	var revoked db.NullTime
	err := s.db.QueryRowContext(ctx, `SELECT scopes, revoked_at FROM oauth_clients WHERE tenant_id = $1 AND id = $2`,
		tenant, client).Scan(&scopes, &revoked)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && revoked.Valid) {
		return nil, errClientRevoked
	}
	if err != nil {
		return nil, fmt.Errorf("checking access token: %w", err)
	}
	allowed := splitScopes(scopes)
	var granted []abacus.Scope
	for _, sc := range asked {
		if slices.Contains(allowed, sc) {
			granted = append(granted, sc)
		}
	}
	return &abacus.Principal{TenantID: tenant, Kind: "client", ID: client, Scopes: granted}, nil
}

// issueAccess signs an access token for a user's session.
func (s *Service) issueAccess(ctx context.Context, tenant, user, session string, role Role) (string, error) {
	ring, err := s.keyring(ctx)
	if err != nil {
		return "", err
	}
	return ring.Sign(token.Claims{Subject: user, TenantID: tenant, Role: string(role), Scopes: RoleScopes(role),
		ID: session + "." + abacus.NewID("jti")})
}

func scopeStrings(sc []abacus.Scope) []string {
	out := make([]string, len(sc))
	for i, v := range sc {
		out[i] = string(v)
	}
	return out
}

func splitScopes(s string) []abacus.Scope {
	var out []abacus.Scope
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' }) {
		out = append(out, abacus.Scope(f))
	}
	return out
}
