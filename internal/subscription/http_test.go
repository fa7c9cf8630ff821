package subscription_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/catalog"
	"github.com/abacusbilling/abacus/internal/catalog/catalogtest"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
	"github.com/abacusbilling/abacus/internal/httpapi"
	"github.com/abacusbilling/abacus/internal/subscription"
)

type client struct {
	t   *testing.T
	url string
	key string
}

func (c client) do(method, path, body string) (int, map[string]any) {
	c.t.Helper()
	req, _ := http.NewRequest(method, c.url+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+c.key)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var out map[string]any
	_ = json.NewDecoder(bytes.NewReader(raw)).Decode(&out)
	return res.StatusCode, out
}

// fields returns the field names of a problem's errors.
func fields(p map[string]any) string {
	var out []string
	errs, _ := p["errors"].([]any)
	for _, e := range errs {
		out = append(out, e.(map[string]any)["field"].(string))
	}
	return strings.Join(out, ",")
}

func newServer(t *testing.T, d *db.DB) (client, *catalogtest.MemoryUsage, string) {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	clock := abacusClock()
	// identity is edited concurrently by another engineer; a fixed key
	// keeps this test independent of its build state.
	const key, tenantID = "abk_test", "ten_http"
	usage := catalogtest.NewMemoryUsage()
	usage.AddMeter(tenantID, "api_calls")
	s := httpapi.New(httpapi.Config{Version: "test"}, d, log, prometheus.NewRegistry())
	s.SetAuthenticator(func(_ context.Context, tok string) (*abacus.Principal, error) {
		if tok != key {
			return nil, abacus.Errorf(abacus.KindUnauthorized, "invalid_credentials", "unknown key")
		}
		return &abacus.Principal{TenantID: tenantID, Kind: "api_key", ID: "key_1", Scopes: []abacus.Scope{abacus.ScopeRead, abacus.ScopeWrite}}, nil
	})
	cat := catalog.NewService(d, clock, log, usage)
	catalog.RegisterRoutes(s, cat)
	subscription.RegisterRoutes(s, subscription.NewService(cat, clock, log))
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return client{t: t, url: srv.URL, key: key}, usage, tenantID
}

func TestHTTPBadInputIsRefusedAndNothingIsWritten(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		c, _, _ := newServer(t, d)

		// A metered feature bound to an unknown meter.
		st, p := c.do("POST", "/api/v1/features", `{"key":"gpu","name":"GPU","kind":"metered","meter_slug":"gpu_seconds","limit":"10"}`)
		if st != 400 || fields(p) != "meter_slug" {
			t.Fatalf("unknown meter: %d %v", st, p)
		}
		if st, _ := c.do("GET", "/api/v1/features/gpu", ""); st != 404 {
			t.Fatalf("feature written despite the error: %d", st)
		}
		if st, p := c.do("POST", "/api/v1/features", `{"key":"calls","name":"Calls","kind":"metered","meter_slug":"api_calls","limit":"100"}`); st != 201 {
			t.Fatalf("good feature: %d %v", st, p)
		}

		// Overlapping tiers.
		if st, p := c.do("POST", "/api/v1/plans", `{"key":"pro","name":"Pro"}`); st != 201 {
			t.Fatalf("plan: %d %v", st, p)
		}
		bad := `{"currency":"EUR","billing_interval":{"unit":"month"},"charges":[{"key":"calls","kind":"usage","meter":"api_calls",
			"price":{"model":"graduated","tiers":[{"up_to":"100","unit_amount":"1"},{"up_to":"50","unit_amount":"0.5"},{"unit_amount":"0.1"}]}}]}`
		st, p = c.do("POST", "/api/v1/plans/pro/versions", bad)
		if st != 400 || !strings.Contains(fields(p), "charges[0].price.tiers[1].up_to") {
			t.Fatalf("overlapping tiers: %d %v", st, p)
		}
		st, p = c.do("GET", "/api/v1/plans/pro/versions", "")
		if st != 200 || len(p["data"].([]any)) != 0 {
			t.Fatalf("a version was written despite the error: %v", p)
		}
		good := `{"currency":"EUR","billing_interval":{"unit":"month"},"entitlements":[{"feature":"calls"}],
			"charges":[{"key":"base","kind":"fee","fee":{"amount":"10"}},{"key":"calls","kind":"usage","meter":"api_calls",
			"price":{"model":"graduated","tiers":[{"up_to":"100","unit_amount":"1"},{"unit_amount":"0.1"}]}}]}`
		if st, p := c.do("POST", "/api/v1/plans/pro/versions", good); st != 201 {
			t.Fatalf("good version: %d %v", st, p)
		}
		if st, p := c.do("POST", "/api/v1/plans/pro/versions/1/publish", ""); st != 200 || p["status"] != "published" {
			t.Fatalf("publish: %d %v", st, p)
		}

		// Editing a published version.
		st, p = c.do("PUT", "/api/v1/plans/pro/versions/1", strings.Replace(good, `"10"`, `"99"`, 1))
		if st != 409 || p["code"] != "version_immutable" {
			t.Fatalf("edit published: %d %v", st, p)
		}
		_, p = c.do("GET", "/api/v1/plans/pro/versions/1", "")
		if fee := p["charges"].([]any)[0].(map[string]any)["fee"].(map[string]any)["amount"]; fee != "10" {
			t.Fatalf("published version changed: fee %v", fee)
		}

		// Currency mismatch.
		_, usd := c.do("POST", "/api/v1/customers", `{"name":"Dollar Inc","currency":"USD","email":"a@b.example"}`)
		st, p = c.do("POST", "/api/v1/subscriptions", `{"customer_id":"`+usd["id"].(string)+`","plan_id":"pro"}`)
		if st != 400 || p["code"] != "currency_mismatch" || fields(p) != "plan_id" {
			t.Fatalf("currency mismatch: %d %v", st, p)
		}

		// Archived customer.
		_, eur := c.do("POST", "/api/v1/customers", `{"name":"Euro GmbH","currency":"EUR","subjects":["e1"],"address":{"country":"DE"},
			"tax_id":"DE123456789","tax_status":"reverse_charge","timezone":"Europe/Berlin"}`)
		if eur["id"] == nil {
			t.Fatalf("customer: %v", eur)
		}
		if st, _ := c.do("POST", "/api/v1/customers/"+eur["id"].(string)+"/archive", ""); st != 200 {
			t.Fatalf("archive: %d", st)
		}
		st, p = c.do("POST", "/api/v1/subscriptions", `{"customer_id":"`+eur["id"].(string)+`","plan_id":"pro"}`)
		if st != 409 || p["code"] != "customer_archived" || fields(p) != "customer_id" {
			t.Fatalf("archived customer: %d %v", st, p)
		}
		_, subs := c.do("GET", "/api/v1/subscriptions", "")
		if n := len(subs["data"].([]any)); n != 0 {
			t.Fatalf("%d subscriptions written despite errors", n)
		}

		// Bad customer input names every field at once.
		st, p = c.do("POST", "/api/v1/customers", `{"name":"X","currency":"XXX","timezone":"Mars/Base","address":{"country":"ZZ"},"email":"nope"}`)
		if st != 400 || fields(p) != "email,currency,address.country,timezone" {
			t.Fatalf("bad customer: %d %v", st, p)
		}
		// A subject maps to one customer.
		st, p = c.do("POST", "/api/v1/customers", `{"name":"Y","currency":"EUR","subjects":["e1"]}`)
		if st != 409 || p["code"] != "subject_taken" || fields(p) != "subjects[0]" {
			t.Fatalf("taken subject: %d %v", st, p)
		}
	})
}

