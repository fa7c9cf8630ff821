package subscription_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/catalog"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
	"github.com/abacusbilling/abacus/internal/httpapi"
	"github.com/abacusbilling/abacus/internal/period"
	"github.com/abacusbilling/abacus/internal/subscription"
)

// CheckJSON (the hot route's memoised answer) must send exactly the bytes
// the huma route sent for Check's answer, follow usage and period changes
// at once, and still emit each threshold exactly once.
func TestCheckJSONAnswersAsCheckDoes(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		b := setup(t, d, time.Date(2026, 1, 10, 12, 0, 0, 0, time.UTC))
		must(b.cat.CreateFeature(b.ctx, catalog.FeatureInput{Key: "api_calls", Name: "API calls", Kind: catalog.FeatureMetered,
			MeterSlug: "api_calls", Limit: decp("100")}))
		must(b.cat.CreateFeature(b.ctx, catalog.FeatureInput{Key: "hd", Kind: catalog.FeatureBoolean}))
		must(b.cat.CreateFeature(b.ctx, catalog.FeatureInput{Key: "devices", Kind: catalog.FeatureStatic, Value: json.RawMessage(`4`)}))
		must(b.cat.CreateFeature(b.ctx, catalog.FeatureInput{Key: "sso", Kind: catalog.FeatureBoolean}))
		cus := must(b.cat.CreateCustomer(b.ctx, catalog.CustomerInput{Name: "Acme", Currency: "EUR", Subjects: []string{"u1"}}))
		b.publishPlan(t, "pro", catalog.VersionSpec{Currency: "EUR", BillingInterval: period.Monthly,
			Entitlements: []catalog.Grant{{Feature: "api_calls"}, {Feature: "hd"}, {Feature: "devices", Value: json.RawMessage(`8`)}}})
		must(b.svc.Create(b.ctx, subscription.CreateInput{CustomerID: cus.ID, PlanID: "pro"}))

		same := func(feature string) map[string]any {
			t.Helper()
			got, err := b.svc.CheckJSON(b.ctx, cus.ID, feature)
			if err != nil {
				t.Fatalf("CheckJSON %s: %v", feature, err)
			}
			want := must(httpapi.EncodeJSON(must(b.svc.Check(b.ctx, cus.ID, feature))))
			if string(got) != string(want) {
				t.Fatalf("CheckJSON %s:\n got %s\nwant %s", feature, got, want)
			}
			var m map[string]any
			if err := json.Unmarshal(got, &m); err != nil {
				t.Fatal(err)
			}
			return m
		}
		if m := same("hd"); m["has_access"] != true || m["limit"] != nil {
			t.Fatalf("boolean: %v", m)
		}
		if m := same("devices"); m["value"] != 8.0 {
			t.Fatalf("static with the grant's value: %v", m)
		}
		if m := same("sso"); m["has_access"] != false || m["subscription_id"] != nil {
			t.Fatalf("a feature no plan grants: %v", m)
		}
		same("sso") // the memoised denial
		if m := same("api_calls"); m["used"] != "0" || m["remaining"] != "100" {
			t.Fatalf("fresh metered: %v", m)
		}
		at := b.clock.Now()
		b.usage.Record(tenant, "api_calls", "u1", at, dec("85"))
		if m := same("api_calls"); m["used"] != "85" || m["remaining"] != "15" {
			t.Fatalf("usage not followed at once: %v", m)
		}
		same("api_calls") // memoised: no second event below
		b.usage.Record(tenant, "api_calls", "u1", at, dec("15"))
		if m := same("api_calls"); m["has_access"] != false || m["remaining"] != "0" {
			t.Fatalf("at the limit: %v", m)
		}
		same("api_calls")
		if n := countEvents(t, b, "entitlement.threshold_reached"); n != 2 {
			t.Fatalf("%d threshold events, want one at 80%% and one at 100%%", n)
		}

		// The next period: a new answer with the new period and no usage.
		b.clock.Set(time.Date(2026, 2, 11, 0, 0, 0, 0, time.UTC))
		m := same("api_calls")
		if m["used"] != "0" || !strings.HasPrefix(m["period_start"].(string), "2026-02-10") {
			t.Fatalf("next period: %v", m)
		}

		// Errors are Check's.
		if _, err := b.svc.CheckJSON(b.ctx, cus.ID, "nope"); abacus.ErrorKind(err) != abacus.KindNotFound {
			t.Fatalf("unknown feature: %v", err)
		}
		other := abacus.WithPrincipal(context.Background(), &abacus.Principal{TenantID: "ten_other", Kind: "api_key", ID: "key_o",
			Scopes: []abacus.Scope{abacus.ScopeAdmin}})
		if _, err := b.svc.CheckJSON(other, cus.ID, "api_calls"); abacus.ErrorKind(err) != abacus.KindNotFound {
			t.Fatalf("another tenant's customer: %v", err)
		}
	})
}

// The raw check route answers errors as the huma routes do: the same
// problem+json, encoded the same way (no HTML escaping), with the request
// id; and it refuses missing credentials like every other route.
func TestHTTPCheckErrorsAreTheProblemsOfEveryRoute(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		c, _, _ := newServer(t, d)
		_, cus := c.do("POST", "/api/v1/customers", `{"name":"A","currency":"EUR","subjects":["s1"]}`)
		id := cus["id"].(string)
		res, err := http.Get(c.url + "/api/v1/customers/" + id + "/entitlements/x")
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 401 || res.Header.Get("Content-Type") != "application/problem+json" {
			t.Fatalf("no credentials: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
		}
		req, _ := http.NewRequest("GET", c.url+"/api/v1/customers/"+id+"/entitlements/%3Cx%3E", nil)
		req.Header.Set("Authorization", "Bearer "+c.key)
		res, err = http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 404 || res.Header.Get("Content-Type") != "application/problem+json" ||
			!strings.Contains(string(raw), `"detail":"feature \"<x>\" does not exist","code":"feature_not_found","request_id":"`+res.Header.Get("X-Request-Id")+`"`) {
			t.Fatalf("unknown feature: %d %s %s", res.StatusCode, res.Header.Get("Content-Type"), raw)
		}
		if st, p := c.do("GET", "/api/v1/customers/cus_nope/entitlements/x", ""); st != 404 || p["code"] != "customer_not_found" {
			t.Fatalf("unknown customer: %d %v", st, p)
		}
	})
}
