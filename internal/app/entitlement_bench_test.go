package app_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"

	"github.com/abacusbilling/abacus/internal/app"
	"github.com/abacusbilling/abacus/internal/config"
)

// entitlementBench is a whole `abacus serve` (SQLite, embedded JetStream)
// with one customer on a plan with a metered feature that has usage: the
// check the tenant's app makes on every request.
type entitlementBench struct {
	a    *app.App
	path string // GET path of the check
	key  string
}

func startEntitlementBench(b *testing.B) *entitlementBench {
	b.Helper()
	cfg := config.Default()
	cfg.DataDir = b.TempDir()
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.Log.Level = "warn"
	if err := cfg.Validate(); err != nil {
		b.Fatal(err)
	}
	a := app.New(cfg, app.Options{Version: "bench", Log: slog.New(slog.DiscardHandler)})
	if err := a.Start(context.Background()); err != nil {
		b.Fatalf("start: %v", err)
	}
	b.Cleanup(func() { _ = a.Stop(context.Background()) })
	base, key := "http://"+a.Addr(), a.BootstrapKey
	do := func(method, path, ct string, body any) map[string]any {
		var rd io.Reader
		if body != nil {
			raw, _ := json.Marshal(body)
			rd = bytes.NewReader(raw)
		}
		req, _ := http.NewRequest(method, base+path, rd)
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", ct)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		defer res.Body.Close()
		raw, _ := io.ReadAll(res.Body)
		if res.StatusCode >= 300 {
			b.Fatalf("%s %s: %d %s", method, path, res.StatusCode, raw)
		}
		var m map[string]any
		_ = json.Unmarshal(raw, &m)
		return m
	}
	const js = "application/json"
	do("POST", "/api/v1/meters", js, map[string]any{"slug": "calls", "eventType": "call", "aggregation": "SUM", "valueProperty": "$.n"})
	do("POST", "/api/v1/features", js, map[string]any{"key": "calls", "name": "Calls", "kind": "metered", "meter_slug": "calls", "limit": "1000000", "enforcement": "hard"})
	pid := do("POST", "/api/v1/plans", js, map[string]any{"key": "basic", "name": "Basic"})["id"].(string)
	v := do("POST", "/api/v1/plans/"+pid+"/versions", js, map[string]any{
		"currency": "EUR", "billing_interval": map[string]any{"unit": "month"},
		"entitlements": []any{map[string]any{"feature": "calls"}},
		"charges":      []any{map[string]any{"key": "base", "kind": "fee", "fee": map[string]any{"amount": "10.00"}}},
	})
	do("POST", fmt.Sprintf("/api/v1/plans/%s/versions/%v/publish", pid, v["version"]), js, nil)
	cid := do("POST", "/api/v1/customers", js, map[string]any{"name": "Ada", "currency": "EUR", "subjects": []string{"ada-app"}})["id"].(string)
	do("POST", "/api/v1/subscriptions", js, map[string]any{"customer_id": cid, "plan_id": pid})
	var evs []map[string]any
	for i := range 50 {
		evs = append(evs, map[string]any{"specversion": "1.0", "id": fmt.Sprintf("e-%d", i), "source": "bench", "type": "call",
			"subject": "ada-app", "time": time.Now().UTC().Format(time.RFC3339Nano), "data": map[string]any{"n": 7}})
	}
	do("POST", "/api/v1/events", "application/cloudevents-batch+json", evs)
	path := "/api/v1/customers/" + cid + "/entitlements/calls"
	deadline := time.Now().Add(10 * time.Second)
	for do("GET", path, js, nil)["used"] != "350" {
		if time.Now().After(deadline) {
			b.Fatal("the usage never showed in the entitlement")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return &entitlementBench{a: a, path: path, key: key}
}

// discardWriter is the least a ResponseWriter can cost, so the handler
// benchmark counts the server's allocations only.
type discardWriter struct {
	h      http.Header
	status int
	n      int
}

func (w *discardWriter) Header() http.Header { return w.h }
func (w *discardWriter) WriteHeader(s int)   { w.status = s }
func (w *discardWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	w.n += len(b)
	return len(b), nil
}

// BenchmarkEntitlementCheck measures GET /api/v1/customers/{id}/entitlements/{feature}
// for a metered feature: "handler" calls the server's whole middleware
// stack and route directly (its allocs/op are the server's); "tcp" goes
// through the real listener and net/http server over keep-alive
// connections, as `abacus bench http` does.
//
//	go test ./internal/app -run '^$' -bench EntitlementCheck -benchmem -cpuprofile cpu.out
func BenchmarkEntitlementCheck(b *testing.B) {
	e := startEntitlementBench(b)
	b.Run("handler", func(b *testing.B) {
		h := e.a.HTTP.Handler()
		req := httptest.NewRequest("GET", e.path, nil)
		req.Header.Set("Authorization", "Bearer "+e.key)
		w := &discardWriter{h: http.Header{}}
		b.ReportAllocs()
		defer reportCPU(b)()
		for b.Loop() {
			clear(w.h)
			w.status = 0
			h.ServeHTTP(w, req)
			if w.status != http.StatusOK {
				b.Fatalf("status %d", w.status)
			}
		}
	})
	b.Run("tcp", func(b *testing.B) {
		wire := []byte("GET " + e.path + " HTTP/1.1\r\nHost: " + e.a.Addr() + "\r\nAuthorization: Bearer " + e.key + "\r\n\r\n")
		b.ReportAllocs()
		defer reportCPU(b)()
		b.SetParallelism(2) // 2 × GOMAXPROCS connections
		b.RunParallel(func(pb *testing.PB) {
			c, err := net.Dial("tcp", e.a.Addr())
			if err != nil {
				b.Error(err)
				return
			}
			defer c.Close()
			br := bufio.NewReader(c)
			for pb.Next() {
				if _, err := c.Write(wire); err != nil {
					b.Error(err)
					return
				}
				if err := readAnswer(br); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// reportCPU reports the process's CPU time (user + system) per operation
// between its call and the call of the function it returns: on a machine
// shared with other work, wall time per operation says little, CPU time
// per operation still compares code. In "tcp" it includes the client.
func reportCPU(b *testing.B) func() {
	cpu := func() time.Duration {
		var ru syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	start := cpu()
	return func() {
		b.ReportMetric(float64(cpu()-start)/float64(b.N)/1e3, "cpu-µs/op")
	}
}

// readAnswer reads one 200 answer with a Content-Length body.
func readAnswer(br *bufio.Reader) error {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return err
	}
	if !bytes.HasPrefix(line, []byte("HTTP/1.1 200")) {
		return fmt.Errorf("status line %q", line)
	}
	n := -1
	for {
		l, err := br.ReadSlice('\n')
		if err != nil {
			return err
		}
		l = bytes.TrimRight(l, "\r\n")
		if len(l) == 0 {
			break
		}
		if k, v, _ := bytes.Cut(l, []byte(":")); bytes.EqualFold(k, []byte("Content-Length")) {
			n = 0
			for _, c := range bytes.TrimSpace(v) { // by hand: the client's allocations would count in allocs/op
				n = n*10 + int(c-'0')
			}
		}
	}
	if n < 0 {
		return fmt.Errorf("no Content-Length")
	}
	_, err = br.Discard(n)
	return err
}
