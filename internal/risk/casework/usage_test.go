package casework

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
	"github.com/abacusbilling/abacus/internal/outbox"
)

func days(n int, v float64) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = v
	}
	return out
}

func TestSpike(t *testing.T) {
	noisy := []float64{90, 110, 100, 95, 105, 120, 80, 100, 98, 102}
	for _, c := range []struct {
		name   string
		values []float64
		want   bool
	}{
		{"steady then 10x", append(days(20, 100), 1000), true},
		{"noisy then 10x", append(noisy, 1000), true},
		{"noisy then 2x", append(noisy, 200), false},
		{"noisy then 5x but one earlier outlier", append(append(noisy, 3000), 520), true},
		{"zero baseline, tiny value", append(days(10, 0.0), 5), false},
		{"quiet customer then 50", append(append(days(3, 0.0), days(10, 1)...), 50), true},
		{"too little history", append(days(5, 100), 5000), false},
		{"leading zeros are not history", append(append(days(20, 0.0), days(4, 100)...), 5000), false},
	} {
		if got, _, _, _ := Spike(c.values); got != c.want {
			t.Errorf("%s: spike %v, want %v", c.name, got, c.want)
		}
	}
	_, median, mad, n := Spike(append(noisy, 1000))
	if median != 100 || mad != 5 || n != 10 {
		t.Fatalf("median %v mad %v days %d", median, mad, n)
	}
}

type staticUsage map[string][]UsageSeries

func (s staticUsage) Tenants(context.Context) ([]string, error) {
	return []string{"ten_a", "ten_b"}, nil
}
func (s staticUsage) DailyUsage(_ context.Context, tenant string, from, _ time.Time) ([]UsageSeries, error) {
	out := s[tenant]
	for i := range out {
		out[i].From = from
	}
	return out, nil
}

// CustomerOf: ten_a's cust-1 is billed as cus_1; no other subject has a
// customer.
func (s staticUsage) CustomerOf(_ context.Context, tenant, subject string) (string, error) {
	if tenant == "ten_a" && subject == "cust-1" {
		return "cus_1", nil
	}
	return "", nil
}

// TestUsageAnomalyRaisedOnce: yesterday's spike of one customer raises
// risk.usage_anomaly once (a second check raises nothing), a steady
// customer and another tenant's steady usage raise nothing. The event is
// about the subject and names the customer owning it.
func TestUsageAnomalyRaisedOnce(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		clock := abacus.NewFakeClock(time.Date(2026, 12, 6, 3, 0, 0, 0, time.UTC))
		s := New(d, clock, slog.New(slog.DiscardHandler), nil, Config{})
		src := staticUsage{
			"ten_a": {
				{Meter: "api_calls", Subject: "cust-1", Values: append(days(28, 100), 2500)},
				{Meter: "api_calls", Subject: "cust-2", Values: append(days(28, 100), 130)},
			},
			"ten_b": {{Meter: "api_calls", Subject: "cust-1", Values: append(days(28, 100), 100)}},
		}
		ctx := context.Background()
		n, err := s.CheckUsage(ctx, src)
		if err != nil || n != 1 {
			t.Fatalf("first check: %d, %v", n, err)
		}
		if p, err := outbox.Pending(ctx, d); err != nil || p != 1 {
			t.Fatalf("outbox: %d pending, %v", p, err)
		}
		var aggregate, aggregateID, payload string
		var version int
		if err := d.QueryRowContext(ctx, `SELECT aggregate_type, aggregate_id, version, payload FROM outbox_events WHERE type = 'risk.usage_anomaly'`).
			Scan(&aggregate, &aggregateID, &version, &payload); err != nil {
			t.Fatal(err)
		}
		e, err := UsageAnomaly.Decode([]byte(payload))
		if aggregate != "subject" || aggregateID != "cust-1" || version != 2 || err != nil || e.CustomerID != "cus_1" || e.Subject != "cust-1" || e.Ratio != 25 {
			t.Fatalf("recorded %s:%s v%d %s (%+v, %v); want subject:cust-1 v2 naming cus_1", aggregate, aggregateID, version, payload, e, err)
		}
		if n, err := s.CheckUsage(ctx, src); err != nil || n != 0 {
			t.Fatalf("second check raised %d, %v", n, err)
		}
		if p, _ := outbox.Pending(ctx, d); p != 1 {
			t.Fatalf("outbox after the second check: %d", p)
		}
		day := time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)
		for _, c := range []struct {
			tenant, meter string
			from, to      time.Time
			want          int
		}{
			{"ten_a", "", day, day, 1}, {"ten_a", "api_calls", day.AddDate(0, 0, -3), day, 1},
			{"ten_a", "other", day, day, 0}, {"ten_a", "", day.AddDate(0, 0, 1), day.AddDate(0, 0, 2), 0}, {"ten_b", "", day, day, 0},
		} {
			got, err := UsageAlerts(ctx, d, c.tenant, c.meter, c.from, c.to)
			if err != nil || len(got) != c.want {
				t.Fatalf("UsageAlerts(%s, %q, %v…%v) = %+v, %v; want %d", c.tenant, c.meter, c.from, c.to, got, err, c.want)
			}
			if c.want == 1 && (got[0] != UsageAlert{Meter: "api_calls", Subject: "cust-1", Day: day, Value: "2500", Median: "100"}) {
				t.Fatalf("alert read back: %+v", got[0])
			}
		}
	})
}
