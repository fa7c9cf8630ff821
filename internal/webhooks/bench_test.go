package webhooks

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
	"github.com/abacusbilling/abacus/internal/natsbus"
	"github.com/abacusbilling/abacus/internal/outbox"
)

// The webhook benchmarks of issue 14 (docs/benchmarks.md). Run with
//
//	go test -run '^$' -bench . -benchtime 1x ./internal/webhooks
//
// Each reports its own baseline measured in the same run.

// benchReceiver counts deliveries and, from the payload's timestamp, the
// time from the domain event to its delivery.
type benchReceiver struct {
	*httptest.Server
	n   atomic.Int64
	mu  sync.Mutex
	lat []time.Duration
}

func newBenchReceiver(b *testing.B) *benchReceiver {
	r := &benchReceiver{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		now := time.Now()
		var p struct {
			Timestamp time.Time `json:"timestamp"`
		}
		if json.Unmarshal(body, &p) == nil && !p.Timestamp.IsZero() {
			r.mu.Lock()
			r.lat = append(r.lat, now.Sub(p.Timestamp))
			r.mu.Unlock()
		}
		r.n.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	b.Cleanup(r.Close)
	return r
}

func (r *benchReceiver) reset() {
	r.mu.Lock()
	r.lat = nil
	r.mu.Unlock()
	r.n.Store(0)
}

func (r *benchReceiver) waitFor(b *testing.B, n int64) {
	deadline := time.Now().Add(10 * time.Minute)
	for r.n.Load() < n {
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d delivered", r.n.Load(), n)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

// baseline POSTs n bodies like a webhook's to url from conc goroutines
// with a plain http.Client, and returns requests per second.
func baseline(b *testing.B, url string, n, conc int) float64 {
	body := bytes.Repeat([]byte("x"), 260)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conc}}
	var next atomic.Int64
	var wg sync.WaitGroup
	began := time.Now()
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				resp, err := client.Post(url, "application/json", bytes.NewReader(body))
				if err != nil {
					b.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
			}
		}()
	}
	wg.Wait()
	return float64(n) / time.Since(began).Seconds()
}

// Deliveries per second of a backlog to one local receiver, beside a
// plain POST loop with the same concurrency.
func BenchmarkDeliveryThroughput(b *testing.B) {
	for _, engine := range dbtest.Engines {
		for _, endpoints := range []int{1, 10} {
			b.Run(fmt.Sprintf("%s/endpoints=%d", engine, endpoints), func(b *testing.B) {
				const n = 20_000
				d := dbtest.Open(b, engine)
				s := newService(b, d, abacus.SystemClock{}, privateOK)
				rcv := newBenchReceiver(b)
				for i := range endpoints {
					createEndpoint(b, s, "ten_a", fmt.Sprintf("%s/%d", rcv.URL, i))
				}
				for b.Loop() {
					rcv.n.Store(0)
					began := time.Now()
					evs := events("ten_a", time.Now(), n/endpoints)
					for i := 0; i < len(evs); i += 500 {
						if err := s.Ingest(context.Background(), evs[i:min(i+500, len(evs))]); err != nil {
							b.Fatal(err)
						}
					}
					ingested := time.Since(began)
					ctx, cancel := context.WithCancel(context.Background())
					done := make(chan error, 1)
					began = time.Now()
					go func() { done <- s.NewDispatcher().Run(ctx) }()
					rcv.waitFor(b, int64(n/endpoints*endpoints))
					took := time.Since(began)
					cancel()
					<-done
					base := baseline(b, rcv.URL, n, s.cfg.EndpointConcurrency*endpoints)
					b.ReportMetric(float64(n)/took.Seconds(), "deliveries/s")
					b.ReportMetric(float64(n)/ingested.Seconds(), "ingested-msgs/s")
					b.ReportMetric(base, "baseline-posts/s")
				}
			})
		}
	}
}

// pipeline is the whole path: outbox record → relay → JetStream →
// webhooks consumer → dispatcher → receiver.
type pipeline struct {
	d      *db.DB
	s      *Service
	cancel context.CancelFunc
	done   chan struct{}
}

func newPipeline(b *testing.B, engine db.Engine) *pipeline {
	ctx, cancel := context.WithCancel(context.Background())
	d := dbtest.Open(b, engine)
	bus, err := natsbus.Open(ctx, natsbus.Options{StoreDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	s := newService(b, d, abacus.SystemClock{}, privateOK)
	p := &pipeline{d: d, s: s, cancel: cancel, done: make(chan struct{})}
	relay := outbox.NewRelay(d, bus, outbox.RelayConfig{}, slog.New(slog.DiscardHandler), nil)
	go func() {
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); _ = relay.Run(ctx) }()
		go func() { defer wg.Done(); _ = s.Run(ctx, bus) }()
		wg.Wait()
		bus.Close()
		close(p.done)
	}()
	b.Cleanup(func() { cancel(); <-p.done })
	return p
}

