package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/abacusbilling/abacus/internal/app"
	"github.com/abacusbilling/abacus/internal/client"
	"github.com/abacusbilling/abacus/internal/config"
	"github.com/abacusbilling/abacus/internal/loadgen"
)

// recorder is a stand-in for the server: only the client's retry and
// batching behaviour is under test here (test/crash drives the real one).
type recorder struct {
	mu     sync.Mutex
	bodies []string
	types  []string
	fail   func(n int, body string) int // status for request n (0-based); 0 = 204
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	b, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	n := len(r.bodies)
	r.bodies = append(r.bodies, string(b))
	r.types = append(r.types, req.Header.Get("Content-Type"))
	r.mu.Unlock()
	if status := r.fail(n, string(b)); status != 0 {
		w.Header().Set("Retry-After", "0")
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, `{"title":"x","status":400,"code":"invalid_event","detail":"[0].subject: is required","errors":[{"index":0,"field":"subject","message":"is required"}]}`)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func runCLI(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Run(context.Background(), Env{Args: args, Environ: []string{"ABACUS_API_KEY=abk_test"}, Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errb})
	return code, out.String(), errb.String()
}

func TestEventsSendRetriesWithTheSameIDs(t *testing.T) {
	t.Parallel()
	rec := &recorder{fail: func(n int, _ string) int {
		if n == 0 || n == 1 {
			return http.StatusServiceUnavailable // the first batch fails twice
		}
		return 0
	}}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	in := `{"type":"tokens","subject":"c1","data":{"tokens":1}}
{"type":"tokens","subject":"c2","data":{"tokens":2}}
{"type":"tokens","subject":"c3","id":"mine","time":"2026-11-01T00:00:00Z","source":"app","data":{"tokens":3}}
`
	code, out, errOut := runCLI(t, in, "events", "send", "--url", srv.URL, "--batch-size", "2", "--progress", "off")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.Contains(out, "sent 3 events in 4 requests (2 retries)") {
		t.Errorf("summary: %q", out)
	}
	if len(rec.bodies) != 4 {
		t.Fatalf("%d requests, want 4", len(rec.bodies))
	}
	if rec.bodies[0] != rec.bodies[1] || rec.bodies[1] != rec.bodies[2] {
		t.Errorf("retries changed the body:\n%s\n%s\n%s", rec.bodies[0], rec.bodies[1], rec.bodies[2])
	}
	var batch []map[string]any
	if err := json.Unmarshal([]byte(rec.bodies[2]), &batch); err != nil || len(batch) != 2 {
		t.Fatalf("first batch %s: %v", rec.bodies[2], err)
	}
	for _, ev := range batch {
		if ev["id"] == nil || ev["time"] == nil || ev["source"] != "abacus-cli" || ev["specversion"] != "1.0" {
			t.Errorf("event not completed: %v", ev)
		}
	}
	if rec.types[0] != "application/cloudevents-batch+json" || rec.types[3] != "application/cloudevents+json" {
		t.Errorf("content types %v", rec.types)
	}
	var last map[string]any
	_ = json.Unmarshal([]byte(rec.bodies[3]), &last)
	if last["id"] != "mine" || last["source"] != "app" || last["time"] != "2026-11-01T00:00:00Z" {
		t.Errorf("client fields overwritten: %v", last)
	}
}

func TestEventsSendStopsOnBadRequest(t *testing.T) {
	t.Parallel()
	rec := &recorder{fail: func(n int, _ string) int {
		if n == 1 {
			return http.StatusBadRequest
		}
		return 0
	}}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	in := `[{"type":"t","subject":"a"},{"type":"t","subject":"b"},{"type":"t"},{"type":"t","subject":"d"}]`
	code, _, errOut := runCLI(t, in, "events", "send", "--url", srv.URL, "--batch-size", "2")
	if code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	if len(rec.bodies) != 2 {
		t.Errorf("%d requests: a 400 was retried or sending went on", len(rec.bodies))
	}
	for _, want := range []string{"events 2–3 not accepted (events before it were)", "HTTP 400 invalid_event", "[0].subject: is required"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr %q lacks %q", errOut, want)
		}
	}
}

func TestEventsSendRefusesBadInput(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, stdin string
		args        []string
		want        string
	}{
		{"no subcommand", "", []string{"events"}, "events send"},
		{"batch size", "", []string{"events", "send", "--batch-size", "0"}, "--batch-size 0"},
		{"not json", "hello", []string{"events", "send", "--url", "http://127.0.0.1:1"}, "reading event 0"},
		{"bad url", "", []string{"events", "send", "--url", "127.0.0.1:8080"}, "must start with http://"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			code, _, errOut := runCLI(t, tt.stdin, tt.args...)
			if code == 0 || !strings.Contains(errOut, tt.want) {
				t.Errorf("exit %d, stderr %q; want failure mentioning %q", code, errOut, tt.want)
			}
		})
	}
}

func TestBenchRefusesRemoteServers(t *testing.T) {
	t.Parallel()
	code, _, errOut := runCLI(t, "", "bench", "ingest", "--url", "http://10.1.2.3:8080")
	if code != 1 || !strings.Contains(errOut, "only drives servers on this machine") {
		t.Errorf("exit %d: %s", code, errOut)
	}
}

// Against the real server: a file with a retried (duplicate) event and
// events the command completes is counted exactly once.
func TestEventsSendToAbacus(t *testing.T) {
	t.Parallel()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.Bootstrap.APIKey = "abk_events_send_test_0123456789ab"
	a := app.New(cfg, app.Options{Version: "test", Log: slog.New(slog.DiscardHandler)})
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Stop(context.Background()) })
	base := "http://" + a.Addr()
	c := client.New(base, cfg.Bootstrap.APIKey, nil)
	if _, err := c.CreateMeter(context.Background(), client.Meter{Slug: "tokens", EventType: "tokens", Aggregation: "SUM", ValueProperty: "$.tokens"}); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Second).Format(time.RFC3339)
	file := filepath.Join(t.TempDir(), "events.ndjson")
	in := `{"type":"tokens","subject":"c1","data":{"tokens":1.25}}
{"type":"tokens","subject":"c1","id":"e2","time":"` + now + `","data":{"tokens":10}}
{"type":"tokens","subject":"c2","id":"e2","time":"` + now + `","data":{"tokens":10}}
{"type":"tokens","subject":"c2","data":{"tokens":100}}
`
	if err := os.WriteFile(file, []byte(in), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	code := Run(context.Background(), Env{Args: []string{"events", "send", "--batch-size", "3", file},
		Environ: []string{"ABACUS_URL=" + base, "ABACUS_API_KEY=" + cfg.Bootstrap.APIKey}, Stdout: &out, Stderr: &errb})
	if code != 0 || !strings.Contains(out.String(), "sent 4 events in 2 requests") {
		t.Fatalf("exit %d: %s %s", code, out.String(), errb.String())
	}
	q := loadgen.Window(time.Now(), 0)
	var got decimal.Decimal
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		var err error
		if got, err = loadgen.Total(context.Background(), c, "tokens", q); err != nil {
			t.Fatal(err)
		}
		if got.Equal(decimal.RequireFromString("111.25")) {
			return
		}
	}
	t.Fatalf("meter total %s, want 111.25 (e2 counted once)", got)
}
