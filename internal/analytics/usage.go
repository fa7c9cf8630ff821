package analytics

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/catalog"
	"github.com/abacusbilling/abacus/internal/metering"
	"github.com/abacusbilling/abacus/internal/metering/usage"
)

// Usage reads metering's meters and rollups (usage.Service).
type Usage interface {
	ListMeters(ctx context.Context) ([]usage.MeterRecord, error)
	Query(ctx context.Context, idOrSlug string, p usage.QueryParams) (*metering.QueryResult, usage.MeterRecord, error)
}

// Owners finds the customer that owns a usage subject (catalog.Service).
type Owners interface {
	CustomerBySubject(ctx context.Context, sub string) (catalog.Customer, error)
}

// UsageQuery selects usage trends: Query's range and interval (day, week
// or month), a meter (id or slug; "" every meter) and how many top
// customers per point (0: 5).
type UsageQuery struct {
	Query
	Meter string
	Top   int
}

// maxTop bounds UsageQuery.Top.
const maxTop = 100

// UsagePoint is one meter's usage in one interval.
type UsagePoint struct {
	Meter        string         `json:"meter" doc:"the meter's slug"`
	Aggregation  string         `json:"aggregation"`
	Start        string         `json:"start" doc:"first day of the point (YYYY-MM-DD, UTC)"`
	Date         string         `json:"date" doc:"last day of the point"`
	Total        string         `json:"total" doc:"the meter's value over the point, every subject"`
	Previous     string         `json:"previous" doc:"its value over the interval before"`
	Growth       string         `json:"growth" doc:"(total − previous) ÷ previous, 4 places; empty when previous is 0"`
	TopCustomers UsageCustomers `json:"top_customers" doc:"the subjects with the highest values in the point, highest first; in CSV as customer_id:subject:value separated by ;"`
	Alerts       UsageSpikes    `json:"alerts" doc:"the per-customer spikes the risk module raised (risk.usage_anomaly) on days of the point, oldest first; in CSV as day:customer_id:subject:value:baseline_median separated by ;"`
}

// Spikes reads the usage spikes the risk module recorded for the tenant
// on ctx: meter's (a slug) on the UTC days from through to, oldest first.
type Spikes interface {
	UsageSpikes(ctx context.Context, meter string, from, to time.Time) ([]UsageSpike, error)
}

// UsageSpike is one customer's daily usage of a meter far above its own
// baseline, as the risk module judged it.
type UsageSpike struct {
	Day        string `json:"day" doc:"the UTC day (YYYY-MM-DD)"`
	CustomerID string `json:"customer_id" doc:"the customer owning the subject; empty when none does"`
	Subject    string `json:"subject"`
	Value      string `json:"value" doc:"the day's usage"`
	Baseline   string `json:"baseline_median" doc:"the median daily usage of the days before"`
}

// UsageSpikes are a point's spikes.
type UsageSpikes []UsageSpike

// String is the CSV form: day:customer_id:subject:value:baseline_median;….
func (u UsageSpikes) String() string {
	parts := make([]string, len(u))
	for i, a := range u {
		parts[i] = strings.Join([]string{a.Day, a.CustomerID, a.Subject, a.Value, a.Baseline}, ":")
	}
	return strings.Join(parts, ";")
}

// UsageCustomer is one subject's usage in a point and the customer that
// owns it ("" when none does).
type UsageCustomer struct {
	CustomerID string `json:"customer_id"`
	Subject    string `json:"subject"`
	Value      string `json:"value"`
}

// UsageCustomers are a point's top customers.
type UsageCustomers []UsageCustomer

// String is the CSV form: customer_id:subject:value;….
func (u UsageCustomers) String() string {
	parts := make([]string, len(u))
	for i, c := range u {
		parts[i] = c.CustomerID + ":" + c.Subject + ":" + c.Value
	}
	return strings.Join(parts, ";")
}

