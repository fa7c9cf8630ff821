package usage_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
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

// benchPipeline submits b.N 1000-event requests from 16 goroutines; with
// rate > 0 (events/s) it paces them and reports ingest→queryable latency.
// With spread > 0 event times are scattered over that long before now
// instead of advancing with the run.
func benchPipeline(b *testing.B, d *db.DB, workers bool, rate float64, spread time.Duration) {
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
	// With a rate, a poller records when rollups count each request:
	// request k (in completion order) is queryable once the day rollups
	// hold (k+1)·1000 events.
	var acked []time.Time
	var ackMu sync.Mutex
	type seen struct {
		at time.Time
		n  int64
	}
	var polls []seen
	stopPoll := make(chan struct{})
	pollDone := make(chan struct{})
	if rate > 0 && workers {
		go func() {
			defer close(pollDone)
			for {
				var n int64
				if err := d.QueryRowContext(ctx, `SELECT COALESCE(SUM(count), 0) FROM usage_rollups WHERE res = 86400`).Scan(&n); err == nil {
					polls = append(polls, seen{time.Now(), n})
				}
				select {
				case <-stopPoll:
					return
				case <-time.After(5 * time.Millisecond):
				}
			}
		}()
	} else {
		close(pollDone)
	}
	cpu0 := cpuTime()
	b.ResetTimer()
	start := time.Now()
	var next atomic.Int64
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			n := next.Add(1)
			if rate > 0 {
				time.Sleep(time.Until(start.Add(time.Duration(float64(n-1) * 1000 / rate * float64(time.Second)))))
			}
			evs := batches[n%int64(len(batches))]
			// unique ids per submission
			cp := make([]metering.Event, len(evs))
			copy(cp, evs)
			pfx := "n" + strconv.FormatInt(n, 10) + "-"
			// Live traffic: event times advance (here 4 ms per 1000-event
			// request, 250k events/s), so keys land at the right edge.
			t0 := testNow.Add(-time.Hour + time.Duration(n)*4*time.Millisecond)
			for i := range cp {
				cp[i].ID = pfx + cp[i].ID
				cp[i].Time = t0.Add(time.Duration(i) * 4 * time.Microsecond)
				if spread > 0 {
					// A multiplicative hash scatters consecutive events.
					off := (n*1000 + int64(i)) * 7919 % int64(spread/time.Second)
					cp[i].Time = testNow.Add(-time.Duration(off) * time.Second)
				}
			}
			if err := in.Submit(ctx, cp); err != nil {
				b.Error(err)
				return
			}
			if rate > 0 {
				ackMu.Lock()
				acked = append(acked, time.Now())
				ackMu.Unlock()
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
	if rate > 0 && workers {
		close(stopPoll)
		<-pollDone
		var lat []time.Duration
		j := 0
		for k, at := range acked {
			for j < len(polls) && polls[j].n < int64(k+1)*1000 {
				j++
			}
			if j == len(polls) {
				b.Fatalf("request %d never counted", k)
			}
			lat = append(lat, max(0, polls[j].at.Sub(at)))
		}
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)/2].Milliseconds()), "p50-ms")
		b.ReportMetric(float64(lat[len(lat)*99/100].Milliseconds()), "p99-ms")
	}
	// CPU per event (this process, every goroutine) is steadier than the
	// rate on a machine shared with other work.
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N*1000), "cpu-µs/event")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkIngest measures events durably accepted on the bus (1000-event
// requests, 16 concurrent submitters, no consumers).
func BenchmarkIngest(b *testing.B) { benchPipeline(b, nil, false, 0, 0) }

// BenchmarkEndToEnd measures events from Submit to committed rollups.
func BenchmarkEndToEnd(b *testing.B) {
	for _, e := range dbtest.Engines {
		b.Run(string(e), func(b *testing.B) { benchPipeline(b, dbtest.Open(b, e), true, 0, 0) })
	}
}

// BenchmarkEndToEndSpread is BenchmarkEndToEnd with event times scattered
// over 30 days (100 subjects): nearly every event opens new minute and
// hour rollup rows.
func BenchmarkEndToEndSpread(b *testing.B) {
	for _, e := range dbtest.Engines {
		b.Run(string(e), func(b *testing.B) { benchPipeline(b, dbtest.Open(b, e), true, 0, 30*24*time.Hour) })
	}
}

// BenchmarkLatency measures ingest→queryable latency (p50, p99; 5 ms
// polling) at 125,000 events/s, half the end-to-end target. Use
// -benchtime 1000x or more (8 s at that rate).
func BenchmarkLatency(b *testing.B) {
	for _, e := range dbtest.Engines {
		b.Run(string(e), func(b *testing.B) { benchPipeline(b, dbtest.Open(b, e), true, 125_000, 0) })
	}
}

// BenchmarkSinglePOST measures single-event POST /api/v1/events over 64
// concurrent keep-alive connections through the real HTTP stack (API key
// authentication, decoding, group commit to the bus), meter role running.
func BenchmarkSinglePOST(b *testing.B) {
	bu := setup(b, dbtest.Open(b, db.SQLite), options{partitions: 4})
	tr := &http.Transport{MaxIdleConnsPerHost: 64, MaxConnsPerHost: 64}
	client := &http.Client{Transport: tr}
	var next atomic.Int64
	start := time.Now()
	b.SetParallelism(32) // 64 goroutines on 2 cores
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			n := next.Add(1)
			body := `{"specversion":"1.0","id":"p` + strconv.FormatInt(n, 10) + `","source":"bench","type":"api","subject":"cus_` +
				strconv.FormatInt(n%100, 10) + `","time":"2026-03-10T11:00:00Z","data":{"tokens":5}}`
			req, _ := http.NewRequest("POST", bu.base+"/api/v1/events", strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+bu.key)
			req.Header.Set("Content-Type", "application/cloudevents+json")
			res, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusNoContent {
				b.Errorf("status %d", res.StatusCode)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "posts/s")
}
