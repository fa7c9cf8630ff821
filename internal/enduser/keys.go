package enduser

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"slices"
	"sync"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
)

// Each tenant has its own signing keys, one active key per algorithm
// (RS256 for ID tokens and, when the tenant chooses it, access tokens;
// EdDSA for access tokens by default), created on first use. They live in
// end_user_signing_keys, shared by every node; each node caches a
// tenant's keys for a minute and re-reads them at once (at most every 5
// seconds) when a token names a kid it does not know, so a rotation on
// one node reaches the others without a restart. A rotated key keeps
// verifying, and stays in the JWKS, until the last token it signed has
// expired.

// rsaBits is the RS256 key size: 2048 is what OIDC relying parties expect
// and signs about 4× faster than 3072.
const rsaBits = 2048

// keyRetireAfter is how long a replaced key keeps verifying: the longest
// token lifetime a tenant can set, plus clock leeway.
const keyRetireAfter = 24*time.Hour + time.Minute

// signingKey is one key; it never prints its private half.
type signingKey struct {
	kid         string
	alg         string
	priv        crypto.Signer
	pub         crypto.PublicKey
	createdAt   time.Time
	retireAfter time.Time // zero while the key signs
}

// LogValue shows the key's id and algorithm only.
func (k signingKey) LogValue() slog.Value {
	return slog.GroupValue(slog.String("kid", k.kid), slog.String("alg", k.alg))
}

// Format prints the key's id and algorithm only, for every verb.
func (k signingKey) Format(f fmt.State, _ rune) {
	_, _ = io.WriteString(f, "signingKey{kid:"+k.kid+" alg:"+k.alg+" private:[redacted]}")
}

func generateKey(alg string, now time.Time) (signingKey, error) {
	k := signingKey{kid: abacus.NewID("key"), alg: alg, createdAt: now}
	switch alg {
	case AlgRS256:
		priv, err := rsa.GenerateKey(rand.Reader, rsaBits)
		if err != nil {
			return signingKey{}, fmt.Errorf("generating RSA key: %w", err)
		}
		k.priv, k.pub = priv, &priv.PublicKey
	case AlgEdDSA:
		pub, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return signingKey{}, fmt.Errorf("generating Ed25519 key: %w", err)
		}
		k.priv, k.pub = priv, pub
	default:
		return signingKey{}, fmt.Errorf("unknown signing algorithm %q", alg)
	}
	return k, nil
}

func (k signingKey) marshalPrivate() (string, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k.priv)
	if err != nil {
		return "", fmt.Errorf("encoding signing key %s: %w", k.kid, err)
	}
	return base64.StdEncoding.EncodeToString(der), nil
}

func parsePrivate(kid, alg, b64 string) (signingKey, error) {
	der, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return signingKey{}, fmt.Errorf("decoding signing key %s: %w", kid, err)
	}
	p, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return signingKey{}, fmt.Errorf("parsing signing key %s: %w", kid, err)
	}
	k := signingKey{kid: kid, alg: alg}
	switch p := p.(type) {
	case *rsa.PrivateKey:
		k.priv, k.pub = p, &p.PublicKey
	case ed25519.PrivateKey:
		k.priv, k.pub = p, p.Public()
	default:
		return signingKey{}, fmt.Errorf("signing key %s: unsupported key type %T", kid, p)
	}
	if (alg == AlgRS256) != isRSA(k.pub) {
		return signingKey{}, fmt.Errorf("signing key %s: key type does not match %s", kid, alg)
	}
	return k, nil
}

func isRSA(p crypto.PublicKey) bool { _, ok := p.(*rsa.PublicKey); return ok }

// jwk is a public key as published (RFC 7517, RFC 8037).
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	N   string `json:"n,omitempty"`
	E   string `json:"e,omitempty"`
	Crv string `json:"crv,omitempty"`
	X   string `json:"x,omitempty"`
}

func (k signingKey) publicJWK() jwk {
	b64 := base64.RawURLEncoding
	j := jwk{Kid: k.kid, Use: "sig", Alg: k.alg}
	switch p := k.pub.(type) {
	case *rsa.PublicKey:
		j.Kty, j.N, j.E = "RSA", b64.EncodeToString(p.N.Bytes()), b64.EncodeToString(big.NewInt(int64(p.E)).Bytes())
	case ed25519.PublicKey:
		j.Kty, j.Crv, j.X = "OKP", "Ed25519", b64.EncodeToString(p)
	}
	return j
}

