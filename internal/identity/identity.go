// Package identity owns who may call Abacus: tenants (the organizations
// that run their SaaS on Abacus) and the API keys that act for them. Later
// work adds users, sessions and OAuth clients here; building blocks live in
// its sub-packages (password, token, totp, throttle).
//
// Every tenant-owned query filters on the tenant taken from the request's
// principal (abacus.TenantFrom); another tenant's object is reported as not
// found, never as forbidden, so its existence does not leak.
package identity

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
)

// Tenant is an organization using Abacus.
type Tenant struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
}

// APIKey is an API key's metadata; the secret itself is shown once, at
// creation, and only its hash is stored.
type APIKey struct {
	ID         string         `json:"id"`
	TenantID   string         `json:"tenant_id"`
	Name       string         `json:"name"`
	Prefix     string         `json:"prefix" doc:"the first characters of the key, to recognise it"`
	Scopes     []abacus.Scope `json:"scopes"`
	ExpiresAt  *time.Time     `json:"expires_at,omitempty"`
	LastUsedAt *time.Time     `json:"last_used_at,omitempty"`
	RevokedAt  *time.Time     `json:"revoked_at,omitempty"`
	CreatedAt  time.Time      `json:"created_at"`
}

// KeyPrefix starts every API key.
const KeyPrefix = "abk_"

// Service manages tenants and API keys and authenticates bearer keys.
type Service struct {
	db    *db.DB
	clock abacus.Clock
	log   *slog.Logger

	cacheTTL time.Duration
	mu       sync.RWMutex
	cache    map[[sha256.Size]byte]cachedKey // key hash → principal
	touched  map[string]time.Time            // key id → last time last_used_at was written

	a *auth // users, sessions, tokens, MFA, clients (see options.go)
}

type cachedKey struct {
	p       *abacus.Principal
	expires time.Time // of the key itself, zero for none
	until   time.Time // of the cache entry
}

// NewService returns a service over d. Options set password hashing
// parameters, the mailer and token lifetimes; the defaults suit production.
func NewService(d *db.DB, clock abacus.Clock, log *slog.Logger, opts ...Option) *Service {
	return &Service{db: d, clock: clock, log: log, cacheTTL: 5 * time.Second,
		cache: map[[sha256.Size]byte]cachedKey{}, touched: map[string]time.Time{}, a: newAuth(clock, opts)}
}

// NewKey returns a new API key secret: the prefix and 160 random bits in
// lower-case base32.
func NewKey() string {
	var b [20]byte
	_, _ = rand.Read(b[:])
	return KeyPrefix + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
}

// HashKey hashes an API key for storage and lookup. Keys carry 160 random
// bits, so a fast hash is safe here (no dictionary to attack) and keeps
// authentication off the slow path that passwords need.
func HashKey(key string) string {
	s := sha256.Sum256([]byte(key))
	return hex.EncodeToString(s[:])
}

// CreateTenant creates a tenant.
func (s *Service) CreateTenant(ctx context.Context, name string) (Tenant, error) {
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 200 {
		return Tenant{}, abacus.Invalid("invalid_tenant_name", "name must be 1 to 200 characters").WithField("name", "must be 1 to 200 characters")
	}
	t := Tenant{ID: abacus.NewID("ten"), Name: name, CreatedAt: s.clock.Now()}
	_, err := s.db.ExecContext(ctx, `INSERT INTO tenants (id, name, created_at) VALUES ($1, $2, $3)`, t.ID, t.Name, db.TimeOf(t.CreatedAt))
	if err != nil {
		return Tenant{}, fmt.Errorf("creating tenant: %w", err)
	}
	return t, nil
}

