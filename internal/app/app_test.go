package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/abacusbilling/abacus/internal/app"
	"github.com/abacusbilling/abacus/internal/config"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
)

// testApp boots the whole program in-process on a free port.
type testApp struct {
	*app.App
	t    *testing.T
	base string
	key  string
}

func start(t *testing.T, engine db.Engine, mod func(*config.Config)) *testApp {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.Outbox.PollInterval = 20 * time.Millisecond
	if engine == db.Postgres {
		cfg.Database.URL = dbtest.NewSchema(t)
	}
	if mod != nil {
		mod(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	a := app.New(cfg, app.Options{Version: "test", Log: slog.New(slog.DiscardHandler)})
	if err := a.Start(context.Background()); err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() { _ = a.Stop(context.Background()) })
	return &testApp{App: a, t: t, base: "http://" + a.Addr(), key: a.BootstrapKey}
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("body is not a JSON object: %v: %s", err, r.body)
	}
	return m
}

func (a *testApp) do(method, path, key string, body any, headers ...string) response {
	a.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, a.base+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return response{status: res.StatusCode, header: res.Header, body: b}
}

// post sends body to path with the bootstrap key and returns the JSON
// object answered (nil when the body is empty); a status of 300 or more
// fails the test.
func (a *testApp) post(path string, body any) map[string]any {
	a.t.Helper()
	r := a.do("POST", path, a.key, body)
	if r.status >= 300 {
		a.t.Fatalf("POST %s: %d %s", path, r.status, r.body)
	}
	if len(r.body) == 0 {
		return nil
	}
	return r.json(a.t)
}

func expectProblem(t *testing.T, r response, status int, code string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type %q, want application/problem+json", ct)
	}
	if got := r.json(t)["code"]; got != code {
		t.Fatalf("code %v, want %s: %s", got, code, r.body)
	}
}

func TestServeOnBothEngines(t *testing.T) {
	t.Parallel()
	for _, engine := range dbtest.Engines {
		t.Run(string(engine), func(t *testing.T) {
			t.Parallel()
			a := start(t, engine, nil)
			if !strings.HasPrefix(a.key, "abk_") {
				t.Fatalf("bootstrap key %q", a.key)
			}
			if r := a.do("GET", "/readyz", "", nil); r.status != 200 {
				t.Fatalf("readyz %d: %s", r.status, r.body)
			}
			if r := a.do("GET", "/healthz", "", nil); r.status != 200 || r.header.Get("X-Request-Id") == "" {
				t.Fatalf("healthz %d, request id %q", r.status, r.header.Get("X-Request-Id"))
			}

			// API key lifecycle over HTTP.
			r := a.do("POST", "/api/v1/api-keys", a.key, map[string]any{"name": "ingest only", "scopes": []string{"ingest"}})
			if r.status != 201 {
				t.Fatalf("create key: %d %s", r.status, r.body)
			}
			created := r.json(t)
			ingestKey, id := created["key"].(string), created["id"].(string)
			if !strings.HasPrefix(ingestKey, "abk_") || created["prefix"] != ingestKey[:12] {
				t.Fatalf("created key %v", created)
			}
			expectProblem(t, a.do("GET", "/api/v1/api-keys", ingestKey, nil), 403, "insufficient_scope")
			if r := a.do("GET", "/api/v1/api-keys/"+id, a.key, nil); r.status != 200 || strings.Contains(string(r.body), ingestKey) {
				t.Fatalf("get key: %d %s", r.status, r.body)
			}
			if r := a.do("DELETE", "/api/v1/api-keys/"+id, a.key, nil); r.status != 200 || r.json(t)["revoked_at"] == nil {
				t.Fatalf("revoke: %d %s", r.status, r.body)
			}
			expectProblem(t, a.do("GET", "/api/v1/api-keys", ingestKey, nil), 401, "invalid_api_key")

			// Every error is problem+json with a stable code.
			expectProblem(t, a.do("GET", "/no/such/route", "", nil), 404, "route_not_found")
			expectProblem(t, a.do("GET", "/api/v1/api-keys", "", nil), 401, "unauthenticated")
			expectProblem(t, a.do("GET", "/api/v1/api-keys", "abk_wrong", nil), 401, "invalid_api_key")
			expectProblem(t, a.do("GET", "/api/v1/api-keys/key_nope", a.key, nil), 404, "api_key_not_found")
			bad := a.do("POST", "/api/v1/api-keys", a.key, map[string]any{"name": "", "scopes": []string{"root"}})
			expectProblem(t, bad, 400, "invalid_request")
			if errs, _ := bad.json(t)["errors"].([]any); len(errs) < 2 {
				t.Fatalf("want every bad field listed: %s", bad.body)
			}

			// The outbox relay publishes the key events.
			waitFor(t, func() bool {
				var n int
				_ = a.DB.QueryRowContext(context.Background(), `SELECT count(*) FROM outbox_events WHERE published_at IS NULL`).Scan(&n)
				return n == 0
			})
		})
	}
}

