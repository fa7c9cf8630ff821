package analytics

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/shopspring/decimal"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/payments"
)

// CustomersPoint is one point of the customers series.
type CustomersPoint struct {
	Date                 string `json:"date"`
	Currency             string `json:"currency"`
	Customers            int    `json:"customers" doc:"paying customers (MRR > 0) at the end of date"`
	NewCustomers         int    `json:"new_customers"`
	ReactivatedCustomers int    `json:"reactivated_customers"`
	ChurnedCustomers     int    `json:"churned_customers"`
	LogoChurnRate        string `json:"logo_churn_rate" doc:"churned_customers ÷ paying customers before the point"`
	ARPA                 string `json:"arpa"`
	TrialsStarted        int    `json:"trials_started"`
	TrialsConverted      int    `json:"trials_converted"`
	TrialsLapsed         int    `json:"trials_lapsed"`
	TrialConversionRate  string `json:"trial_conversion_rate" doc:"trials_converted ÷ (trials_converted + trials_lapsed)"`
}

// Customers answers paying customers, logo churn, ARPA and trials.
// Errors: "invalid_analytics_query".
func (s *Service) Customers(ctx context.Context, q Query) ([]CustomersPoint, error) {
	bs, err := s.seriesOf(ctx, q, "day", "month")
	if err != nil {
		return nil, err
	}
	out := make([]CustomersPoint, 0, len(bs))
	for _, b := range bs {
		ended := b.sum.trialsConverted + b.sum.trialsLapsed
		out = append(out, CustomersPoint{Date: b.date(), Currency: b.currency, Customers: b.endCustomers,
			NewCustomers: b.sum.newCustomers, ReactivatedCustomers: b.sum.reactivated, ChurnedCustomers: b.sum.churned,
			LogoChurnRate: ratio(decimal.NewFromInt(int64(b.sum.churned)), decimal.NewFromInt(int64(b.startCustomers))),
			ARPA:          arpa(b.endMRR, b.endCustomers), TrialsStarted: b.sum.trialsStarted, TrialsConverted: b.sum.trialsConverted,
			TrialsLapsed: b.sum.trialsLapsed, TrialConversionRate: ratio(decimal.NewFromInt(int64(b.sum.trialsConverted)), decimal.NewFromInt(int64(ended)))})
	}
	return out, nil
}

// ChurnPoint is one point of the churn series.
type ChurnPoint struct {
	Date                  string `json:"date"`
	Currency              string `json:"currency"`
	StartMRR              string `json:"start_mrr" doc:"MRR at the end of the day before the point"`
	StartCustomers        int    `json:"start_customers"`
	ChurnedCustomers      int    `json:"churned_customers"`
	LogoChurnRate         string `json:"logo_churn_rate"`
	Churn                 string `json:"churn"`
	Contraction           string `json:"contraction"`
	Expansion             string `json:"expansion"`
	Reactivation          string `json:"reactivation"`
	GrossRevenueChurnRate string `json:"gross_revenue_churn_rate" doc:"−(churn + contraction) ÷ start_mrr"`
	NetRevenueChurnRate   string `json:"net_revenue_churn_rate" doc:"−(churn + contraction + expansion + reactivation) ÷ start_mrr"`
}

// Churn answers logo churn and gross and net revenue churn. Errors:
// "invalid_analytics_query".
func (s *Service) Churn(ctx context.Context, q Query) ([]ChurnPoint, error) {
	bs, err := s.seriesOf(ctx, q, "day", "month")
	if err != nil {
		return nil, err
	}
	out := make([]ChurnPoint, 0, len(bs))
	for _, b := range bs {
		lost := b.sum.churn.Add(b.sum.contraction).Neg()
		net := lost.Sub(b.sum.expansion).Sub(b.sum.reactivation)
		out = append(out, ChurnPoint{Date: b.date(), Currency: b.currency, StartMRR: mrrString(b.startMRR), StartCustomers: b.startCustomers,
			ChurnedCustomers: b.sum.churned, LogoChurnRate: ratio(decimal.NewFromInt(int64(b.sum.churned)), decimal.NewFromInt(int64(b.startCustomers))),
			Churn: mrrString(b.sum.churn), Contraction: mrrString(b.sum.contraction), Expansion: mrrString(b.sum.expansion),
			Reactivation: mrrString(b.sum.reactivation), GrossRevenueChurnRate: ratio(lost, b.startMRR), NetRevenueChurnRate: ratio(net, b.startMRR)})
	}
	return out, nil
}

