package usage_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/abacusbilling/abacus/internal/db"
)

// When the meter workers fall behind by more events than metering.max_lag,
// ingestion answers 503 problem+json with Retry-After instead of letting the
// backlog grow; the lag is counted in events, not bus messages.
func TestBackPressureIn503(t *testing.T) {
	t.Parallel()
	runBoth(t, func(t *testing.T, d *db.DB) {
		// The meter worker stalls after its first commit: nothing is
		// acknowledged any more, so the backlog only grows.
		release := make(chan struct{})
		b := setup(t, d, options{partitions: 1, maxLag: 150, afterCommit: func(int) error { <-release; return nil }})
		t.Cleanup(func() { close(release) })
		batch := func(n int) string {
			var evs []string
			for i := 0; i < 100; i++ {
				evs = append(evs, fmt.Sprintf(`{"specversion":"1.0","id":"bp-%d-%d","source":"t","type":"x","subject":"s","time":"%s","data":{}}`,
					n, i, testNow.Format(time.RFC3339)))
			}
			return "[" + strings.Join(evs, ",") + "]"
		}
		deadline := time.Now().Add(10 * time.Second)
		for n := 0; ; n++ {
			r := b.do("POST", "/api/v1/events", b.key, "application/cloudevents-batch+json", batch(n))
			if r.status == 503 {
				if r.header.Get("Retry-After") == "" || r.header.Get("Content-Type") != "application/problem+json" {
					t.Fatalf("503 without Retry-After or problem+json: %v %s", r.header, r.body)
				}
				if n < 1 {
					t.Fatalf("refused before the backlog passed the bound (after %d batches)", n)
				}
				return
			}
			// 150 events are passed after two batches; counted in bus
			// messages (one per batch here) it would take 150 batches. The slack
			// covers the worker creating its consumer on a slow machine.
			if n > 40 {
				t.Fatalf("still accepting after %d stalled batches of 100 events with max_lag 150", n)
			}
			if r.status != 204 {
				t.Fatalf("batch %d: %d %s", n, r.status, r.body)
			}
			if time.Now().After(deadline) {
				t.Fatalf("no 503 within 10 s (%d batches)", n+1)
			}
			time.Sleep(30 * time.Millisecond)
		}
	})
}
