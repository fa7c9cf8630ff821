package casework

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/outbox"
)

// UsageAnomalyEventV2 is the payload of risk.usage_anomaly v2: v1's and
// the customer owning the subject, which is what a webhook consumer acts
// on (the subject, the event's aggregate id, is only its usage key).
type UsageAnomalyEventV2 struct {
	CustomerID string `json:"customer_id" doc:"the customer owning the subject when the spike was raised; empty when none does"`
	UsageAnomalyEvent
}

// UsageAnomaly tells the tenant that a customer's daily usage of a meter
// spiked far above its own baseline (notifications and webhooks take it).
// It is about the metering subject (its aggregate id), which not every
// customer owns, or not yet; the payload names the customer when one does.
var UsageAnomaly = outbox.Define[UsageAnomalyEventV2]("risk.usage_anomaly", 2, "subject",
	"A metering subject's daily usage of a meter spiked far above its own baseline (the median of its previous days); the payload names the customer owning the subject.")

// UsageAnomalyEvent is the payload of risk.usage_anomaly v1, recorded
// before v2 and kept in the catalog for consumers of those events. Its
// aggregate id was always the subject, though v1 first declared
// "customer".
type UsageAnomalyEvent struct {
	Meter   string    `json:"meter" doc:"the meter's slug"`
	Subject string    `json:"subject" doc:"the metering subject (the customer's usage key)"`
	Day     time.Time `json:"day" doc:"start of the UTC day of the spike"`
	Value   float64   `json:"value" doc:"usage on that day"`
	Median  float64   `json:"baseline_median" doc:"median daily usage over the baseline days"`
	MAD     float64   `json:"baseline_mad" doc:"median absolute deviation over the baseline days"`
	Days    int       `json:"baseline_days" doc:"days in the baseline"`
	Ratio   float64   `json:"ratio" doc:"value ÷ median (0 when the median is 0)"`
}

// UsageAnomalyV1 is v1 of risk.usage_anomaly, no longer recorded.
var UsageAnomalyV1 = outbox.Define[UsageAnomalyEvent]("risk.usage_anomaly", 1, "subject",
	"A customer's daily usage of a meter spiked far above its own baseline (the median of its previous days).")

// UsageSeries is one subject's daily usage of one meter, oldest first,
// one value per UTC day from From (0 for a day without usage).
type UsageSeries struct {
	Meter   string
	Subject string
	From    time.Time
	Values  []float64
}

// UsageSource reads daily usage for the anomaly check (the app wires the
// metering module's query API).
type UsageSource interface {
	Tenants(ctx context.Context) ([]string, error)
	// DailyUsage answers every subject's daily usage of every meter of
	// tenant over the UTC days [from, to).
	DailyUsage(ctx context.Context, tenant string, from, to time.Time) ([]UsageSeries, error)
	// CustomerOf answers the id of tenant's customer owning subject, ""
	// when none does.
	CustomerOf(ctx context.Context, tenant, subject string) (string, error)
}

// Spike thresholds (documented in docs/risk.md, "Usage anomalies").
const (
	baselineDays    = 28  // days before the checked day
	minBaselineDays = 7   // days from the subject's first usage on, else no verdict
	spikeMADs       = 6.0 // value > median + 6 × 1.4826 × MAD …
	spikeRatio      = 5.0 // … and ≥ 5 × median …
	spikeMinValue   = 10  // … and ≥ 10 (small numbers are noise)
)

// Spike judges the last value of values against the ones before it (the
// baseline, counted from the subject's first non-zero day): a spike is far
// above the robust spread (median + 6·1.4826·MAD, a 6-sigma rule that one
// earlier outlier cannot inflate), at least 5× the median, and at least 10.
// Fewer than 7 baseline days give no verdict.
func Spike(values []float64) (spike bool, median, mad float64, days int) {
	if len(values) < 2 {
		return false, 0, 0, 0
	}
	base := values[:len(values)-1]
	first := slices.IndexFunc(base, func(v float64) bool { return v != 0 })
	if first < 0 {
		first = len(base)
	}
	base = base[first:]
	if len(base) > baselineDays {
		base = base[len(base)-baselineDays:]
	}
	days = len(base)
	if days < minBaselineDays {
		return false, 0, 0, days
	}
	median = medianOf(base)
	dev := make([]float64, len(base))
	for i, v := range base {
		dev[i] = math.Abs(v - median)
	}
	mad = medianOf(dev)
	v := values[len(values)-1]
	spike = v >= spikeMinValue && v >= spikeRatio*median && v > median+spikeMADs*1.4826*mad
	return spike, median, mad, days
}

