package realtime

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"

	"github.com/abacusbilling/abacus"
)

// Connection tokens are JWTs (HS256) signed with a key of the tenant's
// that Abacus keeps (table realtime_keys, made on first use), carrying
// the tenant (tid), the user (sub), the expiry and optional grants. They
// are for the WebSocket only: no other route accepts them.
const (
	tokenIssuer = "abacus/realtime"
	kidPrefix   = "rtk_"
)

// TokenInput asks for a connection token.
type TokenInput struct {
	UserID     string   `json:"user_id" example:"user_ada" doc:"the tenant's own id of the user, or an end-user id"`
	TTLSeconds int      `json:"ttl_seconds,omitempty" minimum:"0" example:"3600" doc:"lifetime; default 3600, at most 86400. The token is checked when the socket connects."`
	Grants     []string `json:"grants,omitempty" maxItems:"100" example:"[\"cnv_01jd6z8q4m7x2v3b9n5k1c0abc\"]" doc:"conversation ids the connection is limited to (sends, resumes, receipts and what it receives); empty: every conversation the user is a member of"`
}

// Token is a connection token.
type Token struct {
	Token     string    `json:"token" example:"eyJhbGciOiJIUzI1NiIsImtpZCI6InJ0a18uLi4ifQ.eyJ…"`
	ExpiresAt time.Time `json:"expires_at"`
}

type tokenClaims struct {
	jwt.RegisteredClaims
	Tenant string   `json:"tid"`
	Grants []string `json:"grants,omitempty"`
}

// keyring caches tenants' signing keys.
type keyring struct {
	mu   sync.RWMutex
	keys map[string]tenantSecret
}

type tenantSecret struct {
	kid    string
	secret []byte
}

// key returns the tenant's signing key; without create, a tenant that has
// none yet gets errTokenInvalid (verifying never stores anything).
func (s *Service) key(ctx context.Context, tenant string, create bool) (tenantSecret, error) {
	s.keys.mu.RLock()
	k, ok := s.keys.keys[tenant]
	s.keys.mu.RUnlock()
	if ok {
		return k, nil
	}
	fresh := func() (string, string) {
		b := make([]byte, 32)
		_, _ = rand.Read(b)
		return abacus.NewID("rtk"), base64.StdEncoding.EncodeToString(b)
	}
	if !create {
		fresh = nil
	}
	kid, secret, err := tenantKey(ctx, s.db, tenant, fresh, s.clock.Now())
	if err != nil {
		return tenantSecret{}, err
	}
	raw, err := base64.StdEncoding.DecodeString(secret)
	if err != nil {
		return tenantSecret{}, err
	}
	k = tenantSecret{kid: kid, secret: raw}
	s.keys.mu.Lock()
	s.keys.keys[tenant] = k
	s.keys.mu.Unlock()
	return k, nil
}

// MintToken returns a connection token for a user of the caller's tenant.
func (s *Service) MintToken(ctx context.Context, in TokenInput) (Token, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return Token{}, err
	}
	var v abacus.Validation
	if why := validUserID(in.UserID); why != "" {
		v.Add("body.user_id", "%s", why)
	}
	ttl := time.Hour
	switch {
	case in.TTLSeconds < 0 || in.TTLSeconds > 86400:
		v.Add("body.ttl_seconds", "must be between 1 and 86400")
	case in.TTLSeconds > 0:
		ttl = time.Duration(in.TTLSeconds) * time.Second
	}
	if len(in.Grants) > 100 {
		v.Add("body.grants", "at most 100 conversations")
	}
	for i, g := range in.Grants {
		if g == "" || len(g) > 64 || !utf8.ValidString(g) {
			v.Add("body.grants["+itoa(i)+"]", "must be a conversation id")
		}
	}
	if err := v.Err("invalid_token_request"); err != nil {
		return Token{}, err
	}
	k, err := s.key(ctx, tenant, true)
	if err != nil {
		return Token{}, err
	}
	now := s.clock.Now()
	exp := now.Add(ttl).Truncate(time.Second)
	t := jwt.NewWithClaims(jwt.SigningMethodHS256, tokenClaims{
		RegisteredClaims: jwt.RegisteredClaims{Issuer: tokenIssuer, Subject: in.UserID, IssuedAt: jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(exp), ID: abacus.NewID("rtt")},
		Tenant: tenant, Grants: in.Grants,
	})
	t.Header["kid"] = k.kid
	signed, err := t.SignedString(k.secret)
	if err != nil {
		return Token{}, err
	}
	return Token{Token: signed, ExpiresAt: exp}, nil
}

// Identity is who a WebSocket connection acts for.
type Identity struct {
	TenantID string
	UserID   string
	// Grants limits the connection to these conversations; nil: all the
	// user's.
	Grants []string
	// Kind is "token" (a connection token) or "end_user" (an end user's
	// access token).
	Kind      string
	ExpiresAt time.Time
}

// isConnectionToken reports whether tok looks like a realtime connection
// token (its header names a realtime key).
func isConnectionToken(tok string) bool {
	head, _, ok := strings.Cut(tok, ".")
	if !ok {
		return false
	}
	b, err := base64.RawURLEncoding.DecodeString(head)
	return err == nil && (strings.Contains(string(b), `"kid":"`+kidPrefix) || strings.Contains(string(b), `"kid":"`+publicKidPrefix))
}

// isTenantToken reports whether tok names a tenant's public key.
func isTenantToken(tok string) bool {
	head, _, _ := strings.Cut(tok, ".")
	b, err := base64.RawURLEncoding.DecodeString(head)
	return err == nil && strings.Contains(string(b), `"kid":"`+publicKidPrefix)
}

// Errors of VerifyToken; the gateway closes with the code each documents.
var (
	errTokenExpired = abacus.Errorf(abacus.KindUnauthorized, "token_expired", "the connection token has expired: get a new one and connect again")
	errTokenInvalid = abacus.Errorf(abacus.KindUnauthorized, "token_invalid", "the token is not a valid connection token or access token")
)

// VerifyToken checks a connection token and returns its identity, or
// token_expired or token_invalid.
func (s *Service) VerifyToken(ctx context.Context, tok string) (Identity, error) {
	if isTenantToken(tok) {
		return s.verifyTenantToken(ctx, tok)
	}
	var c tokenClaims
	_, err := jwt.ParseWithClaims(tok, &c, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		if c.Tenant == "" {
			return nil, errTokenInvalid
		}
		k, err := s.key(ctx, c.Tenant, false)
		if err != nil {
			return nil, err
		}
		if kid != k.kid {
			return nil, errTokenInvalid
		}
		return k.secret, nil
	}, jwt.WithValidMethods([]string{"HS256"}), jwt.WithIssuer(tokenIssuer), jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(s.clock.Now), jwt.WithLeeway(0))
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return Identity{}, errTokenExpired
	case err != nil:
		return Identity{}, errTokenInvalid
	case validUserID(c.Subject) != "":
		return Identity{}, errTokenInvalid
	}
	return Identity{TenantID: c.Tenant, UserID: c.Subject, Grants: c.Grants, Kind: "token", ExpiresAt: c.ExpiresAt.Time}, nil
}
