package catalog_test

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

	"github.com/prometheus/client_golang/prometheus"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/catalog"
	"github.com/abacusbilling/abacus/internal/httpapi"
)

// previewServer serves the catalog routes over real HTTP; the preview
// touches no table, so the service has no database.
func previewServer(t *testing.T) func(body string) (int, map[string]any) {
	s := httpapi.New(httpapi.Config{Version: "test"}, nil, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	s.SetAuthenticator(func(context.Context, string) (*abacus.Principal, error) {
		return &abacus.Principal{TenantID: "ten_a", Kind: "api_key", ID: "key_1", Scopes: []abacus.Scope{abacus.ScopeRead}}, nil
	})
	catalog.RegisterRoutes(s, nil)
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return func(body string) (int, map[string]any) {
		req, _ := http.NewRequest("POST", srv.URL+"/api/v1/plans/price-preview", bytes.NewBufferString(body))
		req.Header.Set("Authorization", "Bearer k")
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		raw, _ := io.ReadAll(res.Body)
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatalf("%d: not JSON: %s", res.StatusCode, raw)
		}
		return res.StatusCode, m
	}
}

// TestPricePreview rates prices of every model over HTTP: amounts are
// decimal strings computed by the engine, with the tier breakdown, and a
// bad price answers a problem naming the field the editor shows it next to.
func TestPricePreview(t *testing.T) {
	t.Parallel()
	post := previewServer(t)
	graduated := `{"model":"graduated","tiers":[{"up_to":"10000","unit_amount":"0.002"},{"up_to":null,"unit_amount":"0.001","flat_amount":"5"}]}`
	for _, tc := range []struct {
		name, price, qty, extra, amount string
		components                      int
	}{
		// 10,000 × 0.002 = 20 plus 2,345 × 0.001 + 5 = 7.345: 27.345 → 27.35 (half_up).
		{"graduated", graduated, "12345", ``, "27.35", 2},
		{"graduated rounded down", graduated, "12345", `,"rounding":"down"`, "27.34", 2},
		{"volume", `{"model":"volume","tiers":[{"up_to":"10000","unit_amount":"0.002"},{"unit_amount":"0.001"}]}`, "12345", ``, "12.35", 1},
		{"per unit", `{"model":"per_unit","unit_amount":"0.1"}`, "3", ``, "0.3", 1},
		{"package", `{"model":"package","unit_amount":"10","package_size":"100"}`, "101", ``, "20", 1},
		{"percentage with event fee", `{"model":"percentage","percentage":"2.9","fixed_amount_per_event":"0.30"}`, "1000", `,"events":10`, "32", 2},
		{"minimum", `{"model":"per_unit","unit_amount":"1","minimum":"50"}`, "0", ``, "50", 1},
		{"yen has no minor unit", `{"model":"per_unit","unit_amount":"0.5"}`, "3", `,"currency":"JPY"`, "2", 1},
	} {
		cur := `"currency":"EUR",`
		if strings.Contains(tc.extra, "currency") {
			cur = ""
		}
		status, body := post(`{` + cur + `"price":` + tc.price + `,"quantity":"` + tc.qty + `"` + tc.extra + `}`)
		if status != 200 || body["amount"] != tc.amount || len(body["components"].([]any)) != tc.components {
			t.Errorf("%s: %d %v, want amount %s with %d components", tc.name, status, body, tc.amount, tc.components)
		}
	}
	_, body := post(`{"currency":"EUR","price":` + graduated + `,"quantity":"12345"}`)
	tier := body["components"].([]any)[1].(map[string]any)
	if tier["from"] != "10000" || tier["quantity"] != "2345" || tier["amount"] != "7.345" || body["unrounded"] != "27.345" {
		t.Errorf("second tier: %v (unrounded %v)", tier, body["unrounded"])
	}

	for _, tc := range []struct{ name, body, code, field string }{
		{"overlapping tiers", `{"currency":"EUR","quantity":"1","price":{"model":"graduated","tiers":[{"up_to":"10","unit_amount":"1"},{"up_to":"5","unit_amount":"1"},{"unit_amount":"1"}]}}`,
			"invalid_price", "price.tiers[1].up_to"},
		{"unknown currency", `{"currency":"XXY","quantity":"1","price":{"model":"per_unit","unit_amount":"1"}}`, "unknown_currency", "currency"},
		{"negative quantity", `{"currency":"EUR","quantity":"-1","price":{"model":"per_unit","unit_amount":"1"}}`, "invalid_usage", "quantity"},
	} {
		status, p := post(tc.body)
		fields, _ := p["errors"].([]any)
		var named []string
		for _, f := range fields {
			if m, ok := f.(map[string]any); ok {
				named = append(named, m["field"].(string))
			}
		}
		if status != 400 || p["code"] != tc.code || !contains(named, tc.field) {
			t.Errorf("%s: %d %v, want 400 %s naming %s", tc.name, status, p, tc.code, tc.field)
		}
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
