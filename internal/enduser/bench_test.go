package enduser_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
	"github.com/abacusbilling/abacus/internal/enduser"
	"github.com/abacusbilling/abacus/internal/identity/password"
	"github.com/golang-jwt/jwt/v5"
)

// The benchmarks behind the performance targets of issue 13 (run with
// go test -run '^$' -bench . ./internal/enduser/). Engine: SQLite, or
// PostgreSQL with ABACUS_BENCH_ENGINE=postgres.

func benchDB(b *testing.B) *db.DB {
	e := db.SQLite
	if v := os.Getenv("ABACUS_BENCH_ENGINE"); v != "" {
		e = db.Engine(v)
	}
	return dbtest.Open(b, e)
}

// cpuTime is the CPU time this process has used (user + system). Under a
// shared, loaded machine wall-clock rates say little; CPU per operation
// says what two idle cores could do (2 s of CPU per second).
func cpuTime() time.Duration {
	var r syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &r)
	return time.Duration(r.Utime.Nano() + r.Stime.Nano())
}

// report adds the rate by wall clock and the CPU cost per operation.
func report(b *testing.B, cpu0 time.Duration, unit string) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), unit)
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
}

// benchSetup makes a service on real time with one app and n users.
func benchSetup(b *testing.B, params password.Params, n int, opts ...enduser.Option) (*enduser.Service, enduser.App, context.Context, *db.DB) {
	b.Helper()
	d := benchDB(b)
	opts = append([]enduser.Option{enduser.WithPasswordParams(params), enduser.WithBaseURL("https://abacus.test")}, opts...)
	svc := enduser.NewService(d, abacus.SystemClock{}, nil, opts...)
	ctx := enduser.SystemContext(context.Background(), tenantA)
	app, _, err := svc.CreateApp(ctx, enduser.NewApp{Name: "Bench", Type: enduser.AppPublic})
	if err != nil {
		b.Fatal(err)
	}
	for i := range n {
		if _, err := svc.CreateUser(ctx, enduser.NewUser{Email: fmt.Sprintf("u%d@example.com", i), Password: "correct horse battery"}); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := svc.JWKS(ctx, tenantA); err != nil { // creates the tenant's keys outside the timed part
		b.Fatal(err)
	}
	return svc, app, ctx, d
}

// BenchmarkSignIn signs in with a password at the production hashing cost
// (password.DefaultParams: argon2id, 19 MiB, 2 passes, 1 lane), each
// parallel worker as its own user and IP so no throttle applies.
func BenchmarkSignIn(b *testing.B) {
	const users = 64
	svc, app, ctx, _ := benchSetup(b, password.DefaultParams, users)
	var mu sync.Mutex
	next := 0
	cpu0 := cpuTime()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		mu.Lock()
		i := next % users
		next++
		mu.Unlock()
		email, dev := fmt.Sprintf("u%d@example.com", i), enduser.Device{UserAgent: "bench", IP: fmt.Sprintf("198.51.100.%d", i)}
		for pb.Next() {
			if _, _, err := svc.SignIn(ctx, tenantA, email, "correct horse battery", dev, app.ID); err != nil {
				b.Error(err)
				return
			}
		}
	})
	report(b, cpu0, "signins/s")
}

// BenchmarkRefresh rotates refresh tokens: each of 8 workers per core (as
// an API server's concurrent clients) keeps one session and refreshes it
// in a loop (read, rotate, insert, sign an access token).
func BenchmarkRefresh(b *testing.B) {
	for _, alg := range []string{enduser.AlgEdDSA, enduser.AlgRS256} {
		b.Run(alg, func(b *testing.B) {
			const users = 64
			svc, app, ctx, _ := benchSetup(b, cheap, users)
			if _, err := svc.PutSettings(ctx, enduser.Settings{AccessTokenAlg: alg}); err != nil {
				b.Fatal(err)
			}
			var mu sync.Mutex
			next := 0
			cpu0 := cpuTime()
			b.SetParallelism(8)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				mu.Lock()
				i := next % users
				next++
				mu.Unlock()
				sess, _, err := svc.SignIn(ctx, tenantA, fmt.Sprintf("u%d@example.com", i), "correct horse battery", dev, app.ID)
				if err != nil {
					b.Error(err)
					return
				}
				tok, err := svc.IssueTokens(ctx, sess, app, nil, "")
				if err != nil {
					b.Error(err)
					return
				}
				for pb.Next() {
					if tok, err = svc.Refresh(ctx, tenantA, tok.RefreshToken, app.ClientID); err != nil {
						b.Error(err)
						return
					}
				}
			})
			report(b, cpu0, "refreshes/s")
		})
	}
}

