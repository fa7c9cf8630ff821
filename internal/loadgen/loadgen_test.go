package loadgen_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/abacusbilling/abacus/internal/client"
	"github.com/abacusbilling/abacus/internal/loadgen"
	"github.com/abacusbilling/abacus/internal/metering"
)

func TestSumCents(t *testing.T) {
	t.Parallel()
	for _, r := range [][2]int64{{0, 0}, {0, 1}, {0, 997}, {5, 3000}, {996, 998}, {1000, 5000}, {123, 124}} {
		var want int64
		for i := r[0]; i < r[1]; i++ {
			want += loadgen.Cents(i)
		}
		if got := loadgen.SumCents(r[0], r[1]); got != want {
			t.Errorf("SumCents(%d, %d) = %d, want %d", r[0], r[1], got, want)
		}
	}
}

// The generated bodies must pass the server's own decoder, with the
// values the expected totals assume.
func TestBodiesDecodeWithExactValues(t *testing.T) {
	t.Parallel()
	now := time.Now().UTC()
	tests := []struct {
		name        string
		from, to    int64
		single      bool
		spread      time.Duration
		contentType string
	}{
		{"batch", 990, 1010, false, 0, client.ContentTypeBatch},
		{"single", 7, 8, true, 0, client.ContentTypeEvent},
		{"spread over a month", 0, 500, false, 30 * 24 * time.Hour, client.ContentTypeBatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := loadgen.NewGen("run1", "tokens", "bench", 7, tt.spread)
			body := g.AppendBody(nil, tt.from, tt.to, now, tt.single)
			evs, err := metering.DecodeEvents(tt.contentType, body, now.Add(time.Second), metering.Limits{})
			if err != nil {
				t.Fatalf("server decoder refused the body: %v\n%s", err, body)
			}
			if int64(len(evs)) != tt.to-tt.from {
				t.Fatalf("%d events, want %d", len(evs), tt.to-tt.from)
			}
			m, err := metering.Compile(metering.Meter{Slug: "s", EventType: "tokens", Aggregation: metering.AggSum, ValueProperty: "$.value"})
			if err != nil {
				t.Fatal(err)
			}
			sum := decimal.Zero
			oldest := now
			for _, ev := range evs {
				v, _, _ := m.Value(ev.Data, nil)
				sum = sum.Add(v)
				if ev.Time.Before(oldest) {
					oldest = ev.Time
				}
			}
			if want := loadgen.Decimal(loadgen.SumCents(tt.from, tt.to)); !sum.Equal(want) {
				t.Errorf("sum of values = %s, want %s", sum, want)
			}
			if tt.spread > 0 && now.Sub(oldest) < tt.spread/2 {
				t.Errorf("oldest event %s is not spread back over %s", oldest, tt.spread)
			}
		})
	}
}