// UsageTrends answers per meter and interval the total, the previous
// interval's, the growth and the top customers. Errors:
// "invalid_analytics_query" naming the parameter (an unknown meter is
// "meter"); "usage_unavailable" without metering.
func (s *Service) UsageTrends(ctx context.Context, q UsageQuery) ([]UsagePoint, error) {
	w, err := parse(q.Query, dayOf(s.clock.Now()), "day", "week", "month")
	var v abacus.Validation
	if q.Top < 0 || q.Top > maxTop {
		v.Add("top", "must be between 0 and %d", maxTop)
	}
	if err == nil {
		err = v.Err("invalid_analytics_query")
	}
	if err != nil {
		return nil, err
	}
	if q.Top == 0 {
		q.Top = 5
	}
	if s.ports.Usage == nil {
		return nil, abacus.Errorf(abacus.KindUnavailable, "usage_unavailable", "metering does not run in this process")
	}
	meters, err := s.meters(ctx, q.Meter)
	if err != nil {
		return nil, err
	}
	spans := append([][2]int{w.previous()}, w.buckets()...)
	owners := map[string]string{}
	out := []UsagePoint{}
	for _, m := range meters {
		totals, err := s.usageIn(ctx, m.ID, w.interval, spans, false)
		if err != nil {
			return nil, err
		}
		bySubject, err := s.usageIn(ctx, m.ID, w.interval, spans, true)
		if err != nil {
			return nil, err
		}
		spikes, err := s.spikesOf(ctx, m.Slug, w, owners)
		if err != nil {
			return nil, err
		}
		for i, sp := range spans[1:] {
			cur, prev := totals[i+1][""], totals[i][""]
			p := UsagePoint{Meter: m.Slug, Aggregation: string(m.Aggregation), Start: dateOf(sp[0]).Format(dateLayout),
				Date: dateOf(sp[1]).Format(dateLayout), Total: cur.String(), Previous: prev.String()}
			if !prev.IsZero() {
				p.Growth = cur.Sub(prev).DivRound(prev, 8).StringFixed(4)
			}
			if p.TopCustomers, err = s.top(ctx, bySubject[i+1], q.Top, owners); err != nil {
				return nil, err
			}
			p.Alerts = UsageSpikes{}
			for _, sp := range spikes {
				if day := dayOf(mustDate(sp.Day)); day >= spans[i+1][0] && day <= spans[i+1][1] {
					p.Alerts = append(p.Alerts, sp)
				}
			}
			out = append(out, p)
		}
	}
	return out, nil
}

// spikesOf reads meter's spikes over the window, each with the customer
// owning its subject; none when the risk module's answers are not wired.
func (s *Service) spikesOf(ctx context.Context, meter string, w window, owners map[string]string) ([]UsageSpike, error) {
	if s.ports.Spikes == nil {
		return nil, nil
	}
	spikes, err := s.ports.Spikes.UsageSpikes(ctx, meter, dateOf(w.from), dateOf(w.to))
	if err != nil {
		return nil, err
	}
	for i := range spikes {
		if spikes[i].CustomerID, err = s.ownerOf(ctx, spikes[i].Subject, owners); err != nil {
			return nil, err
		}
	}
	return spikes, nil
}

// mustDate parses a day the service itself formatted.
func mustDate(day string) time.Time {
	t, _ := time.Parse(dateLayout, day)
	return t
}

// previous is the interval before the window's first: the day, ISO week
// or calendar month before it.
func (w window) previous() [2]int {
	t := dateOf(w.from)
	switch w.interval {
	case "month":
		first := time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
		return [2]int{dayOf(first.AddDate(0, -1, 0)), dayOf(first) - 1}
	case "week":
		monday := w.from - (int(t.Weekday())+6)%7
		return [2]int{monday - 7, monday - 1}
	}
	return [2]int{w.from - 1, w.from - 1}
}