// produce records rate events per second for dur, each in its own
// transaction, open loop (a late event does not delay the next ones).
func (p *pipeline) produce(b *testing.B, rate int, dur time.Duration) int {
	ctx := context.Background()
	n := int(float64(rate) * dur.Seconds())
	began := time.Now()
	for i := range n {
		if wait := time.Until(began.Add(time.Duration(i) * time.Second / time.Duration(rate))); wait > 0 {
			time.Sleep(wait)
		}
		err := p.d.InTx(ctx, func(tx *db.Tx) error {
			_, err := thingEvent.Record(ctx, tx, "ten_a", "thing_1", time.Time{}, thingHappened{N: i})
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	return n
}

// Domain event to delivered at 1,000 deliveries/s, beside the plain POST
// latency to the same receiver.
func BenchmarkEventToDeliveredLatency(b *testing.B) {
	for _, engine := range dbtest.Engines {
		b.Run(string(engine), func(b *testing.B) {
			p := newPipeline(b, engine)
			rcv := newBenchReceiver(b)
			createEndpoint(b, p.s, "ten_a", rcv.URL)
			for b.Loop() {
				warm := p.produce(b, 1000, 2*time.Second)
				rcv.waitFor(b, int64(warm))
				rcv.reset()
				n := p.produce(b, 1000, 10*time.Second)
				rcv.waitFor(b, int64(n))
				b.ReportMetric(float64(percentile(rcv.lat, 0.5).Microseconds())/1000, "p50-ms")
				b.ReportMetric(float64(percentile(rcv.lat, 0.99).Microseconds())/1000, "p99-ms")
				b.ReportMetric(float64(percentile(rcv.lat, 1).Microseconds())/1000, "max-ms")
				b.ReportMetric(postLatencyP99(b, rcv.URL), "baseline-post-p99-ms")
			}
		})
	}
}

// postLatencyP99 is the p99 of 10,000 plain POSTs at 1,000/s.
func postLatencyP99(b *testing.B, url string) float64 {
	client := &http.Client{}
	var mu sync.Mutex
	var lat []time.Duration
	var wg sync.WaitGroup
	began := time.Now()
	for i := range 10_000 {
		time.Sleep(time.Until(began.Add(time.Duration(i) * time.Millisecond)))
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.Now()
			resp, err := client.Post(url, "application/json", bytes.NewReader([]byte(`{}`)))
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			mu.Lock()
			lat = append(lat, time.Since(t))
			mu.Unlock()
		}()
	}
	wg.Wait()
	return float64(percentile(lat, 0.99).Microseconds()) / 1000
}

// 100 endpoints of which 20 never answer (each attempt times out after
// 15 s): the healthy endpoints' event-to-delivered p99 with 10 events/s
// fanned out to all 100 (800 healthy deliveries/s).
func BenchmarkHealthyLatencyBesideDeadEndpoints(b *testing.B) {
	for _, engine := range dbtest.Engines {
		b.Run(string(engine), func(b *testing.B) {
			p := newPipeline(b, engine)
			rcv := newBenchReceiver(b)
			hang := make(chan struct{})
			dead := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-hang }))
			defer dead.Close()
			defer close(hang)
			for i := range 100 {
				url := fmt.Sprintf("%s/%d", rcv.URL, i)
				if i%5 == 0 {
					url = fmt.Sprintf("%s/%d", dead.URL, i)
				}
				createEndpoint(b, p.s, "ten_a", url)
			}
			for b.Loop() {
				// Warm up (consumer created, first statements prepared, lanes
				// open), then measure from a clean slate.
				warm := p.produce(b, 10, 3*time.Second)
				rcv.waitFor(b, int64(warm*80))
				rcv.reset()
				n := p.produce(b, 10, 30*time.Second)
				rcv.waitFor(b, int64(n*80))
				b.ReportMetric(float64(percentile(rcv.lat, 0.5).Microseconds())/1000, "healthy-p50-ms")
				b.ReportMetric(float64(percentile(rcv.lat, 0.99).Microseconds())/1000, "healthy-p99-ms")
				b.ReportMetric(float64(percentile(rcv.lat, 1).Microseconds())/1000, "healthy-max-ms")
			}
		})
	}
}