// CountTenants returns how many tenants exist (bootstrap checks for zero).
func (s *Service) CountTenants(ctx context.Context) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM tenants`).Scan(&n)
	return n, err
}

// NewKeyInput describes a key to create.
type NewKeyInput struct {
	Name      string         `json:"name" minLength:"1" maxLength:"200" doc:"what the key is for"`
	Scopes    []abacus.Scope `json:"scopes" minItems:"1" enum:"ingest,read,write,admin" doc:"ingest, read, write and/or admin"`
	ExpiresAt *time.Time     `json:"expires_at,omitempty" doc:"when the key stops working; none if absent"`
}

// CreateAPIKey creates a key for the principal's tenant and returns it with
// its plaintext, which is not stored.
func (s *Service) CreateAPIKey(ctx context.Context, in NewKeyInput) (APIKey, string, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return APIKey{}, "", err
	}
	return s.createKey(ctx, tenant, in, "")
}

func (s *Service) createKey(ctx context.Context, tenant string, in NewKeyInput, plaintext string) (APIKey, string, error) {
	k, plaintext, err := s.newKey(tenant, in, plaintext)
	if err != nil {
		return APIKey{}, "", err
	}
	if err := s.db.InTx(ctx, func(tx *db.Tx) error { return s.insertKey(ctx, tx, k, plaintext) }); err != nil {
		return APIKey{}, "", err
	}
	return k, plaintext, nil
}

// newKey checks in and returns the key to store, with its plaintext (a
// new one when plaintext is empty).
func (s *Service) newKey(tenant string, in NewKeyInput, plaintext string) (APIKey, string, error) {
	var v abacus.Validation
	in.Name = strings.TrimSpace(in.Name)
	if in.Name == "" || len(in.Name) > 200 {
		v.Add("name", "must be 1 to 200 characters")
	}
	if len(in.Scopes) == 0 {
		v.Add("scopes", "name at least one of ingest, read, write, admin")
	}
	seen := map[abacus.Scope]bool{}
	var scopes []abacus.Scope
	for i, sc := range in.Scopes {
		if !abacus.ValidScope(sc) {
			v.Add(fmt.Sprintf("scopes[%d]", i), "%q is not a scope; use ingest, read, write or admin", sc)
		} else if !seen[sc] {
			seen[sc] = true
			scopes = append(scopes, sc)
		}
	}
	now := s.clock.Now()
	if in.ExpiresAt != nil && !in.ExpiresAt.After(now) {
		v.Add("expires_at", "must be in the future")
	}
	if err := v.Err("invalid_api_key"); err != nil {
		return APIKey{}, "", err
	}
	if plaintext == "" {
		plaintext = NewKey()
	}
	return APIKey{ID: abacus.NewID("key"), TenantID: tenant, Name: in.Name, Prefix: plaintext[:12],
		Scopes: scopes, ExpiresAt: in.ExpiresAt, CreatedAt: now}, plaintext, nil
}

// insertKey stores k with its event and audit entry in tx.
func (s *Service) insertKey(ctx context.Context, tx *db.Tx, k APIKey, plaintext string) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO api_keys (id, tenant_id, name, prefix, hash, scopes, expires_at, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		k.ID, k.TenantID, k.Name, k.Prefix, HashKey(plaintext), joinScopes(k.Scopes), db.NullTimeOf(k.ExpiresAt), db.TimeOf(k.CreatedAt))
	if err != nil {
		return fmt.Errorf("creating API key: %w", err)
	}
	if _, err = APIKeyCreated.Record(ctx, tx, k.TenantID, k.ID, k.CreatedAt, k); err != nil {
		return err
	}
	return s.audit(ctx, tx, k.TenantID, "api_key.created", "api_key", k.ID, map[string]any{"name": k.Name, "scopes": k.Scopes})
}

// ListAPIKeys lists the tenant's keys, newest first.
func (s *Service) ListAPIKeys(ctx context.Context) ([]APIKey, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+keyColumns+` FROM api_keys WHERE tenant_id = $1 ORDER BY created_at DESC, id DESC`, tenant)
	if err != nil {
		return nil, fmt.Errorf("listing API keys: %w", err)
	}
	defer rows.Close()
	out := []APIKey{}
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// GetAPIKey returns one of the tenant's keys, or a not_found error.
func (s *Service) GetAPIKey(ctx context.Context, id string) (APIKey, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return APIKey{}, err
	}
	k, err := scanKey(s.db.QueryRowContext(ctx, `SELECT `+keyColumns+` FROM api_keys WHERE tenant_id = $1 AND id = $2`, tenant, id))
	if errors.Is(err, sql.ErrNoRows) {
		return APIKey{}, abacus.NotFound("api_key", id)
	}
	return k, err
}

// RevokeAPIKey revokes one of the tenant's keys. Revoking twice is not an
// error. The key stops working within the cache TTL (5 s) on every node.
func (s *Service) RevokeAPIKey(ctx context.Context, id string) (APIKey, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return APIKey{}, err
	}
	now := s.clock.Now()
	var k APIKey
	err = s.db.InTx(ctx, func(tx *db.Tx) error {
		k, err = scanKey(tx.QueryRowContext(ctx, `SELECT `+keyColumns+` FROM api_keys WHERE tenant_id = $1 AND id = $2`, tenant, id))
		if errors.Is(err, sql.ErrNoRows) {
			return abacus.NotFound("api_key", id)
		}
		if err != nil || k.RevokedAt != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE api_keys SET revoked_at = $1 WHERE tenant_id = $2 AND id = $3`, db.TimeOf(now), tenant, id); err != nil {
			return fmt.Errorf("revoking API key: %w", err)
		}
		k.RevokedAt = &now
		if _, err = APIKeyRevoked.Record(ctx, tx, tenant, id, now, k); err != nil {
			return err
		}
		return s.audit(ctx, tx, tenant, "api_key.revoked", "api_key", id, nil)
	})
	if err != nil {
		return APIKey{}, err
	}
	s.mu.Lock()
	for h, c := range s.cache {
		if c.p.ID == id {
			delete(s.cache, h)
		}
	}
	s.mu.Unlock()
	return k, nil
}