// tenantKeys is one tenant's keys as a node holds them.
type tenantKeys struct {
	keys   []signingKey // oldest first
	byKid  map[string]signingKey
	jwks   []byte
	loaded time.Time
}

// signer returns the newest key of alg that may still sign.
func (t *tenantKeys) signer(alg string) (signingKey, bool) {
	for i := len(t.keys) - 1; i >= 0; i-- {
		if k := t.keys[i]; k.alg == alg && k.retireAfter.IsZero() {
			return k, true
		}
	}
	return signingKey{}, false
}

// verifier returns key kid unless it is unknown or retired at now.
func (t *tenantKeys) verifier(kid string, now time.Time) (signingKey, bool) {
	k, ok := t.byKid[kid]
	if !ok || (!k.retireAfter.IsZero() && now.After(k.retireAfter)) {
		return signingKey{}, false
	}
	return k, true
}

type keyStore struct {
	s       *Service
	mu      sync.RWMutex
	tenants map[string]*tenantKeys
	loadMu  sync.Mutex
	tried   map[string]time.Time // last reload for an unknown kid, per tenant
}

func newKeyStore(s *Service) *keyStore {
	return &keyStore{s: s, tenants: map[string]*tenantKeys{}, tried: map[string]time.Time{}}
}

// get returns tenant's keys, loading them when missing or older than a
// minute and creating the missing ones on first use.
func (ks *keyStore) get(ctx context.Context, tenant string) (*tenantKeys, error) {
	now := ks.s.clock.Now()
	ks.mu.RLock()
	t := ks.tenants[tenant]
	ks.mu.RUnlock()
	if t != nil && now.Sub(t.loaded) < keyReloadEvery && !now.Before(t.loaded) {
		return t, nil
	}
	ks.loadMu.Lock()
	defer ks.loadMu.Unlock()
	ks.mu.RLock()
	t2 := ks.tenants[tenant]
	ks.mu.RUnlock()
	if t2 != t && t2 != nil { // another caller reloaded meanwhile
		return t2, nil
	}
	return ks.loadLocked(ctx, tenant)
}

// reloadForKid re-reads tenant's keys when kid is unknown, at most every
// 5 seconds per tenant, so forged kids cannot hammer the database.
func (ks *keyStore) reloadForKid(ctx context.Context, tenant, kid string) (*tenantKeys, bool) {
	ks.loadMu.Lock()
	defer ks.loadMu.Unlock()
	now := ks.s.clock.Now()
	ks.mu.RLock()
	t := ks.tenants[tenant]
	ks.mu.RUnlock()
	if t != nil {
		if _, ok := t.byKid[kid]; ok {
			return t, true
		}
	}
	if last, ok := ks.tried[tenant]; ok && now.Sub(last) < 5*time.Second && !now.Before(last) {
		return t, false
	}
	ks.tried[tenant] = now
	t, err := ks.loadLocked(ctx, tenant)
	if err != nil {
		ks.s.log.WarnContext(ctx, "reloading end-user signing keys", "tenant_id", tenant, "err", err)
		return nil, false
	}
	_, ok := t.byKid[kid]
	return t, ok
}

func (ks *keyStore) loadLocked(ctx context.Context, tenant string) (*tenantKeys, error) {
	now := ks.s.clock.Now()
	keys, err := ks.read(ctx, tenant)
	if err != nil {
		return nil, err
	}
	var added bool
	for _, alg := range []string{AlgRS256, AlgEdDSA} {
		if slices.ContainsFunc(keys, func(k signingKey) bool { return k.alg == alg && k.retireAfter.IsZero() }) {
			continue
		}
		k, err := generateKey(alg, now)
		if err != nil {
			return nil, err
		}
		if err := ks.insert(ctx, ks.s.db, tenant, k); err != nil {
			return nil, err
		}
		added = true
	}
	if added {
		if keys, err = ks.read(ctx, tenant); err != nil {
			return nil, err
		}
	}
	var kept []signingKey
	for _, k := range keys {
		if !k.retireAfter.IsZero() && now.After(k.retireAfter) {
			if _, err := ks.s.db.ExecContext(ctx, `DELETE FROM end_user_signing_keys WHERE tenant_id = $1 AND kid = $2`, tenant, k.kid); err != nil {
				return nil, fmt.Errorf("deleting retired signing key: %w", err)
			}
			continue
		}
		kept = append(kept, k)
	}
	t := &tenantKeys{keys: kept, byKid: map[string]signingKey{}, loaded: now}
	set := struct {
		Keys []jwk `json:"keys"`
	}{Keys: []jwk{}}
	for _, k := range kept {
		t.byKid[k.kid] = k
		set.Keys = append(set.Keys, k.publicJWK())
	}
	t.jwks, _ = json.Marshal(set)
	ks.mu.Lock()
	ks.tenants[tenant] = t
	ks.mu.Unlock()
	return t, nil
}

