package token_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/identity/token"
)

var t0 = time.Date(2026, 11, 3, 10, 0, 0, 0, time.UTC)

type testBundle struct {
	clock *abacus.FakeClock
	ring  *token.Keyring
}

func setup(t *testing.T, cfg token.Config) testBundle {
	t.Helper()
	clock := abacus.NewFakeClock(t0)
	ring, err := token.NewKeyring(cfg, clock, token.GenerateKey(t0))
	if err != nil {
		t.Fatal(err)
	}
	return testBundle{clock: clock, ring: ring}
}

var testCfg = token.Config{Issuer: "https://abacus.test", Audience: "abacus-api"}

func sampleClaims() token.Claims {
	return token.Claims{
		Subject:  "usr_1",
		TenantID: "ten_1",
		Scopes:   []abacus.Scope{abacus.ScopeRead, abacus.ScopeWrite},
		Role:     "owner",
	}
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	e, ok := abacus.AsError(err)
	if !ok || e.Kind != abacus.KindUnauthorized || e.Code != code {
		t.Fatalf("err = %v, want unauthorized %s", err, code)
	}
}

// TestJWKSVerifiesWithIndependentLibrary checks a token with go-jose
// (the keyring signs with golang-jwt) using only the JWKS JSON.
func TestJWKSVerifiesWithIndependentLibrary(t *testing.T) {
	t.Parallel()
	b := setup(t, testCfg)
	signed, err := b.ring.Sign(sampleClaims())
	if err != nil {
		t.Fatal(err)
	}

	var set jose.JSONWebKeySet
	if err := json.Unmarshal(b.ring.JWKS(), &set); err != nil {
		t.Fatalf("JWKS is not a JWK set: %v", err)
	}
	var raw struct {
		Keys []map[string]string `json:"keys"`
	}
	_ = json.Unmarshal(b.ring.JWKS(), &raw)
	if len(raw.Keys) != 1 {
		t.Fatalf("JWKS has %d keys, want 1", len(raw.Keys))
	}
	for field, want := range map[string]string{"kty": "OKP", "crv": "Ed25519", "use": "sig", "alg": "EdDSA"} {
		if got := raw.Keys[0][field]; got != want {
			t.Errorf("JWKS %s = %q, want %q", field, got, want)
		}
	}
	if _, ok := raw.Keys[0]["d"]; ok {
		t.Fatal("JWKS publishes the private key")
	}

	tok, err := josejwt.ParseSigned(signed, []jose.SignatureAlgorithm{jose.EdDSA})
	if err != nil {
		t.Fatalf("go-jose cannot parse the token: %v", err)
	}
	h := tok.Headers[0]
	if h.Algorithm != "EdDSA" || h.KeyID != raw.Keys[0]["kid"] || h.ExtraHeaders["typ"] != "JWT" {
		t.Fatalf("header = alg %q kid %q typ %v; want EdDSA, the JWKS kid, JWT", h.Algorithm, h.KeyID, h.ExtraHeaders["typ"])
	}
	keys := set.Key(h.KeyID)
	if len(keys) != 1 {
		t.Fatalf("JWKS has %d keys for kid %q", len(keys), h.KeyID)
	}
	var std josejwt.Claims
	var extra struct {
		TID   string `json:"tid"`
		Scope string `json:"scope"`
		Role  string `json:"role"`
	}
	if err := tok.Claims(keys[0], &std, &extra); err != nil {
		t.Fatalf("go-jose rejects the signature: %v", err)
	}
	err = std.ValidateWithLeeway(josejwt.Expected{
		Issuer: "https://abacus.test", AnyAudience: josejwt.Audience{"abacus-api"}, Time: t0.Add(time.Minute),
	}, 0)
	if err != nil {
		t.Fatalf("go-jose rejects the claims: %v", err)
	}
	if std.Subject != "usr_1" || extra.TID != "ten_1" || extra.Scope != "read write" || extra.Role != "owner" {
		t.Errorf("claims = %+v %+v", std, extra)
	}
	if got := std.Expiry.Time().Sub(std.IssuedAt.Time()); got != 15*time.Minute {
		t.Errorf("lifetime = %s, want the 15m default", got)
	}
	if !strings.HasPrefix(std.ID, "jti_") {
		t.Errorf("jti = %q, want a jti_ id", std.ID)
	}
}

func TestVerifyRoundTrip(t *testing.T) {
	t.Parallel()
	b := setup(t, testCfg)
	signed, err := b.ring.Sign(sampleClaims())
	if err != nil {
		t.Fatal(err)
	}
	got, err := b.ring.Verify(signed)
	if err != nil {
		t.Fatal(err)
	}
	want := sampleClaims()
	if got.Subject != want.Subject || got.TenantID != want.TenantID || got.Role != want.Role ||
		!slices.Equal(got.Scopes, want.Scopes) || got.Issuer != testCfg.Issuer || got.Audience != testCfg.Audience ||
		!got.IssuedAt.Equal(t0) || !got.ExpiresAt.Equal(t0.Add(15*time.Minute)) || got.ID == "" {
		t.Fatalf("Verify() = %+v", got)
	}
}

