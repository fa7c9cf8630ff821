package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
	"github.com/abacusbilling/abacus/internal/httpapi"
	"github.com/abacusbilling/abacus/internal/identity"
)

// idPattern is an Abacus object id: a type prefix and a lower-case ULID.
var idPattern = regexp.MustCompile(`^([a-z]{2,6})_[0-9a-z]{26}$`)

// collectIDs adds every object id found anywhere in a JSON document.
func collectIDs(v any, into map[string]bool) {
	switch x := v.(type) {
	case map[string]any:
		for _, c := range x {
			collectIDs(c, into)
		}
	case []any:
		for _, c := range x {
			collectIDs(c, into)
		}
	case string:
		if idPattern.MatchString(x) {
			into[x] = true
		}
	}
}

// fillPath replaces every {param} of a route pattern with id.
var paramPattern = regexp.MustCompile(`\{[^}]+\}`)

func fillPath(pattern, id string) string {
	return paramPattern.ReplaceAllString(strings.TrimSuffix(pattern, "{$}"), id)
}

// TestTenantIsolation walks every registered route. Tenant A (the
// bootstrap tenant) is seeded through the API; its object ids are
// collected generically from every list route and every create answer.
// Then, with tenant B's credentials (a user JWT and an API key), every
// route with a path parameter is called with each of A's ids: the answer
// must be exactly what a made-up id gets (404 for lookups, the same
// validation error otherwise) — never 2xx, never 403. Every list route
// called by B must not mention any of A's ids. Routes added later by any
// module are covered without editing this test; seeds can be added below.
func TestTenantIsolation(t *testing.T) {
	t.Parallel()
	for _, engine := range dbtest.Engines {
		t.Run(string(engine), func(t *testing.T) {
			t.Parallel()
			a := start(t, engine, nil)
			keyA := a.key
			ids := map[string]bool{}
			seed := func(method, path, cred string, body any) map[string]any {
				t.Helper()
				r := a.do(method, path, cred, body)
				if r.status/100 != 2 {
					t.Fatalf("seeding %s %s: %d %s", method, path, r.status, r.body)
				}
				var v any
				_ = json.Unmarshal(r.body, &v)
				collectIDs(v, ids)
				m, _ := v.(map[string]any)
				return m
			}
			// Seeds: one object of each kind identity owns; other modules'
			// objects are harvested from their list routes when present.
			seed("POST", "/api/v1/api-keys", keyA, map[string]any{"name": "a-read", "scopes": []string{"read"}})
			seed("POST", "/api/v1/oauth-clients", keyA, map[string]any{"name": "a-etl", "scopes": []string{"read"}})
			seed("POST", "/api/v1/invitations", keyA, map[string]any{"email": "viewer@a.test", "role": "viewer"})
			seed("POST", "/api/v1/invitations", keyA, map[string]any{"email": "member@a.test", "role": "member"})
			// A user of A with a session (so sessions and members have ids).
			mail := seed("GET", "/api/v1/mail-outbox", keyA, nil)
			var invite string
			for _, m := range mail["data"].([]any) {
				if mm := m.(map[string]any); mm["to"] == "member@a.test" {
					invite = regexp.MustCompile(`token=([a-z0-9_]+)`).FindStringSubmatch(mm["text"].(string))[1]
				}
			}
			pw := "quite a long passphrase 77"
			seed("POST", "/api/v1/invitations/accept", "", map[string]any{"token": invite, "password": pw})
			userA := seed("POST", "/api/v1/auth/login", "", map[string]any{"email": "member@a.test", "password": pw})
			seed("GET", "/api/v1/me/sessions", userA["access_token"].(string), nil)
			org := seed("POST", "/api/v1/organizations", keyA, map[string]any{"name": "A's customers"})
			seed("POST", "/api/v1/organizations/"+org["id"].(string)+"/invitations", keyA, map[string]any{"email": "end@a.test"})
			// The organization's customer has timeline entries (the timeline
			// role indexed its events), so B asking for that timeline below
			// crosses real rows, not an empty index.
			timeline := "/api/v1/customers/" + org["customer_id"].(string) + "/timeline"
			waitFor(t, func() bool { return len(a.do("GET", timeline, keyA, nil).json(t)["data"].([]any)) > 0 })
			// A chargeback of A's (only a gateway's callback makes one; its
			// flows are payments/stripe's tests): GET /api/v1/disputes[/{id}].
			if _, err := a.DB.ExecContext(context.Background(), `INSERT INTO payment_disputes (id, tenant_id, payment_id, invoice_id,
				customer_id, provider, provider_reference, kind, status, rank, outcome, amount, currency, reason, created_at, updated_at)
				VALUES ($1, $2, $3, $4, $5, 'stripe', 'dp_isolation', 'dispute', 'needs_response', 1, '', '10.00', 'EUR', 'fraudulent', 1, 1)`,
				abacus.NewID("dp"), a.tenantOf(t, keyA), abacus.NewID("pay"), abacus.NewID("inv"), abacus.NewID("cus")); err != nil {
				t.Fatal(err)
			}

			// Harvest A's ids from every list route A can read.
			routes := a.HTTP.Routes()
			for _, r := range routes {
				if r.Method == "GET" && !strings.Contains(r.Path, "{") && r.Scope != httpapi.ScopePublic && !isStream(r.Path) {
					if res := a.do("GET", r.Path, keyA, nil); res.status == 200 {
						var v any
						_ = json.Unmarshal(res.body, &v)
						collectIDs(v, ids)
					}
				}
			}
			delete(ids, a.tenantOf(t, keyA)) // the tenant id itself is not an object of a route
			if len(ids) < 6 {
				t.Fatalf("collected only %d ids of tenant A: %v", len(ids), ids)
			}

			// Tenant B: a signed-up owner (JWT) and an admin API key.
			b := a.do("POST", "/api/v1/auth/signup", "", map[string]any{"email": "owner@b.test", "password": pw, "organization": "B"})
			if b.status != 201 {
				t.Fatalf("signup B: %d %s", b.status, b.body)
			}
			jwtB := a.do("POST", "/api/v1/auth/login", "", map[string]any{"email": "owner@b.test", "password": pw}).json(t)["access_token"].(string)
			keyB := a.do("POST", "/api/v1/api-keys", jwtB, map[string]any{"name": "b-admin", "scopes": []string{"admin"}}).json(t)["key"].(string)

			checked := 0
			var probes []crossTenantProbe
			for _, r := range routes {
				if r.Scope == httpapi.ScopePublic {
					continue
				}
				if !strings.Contains(r.Path, "{") {
					if r.Method != "GET" {
						continue
					}
					for _, cred := range []string{jwtB, keyB} {
						var res response
						if isStream(r.Path) {
							res = a.readStream(r.Path, cred)
						} else {
							res = a.do("GET", r.Path, cred, nil)
						}
						for id := range ids {
							if strings.Contains(string(res.body), id) {
								t.Errorf("GET %s as tenant B shows A's %s", r.Path, id)
							}
						}
					}
					continue
				}
				for id := range ids {
					for _, cred := range []string{jwtB, keyB} {
						probes = append(probes, crossTenantProbe{method: r.Method, path: r.Path, id: id, cred: cred})
					}
				}
			}
			for _, failure := range a.probeCrossTenant(probes) {
				t.Error(failure)
			}
			checked = len(probes)
			if checked == 0 {
				t.Fatal("no route with a path parameter was checked")
			}
			// A's objects survived B's DELETEs and PATCHes.
			after := map[string]bool{}
			for _, r := range routes {
				if r.Method == "GET" && !strings.Contains(r.Path, "{") && r.Scope != httpapi.ScopePublic && !isStream(r.Path) {
					if res := a.do("GET", r.Path, keyA, nil); res.status == 200 {
						var v any
						_ = json.Unmarshal(res.body, &v)
						collectIDs(v, after)
					}
				}
			}
			for _, path := range []string{"/api/v1/oauth-clients", "/api/v1/invitations", "/api/v1/members"} {
				var v any
				_ = json.Unmarshal(a.do("GET", path, keyA, nil).body, &v)
				for _, item := range v.(map[string]any)["data"].([]any) {
					if rv := item.(map[string]any)["revoked_at"]; rv != nil {
						t.Errorf("%s: A's object was revoked by tenant B: %v", path, item)
					}
				}
			}
			if len(a.do("GET", "/api/v1/members", keyA, nil).json(t)["data"].([]any)) != 1 {
				t.Error("A's member was removed by tenant B")
			}
			t.Logf("%d cross-tenant calls over %d routes and %d ids of tenant A", checked, len(routes), len(ids))
		})
	}
}