func TestOpenAPIDocsAndMetrics(t *testing.T) {
	t.Parallel()
	a := start(t, db.SQLite, nil)
	r := a.do("GET", "/openapi.json", "", nil)
	if r.status != 200 || !strings.HasPrefix(fmt.Sprint(r.json(t)["openapi"]), "3.1") {
		t.Fatalf("openapi.json: %d %.200s", r.status, r.body)
	}
	if r := a.do("GET", "/openapi.yaml", "", nil); r.status != 200 || !bytes.Contains(r.body, []byte("openapi: 3.1")) {
		t.Fatalf("openapi.yaml: %d %.100s", r.status, r.body)
	}
	if r := a.do("GET", "/docs", "", nil); r.status != 200 || !bytes.Contains(r.body, []byte("/docs/redoc.standalone.js")) || bytes.Contains(r.body, []byte("https://")) {
		t.Fatalf("docs page must load the bundled script and nothing remote: %s", r.body)
	}
	if r := a.do("GET", "/docs/redoc.standalone.js", "", nil); r.status != 200 || len(r.body) < 100_000 {
		t.Fatalf("redoc bundle: %d, %d bytes", r.status, len(r.body))
	}
	a.do("GET", "/api/v1/api-keys", a.key, nil)
	m := a.do("GET", "/metrics", "", nil)
	for _, want := range []string{`abacus_http_requests_total{method="GET",route="GET /api/v1/api-keys",status="200"}`,
		"abacus_http_request_duration_seconds_bucket", "abacus_outbox_pending", "go_goroutines"} {
		if !bytes.Contains(m.body, []byte(want)) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func TestIdempotencyKey(t *testing.T) {
	t.Parallel()
	a := start(t, db.SQLite, nil)
	body := map[string]any{"name": "once", "scopes": []string{"read"}}
	first := a.do("POST", "/api/v1/api-keys", a.key, body, "Idempotency-Key", "k-1")
	second := a.do("POST", "/api/v1/api-keys", a.key, body, "Idempotency-Key", "k-1")
	if first.status != 201 || second.status != 201 || !bytes.Equal(first.body, second.body) {
		t.Fatalf("replay differs: %d %s / %d %s", first.status, first.body, second.status, second.body)
	}
	if second.header.Get("Idempotent-Replayed") != "true" {
		t.Fatal("replay not marked")
	}
	other := a.do("POST", "/api/v1/api-keys", a.key, map[string]any{"name": "other", "scopes": []string{"read"}}, "Idempotency-Key", "k-1")
	expectProblem(t, other, 422, "idempotency_key_reused")
	var n int
	if err := a.DB.QueryRowContext(context.Background(), `SELECT count(*) FROM api_keys WHERE name = 'once'`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("key created %d times (err %v), want once", n, err)
	}
}

func TestRefusals(t *testing.T) {
	t.Parallel()
	t.Run("second process on the same data dir", func(t *testing.T) {
		t.Parallel()
		a := start(t, db.SQLite, nil)
		cfg := a.Config
		cfg.HTTP.Addr = "127.0.0.1:0"
		b := app.New(cfg, app.Options{})
		err := b.Start(context.Background())
		if err == nil || !strings.Contains(err.Error(), "in use by another abacus process") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("port in use", func(t *testing.T) {
		t.Parallel()
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		cfg := config.Default()
		cfg.DataDir = t.TempDir()
		cfg.HTTP.Addr = l.Addr().String()
		err = app.New(cfg, app.Options{}).Start(context.Background())
		if err == nil || !strings.Contains(err.Error(), "cannot listen on") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("unreachable database", func(t *testing.T) {
		t.Parallel()
		cfg := config.Default()
		cfg.DataDir = t.TempDir()
		cfg.HTTP.Addr = "127.0.0.1:0"
		cfg.Database.URL = "postgres://nobody@127.0.0.1:1/x?connect_timeout=2"
		err := app.New(cfg, app.Options{}).Start(context.Background())
		if err == nil || !strings.Contains(err.Error(), "database.url") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("unreachable nats", func(t *testing.T) {
		t.Parallel()
		cfg := config.Default()
		cfg.DataDir = t.TempDir()
		cfg.HTTP.Addr = "127.0.0.1:0"
		cfg.NATS.URL = "nats://127.0.0.1:1"
		err := app.New(cfg, app.Options{}).Start(context.Background())
		if err == nil || !strings.Contains(err.Error(), "nats.url") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("unknown role", func(t *testing.T) {
		t.Parallel()
		_, err := app.SelectRoles([]string{"api", "teleport"})
		if err == nil || !strings.Contains(err.Error(), "unknown role teleport; valid roles: all, api") || !strings.Contains(err.Error(), "outbox") {
			t.Fatalf("got %v", err)
		}
	})
}

// An external nats-server (a real one, on a TCP port) works the same as the
// embedded one.
func TestExternalNATS(t *testing.T) {
	t.Parallel()
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server did not start")
	}
	t.Cleanup(ns.Shutdown)
	a := start(t, db.Postgres, func(c *config.Config) { c.NATS.URL = ns.ClientURL() })
	if a.Bus.Embedded() {
		t.Fatal("bus is embedded, want external")
	}
	a.do("POST", "/api/v1/api-keys", a.key, map[string]any{"name": "x", "scopes": []string{"read"}})
	waitFor(t, func() bool {
		jsz, err := ns.Jsz(&server.JSzOptions{})
		return err == nil && jsz.Messages >= 2 // bootstrap key + this one
	})
	if r := a.do("GET", "/readyz", "", nil); r.status != 200 {
		t.Fatalf("readyz: %s", r.body)
	}
	// The bus going away makes the process not ready, with the reason.
	ns.Shutdown()
	waitFor(t, func() bool { return a.do("GET", "/readyz", "", nil).status == 503 })
	expectProblem(t, a.do("GET", "/readyz", "", nil), 503, "not_ready")
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