// A key's cached principal serves for staleKeyFor past its cache TTL when
// the database cannot be read (it answers no lookup within
// staleKeyLookup), so usage ingestion, which needs the database for
// nothing else, goes on through a database outage (docs/operations.md). A
// key revoked meanwhile keeps working for at most that long on a node that
// cannot read the database; revoking needs the database too.
const (
	staleKeyFor    = 10 * time.Minute
	staleKeyLookup = time.Second
)

var errBadKey = abacus.Errorf(abacus.KindUnauthorized, "invalid_api_key", "the API key is unknown, revoked or expired; create a new key")

// authenticateKey returns the principal for an API key. Results are cached
// for a few seconds so ingestion does not hit the database per request.
func (s *Service) authenticateKey(ctx context.Context, key string) (*abacus.Principal, error) {
	if !strings.HasPrefix(key, KeyPrefix) {
		return nil, errBadKey
	}
	// The cache is keyed by the raw sum, so no hex string per request; the
	// stack buffer spares the copy []byte(key) would allocate for keys
	// longer than 32 bytes.
	var buf [64]byte
	sum := sha256.Sum256(append(buf[:0], key...))
	now := s.clock.Now()
	s.mu.RLock()
	c, ok := s.cache[sum]
	s.mu.RUnlock()
	if ok && now.Before(c.until) {
		if !c.expires.IsZero() && !now.Before(c.expires) {
			return nil, errBadKey
		}
		return c.p, nil
	}
	stale := ok && now.Before(c.until.Add(staleKeyFor)) && (c.expires.IsZero() || now.Before(c.expires))
	qctx := ctx
	if stale {
		// An unreachable database must not hold requests up for a TCP
		// timeout when the answer is at hand.
		var cancel context.CancelFunc
		qctx, cancel = context.WithTimeout(ctx, staleKeyLookup)
		defer cancel()
	}
	k, err := scanKey(s.db.QueryRowContext(qctx, `SELECT `+keyColumns+` FROM api_keys WHERE hash = $1`, hex.EncodeToString(sum[:])))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errBadKey
	}
	if err != nil {
		if stale {
			return c.p, nil
		}
		return nil, fmt.Errorf("looking up API key: %w", err)
	}
	if k.RevokedAt != nil || (k.ExpiresAt != nil && !now.Before(*k.ExpiresAt)) {
		return nil, errBadKey
	}
	p := &abacus.Principal{TenantID: k.TenantID, Kind: "api_key", ID: k.ID, Scopes: k.Scopes}
	c = cachedKey{p: p, until: now.Add(s.cacheTTL)}
	if k.ExpiresAt != nil {
		c.expires = *k.ExpiresAt
	}
	s.mu.Lock()
	if len(s.cache) > 100_000 {
		clear(s.cache) // bounded: a flood of distinct keys cannot grow it
	}
	s.cache[sum] = c
	touch := now.Sub(s.touched[k.ID]) > time.Minute
	if touch {
		s.touched[k.ID] = now
	}
	s.mu.Unlock()
	if touch {
		// last_used_at is advisory: written at most once a minute per key
		// per node, never on the request's critical path for errors.
		if _, err := s.db.ExecContext(ctx, `UPDATE api_keys SET last_used_at = $1 WHERE id = $2`, db.TimeOf(now), k.ID); err != nil {
			s.log.WarnContext(ctx, "recording API key use", "key_id", k.ID, "err", err)
		}
	}
	return p, nil
}

