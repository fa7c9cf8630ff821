package webhooks

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
)

// Endpoints that never answer hold at most their cap of workers: every
// message to healthy endpoints of this and another tenant is delivered
// while the dead ones' requests are still hanging.
func TestDeadEndpointsDoNotDelayOthers(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		hang := make(chan struct{})
		var release sync.Once
		defer release.Do(func() { close(hang) })
		dead := newReceiver(t, func(string, int) int {
			<-hang
			return http.StatusOK
		})
		healthy := newReceiver(t, nil)
		cfg := privateOK
		cfg.Workers, cfg.EndpointConcurrency, cfg.Timeout = 6, 2, 10*time.Minute
		s := newService(t, d, abacus.SystemClock{}, cfg)
		for range 2 {
			createEndpoint(t, s, "ten_a", dead.URL)
		}
		createEndpoint(t, s, "ten_a", healthy.URL)
		createEndpoint(t, s, "ten_b", healthy.URL)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- s.NewDispatcher().Run(ctx) }()
		const n = 100
		for _, tenant := range []string{"ten_a", "ten_b"} {
			if err := s.Ingest(context.Background(), events(tenant, time.Now(), n)); err != nil {
				t.Fatal(err)
			}
		}
		waitFor(t, "the healthy endpoints' deliveries", func() bool { return len(healthy.deliveries()) == 2*n })
		if got := len(dead.deliveries()); got > 2*cfg.EndpointConcurrency {
			t.Fatalf("the dead endpoints have %d requests in flight, more than their caps (%d)", got, 2*cfg.EndpointConcurrency)
		}
		cancel()
		release.Do(func() { close(hang) }) // in-flight attempts end, so Run returns
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
}

// The consumer is idempotent by event id: a redelivered batch adds no
// message. Filters and endpoint creation time decide who gets an event.
func TestIngestIsIdempotentAndFiltered(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		clock := abacus.NewFakeClock(t0)
		s := newService(t, d, clock, privateOK)
		all := createEndpoint(t, s, "ten_a", "http://127.0.0.1:9/all")
		other := createEndpoint(t, s, "ten_a", "http://127.0.0.1:9/other", otherEvent.Type().Name)
		evs := events("ten_a", t0, 4)
		for range 3 {
			if err := s.Ingest(context.Background(), evs); err != nil {
				t.Fatal(err)
			}
		}
		clock.Advance(time.Minute)
		late := createEndpoint(t, s, "ten_a", "http://127.0.0.1:9/late")
		if err := s.Ingest(context.Background(), evs); err != nil {
			t.Fatal(err)
		}
		for ep, want := range map[string]int{all.ID: 4, other.ID: 0, late.ID: 0} {
			if got := len(messages(t, s, "ten_a", ep)); got != want {
				t.Errorf("endpoint %s has %d messages, want %d", ep, got, want)
			}
		}
		// A replay reaches what the filter takes since the time, keeping ids.
		before := messages(t, s, "ten_a", all.ID)
		r, err := s.Replay(tenantCtx("ten_a"), all.ID, ReplayInput{Since: t0})
		if err != nil || r.Queued != 4 {
			t.Fatalf("replay queued %d (%v), want 4", r.Queued, err)
		}
		if after := messages(t, s, "ten_a", all.ID); len(after) != 4 || after[0].ID != before[0].ID {
			t.Fatalf("replay changed the messages: %d, first %s then %s", len(after), before[0].ID, after[0].ID)
		}
		if r, err := s.Replay(tenantCtx("ten_a"), late.ID, ReplayInput{Since: t0}); err != nil || r.Queued != 4 {
			t.Fatalf("replay to the late endpoint queued %d (%v), want the 4 events it missed", r.Queued, err)
		}
	})
}

