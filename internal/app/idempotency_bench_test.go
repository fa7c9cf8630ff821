package app_test

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/abacusbilling/abacus/internal/db/dbtest"
)

// TestIdempotencyKeyCost measures what an Idempotency-Key adds to a
// create: POST /api/v1/customers one at a time over HTTP, each key new,
// interleaved with the same request without a key, on both engines. Run
// with ABACUS_BENCH=1 (docs/benchmarks.md).
func TestIdempotencyKeyCost(t *testing.T) {
	if os.Getenv("ABACUS_BENCH") != "1" {
		t.Skip("a measurement: run with ABACUS_BENCH=1")
	}
	for _, e := range dbtest.Engines {
		t.Run(string(e), func(t *testing.T) {
			a := start(t, e, nil)
			create := func(i int, headers ...string) time.Duration {
				begin := time.Now()
				r := a.do("POST", "/api/v1/customers", a.key, map[string]any{"name": fmt.Sprintf("Bench %d", i), "currency": "EUR"}, headers...)
				if r.status != 201 {
					t.Fatalf("create: %d %s", r.status, r.body)
				}
				return time.Since(begin)
			}
			for i := range 200 { // warm up: connections, prepared statements
				create(i)
			}
			var keyed, plain []time.Duration
			for i := range 2000 {
				keyed = append(keyed, create(i, "Idempotency-Key", fmt.Sprintf("bench-%d", i)))
				plain = append(plain, create(i))
			}
			report(t, "with Idempotency-Key", keyed)
			report(t, "without", plain)
		})
	}
}