// crossTenantProbe is one call of tenant B with one of A's ids.
type crossTenantProbe struct{ method, path, id, cred string }

// probeCrossTenant makes every probe's call, four at a time (the suite's
// largest cost is these ~15,000 requests), and compares each answer with
// the answer to the same call with a made-up id of the same kind, asked
// once per route, kind and credential. It returns what leaked.
func (a *testApp) probeCrossTenant(probes []crossTenantProbe) []string {
	var (
		mu       sync.Mutex
		failures []string
		madeUp   = map[string]response{}
	)
	call := func(method, path, cred string) response {
		var body io.Reader
		if method != "GET" && method != "DELETE" {
			body = strings.NewReader("{}")
		}
		req, _ := http.NewRequest(method, a.base+path, body)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+cred)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return response{status: -1, body: []byte(err.Error())}
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return response{status: res.StatusCode, header: res.Header, body: b}
	}
	want := func(p crossTenantProbe) response {
		prefix := idPattern.FindStringSubmatch(p.id)[1]
		key := p.method + " " + p.path + " " + prefix + " " + p.cred
		mu.Lock()
		r, ok := madeUp[key]
		mu.Unlock()
		if !ok {
			r = call(p.method, fillPath(p.path, prefix+"_"+strings.Repeat("0", 26)), p.cred)
			mu.Lock()
			madeUp[key] = r
			mu.Unlock()
		}
		return r
	}
	work := make(chan crossTenantProbe)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range work {
				got, want := call(p.method, fillPath(p.path, p.id), p.cred), want(p)
				gotCode, wantCode := problemCode(got.body), problemCode(want.body)
				// A 403 would say the object exists but is not B's, unless
				// the credential is refused whatever the id (an API key
				// has no inbox: not_a_person), which the made-up id shows.
				forbidden := got.status == http.StatusForbidden && gotCode != "not_a_person"
				if got.status/100 == 2 || forbidden || got.status != want.status || gotCode != wantCode {
					mu.Lock()
					failures = append(failures, fmt.Sprintf("%s %s with A's %s as tenant B: %d %s; a made-up id gets %d %s",
						p.method, p.path, p.id, got.status, gotCode, want.status, wantCode))
					mu.Unlock()
				}
			}
		}()
	}
	for _, p := range probes {
		work <- p
	}
	close(work)
	wg.Wait()
	return failures
}