func TestVerifyExpiry(t *testing.T) {
	t.Parallel()
	tests := []struct {
		after time.Duration
		code  string // "" means valid
	}{
		{0, ""},
		{14 * time.Minute, ""},
		{15*time.Minute + 29*time.Second, ""}, // inside the 30 s leeway
		{15*time.Minute + 31*time.Second, token.CodeTokenExpired},
		{24 * time.Hour, token.CodeTokenExpired},
	}
	for _, tt := range tests {
		t.Run(tt.after.String(), func(t *testing.T) {
			t.Parallel()
			b := setup(t, testCfg)
			signed, err := b.ring.Sign(sampleClaims())
			if err != nil {
				t.Fatal(err)
			}
			b.clock.Advance(tt.after)
			_, err = b.ring.Verify(signed)
			if tt.code == "" {
				if err != nil {
					t.Fatalf("Verify() = %v, want valid", err)
				}
				return
			}
			wantCode(t, err, tt.code)
		})
	}
}

func TestVerifyRejects(t *testing.T) {
	t.Parallel()
	b := setup(t, testCfg)
	good, err := b.ring.Sign(sampleClaims())
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(good, ".")

	other := setup(t, testCfg) // same config, different key: unknown kid
	foreign, _ := other.ring.Sign(sampleClaims())

	// A token from the other keyring relabelled with our kid: bad signature.
	var hdr map[string]any
	hb, _ := base64.RawURLEncoding.DecodeString(parts[0])
	_ = json.Unmarshal(hb, &hdr)
	fp := strings.Split(foreign, ".")
	relabelled := parts[0] + "." + fp[1] + "." + fp[2]

	sig := []byte(parts[2])
	sig[3] ^= 1
	if sig[3] == '.' {
		sig[3] = 'A'
	}
	tamperedSig := parts[0] + "." + parts[1] + "." + string(sig)

	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	tamperedPayload := parts[0] + "." + base64.RawURLEncoding.EncodeToString(
		bytes.Replace(payload, []byte("usr_1"), []byte("usr_2"), 1)) + "." + parts[2]

	enc := func(v any) string { j, _ := json.Marshal(v); return base64.RawURLEncoding.EncodeToString(j) }
	algNone := enc(map[string]string{"alg": "none", "typ": "JWT", "kid": hdr["kid"].(string)}) + "." + parts[1] + "."
	algHS := enc(map[string]string{"alg": "HS256", "typ": "JWT", "kid": hdr["kid"].(string)}) + "." + parts[1] + "." + parts[2]

	wrongIss, _ := b.ring.Sign(token.Claims{Subject: "usr_1", Issuer: "https://evil.test"})
	wrongAud, _ := b.ring.Sign(token.Claims{Subject: "usr_1", Audience: "other-api"})
	futureIat, _ := b.ring.Sign(token.Claims{Subject: "usr_1", IssuedAt: t0.Add(10 * time.Minute)})

	for name, tok := range map[string]string{
		"empty":            "",
		"garbage":          "not.a.jwt",
		"unknown kid":      foreign,
		"relabelled kid":   relabelled,
		"tampered sig":     tamperedSig,
		"tampered payload": tamperedPayload,
		"alg none":         algNone,
		"alg HS256":        algHS,
		"wrong issuer":     wrongIss,
		"wrong audience":   wrongAud,
		"issued in future": futureIat,
	} {
		_, err := b.ring.Verify(tok)
		e, ok := abacus.AsError(err)
		if !ok || e.Code != token.CodeTokenInvalid || e.Kind != abacus.KindUnauthorized {
			t.Errorf("%s: Verify() = %v, want unauthorized token_invalid", name, err)
		}
	}
}

func TestSignRefuses(t *testing.T) {
	t.Parallel()
	b := setup(t, testCfg)
	for name, c := range map[string]token.Claims{
		"no subject":       {TenantID: "ten_1"},
		"longer than max":  {Subject: "usr_1", ExpiresAt: t0.Add(16 * time.Minute)},
		"expires at issue": {Subject: "usr_1", IssuedAt: t0, ExpiresAt: t0},
	} {
		if _, err := b.ring.Sign(c); err == nil {
			t.Errorf("%s: Sign() = nil error", name)
		}
	}
}