func medianOf(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// CheckUsage judges yesterday's (UTC) usage of every subject and meter of
// every tenant against its baseline and records risk.usage_anomaly once
// per subject, meter and day. It returns the anomalies raised.
func (s *Service) CheckUsage(ctx context.Context, src UsageSource) (int, error) {
	tenants, err := src.Tenants(ctx)
	if err != nil {
		return 0, err
	}
	today := s.clock.Now().UTC().Truncate(24 * time.Hour)
	from := today.AddDate(0, 0, -(baselineDays + 1))
	raised := 0
	for _, tenant := range tenants {
		series, err := src.DailyUsage(ctx, tenant, from, today)
		if err != nil {
			return raised, fmt.Errorf("reading usage of %s: %w", tenant, err)
		}
		for _, us := range series {
			ok, err := s.raiseSpike(ctx, src, tenant, us)
			if err != nil {
				return raised, err
			}
			if ok {
				raised++
			}
		}
	}
	return raised, nil
}

// raiseSpike records risk.usage_anomaly for the last day of us when it is
// a spike not raised before, and tells whether it did.
func (s *Service) raiseSpike(ctx context.Context, src UsageSource, tenant string, us UsageSeries) (bool, error) {
	spike, median, mad, days := Spike(us.Values)
	if !spike {
		return false, nil
	}
	cus, err := src.CustomerOf(ctx, tenant, us.Subject)
	if err != nil {
		return false, fmt.Errorf("finding the customer of subject %q: %w", us.Subject, err)
	}
	v := us.Values[len(us.Values)-1]
	e := UsageAnomalyEventV2{CustomerID: cus, UsageAnomalyEvent: UsageAnomalyEvent{Meter: us.Meter, Subject: us.Subject,
		Day: us.From.AddDate(0, 0, len(us.Values)-1), Value: v, Median: median, MAD: mad, Days: days}}
	if median > 0 {
		e.Ratio = math.Round(v/median*100) / 100
	}
	raised := false
	err = s.db.InTx(ctx, func(tx *db.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO risk_usage_alerts (tenant_id, meter, subject, day, value, median, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (tenant_id, meter, subject, day) DO NOTHING`,
			tenant, us.Meter, us.Subject, db.TimeOf(e.Day), fmt.Sprint(v), fmt.Sprint(median), db.TimeOf(s.clock.Now()))
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil // raised before
		}
		raised = true
		_, err = UsageAnomaly.Record(ctx, tx, tenant, us.Subject, s.clock.Now(), e)
		return err
	})
	return raised && err == nil, err
}

// UsageAlert is a recorded usage spike: what risk.usage_anomaly said.
type UsageAlert struct {
	Meter   string
	Subject string
	Day     time.Time // start of the UTC day
	Value   string    // decimal, the day's usage
	Median  string    // decimal, the baseline's median
}

// UsageAlerts reads tenant's recorded usage spikes of meter (a slug; ""
// for every meter) on the UTC days from through to, oldest first. It is a
// read of this module's table for other modules (analytics' usage trends)
// that may run in a process without the risk role.
func UsageAlerts(ctx context.Context, d *db.DB, tenant, meter string, from, to time.Time) ([]UsageAlert, error) {
	rows, err := d.QueryContext(ctx, `SELECT meter, subject, day, value, median FROM risk_usage_alerts
		WHERE tenant_id = $1 AND (meter = $2 OR $2 = '') AND day >= $3 AND day <= $4 ORDER BY day, meter, subject`,
		tenant, meter, db.TimeOf(from), db.TimeOf(to))
	if err != nil {
		return nil, fmt.Errorf("reading usage alerts: %w", err)
	}
	defer rows.Close()
	var out []UsageAlert
	for rows.Next() {
		var a UsageAlert
		var day db.Time
		if err := rows.Scan(&a.Meter, &a.Subject, &day, &a.Value, &a.Median); err != nil {
			return nil, fmt.Errorf("reading usage alerts: %w", err)
		}
		a.Day = day.UTC()
		out = append(out, a)
	}
	return out, rows.Err()
}
