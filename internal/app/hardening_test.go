package app_test

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/danielgtaylor/huma/v2"

	"github.com/abacusbilling/abacus/internal/httpapi"
)

// raw sends body as is with contentType and the credentials cred.
func (a *testApp) raw(method, path, cred, contentType, body string) response {
	a.t.Helper()
	req, _ := http.NewRequest(method, a.base+path, strings.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if cred != "" {
		req.Header.Set("Authorization", "Bearer "+cred)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return response{status: res.StatusCode, header: res.Header, body: b}
}

// checkProblem fails unless r is a problem with a request id whose field
// errors (required for a 400) each name a field.
func checkProblem(t *testing.T, what string, r response) {
	t.Helper()
	if r.header.Get("Content-Type") != "application/problem+json" {
		t.Errorf("%s: %d answered as %q: %s", what, r.status, r.header.Get("Content-Type"), r.body)
		return
	}
	var p struct {
		RequestID string `json:"request_id"`
		Errors    []struct {
			Field string `json:"field"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Errorf("%s: the problem is not JSON: %v: %s", what, err, r.body)
	}
	if p.RequestID == "" || (r.status == http.StatusBadRequest && len(p.Errors) == 0) {
		t.Errorf("%s: %d problem without request_id or field errors: %s", what, r.status, r.body)
	}
	for _, e := range p.Errors {
		if e.Field == "" {
			t.Errorf("%s: a field error names no field: %s", what, r.body)
		}
	}
}

// fillWith is a path parameter no route spells literally.
const fillWith = "zz_fill"

// TestProblemsSweep posts bodies full of secret-looking values — secret
// field names, unknown fields, wrong types, broken JSON, invalid UTF-8,
// duplicate keys, a text/plain body — to every route that takes a body.
// No answer may show the value; every refusal is a problem with a
// request id, whose field errors name their field. Routes added later are
// covered without editing this test.
func TestProblemsSweep(t *testing.T) {
	t.Parallel()
	a := start(t, "sqlite", nil)
	const secret = "Sw0rdf1sh-zq9-value"
	bodies := []struct{ contentType, body string }{
		{"application/json", `{"password":"` + secret + `","secret":"` + secret + `","token":"` + secret + `","api_key":"` + secret + `","remember":true}`},
		{"application/json", `{"email":"a@example.com","password":"` + secret + `","unknown_field":"` + secret + `"}`},
		{"application/json", `{"name":["` + secret + `"],"password":{"x":"` + secret + `"},"key":42}`},
		{"application/json", `["` + secret + `"]`},
		{"application/json", `{"password":"` + secret + `",`},
		{"application/json", "{\"password\":\"" + secret + "\xff\"}"},
		{"application/json", `{"name":"x","name":"` + secret + `"}`},
		{"text/plain", `{"password":"` + secret + `"}`},
	}
	checked, mediaTypes := 0, 0
	for _, r := range a.HTTP.Routes() {
		if r.Method != http.MethodPost && r.Method != http.MethodPut && r.Method != http.MethodPatch {
			continue
		}
		cred := a.key
		if r.Scope == httpapi.ScopePublic {
			cred = ""
		}
		for _, b := range bodies {
			res := a.raw(r.Method, fillPath(r.Path, fillWith), cred, b.contentType, b.body)
			what := r.Method + " " + r.Path + " " + b.body
			// A 2xx may store and show what was sent (an event type's schema).
			if res.status >= 400 && strings.Contains(string(res.body), "Sw0rdf1sh") {
				t.Errorf("%s: %d shows the secret: %s", what, res.status, res.body)
			}
			// RFC 6749 fixes /oauth/token's error shape; the hosted pages
			// outside /api (verify-email, reset-password…) answer people
			// with their form again, as HTML.
			page := !strings.HasPrefix(r.Path, "/api/") && strings.HasPrefix(res.header.Get("Content-Type"), "text/html")
			if res.status >= 400 && r.Path != "/oauth/token" && !page {
				checkProblem(t, what, res)
			}
			if b.contentType == "text/plain" && takesBody(a, r) {
				mediaTypes++
			}
			if b.contentType == "text/plain" && takesBody(a, r) && res.status != http.StatusUnsupportedMediaType {
				t.Errorf("%s as text/plain: %d, want 415: %s", r.Method+" "+r.Path, res.status, res.body)
			}
			checked++
		}
	}
	if checked < 100 || mediaTypes < 20 {
		t.Fatalf("only %d requests and %d media types checked", checked, mediaTypes)
	}
}

// takesBody reports whether the API document gives r a request body.
func takesBody(a *testApp, r httpapi.Route) bool {
	item := a.HTTP.API.OpenAPI().Paths[r.Path]
	if item == nil {
		return false
	}
	op := map[string]*huma.Operation{"POST": item.Post, "PUT": item.Put, "PATCH": item.Patch}[r.Method]
	return op != nil && op.RequestBody != nil
}

// TestQueryAndMethodSweep: on every documented GET operation an unknown
// query parameter is a 400 naming it, and a malformed cursor a 400; every
// registered path asked with a method it lacks is a 405 listing the
// methods it has in Allow.
func TestQueryAndMethodSweep(t *testing.T) {
	t.Parallel()
	a := start(t, "sqlite", nil)
	gets, cursors := 0, 0
	for path, item := range a.HTTP.API.OpenAPI().Paths {
		op := item.Get
		if op == nil {
			continue
		}
		url := fillPath(path, fillWith)
		res := a.raw("GET", url+"?zz_unknown=1", a.key, "", "")
		checkProblem(t, "GET "+path+"?zz_unknown=1", res)
		if res.status != 400 || problemCode(res.body) != "unknown_query_parameter" || !strings.Contains(string(res.body), "query.zz_unknown") {
			t.Errorf("GET %s?zz_unknown=1: %d %s", path, res.status, res.body)
		}
		gets++
		if !slices.ContainsFunc(op.Parameters, func(p *huma.Param) bool { return p.In == "query" && p.Name == "cursor" }) {
			continue
		}
		res = a.raw("GET", url+"?cursor=not-a-cursor", a.key, "", "")
		checkProblem(t, "GET "+path+"?cursor=not-a-cursor", res)
		if res.status != 400 || problemCode(res.body) != "invalid_cursor" {
			t.Errorf("GET %s?cursor=not-a-cursor: %d %s", path, res.status, res.body)
		}
		cursors++
	}
	if gets < 20 || cursors < 5 {
		t.Fatalf("only %d GET operations and %d cursors checked", gets, cursors)
	}

	// Declared deepObject parameters take any key in brackets.
	q := "/api/v1/meters/" + fillWith + "/query?filterGroupBy%5Bmodel%5D=gpt-4&groupBy=model"
	if res := a.raw("GET", q, a.key, "", ""); problemCode(res.body) == "unknown_query_parameter" {
		t.Errorf("GET %s: %d %s", q, res.status, res.body)
	}

	routes := a.HTTP.Routes()
	methods := map[string][]string{}
	for _, r := range routes {
		methods[r.Path] = append(methods[r.Path], r.Method)
	}
	for path, has := range methods {
		for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
			// Another pattern may take the filled path with m
			// (DELETE /me/sessions/{id} takes /me/sessions/revoke-all).
			if slices.ContainsFunc(routes, func(r httpapi.Route) bool { return r.Method == m && matches(r.Path, fillPath(path, fillWith)) }) {
				continue
			}
			res := a.raw(m, fillPath(path, fillWith), a.key, "application/json", "{}")
			allow := strings.Split(res.header.Get("Allow"), ", ")
			checkProblem(t, m+" "+path, res)
			if res.status != http.StatusMethodNotAllowed || slices.Contains(allow, m) {
				t.Errorf("%s %s: %d Allow %q, want 405 with %v", m, path, res.status, res.header.Get("Allow"), has)
			}
			for _, h := range has {
				if !slices.Contains(allow, h) {
					t.Errorf("%s %s: Allow %q lacks %s", m, path, res.header.Get("Allow"), h)
				}
			}
		}
	}
}

// matches reports whether a route pattern matches path, as the mux does
// for single-segment wildcards.
func matches(pattern, path string) bool {
	ps, ss := strings.Split(strings.TrimSuffix(pattern, "{$}"), "/"), strings.Split(path, "/")
	if len(ps) != len(ss) {
		return false
	}
	for i, p := range ps {
		if p != ss[i] && !strings.HasPrefix(p, "{") {
			return false
		}
	}
	return true
}

// The reproductions of issue 12 §3: the event-type schema route stored
// and echoed invalid UTF-8 (its answer was no longer JSON) and took
// text/plain and duplicate keys; login answered the password back.
func TestJSONBodyReproductions(t *testing.T) {
	t.Parallel()
	a := start(t, "sqlite", nil)
	const path = "/api/v1/event-types/api_call/schema"
	for _, c := range []struct {
		name, contentType, body string
		status                  int
		code, field             string
	}{
		{"invalid UTF-8", "application/json", "{\"type\":\"object\",\"title\":\"caf\xe9\"}", 400, "invalid_utf8", "title"},
		{"text/plain", "text/plain", `{"type":"object"}`, 415, "unsupported_media_type", "header.Content-Type"},
		{"duplicate keys", "application/json", `{"type":"object","properties":{"n":{"type":"string"},"n":{"type":"number"}}}`, 400, "duplicate_key", "properties.n"},
	} {
		res := a.raw("PUT", path, a.key, c.contentType, c.body)
		checkProblem(t, c.name, res)
		if res.status != c.status || problemCode(res.body) != c.code || !strings.Contains(string(res.body), `"field":"`+c.field+`"`) {
			t.Errorf("%s: %d %s, want %d %s naming %s", c.name, res.status, res.body, c.status, c.code, c.field)
		}
	}
	if res := a.raw("GET", path, a.key, "", ""); res.status != 404 {
		t.Errorf("a refused schema was stored: %d %s", res.status, res.body)
	}
	res := a.do("POST", "/api/v1/customers", a.key, map[string]any{"name": "x"}, "Idempotency-Key", strings.Repeat("k", 300))
	checkProblem(t, "long Idempotency-Key", res)
	if res.status != 400 || !strings.Contains(string(res.body), `"field":"header.Idempotency-Key"`) {
		t.Errorf("long Idempotency-Key: %d %s", res.status, res.body)
	}
	res = a.raw("POST", "/api/v1/auth/login", "", "application/json",
		`{"email":"owner@example.com","password":"correct horse battery staple","remember":true}`)
	checkProblem(t, "login", res)
	if res.status != 400 || strings.Contains(string(res.body), "horse") || !strings.Contains(string(res.body), `"field":"remember"`) {
		t.Errorf("login with an unknown field: %d %s", res.status, res.body)
	}
}