func TestRotateKeepsOldKeyUntilPruned(t *testing.T) {
	t.Parallel()
	b := setup(t, testCfg)
	oldTok, _ := b.ring.Sign(sampleClaims())

	b.clock.Advance(5 * time.Minute)
	added, retired := b.ring.Rotate(b.clock.Now())
	if len(retired) != 1 || retired[0].RetireAfter.IsZero() {
		t.Fatalf("Rotate retired %v, want the old key with a RetireAfter", retired)
	}
	// Old key retires when its last possible token (signed just before the
	// rotation, 15m lifetime) has expired, plus leeway.
	if want := b.clock.Now().Add(15*time.Minute + 30*time.Second); !retired[0].RetireAfter.Equal(want) {
		t.Fatalf("RetireAfter = %s, want %s", retired[0].RetireAfter, want)
	}
	newTok, _ := b.ring.Sign(sampleClaims())
	if kidOf(t, newTok) != added.ID || kidOf(t, oldTok) == added.ID {
		t.Fatal("after Rotate, Sign does not use the new key")
	}
	for _, tok := range []string{oldTok, newTok} {
		if _, err := b.ring.Verify(tok); err != nil {
			t.Fatalf("Verify after rotation: %v", err)
		}
	}
	if n := jwksLen(t, b.ring); n != 2 {
		t.Fatalf("JWKS after rotation has %d keys, want 2", n)
	}
	if dropped := b.ring.Prune(b.clock.Now()); len(dropped) != 0 {
		t.Fatalf("Prune right after rotation dropped %v", dropped)
	}

	b.clock.Advance(10 * time.Minute) // 15m after oldTok: still in its leeway
	if _, err := b.ring.Verify(oldTok); err != nil {
		t.Fatalf("old token before retirement: %v", err)
	}

	b.clock.Advance(6 * time.Minute) // past RetireAfter
	dropped := b.ring.Prune(b.clock.Now())
	if len(dropped) != 1 || dropped[0] != retired[0].ID {
		t.Fatalf("Prune dropped %v, want [%s]", dropped, retired[0].ID)
	}
	if n := jwksLen(t, b.ring); n != 1 {
		t.Fatalf("JWKS after prune has %d keys, want 1", n)
	}
	if tok, _ := b.ring.Sign(sampleClaims()); kidOf(t, tok) != added.ID {
		t.Fatal("after prune, Sign does not use the new key")
	} else if _, err := b.ring.Verify(tok); err != nil {
		t.Fatalf("new key's token after prune: %v", err)
	}
	// The old token is now refused as invalid (its key is gone), which is
	// checked before its expiry.
	_, err := b.ring.Verify(oldTok)
	wantCode(t, err, token.CodeTokenInvalid)
}

func TestRetiredKeyIsIgnoredEvenBeforePrune(t *testing.T) {
	t.Parallel()
	clock := abacus.NewFakeClock(t0)
	old := token.GenerateKey(t0)
	old.RetireAfter = t0.Add(time.Minute)
	cur := token.GenerateKey(t0)
	// A copy that still signs with the old key, e.g. a stale node.
	stale, _ := token.NewKeyring(testCfg, clock, token.Key{ID: old.ID, Private: old.Private, CreatedAt: t0})
	ring, err := token.NewKeyring(testCfg, clock, old, cur)
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * time.Minute)
	tok, _ := stale.Sign(sampleClaims())
	_, err = ring.Verify(tok)
	wantCode(t, err, token.CodeTokenInvalid)
	if n := jwksLen(t, ring); n != 1 {
		t.Fatalf("JWKS publishes %d keys, want only the unretired one", n)
	}
}

