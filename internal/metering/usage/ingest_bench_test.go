package usage_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/metering"
	"github.com/abacusbilling/abacus/internal/metering/usage"
	"github.com/abacusbilling/abacus/internal/natsbus"
	"github.com/abacusbilling/abacus/internal/service"
)

// BenchmarkIngestHandler drives the ingest handler itself (decode, group
// commit, publish, wait for the JetStream ack) without the HTTP server or
// meter workers, so the figure is the ingest path alone:
//
//	single   one application/cloudevents+json event per request, 64 concurrent requests
//	batch    1000-event batches, 16 concurrent requests
//
// It reports events/s and the process CPU per event (cpu-µs/event), the
// steadier figure on a shared machine.
//
//	go test -run '^$' -bench IngestHandler -benchtime 100000x -count 5 ./internal/metering/usage/
func BenchmarkIngestHandler(b *testing.B) {
	b.Run("single", func(b *testing.B) { benchIngestHandler(b, 1, 64) })
	b.Run("batch", func(b *testing.B) { benchIngestHandler(b, 1000, 16) })
}

// discardWriter is a ResponseWriter that keeps only the status.
type discardWriter struct {
	h    http.Header
	code int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(code int)        { w.code = code }

func benchIngestHandler(b *testing.B, batch, conns int) {
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	clock := abacus.NewFakeClock(testNow)
	bus, err := natsbus.Open(ctx, natsbus.Options{StoreDir: filepath.Join(b.TempDir(), "nats"), Logger: log})
	if err != nil {
		b.Fatal(err)
	}
	defer bus.Close()
	in, err := usage.NewIngester(ctx, bus, usage.IngestConfig{Partitions: 4, MaxLag: 1 << 30}, clock, log, prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	s := service.NewFunc("ingest", in.Run)
	if err := s.Start(ctx); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = s.Stop(context.Background()) }()
	pctx := abacus.WithPrincipal(ctx, &abacus.Principal{TenantID: "t1", Kind: "api_key", ID: "k", Scopes: []abacus.Scope{abacus.ScopeIngest}})
	tm := testNow.Add(-time.Hour).Format(time.RFC3339)
	event := func(n int64, i int) string {
		return fmt.Sprintf(`{"specversion":"1.0","id":"h%d-%d","source":"bench","type":"api","subject":"cus_%d","time":%q,"data":{"tokens":%d,"model":"m%d"}}`,
			n, i, (int(n)+i)%100, tm, i%500, i%3)
	}
	ct := metering.MediaTypeCloudEvent
	if batch > 1 {
		ct = metering.MediaTypeCloudEventBatch
	}
	var seq atomic.Int64
	body := func() []byte {
		n := seq.Add(1)
		if batch == 1 {
			return []byte(event(n, 0))
		}
		parts := make([]string, batch)
		for i := range parts {
			parts[i] = event(n, i)
		}
		return []byte("[" + strings.Join(parts, ",") + "]")
	}
	// Bodies are made before the clock starts; repeats of a body are
	// valid requests (the bus takes them; the meter role would drop them).
	bodies := make([][]byte, min(b.N, 4096))
	for i := range bodies {
		bodies[i] = body()
	}
	post := func(p []byte) {
		req, _ := http.NewRequestWithContext(pctx, "POST", "/api/v1/events", bytes.NewReader(p))
		req.Header.Set("Content-Type", ct)
		req.ContentLength = int64(len(p))
		w := &discardWriter{h: http.Header{}}
		in.ServeHTTP(w, req)
		if w.code != http.StatusNoContent {
			b.Errorf("status %d", w.code)
		}
	}
	post(bodies[0])
	var next atomic.Int64
	b.SetParallelism((conns + 1) / 2) // GOMAXPROCS 2 on the development machine
	cpu0, start := cpuTime(), time.Now()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			post(bodies[next.Add(1)%int64(len(bodies))])
		}
	})
	b.StopTimer()
	events := float64(b.N * batch)
	b.ReportMetric(events/time.Since(start).Seconds(), "events/s")
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/events, "cpu-µs/event")
}
