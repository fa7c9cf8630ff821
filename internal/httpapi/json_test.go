package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/shopspring/decimal"

	"github.com/abacusbilling/abacus/internal/httpapi"
)

type jsonInner struct {
	N int `json:"n"`
}

type jsonSample struct {
	Text     string            `json:"text"`
	HTML     string            `json:"html"`
	BadUTF8  string            `json:"bad_utf8"`
	Amount   decimal.Decimal   `json:"amount"`
	Limit    *decimal.Decimal  `json:"limit"`
	Used     *decimal.Decimal  `json:"used,omitempty"`
	At       time.Time         `json:"at"`
	Zoned    *time.Time        `json:"zoned,omitempty"`
	Raw      json.RawMessage   `json:"raw,omitempty"`
	Map      map[string]any    `json:"map"`
	Nil      []string          `json:"nil"`
	Empty    []string          `json:"empty"`
	Skip     string            `json:"skip,omitempty"`
	Zero     time.Time         `json:"zero,omitzero"`
	Float    float64           `json:"float"`
	Inner    jsonInner         `json:"inner"`
	Ptrs     []*jsonInner      `json:"ptrs"`
	Strings  map[string]string `json:"strings"`
	Internal string            `json:"-"`
	jsonInner
}

// Responses go through a faster encoder than encoding/json; they must not
// change by a byte.
func TestResponsesEncodeAsEncodingJSON(t *testing.T) {
	t.Parallel()
	zone := time.FixedZone("CET", 3600)
	zoned := time.Date(2026, 11, 6, 11, 18, 40, 270959000, zone)
	limit := decimal.RequireFromString("2000000")
	used := decimal.RequireFromString("12.500")
	v := jsonSample{
		Text: "plain \"quoted\" \\ \n\t line", HTML: "<a href='x'>&</a> \u2028", BadUTF8: "a\xffb",
		Amount: decimal.RequireFromString("-0.10"), Limit: &limit, Used: &used,
		At: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Zoned: &zoned,
		Raw:   json.RawMessage(`{ "b": [1, 2],  "a": "x" }`),
		Map:   map[string]any{"z": 1, "a": []any{"x", 2.5, nil, true}, "m": map[string]any{"k": "v"}},
		Empty: []string{}, Float: 1e21, Inner: jsonInner{N: 3}, Ptrs: []*jsonInner{{N: 1}, nil},
		Strings: map[string]string{"b": "2", "a": "1"}, Internal: "hidden", jsonInner: jsonInner{N: 7},
	}
	s := httpapi.New(httpapi.Config{Version: "t"}, nil, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	httpapi.Register(s, huma.Operation{OperationID: "sample", Method: "GET", Path: "/sample"}, httpapi.ScopePublic,
		func(context.Context, *struct{}) (*struct{ Body jsonSample }, error) {
			return &struct{ Body jsonSample }{Body: v}, nil
		})
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	res, err := http.Get(srv.URL + "/sample")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	got, _ := io.ReadAll(res.Body)
	var want bytes.Buffer
	enc := json.NewEncoder(&want)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 200 || !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("status %d\n got: %s\nwant: %s", res.StatusCode, got, want.Bytes())
	}
}

// The mux matches each request once: unknown routes (and known paths with
// another method, answered 405) reach its catch-all, and the metrics name
// the matched pattern — also for requests refused before routing.
func TestUnknownRoutesAndRouteLabels(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	s := httpapi.New(httpapi.Config{Version: "t"}, nil, slog.New(slog.DiscardHandler), reg)
	httpapi.Register(s, huma.Operation{OperationID: "thing", Method: "GET", Path: "/things/{id}"}, "read",
		func(context.Context, *struct {
			ID string `path:"id"`
		}) (*struct{ Body string }, error) {
			return &struct{ Body string }{Body: "ok"}, nil
		})
	h := s.Handler()
	serve := func(method, path string) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(method, path, nil))
		return w
	}
	for _, c := range []struct {
		method, path string
		status       int
		code, allow  string
	}{{"GET", "/nope", 404, "route_not_found", ""}, {"DELETE", "/things/1", 405, "method_not_allowed", "GET, HEAD"}, {"GET", "/things/1/more", 404, "route_not_found", ""}} {
		w := serve(c.method, c.path)
		var p map[string]any
		_ = json.Unmarshal(w.Body.Bytes(), &p)
		if w.Code != c.status || w.Header().Get("Content-Type") != "application/problem+json" || p["code"] != c.code || p["request_id"] == "" || w.Header().Get("Allow") != c.allow {
			t.Fatalf("%s %s: %d %s Allow %q %s", c.method, c.path, w.Code, w.Header().Get("Content-Type"), w.Header().Get("Allow"), w.Body.Bytes())
		}
	}
	if w := serve("GET", "/things/1"); w.Code != 401 {
		t.Fatalf("no credentials: %d %s", w.Code, w.Body.Bytes())
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]float64{}
	for _, f := range families {
		if f.GetName() != "abacus_http_requests_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := ""
			for _, l := range m.GetLabel() {
				labels += l.GetName() + "=" + l.GetValue() + " "
			}
			counts[labels] = m.GetCounter().GetValue()
		}
	}
	want := map[string]float64{
		"method=GET route=unmatched status=404 ":        2,
		"method=DELETE route=unmatched status=405 ":     1,
		"method=GET route=GET /things/{id} status=401 ": 1,
	}
	for k, v := range want {
		if counts[k] != v {
			t.Fatalf("counter %q = %v, want %v (all: %v)", k, counts[k], v, counts)
		}
	}
}