// jwksVerifier is what a tenant's backend does: fetch the JWKS once, keep
// the parsed keys by kid, verify each token's signature, issuer, audience
// and expiry locally.
type jwksVerifier struct {
	keys   map[string]crypto.PublicKey
	parser *jwt.Parser
	seen   sync.Map // token → time.Time it may be trusted until (verifyCached)
}

func newJWKSVerifier(b testing.TB, raw []byte, iss, aud string) *jwksVerifier {
	var set struct {
		Keys []map[string]string `json:"keys"`
	}
	if err := json.Unmarshal(raw, &set); err != nil {
		b.Fatal(err)
	}
	v := &jwksVerifier{keys: map[string]crypto.PublicKey{},
		parser: jwt.NewParser(jwt.WithValidMethods([]string{"RS256", "EdDSA"}), jwt.WithIssuer(iss), jwt.WithAudience(aud), jwt.WithExpirationRequired())}
	dec := base64.RawURLEncoding.DecodeString
	for _, k := range set.Keys {
		switch k["kty"] {
		case "RSA":
			n, _ := dec(k["n"])
			e, _ := dec(k["e"])
			v.keys[k["kid"]] = &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
		case "OKP":
			x, _ := dec(k["x"])
			v.keys[k["kid"]] = ed25519.PublicKey(x)
		}
	}
	return v
}

// verifyCached verifies tok once and then remembers it until it expires.
func (v *jwksVerifier) verifyCached(tok string) error {
	if exp, ok := v.seen.Load(tok); ok && time.Now().Before(exp.(time.Time)) {
		return nil
	}
	exp, err := v.check(tok)
	if err == nil {
		v.seen.Store(tok, exp)
	}
	return err
}

func (v *jwksVerifier) verify(tok string) error {
	_, err := v.check(tok)
	return err
}

// check verifies tok and returns when it expires.
func (v *jwksVerifier) check(tok string) (time.Time, error) {
	var c struct {
		jwt.RegisteredClaims
		SessionID string `json:"sid"`
		Scope     string `json:"scope"`
	}
	_, err := v.parser.ParseWithClaims(tok, &c, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		k, ok := v.keys[kid]
		if !ok {
			return nil, fmt.Errorf("unknown kid %q", kid)
		}
		return k, nil
	})
	if err != nil {
		return time.Time{}, err
	}
	return c.ExpiresAt.Time, nil
}

