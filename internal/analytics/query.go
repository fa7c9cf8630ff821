package analytics

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/money"
)

// Query selects a series: dates YYYY-MM-DD (UTC), an interval and a
// currency ("" = every currency with figures). See docs/analytics.md for
// the defaults.
type Query struct {
	From     string
	To       string
	Interval string
	Currency string
	// ConvertTo (MRR and revenue) adds a converted total in that currency
	// at the tenant's FX rates (fx.go).
	ConvertTo string
}

// maxRangeYears bounds a query's range.
const maxRangeYears = 10

// window is a parsed Query.
type window struct {
	from, to  int // days, inclusive
	interval  string
	currency  string
	convertTo string
}

const dateLayout = "2006-01-02"

// parse validates q against today. Errors: "invalid_analytics_query"
// naming each bad parameter.
func parse(q Query, today int, intervals ...string) (window, error) {
	var v abacus.Validation
	w := window{interval: q.Interval, to: today}
	if w.interval == "" {
		w.interval = "month"
	}
	okInterval := false
	for _, i := range intervals {
		okInterval = okInterval || i == w.interval
	}
	if !okInterval {
		v.Add("interval", "unknown interval %q; use %s", q.Interval, strings.Join(intervals, " or "))
	}
	date := func(field, s string) (int, bool) {
		t, err := time.Parse(dateLayout, s)
		if err != nil {
			v.Add(field, "%q is not a date; use YYYY-MM-DD", s)
			return 0, false
		}
		return dayOf(t), true
	}
	fromOK, toOK := true, true
	if q.To != "" {
		w.to, toOK = date("to", q.To)
	}
	toTime := dateOf(w.to)
	switch {
	case q.From != "":
		w.from, fromOK = date("from", q.From)
	case w.interval == "day":
		w.from = w.to - 30
	case w.interval == "week":
		w.from = dayOf(toTime.AddDate(0, 0, -7*12))
	default:
		w.from = dayOf(toTime.AddDate(0, -12, 0))
	}
	if fromOK && toOK {
		switch {
		case w.from > w.to:
			v.Add("from", "%s is after to (%s)", dateOf(w.from).Format(dateLayout), toTime.Format(dateLayout))
		case w.from < dayOf(toTime.AddDate(-maxRangeYears, 0, 0)):
			v.Add("from", "the range from %s to %s is over %d years; ask for at most %d years", dateOf(w.from).Format(dateLayout),
				toTime.Format(dateLayout), maxRangeYears, maxRangeYears)
		}
	}
	if q.Currency != "" {
		if c, err := money.LookupCurrency(q.Currency); err == nil {
			w.currency = c.Code
		} else {
			v.Add("currency", "unknown currency %q; use an ISO 4217 code such as EUR or USD", q.Currency)
		}
	}
	if q.ConvertTo != "" {
		if c, err := money.LookupCurrency(q.ConvertTo); err == nil {
			w.convertTo = c.Code
		} else {
			v.Add("convert_to", "unknown currency %q; use an ISO 4217 code such as EUR or USD", q.ConvertTo)
		}
	}
	return w, v.Err("invalid_analytics_query")
}

// bucket is one point of a series: the days [start, end], the sums of
// their daily rows, and the running figures before and at its end.
type bucket struct {
	currency                     string
	start, end                   int
	sum                          dayRow
	startMRR, endMRR             decimal.Decimal
	startCustomers, endCustomers int
	endOutstanding               decimal.Decimal
	// trailingUsage is the usage invoiced in the month up to end
	// (monthBefore(end), end].
	trailingUsage decimal.Decimal
}

// monthBefore is the same date a month before day, or that month's last
// day when it has no such date (31 March → 28 February): the day before a
// trailing month ending on day starts.
func monthBefore(day int) int {
	t := dateOf(day)
	first := time.Date(t.Year(), t.Month()-1, 1, 0, 0, 0, 0, time.UTC)
	last := first.AddDate(0, 1, -1).Day()
	return dayOf(first.AddDate(0, 0, min(t.Day(), last)-1))
}

// buckets splits the window into points: days, ISO weeks (Monday first)
// or calendar months, clipped to the window; each dated by its end.
func (w window) buckets() [][2]int {
	var out [][2]int
	for d := w.from; d <= w.to; {
		end := d
		t := dateOf(d)
		switch w.interval {
		case "month":
			end = dayOf(time.Date(t.Year(), t.Month()+1, 1, 0, 0, 0, 0, time.UTC)) - 1
		case "week":
			end = d + (7-int(t.Weekday()))%7 // to Sunday
		}
		end = min(end, w.to)
		out = append(out, [2]int{d, end})
		d = end + 1
	}
	return out
}

