package app_test

import (
	"context"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
	"github.com/abacusbilling/abacus/internal/enduser"
)

// TestSignInDeviceLimitCost measures what the max_devices check adds to a
// sign-in: sign-ins of a user whose organization's plan grants
// max_devices (evict_lru at 2, so every sign-in also signs one device
// out) interleaved with sign-ins of a user without organization, on both
// engines. "session" is everything a sign-in does after the password
// check (StartSession in its transaction, hooks included); "sign-in" is
// the whole SignIn with the production argon2id parameters. Run with
// ABACUS_BENCH=1 (docs/benchmarks.md).
func TestSignInDeviceLimitCost(t *testing.T) {
	if os.Getenv("ABACUS_BENCH") != "1" {
		t.Skip("a measurement: run with ABACUS_BENCH=1")
	}
	for _, engine := range dbtest.Engines {
		t.Run(string(engine), func(t *testing.T) {
			w := newOrgWorld(t, engine)
			limited, free := w.user(t, "limited@bench.test", true), w.user(t, "free@bench.test", true)
			tok := w.mustSignIn(t, "limited@bench.test")
			o := w.call(t, 201, "POST", "/api/v1/end-user/organizations", tok, map[string]any{"name": "Bench"})
			w.subscribeMaxDevices(t, "bench", o["customer_id"].(string), map[string]any{"limit": 2, "on_limit": "evict_lru"})
			session := func(u enduser.User) time.Duration {
				start := time.Now()
				err := w.DB.InTx(context.Background(), func(tx *db.Tx) error {
					_, err := w.eu.StartSession(w.ctx(), tx, u, enduser.Device{UserAgent: "bench", IP: "127.0.0.1"}, w.app.ID)
					return err
				})
				if err != nil {
					t.Fatal(err)
				}
				return time.Since(start)
			}
			signIn := func(email string) time.Duration {
				start := time.Now()
				if _, _, err := w.signIn(email, "bench"); err != nil {
					t.Fatal(err)
				}
				return time.Since(start)
			}
			var sl, sf, il, iF []time.Duration
			for range 2000 {
				sl, sf = append(sl, session(limited)), append(sf, session(free))
			}
			for range 100 {
				il, iF = append(il, signIn("limited@bench.test")), append(iF, signIn("free@bench.test"))
			}
			report(t, "session, max_devices", sl)
			report(t, "session, no limit", sf)
			report(t, "sign-in, max_devices", il)
			report(t, "sign-in, no limit", iF)
		})
	}
}

func report(t *testing.T, name string, d []time.Duration) {
	slices.Sort(d)
	var sum time.Duration
	for _, x := range d {
		sum += x
	}
	t.Logf("%-22s n=%d mean=%v p50=%v p99=%v", name, len(d), (sum / time.Duration(len(d))).Round(time.Microsecond),
		d[len(d)/2].Round(time.Microsecond), d[len(d)*99/100].Round(time.Microsecond))
}
