package token

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/golang-jwt/jwt/v5"
)

// Error codes returned by Keyring.Verify, both of KindUnauthorized.
const (
	CodeTokenExpired = "token_expired"
	CodeTokenInvalid = "token_invalid"
)

// Config tunes a Keyring. Zero fields take the defaults of WithDefaults.
type Config struct {
	// Issuer is put in "iss" of every token and, when set, required of
	// every token Verify accepts.
	Issuer string
	// Audience is put in "aud" of every token and, when set, required of
	// every token Verify accepts.
	Audience string
	// TTL is the lifetime of a token whose Claims.ExpiresAt is zero.
	// Default 15 minutes.
	TTL time.Duration
	// MaxTTL is the longest lifetime Sign accepts. A rotated key is kept
	// (published and verifying) for MaxTTL+Leeway after rotation so every
	// token it signed can still be checked. Default: TTL.
	MaxTTL time.Duration
	// Leeway is the clock skew tolerated when checking "exp" and "iat".
	// Default 30 seconds.
	Leeway time.Duration
}

// WithDefaults returns c with zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.TTL == 0 {
		c.TTL = 15 * time.Minute
	}
	if c.MaxTTL == 0 {
		c.MaxTTL = c.TTL
	}
	if c.Leeway == 0 {
		c.Leeway = 30 * time.Second
	}
	return c
}

// Validate returns an error naming the first field out of range.
func (c Config) Validate() error {
	switch {
	case c.TTL <= 0:
		return fmt.Errorf("token: Config.TTL %s must be positive", c.TTL)
	case c.MaxTTL < c.TTL:
		return fmt.Errorf("token: Config.MaxTTL %s is below Config.TTL %s", c.MaxTTL, c.TTL)
	case c.Leeway < 0 || c.Leeway > 5*time.Minute:
		return fmt.Errorf("token: Config.Leeway %s must be between 0 and 5m", c.Leeway)
	}
	return nil
}

// Claims are what an access token says about its bearer.
type Claims struct {
	Subject   string         // "sub": the user or client id
	TenantID  string         // "tid"
	Scopes    []abacus.Scope // "scope", space-separated as in RFC 8693
	Role      string         // "role"
	IssuedAt  time.Time      // "iat"; Sign uses the clock when zero
	ExpiresAt time.Time      // "exp"; Sign uses IssuedAt+TTL when zero
	Issuer    string         // "iss"; Sign uses Config.Issuer when empty
	Audience  string         // "aud"; Sign uses Config.Audience when empty
	ID        string         // "jti"; Sign makes a fresh "jti_…" when empty
}

// wireClaims is the JSON payload of a token.
type wireClaims struct {
	jwt.RegisteredClaims
	TenantID string `json:"tid,omitempty"`
	Scope    string `json:"scope,omitempty"`
	Role     string `json:"role,omitempty"`
}

// Keyring holds the Ed25519 keys that sign and verify access tokens: one
// active key that signs, and the keys it replaced, kept until their last
// token has expired. It is safe for concurrent use.
//
// Each node holds its own Keyring loaded from the store; after a rotation
// on one node the others must load the new key before tokens signed with
// it reach them.
type Keyring struct {
	cfg   Config
	clock abacus.Clock

	mu   sync.RWMutex
	keys []Key // ordered by CreatedAt; the newest unretired key signs
}

// NewKeyring returns a Keyring holding keys (e.g. loaded from the store).
// It returns an error when cfg is invalid, keys is empty, two keys share
// an id, or a key has no private material. Use GenerateKey for the first
// key.
func NewKeyring(cfg Config, clock abacus.Clock, keys ...Key) (*Keyring, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		return nil, errors.New("token: NewKeyring needs at least one key")
	}
	seen := make(map[string]bool, len(keys))
	for _, k := range keys {
		if k.ID == "" || seen[k.ID] {
			return nil, fmt.Errorf("token: key id %q is empty or repeated", k.ID)
		}
		if len(k.Private.k) != ed25519.PrivateKeySize {
			return nil, fmt.Errorf("token: key %q has no private material", k.ID)
		}
		seen[k.ID] = true
	}
	keys = slices.Clone(keys)
	slices.SortStableFunc(keys, func(a, b Key) int { return a.CreatedAt.Compare(b.CreatedAt) })
	return &Keyring{cfg: cfg, clock: clock, keys: keys}, nil
}

