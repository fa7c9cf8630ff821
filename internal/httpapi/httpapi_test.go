package httpapi_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/danielgtaylor/huma/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/httpapi"
)

type echoIn struct {
	Body struct {
		Name  string `json:"name" minLength:"2"`
		Count int    `json:"count" minimum:"1"`
	}
}

func newServer(t *testing.T) *httptest.Server {
	t.Helper()
	s := httpapi.New(httpapi.Config{Version: "t", MaxBodyBytes: 2048, CORSOrigins: []string{"https://app.example"}},
		nil, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	s.SetAuthenticator(func(_ context.Context, tok string) (*abacus.Principal, error) {
		if tok == "good" {
			return &abacus.Principal{TenantID: "ten_1", Scopes: []abacus.Scope{abacus.ScopeRead}}, nil
		}
		return nil, abacus.Errorf(abacus.KindUnauthorized, "invalid_api_key", "bad key")
	})
	httpapi.Register(s, huma.Operation{OperationID: "echo", Method: "POST", Path: "/echo"}, abacus.ScopeRead,
		func(_ context.Context, in *echoIn) (*struct{ Body map[string]any }, error) {
			if in.Body.Name == "boom" {
				panic("boom")
			}
			if in.Body.Name == "conflict" {
				return nil, abacus.Conflict("already_there", "it is already there; pick another name")
			}
			if in.Body.Name == "internal" {
				return nil, io.ErrUnexpectedEOF
			}
			return &struct{ Body map[string]any }{Body: map[string]any{"name": in.Body.Name}}, nil
		})
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return srv
}

func post(t *testing.T, srv *httptest.Server, body string, headers ...string) (*http.Response, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("POST", srv.URL+"/echo", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer good")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(res.Body).Decode(&m)
	return res, m
}

func TestErrorsAreProblems(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	cases := []struct {
		name, body string
		status     int
		code       string
	}{
		{"validation lists every field", `{"name":"x","count":0}`, 400, "invalid_request"},
		{"malformed JSON", `{"name":`, 400, "invalid_request"},
		{"domain error keeps its code", `{"name":"conflict","count":1}`, 409, "already_there"},
		{"internal error hides details", `{"name":"internal","count":1}`, 500, "internal"},
		{"panic becomes a problem", `{"name":"boom","count":1}`, 500, "internal"},
		{"body over the limit", `{"name":"` + strings.Repeat("a", 4096) + `","count":1}`, 413, "body_too_large"},
	}
	for _, c := range cases {
		res, m := post(t, srv, c.body)
		if res.StatusCode != c.status || m["code"] != c.code || res.Header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s: %d %v %s, want %d %s", c.name, res.StatusCode, m, res.Header.Get("Content-Type"), c.status, c.code)
		}
		if c.code == "internal" && strings.Contains(m["detail"].(string), "unexpected EOF") {
			t.Errorf("%s: internal detail leaked: %v", c.name, m["detail"])
		}
		if c.name == "validation lists every field" {
			if errs, _ := m["errors"].([]any); len(errs) != 2 {
				t.Errorf("want 2 field errors, got %v", m["errors"])
			}
		}
	}
}

func TestRequestIDAndCORS(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	res, _ := post(t, srv, `{"name":"ok","count":1}`, "X-Request-Id", "client-123")
	if res.Header.Get("X-Request-Id") != "client-123" {
		t.Fatalf("request id not echoed: %q", res.Header.Get("X-Request-Id"))
	}
	res, _ = post(t, srv, `{"name":"ok","count":1}`, "X-Request-Id", "bad id;forged")
	if id := res.Header.Get("X-Request-Id"); !strings.HasPrefix(id, "req_") {
		t.Fatalf("unsafe request id accepted: %q", id)
	}
	req, _ := http.NewRequest("OPTIONS", srv.URL+"/echo", nil)
	req.Header.Set("Origin", "https://app.example")
	req.Header.Set("Access-Control-Request-Method", "POST")
	pre, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	pre.Body.Close()
	if pre.StatusCode != 204 || pre.Header.Get("Access-Control-Allow-Origin") != "https://app.example" {
		t.Fatalf("preflight: %d %v", pre.StatusCode, pre.Header)
	}
	res, _ = post(t, srv, `{"name":"ok","count":1}`, "Origin", "https://evil.example")
	if res.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatal("CORS allowed an unlisted origin")
	}
}

func TestAuthFailures(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	for _, c := range []struct{ auth, code string }{
		{"Token abc", "invalid_authorization"},
		{"Basic abc", "unauthenticated"}, // Basic is only for /oauth/token
		{"Bearer bad", "invalid_api_key"},
		{"", "unauthenticated"},
	} {
		req, _ := http.NewRequest("POST", srv.URL+"/echo", strings.NewReader(`{"name":"ok","count":1}`))
		req.Header.Set("Content-Type", "application/json")
		if c.auth != "" {
			req.Header.Set("Authorization", c.auth)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		_ = json.NewDecoder(res.Body).Decode(&m)
		res.Body.Close()
		if res.StatusCode != 401 || m["code"] != c.code {
			t.Errorf("%q: %d %v, want 401 %s", c.auth, res.StatusCode, m, c.code)
		}
	}
}

func TestLogLinesCarryRequestAndTenant(t *testing.T) {
	t.Parallel()
	var buf strings.Builder
	log := slog.New(httpapi.ContextHandler{Handler: slog.NewJSONHandler(&syncWriter{w: &buf}, &slog.HandlerOptions{Level: slog.LevelDebug})})
	s := httpapi.New(httpapi.Config{}, nil, log, prometheus.NewRegistry())
	s.SetAuthenticator(func(context.Context, string) (*abacus.Principal, error) {
		return &abacus.Principal{TenantID: "ten_log", Scopes: []abacus.Scope{abacus.ScopeRead}}, nil
	})
	httpapi.Register(s, huma.Operation{OperationID: "fail", Method: "GET", Path: "/fail"}, abacus.ScopeRead,
		func(context.Context, *struct{}) (*struct{}, error) { return nil, io.ErrClosedPipe })
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL+"/fail", nil)
	req.Header.Set("Authorization", "Bearer x")
	req.Header.Set("X-Request-Id", "trace-me")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) < 2 {
		t.Fatalf("want the error line and the access line, got:\n%s", buf.String())
	}
	for _, l := range lines {
		if !strings.Contains(l, `"request_id":"trace-me"`) || !strings.Contains(l, `"tenant_id":"ten_log"`) {
			t.Errorf("log line lacks request or tenant: %s", l)
		}
	}
}

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(b)
}

type hiddenParams struct {
	From string `query:"from"`
}

// An input that embeds an unexported struct loses its parameters in huma
// without an error; Register refuses it.
func TestRegisterRefusesHiddenParams(t *testing.T) {
	s := httpapi.New(httpapi.Config{}, nil, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	defer func() {
		if recover() == nil {
			t.Fatal("an input embedding an unexported struct was registered")
		}
	}()
	httpapi.Register(s, huma.Operation{OperationID: "hidden", Method: http.MethodGet, Path: "/hidden"}, abacus.ScopeRead,
		func(context.Context, *struct {
			hiddenParams
			To string `query:"to"`
		}) (*struct{}, error) {
			return nil, nil
		})
}