func TestHTTPSubscribeAndCheckEntitlement(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		c, usage, ten := newServer(t, d)
		c.do("POST", "/api/v1/features", `{"key":"calls","name":"Calls","kind":"metered","meter_slug":"api_calls","limit":"100"}`)
		c.do("POST", "/api/v1/plans", `{"key":"pro","name":"Pro"}`)
		c.do("POST", "/api/v1/plans/pro/versions", `{"currency":"EUR","billing_interval":{"unit":"month"},"entitlements":[{"feature":"calls"}],"charges":[]}`)
		c.do("POST", "/api/v1/plans/pro/versions/1/publish", "")
		_, cus := c.do("POST", "/api/v1/customers", `{"name":"A","currency":"EUR","subjects":["s1"]}`)
		st, sub := c.do("POST", "/api/v1/subscriptions", `{"customer_id":"`+cus["id"].(string)+`","plan_id":"pro","quantity":"3"}`)
		if st != 201 || sub["status"] != "active" || sub["quantity"] != "3" {
			t.Fatalf("subscribe: %d %v", st, sub)
		}
		usage.Record(ten, "api_calls", "s1", abacusClock().Now(), dec("40"))
		st, e := c.do("GET", "/api/v1/customers/"+cus["id"].(string)+"/entitlements/calls", "")
		if st != 200 || e["has_access"] != true || e["remaining"] != "60" || e["used"] != "40" {
			t.Fatalf("entitlement: %d %v", st, e)
		}
		st, h := c.do("GET", "/api/v1/subscriptions/"+sub["id"].(string)+"/history", "")
		if st != 200 || len(h["data"].([]any)) != 2 {
			t.Fatalf("history: %d %v", st, h)
		}
		if st, p := c.do("POST", "/api/v1/subscriptions/"+sub["id"].(string)+"/resume", ""); st != 409 || p["code"] != "invalid_transition" {
			t.Fatalf("resume an active subscription: %d %v", st, p)
		}
	})
}

func abacusClock() *fixedClock { return &fixedClock{time.Date(2026, 3, 15, 10, 0, 0, 0, time.UTC)} }

type fixedClock struct{ t time.Time }

func (c *fixedClock) Now() time.Time { return c.t }