func TestMarshalPrivateRoundTrip(t *testing.T) {
	t.Parallel()
	b := setup(t, testCfg)
	b.ring.Rotate(t0)
	tok, _ := b.ring.Sign(sampleClaims())

	data, err := b.ring.MarshalPrivate()
	if err != nil {
		t.Fatal(err)
	}
	keys, err := token.UnmarshalKeys(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 || keys[0].RetireAfter.IsZero() || !keys[1].RetireAfter.IsZero() {
		t.Fatalf("UnmarshalKeys = %v", keys)
	}
	loaded, err := token.NewKeyring(testCfg, b.clock, keys...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := loaded.Verify(tok); err != nil {
		t.Fatalf("reloaded keyring cannot verify: %v", err)
	}
	tok2, _ := loaded.Sign(sampleClaims())
	if kidOf(t, tok2) != kidOf(t, tok) {
		t.Fatal("reloaded keyring signs with a different key")
	}

	one, err := keys[1].MarshalPrivate()
	if err != nil {
		t.Fatal(err)
	}
	k, err := token.UnmarshalKey(one)
	if err != nil || k.ID != keys[1].ID || !k.Public().Equal(keys[1].Public()) || !k.CreatedAt.Equal(keys[1].CreatedAt) {
		t.Fatalf("UnmarshalKey = %v, %v", k, err)
	}

	// x that does not match d is refused.
	var m map[string]any
	_ = json.Unmarshal(one, &m)
	m["x"] = base64.RawURLEncoding.EncodeToString(make([]byte, 32))
	bad, _ := json.Marshal(m)
	if _, err := token.UnmarshalKey(bad); err == nil {
		t.Fatal("UnmarshalKey accepted mismatched x and d")
	}
	for _, s := range []string{`{}`, `{"kty":"RSA","crv":"Ed25519","kid":"k"}`, `not json`} {
		if _, err := token.UnmarshalKey([]byte(s)); err == nil {
			t.Errorf("UnmarshalKey(%s) = nil error", s)
		}
	}
}

func TestPrivateKeyNeverPrinted(t *testing.T) {
	t.Parallel()
	b := setup(t, testCfg)
	key := b.ring.Keys()[0]
	data, _ := key.MarshalPrivate()
	var stored struct{ D string }
	_ = json.Unmarshal(data, &stored)
	seed, _ := base64.RawURLEncoding.DecodeString(stored.D)
	// Forms the seed (or the 64-byte key that begins with it) could take.
	secrets := []string{stored.D, hex.EncodeToString(seed[:8]), fmt.Sprint(seed[:4])[1:10], base64.StdEncoding.EncodeToString(seed)[:12]}

	var out strings.Builder
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%X", "%q", "%d"} {
		fmt.Fprintf(&out, verb+"\n", key.Private)
		fmt.Fprintf(&out, verb+"\n", key)
		fmt.Fprintf(&out, verb+"\n", []token.Key{key})
		fmt.Fprintf(&out, verb+"\n", b.ring)
	}
	j, _ := json.Marshal(key)
	out.Write(j)
	for _, h := range []slog.Handler{slog.NewTextHandler(&out, nil), slog.NewJSONHandler(&out, nil)} {
		l := slog.New(h)
		l.Info("keys", "key", key, "private", key.Private, "ring", b.ring, "keys", []token.Key{key})
	}
	got := out.String()
	for _, s := range secrets {
		if strings.Contains(got, s) {
			t.Fatalf("output contains key material %q:\n%s", s, got)
		}
	}
	if !strings.Contains(got, "[redacted]") || !strings.Contains(got, key.ID) {
		t.Fatalf("output lacks [redacted] or the kid:\n%s", got)
	}
}

func TestNewOpaque(t *testing.T) {
	t.Parallel()
	format := regexp.MustCompile(`^rt_[a-z2-7]{52}$`)
	seen := map[string]bool{}
	for range 100 {
		plain, hash := token.NewOpaque("rt")
		if !format.MatchString(plain) {
			t.Fatalf("NewOpaque = %q, want rt_ + 52 base32 characters (256 bits)", plain)
		}
		sum := sha256.Sum256([]byte(plain))
		if hash != hex.EncodeToString(sum[:]) || token.Hash(plain) != hash {
			t.Fatalf("hash %q is not the SHA-256 hex of the plaintext", hash)
		}
		if seen[plain] {
			t.Fatal("NewOpaque repeated a secret")
		}
		seen[plain] = true
	}
	if plain, _ := token.NewOpaque(""); len(plain) != 52 {
		t.Fatalf("NewOpaque(\"\") = %q, want 52 characters, no separator", plain)
	}
}

func TestNewKeyringRefuses(t *testing.T) {
	t.Parallel()
	clock := abacus.NewFakeClock(t0)
	k := token.GenerateKey(t0)
	cases := map[string]func() error{
		"no keys":       func() error { _, err := token.NewKeyring(testCfg, clock); return err },
		"duplicate kid": func() error { _, err := token.NewKeyring(testCfg, clock, k, k); return err },
		"no material":   func() error { _, err := token.NewKeyring(testCfg, clock, token.Key{ID: "key_x"}); return err },
		"max below ttl": func() error {
			_, err := token.NewKeyring(token.Config{TTL: time.Hour, MaxTTL: time.Minute}, clock, k)
			return err
		},
	}
	for name, f := range cases {
		if f() == nil {
			t.Errorf("%s: NewKeyring = nil error", name)
		}
	}
}

func kidOf(t *testing.T, tok string) string {
	t.Helper()
	parsed, err := josejwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.EdDSA})
	if err != nil {
		t.Fatal(err)
	}
	return parsed.Headers[0].KeyID
}

func jwksLen(t *testing.T, r *token.Keyring) int {
	t.Helper()
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(r.JWKS(), &set); err != nil {
		t.Fatal(err)
	}
	return len(set.Keys)
}

func BenchmarkSignVerify(b *testing.B) {
	clock := abacus.NewFakeClock(t0)
	ring, _ := token.NewKeyring(testCfg, clock, token.GenerateKey(t0))
	for b.Loop() {
		s, _ := ring.Sign(sampleClaims())
		if _, err := ring.Verify(s); err != nil {
			b.Fatal(err)
		}
	}
}
