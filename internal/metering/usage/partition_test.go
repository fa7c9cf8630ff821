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
	"github.com/abacusbilling/abacus/internal/db/dbtest"
	"github.com/abacusbilling/abacus/internal/metering"
	"github.com/abacusbilling/abacus/internal/metering/usage"
	"github.com/abacusbilling/abacus/internal/natsbus"
)

// meterProc is one meter process's workers, stoppable as a crash would.
type meterProc struct {
	reg  *prometheus.Registry
	stop context.CancelFunc
	done chan struct{}
}

func startMeterProc(d *db.DB, bus *natsbus.Bus, partitions int, clock abacus.Clock) *meterProc {
	ctx, cancel := context.WithCancel(context.Background())
	m := &meterProc{reg: prometheus.NewRegistry(), stop: cancel, done: make(chan struct{})}
	ws := usage.NewWorkers(d, bus, usage.WorkerConfig{Partitions: partitions, LockPollPeriod: 50 * time.Millisecond,
		RetryInterval: 20 * time.Millisecond}, clock, slog.New(slog.DiscardHandler), m.reg)
	go func() { defer close(m.done); _ = ws.Run(ctx) }()
	return m
}

func (m *meterProc) kill() { m.stop(); <-m.done }

// owned is how many partitions the process works now (its metric).
func (m *meterProc) owned(t *testing.T) int {
	t.Helper()
	mfs, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, mf := range mfs {
		if mf.GetName() == "abacus_metering_partition_owned" {
			for _, s := range mf.GetMetric() {
				n += int(s.GetGauge().GetValue())
			}
		}
	}
	return n
}

// TestPartitionsMoveBetweenMeterProcesses: on PostgreSQL, meter processes
// share the partitions; when one stops, the others take its partitions,
// and when it returns it gets its share back, while events keep arriving.
// Every event is counted once.
func TestPartitionsMoveBetweenMeterProcesses(t *testing.T) {
	t.Parallel()
	d := dbtest.Open(t, db.Postgres)
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	clock := abacus.NewFakeClock(testNow)
	bus, err := natsbus.Open(ctx, natsbus.Options{StoreDir: filepath.Join(t.TempDir(), "nats"), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bus.Close)
	const partitions = 4
	in, err := usage.NewIngester(ctx, bus, usage.IngestConfig{Partitions: partitions}, clock, log, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	ictx, stopIngest := context.WithCancel(ctx)
	ingestDone := make(chan struct{})
	go func() { defer close(ingestDone); _ = in.Run(ictx) }()
	t.Cleanup(func() { stopIngest(); <-ingestDone })
	svc := usage.NewService(d, clock, log, metering.Limits{})
	pctx := abacus.WithPrincipal(ctx, &abacus.Principal{TenantID: "ten_p", Scopes: []abacus.Scope{abacus.ScopeAdmin}})
	if _, err := svc.CreateMeter(pctx, metering.Meter{Slug: "n", EventType: "api", Aggregation: metering.AggCount}); err != nil {
		t.Fatal(err)
	}
	sent := int64(0)
	send := func() {
		t.Helper()
		evs := make([]metering.Event, 200)
		for i := range evs {
			loadEvent("p", 37, testNow.Add(-time.Hour), time.Millisecond)(sent+int64(i), &evs[i])
			evs[i].Type, evs[i].TenantID, evs[i].ReceivedAt = "api", "ten_p", testNow
		}
		if err := in.Submit(ctx, evs); err != nil {
			t.Fatal(err)
		}
		sent += int64(len(evs))
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) { // real background work
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}
	a := startMeterProc(d, bus, partitions, clock)
	t.Cleanup(func() { a.kill() })
	waitFor("the first process to own every partition", func() bool { return a.owned(t) == partitions })
	send()
	b := startMeterProc(d, bus, partitions, clock)
	waitFor("the partitions to spread over two processes", func() bool { return a.owned(t) == 2 && b.owned(t) == 2 })
	send()
	b.kill()
	waitFor("the survivor to take every partition", func() bool { return a.owned(t) == partitions })
	send()
	c := startMeterProc(d, bus, partitions, clock)
	t.Cleanup(func() { c.kill() })
	waitFor("the returning process to get its share", func() bool { return a.owned(t) == 2 && c.owned(t) == 2 })
	send()

	from, to := testNow.Add(-24*time.Hour), testNow.Add(time.Hour)
	var got string
	waitFor(fmt.Sprintf("the count to reach %d", sent), func() bool {
		res, _, err := svc.Query(pctx, "n", usage.QueryParams{From: &from, To: &to})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Data) == 1 {
			got = res.Data[0].Value.String()
		}
		return got == fmt.Sprint(sent)
	})
	// Nothing more arrives later (no double counting by a stale owner).
	time.Sleep(300 * time.Millisecond)
	res, _, err := svc.Query(pctx, "n", usage.QueryParams{From: &from, To: &to})
	if err != nil || len(res.Data) != 1 || res.Data[0].Value.String() != fmt.Sprint(sent) {
		t.Fatalf("count settled at %+v (%v), want %d", res.Data, err, sent)
	}
}