// Config returns the keyring's configuration with defaults applied.
func (r *Keyring) Config() Config { return r.cfg }

// active returns the key that signs: the newest one not being retired.
// The caller holds r.mu.
func (r *Keyring) active() (Key, bool) {
	for i := len(r.keys) - 1; i >= 0; i-- {
		if r.keys[i].RetireAfter.IsZero() {
			return r.keys[i], true
		}
	}
	return Key{}, false
}

// Sign returns c as a compact JWT signed with the active key, with header
// {"alg":"EdDSA","kid":…,"typ":"JWT"}. Empty IssuedAt, ExpiresAt, Issuer,
// Audience and ID are filled in (see Claims). It returns an error when
// Subject is empty, ExpiresAt is not after IssuedAt, the lifetime exceeds
// Config.MaxTTL, or no key may sign (all are being retired).
func (r *Keyring) Sign(c Claims) (string, error) {
	if c.Subject == "" {
		return "", errors.New("token: Sign needs a subject")
	}
	if c.IssuedAt.IsZero() {
		c.IssuedAt = r.clock.Now()
	}
	if c.ExpiresAt.IsZero() {
		c.ExpiresAt = c.IssuedAt.Add(r.cfg.TTL)
	}
	if life := c.ExpiresAt.Sub(c.IssuedAt); life <= 0 || life > r.cfg.MaxTTL {
		return "", fmt.Errorf("token: lifetime %s must be positive and at most Config.MaxTTL %s", life, r.cfg.MaxTTL)
	}
	if c.Issuer == "" {
		c.Issuer = r.cfg.Issuer
	}
	if c.Audience == "" {
		c.Audience = r.cfg.Audience
	}
	if c.ID == "" {
		c.ID = abacus.NewID("jti")
	}
	w := wireClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    c.Issuer,
			Subject:   c.Subject,
			ExpiresAt: jwt.NewNumericDate(c.ExpiresAt),
			IssuedAt:  jwt.NewNumericDate(c.IssuedAt),
			ID:        c.ID,
		},
		TenantID: c.TenantID,
		Role:     c.Role,
	}
	if c.Audience != "" {
		w.Audience = jwt.ClaimStrings{c.Audience}
	}
	if len(c.Scopes) > 0 {
		s := make([]string, len(c.Scopes))
		for i, v := range c.Scopes {
			s[i] = string(v)
		}
		w.Scope = strings.Join(s, " ")
	}

	r.mu.RLock()
	key, ok := r.active()
	r.mu.RUnlock()
	if !ok {
		return "", errors.New("token: no active signing key; rotate to add one")
	}
	t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, w)
	t.Header["kid"] = key.ID
	s, err := t.SignedString(key.Private.k)
	if err != nil {
		return "", fmt.Errorf("token: signing with key %s: %w", key.ID, err)
	}
	return s, nil
}

var (
	errExpired = abacus.Errorf(abacus.KindUnauthorized, CodeTokenExpired,
		"the access token has expired; get a new one with your refresh token")
	errInvalid = abacus.Errorf(abacus.KindUnauthorized, CodeTokenInvalid,
		"the access token is not valid; sign in again to get a new one")
)

// Verify checks token's signature against the keyring, its algorithm
// (EdDSA only), its expiry and issue time (with Config.Leeway) and, when
// configured, its issuer and audience, and returns its claims. It returns a
// KindUnauthorized *abacus.Error: CodeTokenExpired when the token has
// expired, CodeTokenInvalid for anything else (malformed, bad signature,
// unknown or retired kid, wrong issuer or audience).
func (r *Keyring) Verify(token string) (Claims, error) {
	now := r.clock.Now()
	opts := []jwt.ParserOption{
		jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
		jwt.WithTimeFunc(func() time.Time { return now }),
		jwt.WithLeeway(r.cfg.Leeway),
		jwt.WithIssuedAt(),
		jwt.WithExpirationRequired(),
	}
	if r.cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(r.cfg.Issuer))
	}
	if r.cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(r.cfg.Audience))
	}
	var w wireClaims
	_, err := jwt.NewParser(opts...).ParseWithClaims(token, &w, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		pub, ok := r.publicKey(kid, now)
		if !ok {
			return nil, errors.New("unknown kid")
		}
		return pub, nil
	})
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return Claims{}, errExpired
	case err != nil:
		return Claims{}, errInvalid
	}
	c := Claims{
		Subject:   w.Subject,
		TenantID:  w.TenantID,
		Role:      w.Role,
		IssuedAt:  w.IssuedAt.UTC(),
		ExpiresAt: w.ExpiresAt.UTC(),
		Issuer:    w.Issuer,
		ID:        w.ID,
	}
	if len(w.Audience) > 0 {
		c.Audience = w.Audience[0]
	}
	for _, s := range strings.Fields(w.Scope) {
		c.Scopes = append(c.Scopes, abacus.Scope(s))
	}
	return c, nil
}

