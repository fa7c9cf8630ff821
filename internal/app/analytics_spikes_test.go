package app_test

import (
	"strings"
	"testing"
	"time"

	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
)

// The usage trends carry the spikes the risk module recorded, with the
// customer owning the subject: the app's adapter reads the risk module's
// table, so this works on an api node without the risk role.
func TestUsageTrendsCarryRiskSpikes(t *testing.T) {
	t.Parallel()
	for _, engine := range dbtest.Engines {
		t.Run(string(engine), func(t *testing.T) {
			t.Parallel()
			a := start(t, engine, nil)
			if r := a.do("POST", "/api/v1/meters", a.key, map[string]any{"slug": "calls", "eventType": "api", "aggregation": "COUNT"}); r.status != 201 {
				t.Fatalf("meter: %d %s", r.status, r.body)
			}
			cus := a.post("/api/v1/customers", map[string]any{"name": "Spiky", "currency": "EUR", "subjects": []string{"spiky"}})
			day := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -1)
			for _, tenant := range []string{a.tenantOf(t, a.key), "ten_other"} {
				if _, err := a.DB.ExecContext(t.Context(), `INSERT INTO risk_usage_alerts (tenant_id, meter, subject, day, value, median, created_at)
					VALUES ($1, 'calls', 'spiky', $2, '2500', '100', $2)`, tenant, db.TimeOf(day)); err != nil {
					t.Fatal(err)
				}
			}
			r := a.do("GET", "/api/v1/analytics/usage?meter=calls&interval=day&from="+day.Format(time.DateOnly)+"&to="+day.Format(time.DateOnly), a.key, nil)
			want := `"alerts":[{"day":"` + day.Format(time.DateOnly) + `","customer_id":"` + cus["id"].(string) + `","subject":"spiky","value":"2500","baseline_median":"100"}]`
			if r.status != 200 || !strings.Contains(string(r.body), want) {
				t.Fatalf("usage trends: %d %s\nwant %s", r.status, r.body, want)
			}
		})
	}
}

// risk.usage_anomaly names the customer owning the spiking subject: the
// app answers the risk module's CustomerOf from the catalog, "" for a
// subject no customer owns or another tenant's.
func TestRiskUsageFindsTheSubjectsCustomer(t *testing.T) {
	t.Parallel()
	for _, engine := range dbtest.Engines {
		t.Run(string(engine), func(t *testing.T) {
			t.Parallel()
			a := start(t, engine, nil)
			cus := a.post("/api/v1/customers", map[string]any{"name": "Spiky", "currency": "EUR", "subjects": []string{"spiky"}})
			tenant := a.tenantOf(t, a.key)
			for _, c := range []struct{ tenant, subject, want string }{
				{tenant, "spiky", cus["id"].(string)}, {tenant, "nobody", ""}, {"ten_other", "spiky", ""},
			} {
				if got, err := a.RiskUsage().CustomerOf(t.Context(), c.tenant, c.subject); got != c.want || err != nil {
					t.Errorf("CustomerOf(%s, %s) = %q, %v; want %q", c.tenant, c.subject, got, err, c.want)
				}
			}
		})
	}
}
