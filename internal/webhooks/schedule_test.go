package webhooks

import (
	"context"
	"net/http"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
)

var t0 = time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)

// A receiver that fails three times and then succeeds gets exactly one
// successful delivery per event, each retry at its scheduled time (5 s,
// 5 min, 30 min after the previous failure, plus at most 10 % jitter) and
// not a moment before, with the same webhook-id every time.
func TestFailThreeTimesThenSucceedFollowsTheSchedule(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		clock := abacus.NewFakeClock(t0)
		s := newService(t, d, clock, privateOK)
		rcv := newReceiver(t, func(_ string, n int) int {
			if n <= 3 {
				return http.StatusInternalServerError
			}
			return http.StatusNoContent
		})
		ep := createEndpoint(t, s, "ten_a", rcv.URL)
		const n = 5
		if err := s.Ingest(context.Background(), events("ten_a", t0, n)); err != nil {
			t.Fatal(err)
		}
		disp := s.NewDispatcher()
		if got := len(step(t, disp)); got != n {
			t.Fatalf("first round made %d attempts, want %d (immediately)", got, n)
		}
		documented := []time.Duration{5 * time.Second, 5 * time.Minute, 30 * time.Minute} // docs/webhooks.md
		for retry := 1; retry <= 3; retry++ {
			ms := messages(t, s, "ten_a", ep.ID)
			last := ms[0].Attempts[len(ms[0].Attempts)-1]
			next := *ms[0].NextAttemptAt
			for _, m := range ms {
				a := m.Attempts[len(m.Attempts)-1]
				wait := m.NextAttemptAt.Sub(a.At)
				if want := documented[retry-1]; wait < want || wait > want+want/10 {
					t.Fatalf("retry %d of %s scheduled %s after the failure, want %s plus at most 10 %%", retry, m.ID, wait, want)
				}
				if m.NextAttemptAt.After(next) {
					next = *m.NextAttemptAt
				}
			}
			clock.Set(last.At.Add(documented[retry-1] - time.Millisecond))
			if got := len(step(t, disp)); got != 0 {
				t.Fatalf("%d attempts before retry %d was due", got, retry)
			}
			clock.Set(next)
			if got := len(step(t, disp)); got != n {
				t.Fatalf("retry %d: %d attempts, want %d", retry, got, n)
			}
		}
		clock.Advance(48 * time.Hour)
		if got := len(step(t, disp)); got != 0 {
			t.Fatalf("%d attempts after every message was delivered", got)
		}
		ok := map[string]int{}
		for _, got := range rcv.deliveries() {
			wh, _ := standardwebhooks.NewWebhook(ep.Secret)
			if err := wh.VerifyIgnoringTimestamp(got.Body, got.Header); err != nil {
				t.Fatal(err)
			}
			if rcv.perID[got.ID] != 4 {
				t.Fatalf("%s was sent %d times, want 4 (3 failures, 1 success)", got.ID, rcv.perID[got.ID])
			}
			ok[got.ID]++
		}
		for _, m := range messages(t, s, "ten_a", ep.ID) {
			if m.Status != StatusDelivered || len(m.Attempts) != 4 || m.Attempts[3].StatusCode != http.StatusNoContent ||
				m.DeliveredAt == nil || !m.DeliveredAt.Equal(m.Attempts[3].At) {
				t.Fatalf("message %s: status %s after %d attempts", m.ID, m.Status, len(m.Attempts))
			}
		}
		if len(ok) != n {
			t.Fatalf("%d webhook-ids received, want %d", len(ok), n)
		}
	})
}

// Eight attempts in all; after the last failure the message is failed
// and nothing more is sent. A 4xx other than 429 is not retried.
func TestScheduleEndsAndClientErrorsAreFinal(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		clock := abacus.NewFakeClock(t0)
		s := newService(t, d, clock, privateOK)
		down := newReceiver(t, func(string, int) int { return http.StatusServiceUnavailable })
		bad := newReceiver(t, func(string, int) int { return http.StatusBadRequest })
		epDown := createEndpoint(t, s, "ten_a", down.URL)
		epBad := createEndpoint(t, s, "ten_a", bad.URL)
		if err := s.Ingest(context.Background(), events("ten_a", t0, 1)); err != nil {
			t.Fatal(err)
		}
		disp := s.NewDispatcher()
		for range 20 {
			step(t, disp)
			clock.Advance(11 * time.Hour)
		}
		if m := messages(t, s, "ten_a", epDown.ID)[0]; m.Status != StatusFailed || len(m.Attempts) != len(Schedule)+1 {
			t.Fatalf("always-503 endpoint: status %s after %d attempts, want failed after %d", m.Status, len(m.Attempts), len(Schedule)+1)
		}
		if m := messages(t, s, "ten_a", epBad.ID)[0]; m.Status != StatusFailed || len(m.Attempts) != 1 {
			t.Fatalf("400 endpoint: status %s after %d attempts, want failed after 1", m.Status, len(m.Attempts))
		}
	})
}

// Retry-After longer than the scheduled delay wins.
func TestRetryAfterIsHonoured(t *testing.T) {
	t.Parallel()
	d := dbtest.Open(t, db.SQLite)
	clock := abacus.NewFakeClock(t0)
	s := newService(t, d, clock, privateOK)
	rcv := newReceiver(t, nil)
	rcv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Retry-After", "120")
		w.WriteHeader(http.StatusTooManyRequests)
	})
	ep := createEndpoint(t, s, "ten_a", rcv.URL)
	if err := s.Ingest(context.Background(), events("ten_a", t0, 1)); err != nil {
		t.Fatal(err)
	}
	step(t, s.NewDispatcher())
	m := messages(t, s, "ten_a", ep.ID)[0]
	if m.Status != StatusPending || m.NextAttemptAt.Sub(m.Attempts[0].At) != 120*time.Second {
		t.Fatalf("after 429 with Retry-After: 120 the next attempt is %v after the first, want 2m0s", m.NextAttemptAt.Sub(m.Attempts[0].At))
	}
}