// BenchmarkVerifyThroughJWKS verifies access tokens as a relying party
// does, with the tenant's JWKS fetched once: 1,000 distinct tokens (so no
// answer can be cached), in parallel.
//
// The "cached" runs add what API gateways do: a verified token is kept
// (by its text, until its exp), so the 1,000 clients' repeated
// requests cost a map lookup after their first.
func BenchmarkVerifyThroughJWKS(b *testing.B) {
	for _, c := range []struct {
		alg    string
		cached bool
	}{{enduser.AlgEdDSA, false}, {enduser.AlgRS256, false}, {enduser.AlgEdDSA, true}} {
		alg, cached := c.alg, c.cached
		name := alg
		if cached {
			name += "/cached"
		}
		b.Run(name, func(b *testing.B) {
			svc, app, ctx, _ := benchSetup(b, cheap, 1)
			if _, err := svc.PutSettings(ctx, enduser.Settings{AccessTokenAlg: alg}); err != nil {
				b.Fatal(err)
			}
			sess, _, err := svc.SignIn(ctx, tenantA, "u0@example.com", "correct horse battery", dev, app.ID)
			if err != nil {
				b.Fatal(err)
			}
			tokens := make([]string, 1000)
			for i := range tokens {
				tok, err := svc.IssueTokens(ctx, sess, app, []string{"read"}, "")
				if err != nil {
					b.Fatal(err)
				}
				tokens[i] = tok.AccessToken
			}
			raw, err := svc.JWKS(ctx, tenantA)
			if err != nil {
				b.Fatal(err)
			}
			v := newJWKSVerifier(b, raw, svc.Issuer(tenantA), app.ClientID)
			verify := v.verify
			if cached {
				verify = v.verifyCached
			}
			var mu sync.Mutex
			worker := 0
			cpu0 := cpuTime()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				mu.Lock()
				i := worker * 97
				worker++
				mu.Unlock()
				for pb.Next() {
					if err := verify(tokens[i%len(tokens)]); err != nil {
						b.Error(err)
						return
					}
					i++
				}
			})
			report(b, cpu0, "verifications/s")
		})
	}
}

// BenchmarkSigningAlgorithms compares what the keys cost: a JWT of the
// access token's size signed and verified with each algorithm.
func BenchmarkSigningAlgorithms(b *testing.B) {
	claims := jwt.MapClaims{"iss": "https://abacus.test/oidc/ten_01jbx6z8c4e6g8j0l2n4q6s8tv", "sub": "eu_01jbx7k2q9m4r8t6v3w5y0z1ab",
		"aud": "cid_ab3kq9m4r8t6v3w5y0z1abcdef", "sid": "ses_01jbx7n3s5v7x9z1b3d5f7h9jk", "exp": 4102444800, "iat": 1764000000}
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	edPub, edKey, _ := ed25519.GenerateKey(rand.Reader)
	for _, c := range []struct {
		m         jwt.SigningMethod
		priv, pub any
	}{{jwt.SigningMethodRS256, rsaKey, &rsaKey.PublicKey}, {jwt.SigningMethodES256, ecKey, &ecKey.PublicKey}, {jwt.SigningMethodEdDSA, edKey, edPub}} {
		tok, err := jwt.NewWithClaims(c.m, claims).SignedString(c.priv)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(c.m.Alg()+"/sign", func(b *testing.B) {
			cpu0 := cpuTime()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := jwt.NewWithClaims(c.m, claims).SignedString(c.priv); err != nil {
						b.Error(err)
						return
					}
				}
			})
			report(b, cpu0, "signs/s")
		})
		b.Run(c.m.Alg()+"/verify", func(b *testing.B) {
			p := jwt.NewParser(jwt.WithValidMethods([]string{c.m.Alg()}))
			cpu0 := cpuTime()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := p.Parse(tok, func(*jwt.Token) (any, error) { return c.pub, nil }); err != nil {
						b.Error(err)
						return
					}
				}
			})
			report(b, cpu0, "verifies/s")
		})
	}
}

// BenchmarkDeviceCheck measures what a "max devices" check adds to a
// sign-in: CountActiveSessions inside the session's transaction, for an
// organization of 20 users with 3 sessions each, reporting p99.
func BenchmarkDeviceCheck(b *testing.B) {
	svc, app, ctx, d := benchSetup(b, cheap, 20)
	var ids []string
	for i := range 20 {
		u, err := svc.UserByEmail(ctx, fmt.Sprintf("u%d@example.com", i))
		if err != nil {
			b.Fatal(err)
		}
		ids = append(ids, u.ID)
		for range 3 {
			if _, _, err := svc.SignIn(ctx, tenantA, u.Email, "correct horse battery", dev, app.ID); err != nil {
				b.Fatal(err)
			}
		}
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		err := d.InTx(ctx, func(tx *db.Tx) error {
			n, err := svc.CountActiveSessions(ctx, tx, tenantA, ids)
			if err == nil && n != 60 {
				err = fmt.Errorf("counted %d sessions, want 60", n)
			}
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}
