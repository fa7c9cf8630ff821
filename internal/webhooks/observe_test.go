package webhooks

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
)

// The observer is told each step of a message in the transaction that
// records it: queued, a failed attempt with its reason and retry, the
// retry, the delivery. (The app records them in invoices' delivery
// history.)
func TestObserverSeesAFailedAttemptItsRetryAndTheDelivery(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		clock := abacus.NewFakeClock(t0)
		s := newService(t, d, clock, privateOK)
		var mu sync.Mutex
		var seen []Outcome
		s.Observe(func(_ context.Context, tx *db.Tx, steps []Outcome) error {
			if tx == nil {
				t.Error("observed outside a transaction")
			}
			mu.Lock()
			defer mu.Unlock()
			seen = append(seen, steps...)
			return nil
		})
		rcv := newReceiver(t, func(_ string, n int) int {
			if n == 1 {
				return http.StatusInternalServerError
			}
			return http.StatusNoContent
		})
		ep := createEndpoint(t, s, "ten_a", rcv.URL)
		evs := events("ten_a", t0, 1)
		if err := s.Ingest(context.Background(), evs); err != nil {
			t.Fatal(err)
		}
		disp := s.NewDispatcher()
		step(t, disp)
		clock.Advance(Schedule[0] * 2)
		step(t, disp)
		var got []string
		for _, o := range seen {
			got = append(got, o.Step)
			if o.Tenant != "ten_a" || o.EndpointID != ep.ID || o.MessageID != seen[0].MessageID {
				t.Fatalf("step %+v", o)
			}
		}
		if strings.Join(got, ",") != "queued,failed,retried,delivered" {
			t.Fatalf("steps %v", got)
		}
		q, f := seen[0], seen[1]
		if q.EventType != evs[0].Type || q.AggregateID != evs[0].AggregateID || q.URL != rcv.URL {
			t.Fatalf("queued %+v", q)
		}
		if f.Reason != "HTTP 500" || f.Attempt != 1 || f.NextAttemptAt == nil || !f.NextAttemptAt.After(t0) || seen[3].Attempt != 2 {
			t.Fatalf("failed %+v, delivered %+v", f, seen[3])
		}
		// An observer's error rolls the step back with what it records.
		s.Observe(func(context.Context, *db.Tx, []Outcome) error { return context.DeadlineExceeded })
		if err := s.Ingest(context.Background(), events("ten_a", t0.Add(time.Second), 1)); err == nil {
			t.Fatal("Ingest succeeded although its observer failed")
		}
		if m := messages(t, s, "ten_a", ep.ID); len(m) != 1 {
			t.Fatalf("%d messages after the failed ingest, want 1", len(m))
		}
	})
}