// RevenuePoint is one point of the revenue series.
type RevenuePoint struct {
	Date        string `json:"date"`
	Currency    string `json:"currency"`
	Invoiced    string `json:"invoiced" doc:"totals of invoices finalized in the point, tax included"`
	Collected   string `json:"collected" doc:"succeeded payments"`
	Refunded    string `json:"refunded"`
	Outstanding string `json:"outstanding" doc:"amount due on open invoices at the end of date"`
	Usage       string `json:"usage" doc:"the usage lines (net of tax) of the invoices finalized in the point: part of invoiced"`
	FXMark
}

// Revenue answers invoiced, collected, refunded and outstanding. Errors:
// "invalid_analytics_query".
func (s *Service) Revenue(ctx context.Context, q Query) ([]RevenuePoint, error) {
	w, err := parse(q, dayOf(s.clock.Now()), "day", "month")
	if err != nil {
		return nil, err
	}
	bs, err := s.series(ctx, w)
	if err != nil {
		return nil, err
	}
	out := make([]RevenuePoint, 0, len(bs))
	for _, b := range bs {
		out = append(out, RevenuePoint{Date: b.date(), Currency: b.currency, Invoiced: amount(b.sum.invoiced, b.currency),
			Collected: amount(b.sum.collected, b.currency), Refunded: amount(b.sum.refunded, b.currency),
			Outstanding: amount(b.endOutstanding, b.currency), Usage: amount(b.sum.usage, b.currency)})
	}
	if w.convertTo == "" {
		return out, nil
	}
	c, err := s.converterTo(ctx, w.convertTo, currenciesOf(bs))
	if err != nil {
		return nil, err
	}
	for _, sp := range convertBuckets(bs, c, []int32{c.places, c.places, c.places, c.places, c.places}, func(b bucket) []decimal.Decimal {
		return []decimal.Decimal{b.sum.invoiced, b.sum.collected, b.sum.refunded, b.endOutstanding, b.sum.usage}
	}) {
		v := sp.values
		out = append(out, RevenuePoint{Date: sp.b.date(), Currency: c.to, Invoiced: amount(v[0], c.to), Collected: amount(v[1], c.to),
			Refunded: amount(v[2], c.to), Outstanding: amount(v[3], c.to), Usage: amount(v[4], c.to), FXMark: c.mark()})
	}
	return out, nil
}

func (s *Service) seriesOf(ctx context.Context, q Query, intervals ...string) ([]bucket, error) {
	w, err := parse(q, dayOf(s.clock.Now()), intervals...)
	if err != nil {
		return nil, err
	}
	return s.series(ctx, w)
}

// RetentionPoint is one point of the retention series.
type RetentionPoint struct {
	Date                  string `json:"date"`
	Currency              string `json:"currency"`
	CohortCustomers       int    `json:"cohort_customers" doc:"customers with MRR > 0 twelve months before date"`
	BaseMRR               string `json:"base_mrr" doc:"their MRR then"`
	RetainedMRR           string `json:"retained_mrr" doc:"their MRR at date"`
	GrossRetainedMRR      string `json:"gross_retained_mrr" doc:"Σ min(MRR at date, MRR then)"`
	NetRevenueRetention   string `json:"net_revenue_retention"`
	GrossRevenueRetention string `json:"gross_revenue_retention"`
}

