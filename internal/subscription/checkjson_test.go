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

// A customer's external id names it wherever its id does: the checks by
// external id answer as by id, from the cached state without reading the
// customer again, follow a change of the external id made through the
// catalog, and another tenant's external id is not found.
func TestChecksByExternalID(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		b := setup(t, d, time.Date(2026, 1, 10, 12, 0, 0, 0, time.UTC))
		must(b.cat.CreateFeature(b.ctx, catalog.FeatureInput{Key: "api_calls", Kind: catalog.FeatureMetered, MeterSlug: "api_calls", Limit: decp("100")}))
		cus := must(b.cat.CreateCustomer(b.ctx, catalog.CustomerInput{Name: "Acme", ExternalID: "acme-42", Currency: "EUR", Subjects: []string{"u1"}}))
		b.publishPlan(t, "pro", catalog.VersionSpec{Currency: "EUR", BillingInterval: period.Monthly,
			Entitlements: []catalog.Grant{{Feature: "api_calls"}}})
		sub := must(b.svc.Create(b.ctx, subscription.CreateInput{CustomerID: "acme-42", PlanID: "pro"}))
		if sub.CustomerID != cus.ID {
			t.Fatalf("subscribed %q, want the customer's id %s", sub.CustomerID, cus.ID)
		}
		b.usage.Record(tenant, "api_calls", "u1", b.clock.Now(), dec("85"))
		byID := string(must(b.svc.CheckJSON(b.ctx, cus.ID, "api_calls")))
		if got := string(must(b.svc.CheckJSON(b.ctx, "acme-42", "api_calls"))); got != byID || !strings.Contains(got, `"used":"85"`) {
			t.Fatalf("by external id:\n got %s\nwant %s", got, byID)
		}
		if es := must(b.svc.Entitlements(b.ctx, "acme-42")); len(es) != 1 || es[0].SubscriptionID != sub.ID {
			t.Fatalf("entitlements by external id: %+v", es)
		}
		// The 80 % threshold event names the customer by id.
		var payload string
		if err := d.QueryRowContext(b.ctx, `SELECT payload FROM outbox_events WHERE type = 'entitlement.threshold_reached'`).Scan(&payload); err != nil ||
			!strings.Contains(payload, `"customer_id":"`+cus.ID+`"`) {
			t.Fatalf("threshold event: %v %s", err, payload)
		}

		// Behind the cache's back the external id changes: the check by the
		// old one is still answered, so it read no customer row.
		if _, err := d.ExecContext(b.ctx, `UPDATE customers SET external_id = 'moved' WHERE id = $1`, cus.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := b.svc.CheckJSON(b.ctx, "acme-42", "api_calls"); err != nil {
			t.Fatalf("a cached external id was looked up again: %v", err)
		}
		// Through the catalog the change is seen at once.
		must(b.cat.UpdateCustomer(b.ctx, cus.ID, catalog.CustomerPatch{ExternalID: new("acme-43")}))
		if _, err := b.svc.CheckJSON(b.ctx, "acme-42", "api_calls"); abacus.ErrorKind(err) != abacus.KindNotFound {
			t.Fatalf("the old external id after the change: %v", err)
		}
		if got := string(must(b.svc.CheckJSON(b.ctx, "acme-43", "api_calls"))); got != byID {
			t.Fatalf("the new external id: %s", got)
		}

		other := abacus.WithPrincipal(context.Background(), &abacus.Principal{TenantID: "ten_other", Kind: "api_key", ID: "key_o",
			Scopes: []abacus.Scope{abacus.ScopeAdmin}})
		if _, err := b.svc.CheckJSON(other, "acme-43", "api_calls"); abacus.ErrorKind(err) != abacus.KindNotFound {
			t.Fatalf("another tenant's external id: %v", err)
		}
		if _, err := b.svc.Create(other, subscription.CreateInput{CustomerID: "acme-43", PlanID: "pro"}); abacus.ErrorKind(err) != abacus.KindNotFound {
			t.Fatalf("another tenant subscribes by external id: %v", err)
		}
	})
}
