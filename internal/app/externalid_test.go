package app_test

import (
	"encoding/json"
	"testing"

	"github.com/abacusbilling/abacus/internal/db/dbtest"
)

// Over HTTP, a customer's external id names it in paths, bodies and list
// filters, and names nothing for another tenant.
func TestCustomersByExternalIDOverHTTP(t *testing.T) {
	t.Parallel()
	for _, engine := range dbtest.Engines {
		t.Run(string(engine), func(t *testing.T) {
			t.Parallel()
			a := start(t, engine, nil)
			cus := a.post("/api/v1/customers", map[string]any{"external_id": "crm-4711", "name": "Acme GmbH", "currency": "EUR", "subjects": []string{"acme-prod"}})
			a.post("/api/v1/features", map[string]any{"key": "sso", "name": "SSO", "kind": "boolean"})
			a.post("/api/v1/plans", map[string]any{"key": "pro", "name": "Pro"})
			a.post("/api/v1/plans/pro/versions", map[string]any{"currency": "EUR", "billing_interval": map[string]any{"unit": "month"},
				"entitlements": []map[string]any{{"feature": "sso"}},
				"charges":      []map[string]any{{"key": "base", "kind": "fee", "fee": map[string]any{"amount": "49.00"}}}})
			a.post("/api/v1/plans/pro/versions/1/publish", nil)
			sub := a.post("/api/v1/subscriptions", map[string]any{"customer_id": "crm-4711", "plan_id": "pro"})
			if sub["customer_id"] != cus["id"] {
				t.Fatalf("subscribed %v, want %v", sub["customer_id"], cus["id"])
			}
			a.post("/api/v1/customers/crm-4711/credits", map[string]any{"amount": "10.00"})
			rate := a.post("/api/v1/tax-rates", map[string]any{"name": "VAT DE", "percentage": "19", "country": "DE"})
			as := a.do("PUT", "/api/v1/tax-assignments", a.key, map[string]any{"target_type": "customer", "target_id": "crm-4711", "tax_rate_id": rate["id"]})
			if as.status != 200 || as.json(t)["target_id"] != cus["id"] {
				t.Fatalf("tax assignment by external id: %d %s", as.status, as.body)
			}

			list := func(path, key string) []any {
				t.Helper()
				r := a.do("GET", path, key, nil)
				if r.status != 200 {
					t.Fatalf("GET %s: %d %s", path, r.status, r.body)
				}
				return r.json(t)["data"].([]any)
			}
			if r := a.do("GET", "/api/v1/customers/crm-4711", a.key, nil); r.status != 200 || r.json(t)["id"] != cus["id"] {
				t.Fatalf("get by external id: %d %s", r.status, r.body)
			}
			if r := a.do("GET", "/api/v1/customers/crm-4711/entitlements/sso", a.key, nil); r.status != 200 || r.json(t)["has_access"] != true {
				t.Fatalf("entitlement check by external id: %d %s", r.status, r.body)
			}
			for path, want := range map[string]int{
				"/api/v1/customers?external_id=crm-4711":     1,
				"/api/v1/customers?external_id=crm-47":       0,
				"/api/v1/subscriptions?customer_id=crm-4711": 1,
				"/api/v1/subscriptions?customer_id=crm-nope": 0,
				"/api/v1/customers/crm-4711/credits":         1,
				"/api/v1/customers/crm-4711/entitlements":    1,
			} {
				if got := len(list(path, a.key)); got != want {
					t.Errorf("GET %s: %d items, want %d", path, got, want)
				}
			}

			// Tenant B.
			pw := "quite a long passphrase 77"
			if r := a.do("POST", "/api/v1/auth/signup", "", map[string]any{"email": "owner@b.test", "password": pw, "organization": "B"}); r.status != 201 {
				t.Fatalf("signup B: %d %s", r.status, r.body)
			}
			var login struct {
				AccessToken string `json:"access_token"`
			}
			_ = json.Unmarshal(a.do("POST", "/api/v1/auth/login", "", map[string]any{"email": "owner@b.test", "password": pw}).body, &login)
			keyB := login.AccessToken
			for _, path := range []string{"/api/v1/customers/crm-4711", "/api/v1/customers/crm-4711/entitlements/sso", "/api/v1/customers/crm-4711/credits"} {
				expectProblem(t, a.do("GET", path, keyB, nil), 404, "customer_not_found")
			}
			if got := len(list("/api/v1/customers?external_id=crm-4711", keyB)); got != 0 {
				t.Fatalf("tenant B lists A's customer by external id")
			}
			if got := len(list("/api/v1/subscriptions?customer_id=crm-4711", keyB)); got != 0 {
				t.Fatalf("tenant B lists A's subscriptions by external id")
			}
		})
	}
}