func TestRunRetriesWithSameBodyAndCountsExactly(t *testing.T) {
	t.Parallel()
	var (
		mu       sync.Mutex
		seen     = map[string]int{} // body → times received
		accepted atomic.Int64
		n        atomic.Int64
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		seen[string(b)]++
		first := seen[string(b)] == 1
		mu.Unlock()
		if first && n.Add(1)%3 == 0 { // every third new body fails once
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		accepted.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	c := client.New(srv.URL, "k", nil)
	g := loadgen.NewGen("r", "t", "s", 3, 0)
	res, err := loadgen.Run(context.Background(), loadgen.Config{
		Events: 1050, Conns: 4, BatchSize: 100, Backoff: client.Backoff{Sleep: func(context.Context, time.Duration) error { return nil }},
	}, g, loadgen.HTTPSender(c))
	if err != nil || res.Failed != nil {
		t.Fatalf("run: %v %v", err, res.Failed)
	}
	if res.Events != 1050 || res.Requests != 11 || res.SumCents != loadgen.SumCents(0, 1050) {
		t.Errorf("result %+v", res)
	}
	if res.Attempts <= res.Requests {
		t.Errorf("attempts %d: no request was retried", res.Attempts)
	}
	if len(seen) != 11 {
		t.Errorf("server saw %d distinct bodies, want 11: a retry changed its body", len(seen))
	}
	if accepted.Load() != 11 || res.Latency.N != 11 {
		t.Errorf("accepted %d, latencies %d", accepted.Load(), res.Latency.N)
	}
}

func TestRunAgainstBaselines(t *testing.T) {
	t.Parallel()
	h, err := loadgen.StartBareHTTP()
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	js, err := loadgen.StartBareJetStream(context.Background(), t.TempDir(), false)
	if err != nil {
		t.Fatal(err)
	}
	defer js.Close()
	for name, send := range map[string]loadgen.SendFunc{
		"http":      loadgen.HTTPSender(client.New(h.URL, "k", nil)),
		"jetstream": js.Sender(),
	} {
		res, err := loadgen.Run(context.Background(), loadgen.Config{Events: 2000, Conns: 8, BatchSize: 1}, loadgen.NewGen("r", "t", "s", 1, 0), send)
		if err != nil || res.Failed != nil || res.Events != 2000 || res.Requests != 2000 || res.Rate() <= 0 {
			t.Errorf("%s: %+v %v", name, res, err)
		}
	}
}

func TestSummarise(t *testing.T) {
	t.Parallel()
	var ds []time.Duration
	for i := 100; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	l := loadgen.Summarise(ds)
	if l.N != 100 || l.P50 != 50*time.Millisecond || l.P99 != 99*time.Millisecond || l.Max != 100*time.Millisecond {
		t.Errorf("%+v", l)
	}
	if (loadgen.Summarise(nil) != loadgen.Latency{}) {
		t.Error("empty summary not zero")
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	for _, c := range []loadgen.Config{{}, {Events: -1}, {Events: 1, BatchSize: 10001}, {Events: 1, Rate: -1}} {
		if c.WithDefaults().Validate() == nil {
			t.Errorf("%+v accepted", c)
		}
	}
	if err := (loadgen.Config{Duration: time.Second}).WithDefaults().Validate(); err != nil {
		t.Error(err)
	}
}

func TestRawHTTP(t *testing.T) {
	t.Parallel()
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		switch n := calls.Add(1); {
		case r.URL.Path != "/api/v1/events" || r.Header.Get("Authorization") != "Bearer k" || string(b) != `{"x":1}`:
			w.WriteHeader(http.StatusTeapot)
		case n == 1:
			w.Header().Set("Retry-After", "7")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, "busy")
		case n == 2:
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusBadRequest)
			for range 300 { // large enough to be chunked
				_, _ = io.WriteString(w, "0123456789")
			}
			w.(http.Flusher).Flush()
		case r.Header.Get("Content-Type") != client.ContentTypeEvent:
			w.WriteHeader(http.StatusUnsupportedMediaType)
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	}))
	defer srv.Close()
	raw, err := loadgen.NewRawHTTP(srv.URL, "k", 2, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	send := raw.Sender()
	body := []byte(`{"x":1}`)

	err = send(context.Background(), true, body)
	if !client.Retryable(err) || client.RetryAfter(err) != 7*time.Second || !strings.Contains(err.Error(), "busy") {
		t.Errorf("503: %v", err)
	}
	err = send(context.Background(), true, body)
	var p *client.Problem
	if !errors.As(err, &p) || p.Status != 400 || len(p.Body) != 3000 || client.Retryable(err) {
		t.Errorf("chunked 400: %v", err)
	}
	for range 5 {
		if err := send(context.Background(), true, body); err != nil {
			t.Fatalf("204: %v", err)
		}
	}
	if _, err := loadgen.NewRawHTTP("https://127.0.0.1:1", "k", 1, 0); err == nil {
		t.Error("https accepted by the plain-http client")
	}
	if err := send(context.Background(), false, body); err == nil {
		t.Error("batch content type accepted by a handler that wants the single one")
	}
}