func (a *testApp) tenantOf(t *testing.T, cred string) string {
	return a.do("GET", "/api/v1/me", cred, nil).json(t)["tenant_id"].(string)
}

func problemCode(b []byte) string {
	var p struct {
		Code string `json:"code"`
	}
	_ = json.Unmarshal(b, &p)
	return p.Code
}

// TestEveryRouteHasAPermission: every registered route has a scope (or is
// explicitly public) and an entry in identity's permission table.
func TestEveryRouteHasAPermission(t *testing.T) {
	t.Parallel()
	a := start(t, "sqlite", nil)
	for _, r := range a.HTTP.Routes() {
		area, ok := identity.AreaOf(r.Path)
		if !ok {
			t.Errorf("%s %s has no entry in identity.Permissions; add its path prefix and area", r.Method, r.Path)
			continue
		}
		public := area == identity.AreaPublic || area == identity.AreaPlatform
		if r.Scope == httpapi.ScopePublic && !public {
			t.Errorf("%s %s is public but its area %s needs credentials", r.Method, r.Path, area)
		}
	}
}

// isStream reports a server-sent-events route: its answer never ends, so
// the sweeps read two seconds of it (readStream) or leave it to the
// inbox's own tests.
func isStream(path string) bool { return strings.HasSuffix(path, "/stream") }

// readStream is do for a GET answered by an endless stream (server-sent
// events): what arrives within two seconds is the answer.
func (a *testApp) readStream(path, cred string, headers ...string) response {
	a.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", a.base+path, nil)
	req.Header.Set("Authorization", "Bearer "+cred)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body) // a stream ends with the deadline; what came is kept
	return response{status: res.StatusCode, header: res.Header, body: b}
}
