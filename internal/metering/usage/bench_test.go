package usage_test

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
	"github.com/abacusbilling/abacus/internal/metering"
	"github.com/abacusbilling/abacus/internal/metering/usage"
	"github.com/abacusbilling/abacus/internal/natsbus"
	"github.com/abacusbilling/abacus/internal/service"
)

// benchBatch returns 1000 decoded events of tenant t with unique ids.
func benchBatch(b *testing.B, tenant string, n int64) []metering.Event {
	parts := make([]string, 1000)
	for i := range parts {
		// Times near "now", as live traffic has: inserts land at the right edge.
		tm := testNow.Add(-time.Hour + time.Duration(n)*time.Second).Format(time.RFC3339)
		parts[i] = fmt.Sprintf(`{"specversion":"1.0","id":"b%d-%d","source":"bench","type":"api","subject":"cus_%d","time":%q,"data":{"tokens":%d,"model":"m%d"}}`,
			n, i, i%100, tm, i%500, i%3)
	}
	evs, err := metering.DecodeEvents(metering.MediaTypeCloudEventBatch, []byte("["+strings.Join(parts, ",")+"]"), testNow, metering.Limits{})
	if err != nil {
		b.Fatal(err)
	}
	for i := range evs {
		evs[i].TenantID = tenant
	}
	return evs
}

func benchPipeline(b *testing.B, d *db.DB, workers bool) {
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	clock := abacus.NewFakeClock(testNow)
	bus, err := natsbus.Open(ctx, natsbus.Options{StoreDir: filepath.Join(b.TempDir(), "nats")})
	if err != nil {
		b.Fatal(err)
	}
	defer bus.Close()
	reg := prometheus.NewRegistry()
	in, err := usage.NewIngester(ctx, bus, usage.IngestConfig{MaxLag: 1 << 30}, clock, log, reg)
	if err != nil {
		b.Fatal(err)
	}
	tenant := "ten_bench"
	svcs := []service.Service{service.NewFunc("ingest", in.Run)}
	if workers {
		svc := usage.NewService(d, clock, log, metering.Limits{})
		pctx := abacus.WithPrincipal(ctx, &abacus.Principal{TenantID: tenant, Scopes: []abacus.Scope{abacus.ScopeAdmin}})
		if _, err := svc.CreateMeter(pctx, metering.Meter{Slug: "tokens", EventType: "api", Aggregation: metering.AggSum,
			ValueProperty: "$.tokens", GroupBy: map[string]string{"model": "$.model"}}); err != nil {
			b.Fatal(err)
		}
		svcs = append(svcs, service.NewFunc("meter", usage.NewWorkers(d, bus, usage.WorkerConfig{}, clock, log, reg).Run))
	}
	for _, s := range svcs {
		_ = s.Start(ctx)
		defer s.Stop(ctx)
	}
	batches := make([][]metering.Event, 64)
	var seq atomic.Int64
	for i := range batches {
		batches[i] = benchBatch(b, tenant, seq.Add(1))
	}
	b.ResetTimer()
	start := time.Now()
	var next atomic.Int64
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			n := next.Add(1)
			evs := batches[n%int64(len(batches))]
			// unique ids per submission
			cp := make([]metering.Event, len(evs))
			copy(cp, evs)
			pfx := fmt.Sprintf("n%d-", n)
			for i := range cp {
				cp[i].ID = pfx + cp[i].ID
			}
			if err := in.Submit(ctx, cp); err != nil {
				b.Error(err)
				return
			}
		}
	})
	if workers {
		want := int64(b.N) * 1000
		for deadline := time.Now().Add(5 * time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			var n int64
			if err := d.QueryRowContext(ctx, `SELECT COALESCE(SUM(count), 0) FROM usage_rollups WHERE res = 86400`).Scan(&n); err != nil {
				b.Fatal(err)
			}
			if n >= want {
				break
			}
		}
	}
	b.ReportMetric(float64(b.N)*1000/time.Since(start).Seconds(), "events/s")
}

// BenchmarkIngest measures events durably accepted on the bus (1000-event
// requests, 16 concurrent submitters, no consumers).
func BenchmarkIngest(b *testing.B) { benchPipeline(b, nil, false) }

// BenchmarkEndToEnd measures events from Submit to committed rollups.
func BenchmarkEndToEnd(b *testing.B) {
	for _, e := range dbtest.Engines {
		b.Run(string(e), func(b *testing.B) { benchPipeline(b, dbtest.Open(b, e), true) })
	}
}