// Finished messages, their attempts and their events go after Retention;
// pending ones stay, with their events.
func TestPruneKeepsWhatIsPending(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		clock := abacus.NewFakeClock(t0)
		s := newService(t, d, clock, privateOK)
		ok := newReceiver(t, nil)
		down := newReceiver(t, func(string, int) int { return http.StatusServiceUnavailable })
		epOK := createEndpoint(t, s, "ten_a", ok.URL)
		epDown := createEndpoint(t, s, "ten_a", down.URL)
		if err := s.Ingest(context.Background(), events("ten_a", t0, 2)); err != nil {
			t.Fatal(err)
		}
		step(t, s.NewDispatcher())
		clock.Advance(Retention + time.Hour)
		n, err := s.Prune(context.Background())
		if err != nil || n != 0 {
			t.Fatalf("pruned %d events (%v); both still have a pending message", n, err)
		}
		if got := len(messages(t, s, "ten_a", epOK.ID)); got != 0 {
			t.Fatalf("%d delivered messages kept past the retention", got)
		}
		if m := messages(t, s, "ten_a", epDown.ID); len(m) != 2 || len(m[0].Attempts) != 1 {
			t.Fatalf("pending messages lost: %+v", m)
		}
	})
}

// rate_limit spaces an endpoint's attempts: with 1/s, one round sends
// one of three due messages; without it, slow start sends all three.
func TestRateLimitSpacesAttempts(t *testing.T) {
	t.Parallel()
	d := dbtest.Open(t, db.SQLite)
	clock := abacus.NewFakeClock(t0)
	s := newService(t, d, clock, privateOK)
	rcv := newReceiver(t, nil)
	limited, err := s.CreateEndpoint(tenantCtx("ten_a"), EndpointInput{URL: rcv.URL + "/limited", RateLimit: 1})
	if err != nil {
		t.Fatal(err)
	}
	free := createEndpoint(t, s, "ten_a", rcv.URL+"/free")
	if err := s.Ingest(context.Background(), events("ten_a", t0, 3)); err != nil {
		t.Fatal(err)
	}
	step(t, s.NewDispatcher())
	count := func(ep string) (n int) {
		for _, m := range messages(t, s, "ten_a", ep) {
			n += len(m.Attempts)
		}
		return n
	}
	if got := count(limited.ID); got != 1 {
		t.Fatalf("rate_limit 1/s endpoint: %d attempts in one round, want 1", got)
	}
	if got := count(free.ID); got != 3 {
		t.Fatalf("unlimited endpoint: %d attempts in one round, want 3", got)
	}
}

// Messages a lane already claimed are not sent once their endpoint is
// disabled: the next round gives them back.
func TestDisablingStopsClaimedMessages(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		clock := abacus.NewFakeClock(t0)
		s := newService(t, d, clock, privateOK)
		rcv := newReceiver(t, nil)
		ep := createEndpoint(t, s, "ten_a", rcv.URL)
		if err := s.Ingest(context.Background(), events("ten_a", t0, 3)); err != nil {
			t.Fatal(err)
		}
		disp := s.NewDispatcher()
		ctx := context.Background()
		if err := disp.round(ctx); err != nil { // claims 3, starts 1 (slow start)
			t.Fatal(err)
		}
		off := false
		if _, err := s.UpdateEndpoint(tenantCtx("ten_a"), ep.ID, EndpointPatch{Enabled: &off}); err != nil {
			t.Fatal(err)
		}
		disp.finished(<-disp.done)
		if err := disp.recordBatch(ctx, []result{<-disp.results}); err != nil {
			t.Fatal(err)
		}
		if err := disp.round(ctx); err != nil {
			t.Fatal(err)
		}
		disp.releasing.Wait()
		if disp.inflight() != 0 || len(rcv.deliveries()) != 1 {
			t.Fatalf("after disabling: %d in flight, %d delivered; want only the one already sent", disp.inflight(), len(rcv.deliveries()))
		}
		var leased int
		if err := d.QueryRowContext(ctx, `SELECT count(*) FROM webhook_messages WHERE lease_until > 0 AND status = 'pending'`).Scan(&leased); err != nil {
			t.Fatal(err)
		}
		if leased != 0 {
			t.Fatalf("%d messages of the disabled endpoint are still leased", leased)
		}
	})
}
