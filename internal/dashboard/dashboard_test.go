package dashboard_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/danielgtaylor/huma/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/abacusbilling/abacus/internal/dashboard"
	"github.com/abacusbilling/abacus/internal/httpapi"
)

type bundle struct {
	srv   *httptest.Server
	index []byte
}

// setup serves the embedded dashboard beside one API route, as the api
// role does.
func setup(t *testing.T) bundle {
	t.Helper()
	s := httpapi.New(httpapi.Config{Version: "t"}, nil, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	httpapi.Register(s, huma.Operation{OperationID: "ping", Method: "GET", Path: "/api/v1/ping"}, httpapi.ScopePublic,
		func(context.Context, *struct{}) (*struct{ Body string }, error) {
			return &struct{ Body string }{"pong"}, nil
		})
	h, err := dashboard.New()
	if err != nil {
		t.Fatal(err)
	}
	dashboard.Register(s, h)
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	b := bundle{srv: srv}
	_, b.index = b.get(t, "/", "text/html", "")
	return b
}

func (b bundle) get(t *testing.T, path, accept, encoding string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", b.srv.URL+path, nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	// Set explicitly, so the transport does not decompress on its own.
	req.Header.Set("Accept-Encoding", encoding)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res, body
}

const browserAccept = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"

func TestServesTheAppWithAStrictPolicy(t *testing.T) {
	t.Parallel()
	b := setup(t)
	res, body := b.get(t, "/", browserAccept, "")
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") || !bytes.Contains(body, []byte(`<div id="app">`)) {
		t.Fatalf("GET /: %d %s %.200s", res.StatusCode, res.Header.Get("Content-Type"), body)
	}
	csp := res.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
		t.Errorf("CSP %q", csp)
	}
	if res.Header.Get("Cache-Control") != "no-cache" || res.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("headers %v", res.Header)
	}
	// The page has no inline script: the CSP would block it.
	if regexp.MustCompile(`<script(?:[^>]*)>\s*[^<\s]`).Match(body) {
		t.Errorf("index.html has an inline script: %s", body)
	}
}

func TestClientRoutesGetTheAppAndTheAPIKeepsItsProblems(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, path := range []string{"/customers", "/customers/cus_1?search=a", "/sign-in"} {
		res, body := b.get(t, path, browserAccept, "")
		if res.StatusCode != 200 || !bytes.Equal(body, b.index) || res.Header.Get("Content-Security-Policy") == "" {
			t.Errorf("navigation to %s: %d %.100s", path, res.StatusCode, body)
		}
	}
	// The customer portal is its own page of the same build.
	for _, path := range []string{"/portal", "/portal/open", "/portal/invoices/inv_1"} {
		res, body := b.get(t, path, browserAccept, "")
		if res.StatusCode != 200 || bytes.Equal(body, b.index) || !bytes.Contains(body, []byte(`<div id="app">`)) ||
			!bytes.Contains(body, []byte("/assets/portal-")) || res.Header.Get("Content-Security-Policy") == "" {
			t.Errorf("navigation to %s: %d %.300s", path, res.StatusCode, body)
		}
	}
	for _, c := range []struct{ path, accept string }{
		{"/customers", "application/json"}, // not a browser navigation
		{"/customers", ""},
		{"/api/v1/nope", browserAccept}, // the API's namespace stays the API's
		{"/.well-known/nope", browserAccept},
	} {
		res, body := b.get(t, c.path, c.accept, "")
		if res.StatusCode != 404 || res.Header.Get("Content-Type") != "application/problem+json" || !bytes.Contains(body, []byte("route_not_found")) {
			t.Errorf("GET %s (Accept %q): %d %s", c.path, c.accept, res.StatusCode, body)
		}
	}
	if res, body := b.get(t, "/api/v1/ping", browserAccept, ""); res.StatusCode != 200 || !bytes.Contains(body, []byte("pong")) {
		t.Errorf("API route: %d %s", res.StatusCode, body)
	}
	req, _ := http.NewRequest("POST", b.srv.URL+"/customers", strings.NewReader("{}"))
	req.Header.Set("Accept", browserAccept)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 404 {
		t.Errorf("POST /customers: %d, want 404 (only navigations get the app)", res.StatusCode)
	}
}

func TestAssetsAreCachedAndCompressed(t *testing.T) {
	t.Parallel()
	b := setup(t)
	m := regexp.MustCompile(`src="(/assets/[^"]+\.js)"`).FindSubmatch(b.index)
	if m == nil {
		t.Fatalf("no script in %s", b.index)
	}
	plainRes, plain := b.get(t, string(m[1]), "*/*", "")
	if plainRes.StatusCode != 200 || !strings.HasPrefix(plainRes.Header.Get("Content-Type"), "text/javascript") ||
		!strings.Contains(plainRes.Header.Get("Cache-Control"), "immutable") || plainRes.Header.Get("Content-Encoding") != "" {
		t.Fatalf("asset: %d %v", plainRes.StatusCode, plainRes.Header)
	}
	gzRes, gz := b.get(t, string(m[1]), "*/*", "gzip, br")
	if gzRes.Header.Get("Content-Encoding") != "gzip" || len(gz) >= len(plain) || gzRes.Header.Get("ETag") == plainRes.Header.Get("ETag") {
		t.Fatalf("gzip: %v, %d ≥ %d bytes", gzRes.Header, len(gz), len(plain))
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatal(err)
	}
	if unzipped, _ := io.ReadAll(zr); !bytes.Equal(unzipped, plain) {
		t.Fatal("the gzip answer is not the file")
	}
	req, _ := http.NewRequest("GET", b.srv.URL+string(m[1]), nil)
	req.Header.Set("If-None-Match", plainRes.Header.Get("ETag"))
	req.Header.Set("Accept-Encoding", "")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match: %d", res.StatusCode)
	}
	if res, body := b.get(t, "/assets/nope.js", "*/*", ""); res.StatusCode != 404 || !bytes.Contains(body, []byte("asset_not_found")) {
		t.Errorf("unknown asset: %d %s", res.StatusCode, body)
	}
}
