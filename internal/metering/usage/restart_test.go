package usage_test

import (
	"context"
	"fmt"
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

// meterRig is one partition's ingester and a meter whose workers can be
// started afresh (as after a process restart), on a real embedded bus.
type meterRig struct {
	t    *testing.T
	ctx  context.Context
	d    *db.DB
	bus  *natsbus.Bus
	in   *usage.Ingester
	svc  *usage.Service
	pctx context.Context
	log  *slog.Logger
	clk  *abacus.FakeClock
}

func newMeterRig(t *testing.T, d *db.DB) *meterRig {
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	clock := abacus.NewFakeClock(testNow)
	bus, err := natsbus.Open(ctx, natsbus.Options{StoreDir: filepath.Join(t.TempDir(), "nats"), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bus.Close)
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
	return &meterRig{t: t, ctx: ctx, d: d, bus: bus, in: in, svc: svc, pctx: pctx, log: log, clk: clock}
}

// batch is 100 events numbered from first.
func (r *meterRig) batch(first int64) []metering.Event {
	evs := make([]metering.Event, 100)
	for i := range evs {
		loadEvent("r", 3, testNow.Add(-time.Hour), time.Second)(first+int64(i), &evs[i])
		evs[i].Type, evs[i].TenantID, evs[i].ReceivedAt = "api", "ten_r", testNow
	}
	return evs
}

// run starts fresh workers, submits the batch and waits until the
// partition's offset covers it; it returns the COUNT then.
func (r *meterRig) run(batch []metering.Event) string {
	t, ctx := r.t, r.ctx
	t.Helper()
	wctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		cfg := usage.WorkerConfig{Partitions: 1, RetryInterval: 20 * time.Millisecond}
		_ = usage.NewWorkers(r.d, r.bus, cfg, r.clk, r.log, prometheus.NewRegistry()).Run(wctx)
	}()
	defer func() { stop(); <-done }()
	if err := r.in.Submit(ctx, batch); err != nil {
		t.Fatal(err)
	}
	st, err := r.bus.JetStream().Stream(ctx, usage.Stream)
	if err != nil {
		t.Fatal(err)
	}
	// Wait for the offset to name the stream's last message (sequence and
	// timestamp: on a stream that went back, the old offset may already
	// be past the new sequence).
	last := st.CachedInfo().State.LastSeq
	m, err := st.GetMsg(ctx, last)
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) { // real background work
		var off, at int64
		_ = r.d.QueryRowContext(ctx, `SELECT stream_seq, stream_time FROM metering_offsets WHERE partition = 0`).Scan(&off, &at)
		if off == int64(last) && at == m.Time.UnixNano() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("offset %d at %d, want %d at %d", off, at, last, m.Time.UnixNano())
		}
	}
	from, to := testNow.Add(-24*time.Hour), testNow.Add(time.Hour)
	res, _, err := r.svc.Query(r.pctx, "n", usage.QueryParams{From: &from, To: &to})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Data) != 1 {
		t.Fatalf("windows: %+v", res.Data)
	}
	return res.Data[0].Value.String()
}

// TestRestartedWorkerCountsRetriesOnce stores a batch, restarts the meter
// role (fresh workers, as after a process restart) and sends the same
// batch again: the new workers' first round holds only duplicates and
// must fold nothing.
func TestRestartedWorkerCountsRetriesOnce(t *testing.T) {
	t.Parallel()
	runBoth(t, func(t *testing.T, d *db.DB) {
		r := newMeterRig(t, d)
		if got := r.run(r.batch(0)); got != "100" {
			t.Fatalf("count after the first batch = %s, want 100", got)
		}
		if got := r.run(r.batch(0)); got != "100" {
			t.Fatalf("count after the batch again, with fresh workers = %s, want 100", got)
		}
	})
}

// TestWorkerFollowsAStreamThatWentBack: the stream loses messages the
// worker had applied (here: deleted and made again, as an operator might,
// or as JetStream restarted after a write failure may lose what it held
// only in memory), so new messages get sequence numbers the stored offset
// already passed. They are new events and must be counted, not skipped as
// redeliveries; the old ones, if the stream still had them, once.
func TestWorkerFollowsAStreamThatWentBack(t *testing.T) {
	t.Parallel()
	runBoth(t, func(t *testing.T, d *db.DB) {
		r := newMeterRig(t, d)
		for i := range 3 {
			if got, want := r.run(r.batch(int64(i)*100)), fmt.Sprint((i+1)*100); got != want {
				t.Fatalf("count after batch %d = %s, want %s", i, got, want)
			}
		}
		js := r.bus.JetStream()
		if err := js.DeleteStream(r.ctx, usage.Stream); err != nil {
			t.Fatal(err)
		}
		if err := usage.EnsureStream(r.ctx, r.bus, 1, time.Hour); err != nil {
			t.Fatal(err)
		}
		if got := r.run(r.batch(1000)); got != "400" {
			t.Fatalf("count after a new batch on the recreated stream = %s, want 400", got)
		}
		if got := r.run(r.batch(0)); got != "400" {
			t.Fatalf("count after an old batch again = %s, want 400", got)
		}
	})
}
