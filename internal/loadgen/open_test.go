package loadgen_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/abacusbilling/abacus/internal/loadgen"
)

// The generator sends what is due, no more and no faster: every request
// of the schedule arrives, spread over the duration rather than bunched
// at the start, and with the request line and headers it was given.
func TestOpenLoopHoldsTheRate(t *testing.T) {
	t.Parallel()
	forEachEngine(t, testOpenLoopHoldsTheRate)
}

// forEachEngine runs test once per engine this platform has.
func forEachEngine(t *testing.T, test func(t *testing.T, engine string)) {
	for _, engine := range []string{loadgen.EngineEpoll, loadgen.EngineGoroutines} {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			if engine == loadgen.EngineEpoll && runtime.GOOS != "linux" {
				t.Skip("the epoll engine is Linux only")
			}
			test(t, engine)
		})
	}
}

func testOpenLoopHoldsTheRate(t *testing.T, engine string) {
	var (
		mu       sync.Mutex
		arrivals []time.Time
		bad      atomic.Int64
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != "GET" || r.URL.RequestURI() != "/api/v1/x/entitlements/y?a=1" || r.Header.Get("Authorization") != "Bearer k1" {
			bad.Add(1)
		}
		mu.Lock()
		arrivals = append(arrivals, time.Now())
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"feature":"y","has_access":true}`))
	}))
	defer srv.Close()

	const rate, dur = 1000, 1500 * time.Millisecond
	start := time.Now()
	r, err := loadgen.RunOpen(t.Context(), loadgen.OpenConfig{
		URL: srv.URL + "/api/v1/x/entitlements/y?a=1", Header: []string{"Authorization: Bearer k1"},
		Rate: rate, Duration: dur, Warmup: 500 * time.Millisecond, Conns: 8, Engine: engine,
	})
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	if bad.Load() > 0 {
		t.Fatalf("%d requests arrived with the wrong method, path or header", bad.Load())
	}
	mu.Lock()
	defer mu.Unlock()
	if len(arrivals) != rate*3/2 {
		t.Fatalf("%d requests arrived, want exactly %d (rate × duration)", len(arrivals), rate*3/2)
	}
	if r.Counted != rate || r.OK != rate || r.Errors != 0 || r.Unsent != 0 {
		t.Fatalf("counted %d ok %d errors %d unsent %d, want %d answered (the second after the warm-up)", r.Counted, r.OK, r.Errors, r.Unsent, rate)
	}
	if took < dur-50*time.Millisecond {
		t.Fatalf("the run took %s: faster than the schedule of %s", took, dur)
	}
	// Never faster than due; slower only as much as a machine shared with
	// other test runs can make it (a closed loop would run at many times
	// the rate here).
	if a := r.Achieved(); a < rate*0.75 || a > rate*1.1 {
		t.Fatalf("achieved %.0f/s, want %d/s (-25%%, +10%%)", a, rate)
	}
	// Open loop: each third of the run gets about a third of the requests.
	first := arrivals[0]
	var thirds [3]int
	for _, at := range arrivals {
		i := min(int(at.Sub(first)*3/dur), 2)
		thirds[i]++
	}
	for i, n := range thirds {
		if n < rate/4 || n > rate*2/3 {
			t.Fatalf("third %d of the run got %d of %d requests: %v", i, n, len(arrivals), thirds)
		}
	}
	if r.Latency.N != rate || r.Latency.P50 <= 0 || r.Latency.Max < r.Latency.P99 || r.Latency.P99 < r.Latency.P90 {
		t.Fatalf("latency summary %+v", r.Latency)
	}
}

// A server that stalls for a while must show the stall in the latencies
// of every request that was due during it, not only in the few that were
// in flight: that is the coordinated-omission correction. The time from
// sending alone (Service) hides it, which is why it is not the figure.
func TestOpenLoopChargesAStallToEveryRequestDueDuringIt(t *testing.T) {
	t.Parallel()
	forEachEngine(t, testOpenLoopChargesAStall)
}

func testOpenLoopChargesAStall(t *testing.T, engine string) {
	const stall = 300 * time.Millisecond
	var n atomic.Int64
	gate := make(chan struct{})
	var once sync.Once
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		// Request 600 (0.6 s into the run at 1000/s) holds every handler
		// until the stall ends.
		if n.Add(1) == 600 {
			time.AfterFunc(stall, func() { once.Do(func() { close(gate) }) })
		}
		if n.Load() >= 600 {
			<-gate
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()

	const rate = 1000
	r, err := loadgen.RunOpen(t.Context(), loadgen.OpenConfig{
		URL: srv.URL + "/", Rate: rate, Duration: 1500 * time.Millisecond, Conns: 4, Engine: engine,
	})
	if err != nil {
		t.Fatal(err)
	}
	if r.OK != rate*3/2 || r.Errors != 0 {
		t.Fatalf("ok %d errors %d, want %d answered", r.OK, r.Errors, rate*3/2)
	}
	// About stall × rate = 300 requests were due during the stall; they
	// waited from stall down to 0, so about the top fifth of all latencies
	// lie between 0 and 300 ms and p90 is near 150 ms.
	if r.Latency.P99 < stall*3/4 {
		t.Fatalf("p99 from the due time %s does not show a stall of %s: %s", r.Latency.P99, stall, r.Latency.Detail())
	}
	if r.Latency.P90 < stall/4 {
		t.Fatalf("p90 from the due time %s: the requests due during the stall were not charged for it: %s", r.Latency.P90, r.Latency.Detail())
	}
	if r.Lag.P99 < stall/2 {
		t.Fatalf("send lag p99 %s: requests due during the stall were sent on time, which a stalled server cannot allow", r.Lag.P99)
	}
	t.Logf("from due time %s; from sending %s", r.Latency.Detail(), r.Service.Detail())
}

func TestOpenConfigRefusesBadInput(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		cfg  loadgen.OpenConfig
		want string
	}{
		{loadgen.OpenConfig{URL: "https://127.0.0.1/", Rate: 1, Duration: time.Second}, "url"},
		{loadgen.OpenConfig{URL: "http://127.0.0.1/", Rate: 0, Duration: time.Second}, "rate"},
		{loadgen.OpenConfig{URL: "http://127.0.0.1/", Rate: 1, Duration: time.Second, Warmup: time.Second}, "warmup"},
		{loadgen.OpenConfig{URL: "http://127.0.0.1/", Rate: 1, Duration: time.Second, Header: []string{"NoColon"}}, "header"},
		{loadgen.OpenConfig{URL: "http://127.0.0.1/", Rate: 1, Duration: time.Second, Header: []string{"A: b\r\nEvil: 1"}}, "header"},
		{loadgen.OpenConfig{URL: "http://127.0.0.1/", Rate: 1, Duration: time.Second, Body: []byte("a"), Bodies: [][]byte{[]byte("b")}}, "body"},
	} {
		_, err := loadgen.RunOpen(t.Context(), tt.cfg)
		if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("%+v: error %v, want one about %s", tt.cfg, err, tt.want)
		}
	}
}

// With Bodies, request k sends body k mod len(Bodies): every body goes out
// (as much as the others) whole, with its own Content-Length.
func TestOpenLoopSendsBodiesInTurn(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		var mu sync.Mutex
		seen := map[string]int{}
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			mu.Lock()
			seen[string(b)]++
			mu.Unlock()
			w.WriteHeader(http.StatusNoContent)
		}))
		defer srv.Close()
		bodies := [][]byte{[]byte(`{"n":1}`), []byte(`{"n":2,"longer":true}`), []byte(`[{"n":3},{"n":4}]`)}
		r, err := loadgen.RunOpen(t.Context(), loadgen.OpenConfig{URL: srv.URL + "/e", Method: "POST", Bodies: bodies,
			Rate: 600, Duration: time.Second, Warmup: 100 * time.Millisecond, Conns: 4, Engine: engine})
		if err != nil || r.Errors > 0 {
			t.Fatalf("run: %v, %d errors", err, r.Errors)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(seen) != len(bodies) {
			t.Fatalf("bodies received: %v", seen)
		}
		for _, b := range bodies {
			if n := seen[string(b)]; n != 200 {
				t.Errorf("%s was sent %d times of 600, want 200", b, n)
			}
		}
	})
}

// Answers that close the connection, errors and chunked bodies are each
// read whole; a closed connection is opened again for the next request.
func TestOpenLoopReadsEveryKindOfAnswer(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		var n atomic.Int64
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			switch n.Add(1) % 4 {
			case 0:
				w.Header().Set("Connection", "close")
				_, _ = w.Write([]byte(`{"closing":true}`))
			case 1:
				http.Error(w, `{"code":"boom"}`, http.StatusInternalServerError)
			case 2:
				_, _ = w.Write([]byte(`{"part":1,`))
				w.(http.Flusher).Flush() // chunked from here
				_, _ = w.Write([]byte(`"part":2}`))
			default:
				w.WriteHeader(http.StatusNoContent)
			}
		}))
		defer srv.Close()
		const rate = 400
		r, err := loadgen.RunOpen(t.Context(), loadgen.OpenConfig{URL: srv.URL + "/", Rate: rate, Duration: time.Second, Conns: 3, Engine: engine})
		if err != nil {
			t.Fatal(err)
		}
		if r.OK+r.Errors != rate || r.Unsent != 0 {
			t.Fatalf("ok %d errors %d unsent %d, want %d answered", r.OK, r.Errors, r.Unsent, rate)
		}
		if r.Errors != rate/4 || r.FirstErr == nil || !strings.Contains(r.FirstErr.Error(), "500") {
			t.Fatalf("errors %d (first %v), want the %d answers of 500", r.Errors, r.FirstErr, rate/4)
		}
	})
}

// A server that never answers costs each request the timeout, as an error.
func TestOpenLoopTimesOut(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		release := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}))
		defer srv.Close()
		defer close(release)
		start := time.Now()
		r, err := loadgen.RunOpen(t.Context(), loadgen.OpenConfig{URL: srv.URL + "/", Rate: 20, Duration: 500 * time.Millisecond,
			Conns: 20, Timeout: 200 * time.Millisecond, Engine: engine})
		if err != nil {
			t.Fatal(err)
		}
		if r.OK != 0 || r.Errors != 10 || r.FirstErr == nil {
			t.Fatalf("ok %d errors %d (first %v), want 10 timed out", r.OK, r.Errors, r.FirstErr)
		}
		if took := time.Since(start); took < 600*time.Millisecond || took > 5*time.Second {
			t.Fatalf("the run took %s, want about 0.5 s of schedule plus the 0.2 s timeout", took)
		}
	})
}