// Bootstrap prepares empty data: when there is no tenant it creates the
// default tenant and an admin key (key, when given, else a generated one)
// and returns the key's plaintext. With existing tenants it does nothing
// and returns "". Nodes starting together on empty data create one tenant
// between them: the check and the creation share a transaction that holds
// the bootstrap lock (lockBootstrap), and the others then see the tenant.
func (s *Service) Bootstrap(ctx context.Context, key string) (Tenant, string, error) {
	if n, err := s.CountTenants(ctx); err != nil || n > 0 {
		return Tenant{}, "", err
	}
	t := Tenant{ID: abacus.NewID("ten"), Name: "default", CreatedAt: s.clock.Now()}
	k, plaintext, err := s.newKey(t.ID, NewKeyInput{Name: "bootstrap admin", Scopes: []abacus.Scope{abacus.ScopeAdmin}}, key)
	if err != nil {
		return Tenant{}, "", fmt.Errorf("creating bootstrap key: %w", err)
	}
	created := false
	err = s.db.InTx(ctx, func(tx *db.Tx) error {
		if err := lockBootstrap(ctx, tx); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM tenants`).Scan(&n); err != nil || n > 0 {
			return err // another node bootstrapped first
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO tenants (id, name, created_at) VALUES ($1, $2, $3)`,
			t.ID, t.Name, db.TimeOf(t.CreatedAt)); err != nil {
			return fmt.Errorf("creating tenant: %w", err)
		}
		created = true
		return s.insertKey(ctx, tx, k, plaintext)
	})
	if err != nil || !created {
		return Tenant{}, "", err
	}
	return t, plaintext, nil
}

const keyColumns = `id, tenant_id, name, prefix, scopes, expires_at, last_used_at, revoked_at, created_at`

type scanner interface{ Scan(dest ...any) error }

func scanKey(r scanner) (APIKey, error) {
	var k APIKey
	var scopes string
	var exp, used, rev db.NullTime
	var created db.Time
	if err := r.Scan(&k.ID, &k.TenantID, &k.Name, &k.Prefix, &scopes, &exp, &used, &rev, &created); err != nil {
		return k, err
	}
	for _, sc := range strings.Split(scopes, ",") {
		if sc != "" {
			k.Scopes = append(k.Scopes, abacus.Scope(sc))
		}
	}
	k.ExpiresAt, k.LastUsedAt, k.RevokedAt, k.CreatedAt = exp.Ptr(), used.Ptr(), rev.Ptr(), created.Time
	return k, nil
}

func joinScopes(s []abacus.Scope) string {
	parts := make([]string, len(s))
	for i, v := range s {
		parts[i] = string(v)
	}
	return strings.Join(parts, ",")
}