// series answers the window's buckets per currency (by code): a day
// series reads the tenant's daily rows up to the window's end and folds
// them; a week or month series reads the running totals at the points'
// boundaries (seriesFromRunning).
func (s *Service) series(ctx context.Context, w window) ([]bucket, error) {
	if w.interval != "day" {
		return s.seriesFromRunning(ctx, w)
	}
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return nil, err
	}
	query := `SELECT currency, day, ` + dayCols + ` FROM analytics_daily WHERE tenant_id = $1 AND day <= $2`
	args := []any{tenant, w.to}
	if w.currency != "" {
		query += ` AND currency = $3`
		args = append(args, w.currency)
	}
	rows, err := s.db.QueryContext(ctx, query+` ORDER BY currency, day`, args...)
	if err != nil {
		return nil, fmt.Errorf("reading analytics: %w", err)
	}
	defer rows.Close()
	type at struct {
		day int
		row dayRow
	}
	byCur := map[string][]at{}
	for rows.Next() {
		var cur string
		var day int
		r, err := scanDay(rows.Scan, &cur, &day)
		if err != nil {
			return nil, fmt.Errorf("reading analytics: %w", err)
		}
		byCur[cur] = append(byCur[cur], at{day, r})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading analytics: %w", err)
	}
	if w.currency != "" && byCur[w.currency] == nil {
		byCur[w.currency] = nil
	}
	currencies := make([]string, 0, len(byCur))
	for c := range byCur {
		currencies = append(currencies, c)
	}
	sort.Strings(currencies)
	spans := w.buckets()
	var out []bucket
	for _, cur := range currencies {
		days := byCur[cur]
		// usageTo(d): the usage invoiced up to the end of day d.
		cum := make([]decimal.Decimal, len(days))
		for i, d := range days {
			cum[i] = d.row.usage
			if i > 0 {
				cum[i] = cum[i].Add(cum[i-1])
			}
		}
		usageTo := func(day int) decimal.Decimal {
			n := sort.Search(len(days), func(i int) bool { return days[i].day > day })
			if n == 0 {
				return decimal.Zero
			}
			return cum[n-1]
		}
		i := 0
		mrr, customers, outstanding := decimal.Zero, 0, decimal.Zero
		for _, sp := range spans {
			// Everything before the bucket: the running figures.
			for ; i < len(days) && days[i].day < sp[0]; i++ {
				mrr, customers, outstanding = runOn(days[i].row, mrr, customers, outstanding)
			}
			b := bucket{currency: cur, start: sp[0], end: sp[1], startMRR: mrr, startCustomers: customers}
			for ; i < len(days) && days[i].day <= sp[1]; i++ {
				mrr, customers, outstanding = runOn(days[i].row, mrr, customers, outstanding)
				b.sum = b.sum.plus(days[i].row)
			}
			b.endMRR, b.endCustomers, b.endOutstanding = mrr, customers, outstanding
			b.trailingUsage = usageTo(sp[1]).Sub(usageTo(monthBefore(sp[1])))
			out = append(out, b)
		}
	}
	return out, nil
}

// runOn adds a day's changes to the running MRR, paying customers and
// outstanding amount.
func runOn(r dayRow, mrr decimal.Decimal, customers int, outstanding decimal.Decimal) (decimal.Decimal, int, decimal.Decimal) {
	mrr = mrr.Add(r.newMRR).Add(r.expansion).Add(r.contraction).Add(r.churn).Add(r.reactivation)
	return mrr, customers + r.newCustomers + r.reactivated - r.churned, outstanding.Add(r.outstanding)
}

func (d dayRow) plus(o dayRow) dayRow {
	d.newMRR, d.expansion, d.contraction = d.newMRR.Add(o.newMRR), d.expansion.Add(o.expansion), d.contraction.Add(o.contraction)
	d.churn, d.reactivation = d.churn.Add(o.churn), d.reactivation.Add(o.reactivation)
	d.newCustomers, d.reactivated, d.churned = d.newCustomers+o.newCustomers, d.reactivated+o.reactivated, d.churned+o.churned
	d.trialsStarted, d.trialsConverted, d.trialsLapsed = d.trialsStarted+o.trialsStarted, d.trialsConverted+o.trialsConverted, d.trialsLapsed+o.trialsLapsed
	d.invoiced, d.collected, d.refunded = d.invoiced.Add(o.invoiced), d.collected.Add(o.collected), d.refunded.Add(o.refunded)
	d.outstanding, d.usage = d.outstanding.Add(o.outstanding), d.usage.Add(o.usage)
	return d
}

func (b bucket) date() string { return dateOf(b.end).Format(dateLayout) }

// mrrString formats an MRR figure (4 places).
func mrrString(d decimal.Decimal) string { return d.StringFixed(mrrPlaces) }