func (ks *keyStore) read(ctx context.Context, tenant string) ([]signingKey, error) {
	rows, err := ks.s.db.QueryContext(ctx, `SELECT kid, alg, private_key, created_at, retire_after FROM end_user_signing_keys
		WHERE tenant_id = $1 ORDER BY created_at, kid`, tenant)
	if err != nil {
		return nil, fmt.Errorf("reading signing keys: %w", err)
	}
	defer rows.Close()
	var keys []signingKey
	for rows.Next() {
		var kid, alg, priv string
		var created db.Time
		var retire db.NullTime
		if err := rows.Scan(&kid, &alg, &priv, &created, &retire); err != nil {
			return nil, err
		}
		k, err := parsePrivate(kid, alg, priv)
		if err != nil {
			return nil, err
		}
		k.createdAt = created.Time
		if retire.Valid {
			k.retireAfter = retire.Time
		}
		keys = append(keys, k)
	}
	return keys, rows.Err()
}

func (ks *keyStore) insert(ctx context.Context, q db.Querier, tenant string, k signingKey) error {
	priv, err := k.marshalPrivate()
	if err != nil {
		return err
	}
	_, err = q.ExecContext(ctx, `INSERT INTO end_user_signing_keys (kid, tenant_id, alg, private_key, created_at) VALUES ($1, $2, $3, $4, $5)`,
		k.kid, tenant, k.alg, priv, db.TimeOf(k.createdAt))
	if err != nil {
		return fmt.Errorf("storing signing key %s: %w", k.kid, err)
	}
	return nil
}

// JWKS returns the tenant's public keys as a JSON Web Key Set: every key
// that still verifies, each with kid, alg and use "sig". The keys are
// created on the tenant's first use.
func (s *Service) JWKS(ctx context.Context, tenantID string) ([]byte, error) {
	t, err := s.keys.get(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	return t.jwks, nil
}

// KeyInfo describes a signing key without its private half.
type KeyInfo struct {
	ID          string     `json:"kid"`
	Alg         string     `json:"alg"`
	CreatedAt   time.Time  `json:"created_at"`
	RetireAfter *time.Time `json:"retire_after,omitempty"`
}

// RotateKeys gives the tenant new signing keys (one per algorithm) that
// sign from now on; the replaced keys keep verifying, and stay in the
// JWKS, for the longest token lifetime. It returns every key kept.
func (s *Service) RotateKeys(ctx context.Context, tenantID string) ([]KeyInfo, error) {
	s.keys.loadMu.Lock()
	defer s.keys.loadMu.Unlock()
	now := s.clock.Now()
	var fresh []signingKey
	for _, alg := range []string{AlgRS256, AlgEdDSA} {
		k, err := generateKey(alg, now)
		if err != nil {
			return nil, err
		}
		fresh = append(fresh, k)
	}
	err := s.db.InTx(ctx, func(tx *db.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE end_user_signing_keys SET retire_after = $1 WHERE tenant_id = $2 AND retire_after IS NULL`,
			db.TimeOf(now.Add(keyRetireAfter)), tenantID); err != nil {
			return fmt.Errorf("retiring signing keys: %w", err)
		}
		for _, k := range fresh {
			if err := s.keys.insert(ctx, tx, tenantID, k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	t, err := s.keys.loadLocked(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	out := make([]KeyInfo, 0, len(t.keys))
	for _, k := range t.keys {
		ki := KeyInfo{ID: k.kid, Alg: k.alg, CreatedAt: k.createdAt}
		if !k.retireAfter.IsZero() {
			r := k.retireAfter
			ki.RetireAfter = &r
		}
		out = append(out, ki)
	}
	s.log.InfoContext(ctx, "rotated end-user signing keys", "tenant_id", tenantID, "keys", len(out))
	return out, nil
}
