package token

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/abacusbilling/abacus"
)

const redacted = "[redacted]"

// PrivateKey is an Ed25519 private key that will not print itself: fmt
// (every verb), slog and encoding/json all show "[redacted]". The only way
// to get the key material out is Key.MarshalPrivate.
type PrivateKey struct {
	k ed25519.PrivateKey
}

// String returns "[redacted]".
func (PrivateKey) String() string { return redacted }

// GoString returns "[redacted]".
func (PrivateKey) GoString() string { return redacted }

// Format writes "[redacted]" for every verb, so even %x or %#v show nothing.
func (PrivateKey) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, redacted) }

// LogValue implements slog.LogValuer.
func (PrivateKey) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalJSON returns the JSON string "[redacted]".
func (PrivateKey) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// Key is one signing key of a Keyring.
type Key struct {
	ID        string // "kid" in the JWT header and the JWKS
	Private   PrivateKey
	CreatedAt time.Time
	// RetireAfter is zero while the key may sign. Rotate sets it on the key
	// it replaces to when that key's last token expires; until then the
	// key still verifies and is published, after it Prune drops it.
	RetireAfter time.Time
}

// GenerateKey returns a new Ed25519 key with a fresh "key_…" id.
func GenerateKey(now time.Time) Key {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		// crypto/rand.Reader never fails; see crypto/rand.Read.
		panic(fmt.Sprintf("token: generating ed25519 key: %v", err))
	}
	return Key{ID: abacus.NewID("key"), Private: PrivateKey{k: priv}, CreatedAt: now.UTC()}
}

// Public returns the key's public half.
func (k Key) Public() ed25519.PublicKey {
	return k.Private.k.Public().(ed25519.PublicKey)
}

// retiredAt reports whether the key must no longer verify at now.
func (k Key) retiredAt(now time.Time) bool {
	return !k.RetireAfter.IsZero() && now.After(k.RetireAfter)
}

// LogValue shows the key's id and dates, never its material.
func (k Key) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("kid", k.ID),
		slog.Time("created_at", k.CreatedAt),
		slog.Time("retire_after", k.RetireAfter),
	)
}

// Format prints the key's id and dates, never its material.
func (k Key) Format(f fmt.State, _ rune) {
	_, _ = fmt.Fprintf(f, "Key{ID:%s CreatedAt:%s RetireAfter:%s Private:%s}",
		k.ID, k.CreatedAt.Format(time.RFC3339), k.RetireAfter.Format(time.RFC3339), redacted)
}

// storedKey is a private JWK (RFC 8037) plus the key's dates: the at-rest
// form of a Key.
type storedKey struct {
	Kty         string     `json:"kty"`
	Crv         string     `json:"crv"`
	Alg         string     `json:"alg"`
	Kid         string     `json:"kid"`
	X           string     `json:"x"`
	D           string     `json:"d"`
	CreatedAt   time.Time  `json:"created_at"`
	RetireAfter *time.Time `json:"retire_after,omitempty"`
}

var b64url = base64.RawURLEncoding

func (k Key) stored() storedKey {
	s := storedKey{
		Kty: "OKP", Crv: "Ed25519", Alg: "EdDSA", Kid: k.ID,
		X:         b64url.EncodeToString(k.Public()),
		D:         b64url.EncodeToString(k.Private.k.Seed()),
		CreatedAt: k.CreatedAt,
	}
	if !k.RetireAfter.IsZero() {
		t := k.RetireAfter
		s.RetireAfter = &t
	}
	return s
}

func (s storedKey) key() (Key, error) {
	if s.Kty != "OKP" || s.Crv != "Ed25519" {
		return Key{}, fmt.Errorf("token: stored key %q: kty %q crv %q, want OKP Ed25519", s.Kid, s.Kty, s.Crv)
	}
	if s.Kid == "" {
		return Key{}, errors.New("token: stored key has no kid")
	}
	seed, err := b64url.DecodeString(s.D)
	if err != nil || len(seed) != ed25519.SeedSize {
		return Key{}, fmt.Errorf("token: stored key %q: d is not a base64url Ed25519 seed", s.Kid)
	}
	priv := ed25519.NewKeyFromSeed(seed)
	x, err := b64url.DecodeString(s.X)
	if err != nil || subtle.ConstantTimeCompare(x, priv.Public().(ed25519.PublicKey)) != 1 {
		return Key{}, fmt.Errorf("token: stored key %q: x does not match d", s.Kid)
	}
	k := Key{ID: s.Kid, Private: PrivateKey{k: priv}, CreatedAt: s.CreatedAt.UTC()}
	if s.RetireAfter != nil {
		k.RetireAfter = s.RetireAfter.UTC()
	}
	return k, nil
}

// MarshalPrivate returns the key with its private material as a private
// JWK (RFC 8037) plus "created_at" and "retire_after", for a store to keep
// at rest. Treat the result as a secret: never log it.
func (k Key) MarshalPrivate() ([]byte, error) {
	if k.Private.k == nil {
		return nil, fmt.Errorf("token: key %q has no private material", k.ID)
	}
	return json.Marshal(k.stored())
}

// UnmarshalKey parses the output of Key.MarshalPrivate. It returns an
// error when the JSON is malformed, the key is not Ed25519, or its public
// half does not match its private half.
func UnmarshalKey(data []byte) (Key, error) {
	var s storedKey
	if err := json.Unmarshal(data, &s); err != nil {
		return Key{}, fmt.Errorf("token: parsing stored key: %w", err)
	}
	return s.key()
}

// UnmarshalKeys parses the output of Keyring.MarshalPrivate, with the
// same errors as UnmarshalKey.
func UnmarshalKeys(data []byte) ([]Key, error) {
	var set struct {
		Keys []storedKey `json:"keys"`
	}
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("token: parsing stored key set: %w", err)
	}
	keys := make([]Key, 0, len(set.Keys))
	for _, s := range set.Keys {
		k, err := s.key()
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return keys, nil
}