// ratio is a ÷ b to 4 places, "0.0000" when b is 0.
func ratio(a, b decimal.Decimal) string {
	if b.IsZero() {
		return decimal.Zero.StringFixed(4)
	}
	return a.DivRound(b, 8).StringFixed(4)
}

// amount formats a money amount to its currency's places.
func amount(d decimal.Decimal, currency string) string {
	c, err := money.LookupCurrency(currency)
	if err != nil {
		return d.String()
	}
	return d.StringFixed(c.Exponent)
}

// MRRPoint is one point of the MRR series (docs/analytics.md).
type MRRPoint struct {
	Date         string `json:"date" doc:"the last day of the point (YYYY-MM-DD, UTC)"`
	Currency     string `json:"currency"`
	MRR          string `json:"mrr" doc:"MRR at the end of date"`
	ARR          string `json:"arr" doc:"12 × mrr"`
	New          string `json:"new"`
	Expansion    string `json:"expansion"`
	Contraction  string `json:"contraction" doc:"negative"`
	Churn        string `json:"churn" doc:"negative"`
	Reactivation string `json:"reactivation"`
	Customers    int    `json:"customers" doc:"paying customers (MRR > 0) at the end of date"`
	ARPA         string `json:"arpa" doc:"mrr ÷ customers"`
	UsageRevenue string `json:"usage_revenue" doc:"usage invoiced in the month up to date (net of tax): reported beside MRR, never part of it"`
	FXMark
}

// FXMark marks a point of a converted total (convert_to): a sum of every
// currency's figures at the tenant's FX rates, never a figure of its own
// currency. Points of a currency's own figures have Converted false.
type FXMark struct {
	Converted  bool   `json:"converted" doc:"true on a converted total (convert_to): every currency's figures at the tenant's FX rates, summed"`
	FXRates    string `json:"fx_rates,omitempty" doc:"converted totals only: the rates used, FROM:rate (1 FROM = rate of currency) joined by ;"`
	FXRounding string `json:"fx_rounding,omitempty" doc:"converted totals only: how each sum was rounded"`
}

func (c *converter) mark() FXMark {
	return FXMark{Converted: true, FXRates: c.label, FXRounding: string(c.rounding)}
}

// MRR answers the MRR series with its movements. Errors:
// "invalid_analytics_query" naming the parameter.
func (s *Service) MRR(ctx context.Context, q Query) ([]MRRPoint, error) {
	w, err := parse(q, dayOf(s.clock.Now()), "day", "month")
	if err != nil {
		return nil, err
	}
	bs, err := s.series(ctx, w)
	if err != nil {
		return nil, err
	}
	out := make([]MRRPoint, 0, len(bs))
	for _, b := range bs {
		out = append(out, MRRPoint{Date: b.date(), Currency: b.currency, MRR: mrrString(b.endMRR),
			ARR: mrrString(b.endMRR.Mul(decimal.NewFromInt(12))), New: mrrString(b.sum.newMRR),
			Expansion: mrrString(b.sum.expansion), Contraction: mrrString(b.sum.contraction), Churn: mrrString(b.sum.churn),
			Reactivation: mrrString(b.sum.reactivation), Customers: b.endCustomers,
			ARPA: arpa(b.endMRR, b.endCustomers), UsageRevenue: amount(b.trailingUsage, b.currency)})
	}
	if w.convertTo == "" {
		return out, nil
	}
	c, err := s.converterTo(ctx, w.convertTo, currenciesOf(bs))
	if err != nil {
		return nil, err
	}
	for _, sp := range convertBuckets(bs, c, []int32{mrrPlaces, mrrPlaces, mrrPlaces, mrrPlaces, mrrPlaces, mrrPlaces, c.places},
		func(b bucket) []decimal.Decimal {
			return []decimal.Decimal{b.endMRR, b.sum.newMRR, b.sum.expansion, b.sum.contraction, b.sum.churn, b.sum.reactivation, b.trailingUsage}
		}) {
		v, customers := sp.values, sp.b.endCustomers
		out = append(out, MRRPoint{Date: sp.b.date(), Currency: c.to, MRR: mrrString(v[0]), ARR: mrrString(v[0].Mul(decimal.NewFromInt(12))),
			New: mrrString(v[1]), Expansion: mrrString(v[2]), Contraction: mrrString(v[3]), Churn: mrrString(v[4]), Reactivation: mrrString(v[5]),
			Customers: customers, ARPA: arpa(v[0], customers), UsageRevenue: amount(v[6], c.to), FXMark: c.mark()})
	}
	return out, nil
}

func arpa(mrr decimal.Decimal, customers int) string {
	if customers == 0 {
		return mrrString(decimal.Zero)
	}
	return mrr.DivRound(decimal.NewFromInt(int64(customers)), mrrPlaces).StringFixed(mrrPlaces)
}