// Retention answers 12-month net and gross revenue retention per month.
// Errors: "invalid_analytics_query".
func (s *Service) Retention(ctx context.Context, q Query) ([]RetentionPoint, error) {
	w, err := parse(q, dayOf(s.clock.Now()), "month")
	if err != nil {
		return nil, err
	}
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return nil, err
	}
	query := `SELECT currency, customer_id, day, mrr FROM analytics_customer_days WHERE tenant_id = $1 AND day <= $2`
	args := []any{tenant, w.to}
	if w.currency != "" {
		query += ` AND currency = $3`
		args = append(args, w.currency)
	}
	rows, err := s.db.QueryContext(ctx, query+` ORDER BY currency, customer_id, day`, args...)
	if err != nil {
		return nil, fmt.Errorf("reading retention: %w", err)
	}
	defer rows.Close()
	type change struct {
		day int
		mrr decimal.Decimal
	}
	hist := map[string]map[string][]change{} // currency → customer → changes by day
	for rows.Next() {
		var cur, cus, m string
		var day int
		if err := rows.Scan(&cur, &cus, &day, &m); err != nil {
			return nil, fmt.Errorf("reading retention: %w", err)
		}
		v, err := dec(m)
		if err != nil {
			return nil, err
		}
		if hist[cur] == nil {
			hist[cur] = map[string][]change{}
		}
		hist[cur][cus] = append(hist[cur][cus], change{day, v})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading retention: %w", err)
	}
	if w.currency != "" && hist[w.currency] == nil {
		hist[w.currency] = map[string][]change{}
	}
	at := func(cs []change, day int) decimal.Decimal {
		i := sort.Search(len(cs), func(i int) bool { return cs[i].day > day })
		if i == 0 {
			return decimal.Zero
		}
		return cs[i-1].mrr
	}
	currencies := make([]string, 0, len(hist))
	for c := range hist {
		currencies = append(currencies, c)
	}
	sort.Strings(currencies)
	var out []RetentionPoint
	for _, cur := range currencies {
		for _, sp := range w.buckets() {
			end := dateOf(sp[1])
			then := dayOf(end.AddDate(-1, 0, 0))
			p := RetentionPoint{Date: end.Format(dateLayout), Currency: cur}
			base, now, gross := decimal.Zero, decimal.Zero, decimal.Zero
			for _, cs := range hist[cur] {
				b := at(cs, then)
				if !b.IsPositive() {
					continue
				}
				n := at(cs, sp[1])
				p.CohortCustomers++
				base, now, gross = base.Add(b), now.Add(n), gross.Add(decimal.Min(b, n))
			}
			p.BaseMRR, p.RetainedMRR, p.GrossRetainedMRR = mrrString(base), mrrString(now), mrrString(gross)
			p.NetRevenueRetention, p.GrossRevenueRetention = ratio(now, base), ratio(gross, base)
			out = append(out, p)
		}
	}
	return out, nil
}

// CustomerFigures is what analytics knows of one customer.
type CustomerFigures struct {
	CustomerID string                    `json:"customer_id"`
	Currencies []CustomerAmount          `json:"currencies" doc:"per currency the customer has figures in"`
	Balance    *payments.CustomerBalance `json:"balance,omitempty" doc:"the payments module's balance (GET /api/v1/customers/{id}/balance): due, overdue, credits, net and the invoices behind it"`
	Usage      []QuotaUsage              `json:"usage" doc:"usage against each metered or limited feature the customer is entitled to, this period"`
	Devices    *CustomerDevices          `json:"devices,omitempty" doc:"connected devices of the customer's end users (absent without end users in this process)"`
	AsOf       string                    `json:"as_of" doc:"now, RFC 3339"`
}

// QuotaUsage is a customer's usage of one feature against its limit.
type QuotaUsage struct {
	Feature     string  `json:"feature"`
	Limit       *string `json:"limit" doc:"null: unlimited"`
	Used        string  `json:"used"`
	Remaining   *string `json:"remaining" doc:"null: unlimited"`
	Share       *string `json:"share" doc:"used ÷ limit, 4 places; null when unlimited"`
	PeriodStart string  `json:"period_start,omitempty"`
	PeriodEnd   string  `json:"period_end,omitempty"`
}

// CustomerAmount is a customer's MRR and lifetime value in one currency.
type CustomerAmount struct {
	Currency      string `json:"currency"`
	MRR           string `json:"mrr"`
	ARR           string `json:"arr"`
	Collected     string `json:"collected"`
	Refunded      string `json:"refunded"`
	LifetimeValue string `json:"lifetime_value" doc:"collected − refunded so far"`
}