// publicKey returns the public key with id kid unless it is unknown or
// retired at now.
func (r *Keyring) publicKey(kid string, now time.Time) (ed25519.PublicKey, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, k := range r.keys {
		if k.ID == kid && !k.retiredAt(now) {
			return k.Public(), true
		}
	}
	return nil, false
}

// jwk is a public key as published in the JWKS (RFC 8037).
type jwk struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
}

// JWKS returns the JSON Web Key Set served at /.well-known/jwks.json: the
// public half of every key not retired at the clock's now, as OKP Ed25519
// keys ({"keys":[{"kty":"OKP","crv":"Ed25519","x":…,"kid":…,"use":"sig",
// "alg":"EdDSA"}]}).
func (r *Keyring) JWKS() []byte {
	now := r.clock.Now()
	set := struct {
		Keys []jwk `json:"keys"`
	}{Keys: []jwk{}}
	r.mu.RLock()
	for _, k := range r.keys {
		if k.retiredAt(now) {
			continue
		}
		set.Keys = append(set.Keys, jwk{
			Kty: "OKP", Crv: "Ed25519", X: b64url.EncodeToString(k.Public()),
			Kid: k.ID, Use: "sig", Alg: "EdDSA",
		})
	}
	r.mu.RUnlock()
	b, err := json.Marshal(set)
	if err != nil {
		panic(fmt.Sprintf("token: encoding JWKS: %v", err)) // only strings: cannot fail
	}
	return b
}

// Rotate adds a new active key created at now and marks every key that
// could sign until now to retire after now+MaxTTL+Leeway, when the last
// token it signed has expired. It returns the new key and the keys whose
// RetireAfter changed, so the caller can persist both.
func (r *Keyring) Rotate(now time.Time) (added Key, retired []Key) {
	added = GenerateKey(now)
	retire := now.Add(r.cfg.MaxTTL + r.cfg.Leeway).UTC()
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range r.keys {
		if r.keys[i].RetireAfter.IsZero() {
			r.keys[i].RetireAfter = retire
			retired = append(retired, r.keys[i])
		}
	}
	r.keys = append(r.keys, added)
	return added, retired
}

// Prune drops the keys retired at now and returns their ids, so the
// caller can delete them from the store. The active key is never dropped.
func (r *Keyring) Prune(now time.Time) (dropped []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	kept := r.keys[:0]
	for _, k := range r.keys {
		if k.retiredAt(now) {
			dropped = append(dropped, k.ID)
			continue
		}
		kept = append(kept, k)
	}
	clear(r.keys[len(kept):]) // do not keep dropped private keys reachable
	r.keys = kept
	return dropped
}

// Keys returns a copy of the keys, oldest first, for a store to persist.
func (r *Keyring) Keys() []Key {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return slices.Clone(r.keys)
}

// MarshalPrivate returns every key with its private material as
// {"keys":[…]} (see Key.MarshalPrivate), for keeping the whole keyring in
// one file of the data dir. Treat the result as a secret.
func (r *Keyring) MarshalPrivate() ([]byte, error) {
	var set struct {
		Keys []storedKey `json:"keys"`
	}
	for _, k := range r.Keys() {
		set.Keys = append(set.Keys, k.stored())
	}
	return json.Marshal(set)
}

// LogValue shows the keyring's key ids, never their material.
func (r *Keyring) LogValue() slog.Value {
	return slog.StringValue(r.describe())
}

// Format prints the keyring's key ids, never their material.
func (r *Keyring) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, r.describe()) }

func (r *Keyring) describe() string {
	keys := r.Keys()
	ids := make([]string, 0, len(keys))
	for _, k := range keys {
		ids = append(ids, k.ID)
	}
	return "Keyring{" + strings.Join(ids, " ") + "}"
}
