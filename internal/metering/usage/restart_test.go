package usage_test

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/metering"
	"github.com/abacusbilling/abacus/internal/metering/usage"
	"github.com/abacusbilling/abacus/internal/natsbus"
)

// TestRestartedWorkerCountsRetriesOnce stores a batch, restarts the meter
// role (fresh workers, as after a process restart) and sends the same
// batch again: the new workers' first round holds only duplicates and
// must fold nothing.
func TestRestartedWorkerCountsRetriesOnce(t *testing.T) {
	t.Parallel()
	runBoth(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		log := slog.New(slog.DiscardHandler)
		clock := abacus.NewFakeClock(testNow)
		bus, err := natsbus.Open(ctx, natsbus.Options{StoreDir: filepath.Join(t.TempDir(), "nats"), Logger: log})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(bus.Close)
		cfg := usage.WorkerConfig{Partitions: 1, RetryInterval: 20 * time.Millisecond}
		in, err := usage.NewIngester(ctx, bus, usage.IngestConfig{Partitions: 1}, clock, log, prometheus.NewRegistry())
		if err != nil {
			t.Fatal(err)
		}
		ictx, stopIngest := context.WithCancel(ctx)
		ingestDone := make(chan struct{})
		go func() { defer close(ingestDone); _ = in.Run(ictx) }()
		t.Cleanup(func() { stopIngest(); <-ingestDone })
		svc := usage.NewService(d, clock, log, metering.Limits{})
		pctx := abacus.WithPrincipal(ctx, &abacus.Principal{TenantID: "ten_r", Scopes: []abacus.Scope{abacus.ScopeAdmin}})
		if _, err := svc.CreateMeter(pctx, metering.Meter{Slug: "n", EventType: "api", Aggregation: metering.AggCount}); err != nil {
			t.Fatal(err)
		}
		batch := func() []metering.Event {
			evs := make([]metering.Event, 100)
			for i := range evs {
				loadEvent("r", 3, testNow.Add(-time.Hour), time.Second)(int64(i), &evs[i])
				evs[i].Type, evs[i].TenantID, evs[i].ReceivedAt = "api", "ten_r", testNow
			}
			return evs
		}
		// run starts fresh workers, submits the batch and waits until the
		// partition's offset covers it; it returns the COUNT then.
		run := func() string {
			t.Helper()
			wctx, stop := context.WithCancel(ctx)
			done := make(chan struct{})
			go func() {
				defer close(done)
				_ = usage.NewWorkers(d, bus, cfg, clock, log, prometheus.NewRegistry()).Run(wctx)
			}()
			defer func() { stop(); <-done }()
			if err := in.Submit(ctx, batch()); err != nil {
				t.Fatal(err)
			}
			st, err := bus.JetStream().Stream(ctx, usage.Stream)
			if err != nil {
				t.Fatal(err)
			}
			last := int64(st.CachedInfo().State.LastSeq)
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) { // real background work
				var off int64
				_ = d.QueryRowContext(ctx, `SELECT stream_seq FROM metering_offsets WHERE partition = 0`).Scan(&off)
				if off >= last {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("offset %d, want %d", off, last)
				}
			}
			from, to := testNow.Add(-24*time.Hour), testNow.Add(time.Hour)
			res, _, err := svc.Query(pctx, "n", usage.QueryParams{From: &from, To: &to})
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Data) != 1 {
				t.Fatalf("windows: %+v", res.Data)
			}
			return res.Data[0].Value.String()
		}
		if got := run(); got != "100" {
			t.Fatalf("count after the first batch = %s, want 100", got)
		}
		if got := run(); got != "100" {
			t.Fatalf("count after the batch again, with fresh workers = %s, want 100", got)
		}
	})
}