// Customer answers customer id's MRR, lifetime value so far and balance.
// id is the customer's id as the events carry it. Errors:
// "customer_not_found" when analytics knows nothing of it and no balance
// says otherwise.
func (s *Service) Customer(ctx context.Context, id string) (CustomerFigures, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return CustomerFigures{}, err
	}
	out := CustomerFigures{CustomerID: id, Currencies: []CustomerAmount{}, Usage: []QuotaUsage{}, AsOf: s.clock.Now().Format(time.RFC3339)}
	if s.ports.Balances != nil {
		b, err := s.ports.Balances.Balance(ctx, id)
		if err != nil {
			return out, err
		}
		out.CustomerID = b.CustomerID
		out.Balance = &b
	}
	rows, err := s.db.QueryContext(ctx, `SELECT currency, mrr, collected, refunded FROM analytics_customers
		WHERE tenant_id = $1 AND customer_id = $2 ORDER BY currency`, tenant, out.CustomerID)
	if err != nil {
		return out, fmt.Errorf("reading customer %s: %w", id, err)
	}
	defer rows.Close()
	for rows.Next() {
		var cur, m, col, ref string
		if err := rows.Scan(&cur, &m, &col, &ref); err != nil {
			return out, fmt.Errorf("reading customer %s: %w", id, err)
		}
		ds, err := decs(&m, &col, &ref)
		if err != nil {
			return out, err
		}
		out.Currencies = append(out.Currencies, CustomerAmount{Currency: cur, MRR: mrrString(ds[0]),
			ARR: mrrString(ds[0].Mul(decimal.NewFromInt(12))), Collected: amount(ds[1], cur), Refunded: amount(ds[2], cur),
			LifetimeValue: amount(ds[1].Sub(ds[2]), cur)})
	}
	if err := rows.Err(); err != nil {
		return out, fmt.Errorf("reading customer %s: %w", id, err)
	}
	if out.Balance == nil && len(out.Currencies) == 0 {
		return out, abacus.Errorf(abacus.KindNotFound, "customer_not_found", "analytics has no figures for customer %q", id)
	}
	return out, s.customerUsage(ctx, &out)
}

// customerUsage adds the customer's quotas and devices, from the ports
// that are wired.
func (s *Service) customerUsage(ctx context.Context, out *CustomerFigures) error {
	if s.ports.Entitlements != nil {
		ents, err := s.ports.Entitlements.Entitlements(ctx, out.CustomerID)
		if err != nil {
			return err
		}
		for _, e := range ents {
			if e.Used == nil && e.Limit == nil {
				continue // a boolean or static feature: no usage
			}
			q := QuotaUsage{Feature: e.Feature, Used: "0", Limit: decString(e.Limit), Remaining: decString(e.Remaining)}
			if e.Used != nil {
				q.Used = e.Used.String()
			}
			if e.Limit != nil && e.Used != nil {
				q.Share = new(ratio(*e.Used, *e.Limit))
			}
			if e.PeriodStart != nil && e.PeriodEnd != nil {
				q.PeriodStart, q.PeriodEnd = e.PeriodStart.UTC().Format(time.RFC3339), e.PeriodEnd.UTC().Format(time.RFC3339)
			}
			out.Usage = append(out.Usage, q)
		}
	}
	if s.ports.Devices != nil {
		d, err := s.ports.Devices.CustomerDevices(ctx, out.CustomerID)
		if err != nil {
			return err
		}
		out.Devices = &d
	}
	return nil
}

func decString(d *decimal.Decimal) *string {
	if d == nil {
		return nil
	}
	return new(d.String())
}

// AgingPoint is one currency's receivables by days past due.
type AgingPoint struct {
	Currency   string `json:"currency"`
	Current    string `json:"current" doc:"not yet due"`
	Days1To30  string `json:"days_1_30"`
	Days31To60 string `json:"days_31_60"`
	Days61To90 string `json:"days_61_90"`
	Over90     string `json:"over_90"`
	Total      string `json:"total"`
	Invoices   int    `json:"invoices"`
}

// Aging answers the accounts-receivable aging (the payments module's
// report) per currency, currency "" for all. Errors: "invalid_analytics_query"
// for an unknown currency; "unavailable" without the payments module.
func (s *Service) Aging(ctx context.Context, currency string) ([]AgingPoint, error) {
	w, err := parse(Query{Currency: currency}, dayOf(s.clock.Now()), "month")
	if err != nil {
		return nil, err
	}
	if s.ports.Aging == nil {
		return nil, abacus.Errorf(abacus.KindUnavailable, "aging_unavailable", "the payments module does not run in this process")
	}
	a, err := s.ports.Aging.AgingReport(ctx)
	if err != nil {
		return nil, err
	}
	out := []AgingPoint{}
	for _, b := range a.Currencies {
		if w.currency != "" && b.Currency != w.currency {
			continue
		}
		c := b.Currency
		out = append(out, AgingPoint{Currency: c, Current: amount(b.Current, c), Days1To30: amount(b.Days1To30, c),
			Days31To60: amount(b.Days31To60, c), Days61To90: amount(b.Days61To90, c), Over90: amount(b.Over90, c),
			Total: amount(b.Total, c), Invoices: b.Invoices})
	}
	return out, nil
}