// meters returns the meter idOrSlug names, or every meter for "".
func (s *Service) meters(ctx context.Context, idOrSlug string) ([]usage.MeterRecord, error) {
	all, err := s.ports.Usage.ListMeters(ctx)
	if err != nil {
		return nil, err
	}
	if idOrSlug == "" {
		sort.Slice(all, func(i, j int) bool { return all[i].Slug < all[j].Slug })
		return all, nil
	}
	for _, m := range all {
		if m.ID == idOrSlug || m.Slug == idOrSlug {
			return []usage.MeterRecord{m}, nil
		}
	}
	var v abacus.Validation
	v.Add("meter", "no meter %q; use a meter's id or slug (GET /api/v1/meters)", idOrSlug)
	return nil, v.Err("invalid_analytics_query")
}

// usageIn reads meter's value in each span, per subject when bySubject
// ("" the total otherwise). After the first span (the interval before the
// window, read alone), days and months are read in one windowed query
// (metering's windows are UTC days and calendar months, clipped to the
// range, so a first month that starts mid-month counts from its start);
// weeks one query per span. Each value is the meter's own aggregation
// over the span, never a sum of smaller windows.
func (s *Service) usageIn(ctx context.Context, meter, interval string, spans [][2]int, bySubject bool) ([]map[string]decimal.Decimal, error) {
	out := make([]map[string]decimal.Decimal, len(spans))
	index := map[int]int{}
	for i, sp := range spans {
		out[i] = map[string]decimal.Decimal{}
		index[sp[0]] = i
	}
	query := func(from, to int, size metering.WindowSize, only int) error {
		f, t := dateOf(from), dateOf(to+1)
		p := usage.QueryParams{From: &f, To: &t, WindowSize: size}
		if bySubject {
			p.GroupBy = []string{"subject"}
		}
		res, _, err := s.ports.Usage.Query(ctx, meter, p)
		if err != nil {
			return fmt.Errorf("reading usage of meter %s: %w", meter, err)
		}
		for _, win := range res.Data {
			j, ok := only, only >= 0
			if !ok {
				j, ok = index[max(dayOf(win.WindowStart), from)]
			}
			if !ok {
				continue
			}
			sub := ""
			if win.Subject != nil {
				sub = *win.Subject
			}
			out[j][sub] = win.Value
		}
		return nil
	}
	var err error
	switch interval {
	case "day":
		err = query(spans[1][0], spans[len(spans)-1][1], metering.WindowDay, -1)
	case "month":
		err = query(spans[1][0], spans[len(spans)-1][1], metering.WindowMonth, -1)
	default:
		for i := 1; i < len(spans) && err == nil; i++ {
			err = query(spans[i][0], spans[i][1], "", i)
		}
	}
	if err == nil {
		err = query(spans[0][0], spans[0][1], "", 0)
	}
	return out, err
}

// top returns the n subjects of values with the highest values, with
// their customers (owners caches subject → customer id).
func (s *Service) top(ctx context.Context, values map[string]decimal.Decimal, n int, owners map[string]string) (UsageCustomers, error) {
	subs := make([]string, 0, len(values))
	for sub, v := range values {
		if v.IsPositive() {
			subs = append(subs, sub)
		}
	}
	sort.Slice(subs, func(i, j int) bool {
		if c := values[subs[i]].Cmp(values[subs[j]]); c != 0 {
			return c > 0
		}
		return subs[i] < subs[j]
	})
	out := UsageCustomers{}
	for _, sub := range subs[:min(n, len(subs))] {
		id, err := s.ownerOf(ctx, sub, owners)
		if err != nil {
			return nil, err
		}
		out = append(out, UsageCustomer{CustomerID: id, Subject: sub, Value: values[sub].String()})
	}
	return out, nil
}

// ownerOf is the customer owning subject ("" when none does), through
// owners, a cache for one answer.
func (s *Service) ownerOf(ctx context.Context, sub string, owners map[string]string) (string, error) {
	if id, ok := owners[sub]; ok || s.ports.Owners == nil {
		return id, nil
	}
	c, err := s.ports.Owners.CustomerBySubject(ctx, sub)
	if err != nil && abacus.ErrorKind(err) != abacus.KindNotFound {
		return "", err
	}
	owners[sub] = c.ID
	return c.ID, nil
}
