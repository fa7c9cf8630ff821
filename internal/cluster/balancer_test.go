package cluster

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// backendServer answers /readyz with ready and every other request with
// its name; hijack makes it drop the connection after reading a request.
func backendServer(t *testing.T, name string, ready *atomic.Bool, hijack *atomic.Bool, hits *atomic.Int64) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/readyz" {
			if !ready.Load() {
				w.WriteHeader(http.StatusServiceUnavailable)
			}
			return
		}
		_, _ = io.ReadAll(r.Body)
		hits.Add(1)
		if hijack.Load() {
			c, _, _ := w.(http.Hijacker).Hijack()
			c.Close()
			return
		}
		_, _ = io.WriteString(w, name)
	}))
	t.Cleanup(s.Close)
	return s
}

func TestBalancer(t *testing.T) {
	t.Parallel()
	var readyA, readyB, dropA, dropB atomic.Bool
	var hitsA, hitsB atomic.Int64
	readyA.Store(true)
	readyB.Store(true)
	a := backendServer(t, "a", &readyA, &dropA, &hitsA)
	bs := backendServer(t, "b", &readyB, &dropB, &hitsB)
	// A third backend that refuses connections: nothing listens there.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := "http://" + ln.Addr().String()
	ln.Close()
	lb, err := NewBalancer(BalancerConfig{Routes: []Route{{Prefix: "", Backends: []string{a.URL, bs.URL, dead}}},
		CheckInterval: 10 * time.Millisecond, Wait: time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = lb.Run(ctx) }()
	front := httptest.NewServer(lb)
	defer front.Close()
	do := func(method, key string) (int, string) {
		req, _ := http.NewRequest(method, front.URL+"/api/v1/x", strings.NewReader(`{"n":1}`))
		if key != "" {
			req.Header.Set("Idempotency-Key", key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	waitFor := func(cond func() bool) {
		deadline := time.Now().Add(5 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatal("timed out")
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitFor(func() bool {
		r := lb.Ready()
		return r[strings.TrimPrefix(a.URL, "http://")] && r[strings.TrimPrefix(bs.URL, "http://")]
	})

	// Round robin over the ready backends; the dead one never answers.
	seen := map[string]int{}
	for range 10 {
		code, body := do(http.MethodPost, "")
		if code != 200 {
			t.Fatalf("POST: %d %s", code, body)
		}
		seen[body]++
	}
	if seen["a"] == 0 || seen["b"] == 0 {
		t.Errorf("requests went to %v, want both", seen)
	}

	// Not ready: no request reaches it.
	readyB.Store(false)
	waitFor(func() bool { return !lb.Ready()[strings.TrimPrefix(bs.URL, "http://")] })
	before := hitsB.Load()
	for range 5 {
		if code, body := do(http.MethodGet, ""); code != 200 || body != "a" {
			t.Fatalf("GET with b not ready: %d %s", code, body)
		}
	}
	if hitsB.Load() != before {
		t.Error("a backend that is not ready got requests")
	}
	readyB.Store(true)
	waitFor(func() bool { return lb.Ready()[strings.TrimPrefix(bs.URL, "http://")] })

	// A backend that fails after reading the request: a POST without an
	// Idempotency-Key is not sent again (it may have taken effect)...
	dropA.Store(true)
	failed := 0
	for range 6 {
		if code, _ := do(http.MethodPost, ""); code == http.StatusBadGateway {
			failed++
		}
	}
	if failed == 0 {
		t.Error("a POST without Idempotency-Key that failed after it was sent was retried")
	}
	// ...while GETs and keyed POSTs are.
	for range 6 {
		readyA.Store(true)
		if code, body := do(http.MethodGet, ""); code != 200 || body != "b" {
			t.Fatalf("GET: %d %s, want b's answer after a's failure", code, body)
		}
		if code, body := do(http.MethodPost, "k1"); code != 200 || body != "b" {
			t.Fatalf("keyed POST: %d %s", code, body)
		}
	}
	if lb.Retries() == 0 {
		t.Error("no retries counted")
	}
}
