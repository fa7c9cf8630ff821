// Package demo seeds a running Abacus with a small, realistic business
// through the public HTTP API only: meters, features, plans covering every
// pricing model, customers in several currencies and tax situations,
// subscriptions (some backdated two months, some in trial) and two months
// of usage sent through the real ingestion endpoint, which the billing of
// the backdated periods then invoices. `abacus demo` runs it.
//
// The server refuses events older than the tenant's late-event window (35
// days by default), so a run first raises the window to cover the usage it
// sends (PUT /api/v1/settings/metering, admin scope); it never lowers one.
// Billing counts usage from a subscription's start (after its trial), so
// the usage of customers whose subscriptions start now is metered but not
// billed; that of the backdated ones starts an hour after them.
package demo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/abacusbilling/abacus/internal/billing"
	"github.com/abacusbilling/abacus/internal/catalog"
	"github.com/abacusbilling/abacus/internal/client"
	"github.com/abacusbilling/abacus/internal/document"
	"github.com/abacusbilling/abacus/internal/metering"
	"github.com/abacusbilling/abacus/internal/metering/usage"
	"github.com/abacusbilling/abacus/internal/period"
	"github.com/abacusbilling/abacus/internal/pricing"
	"github.com/abacusbilling/abacus/internal/subscription"
)

// MaxUsageDays is the most usage a run sends: the longest late-event
// window a tenant may choose is 366 days, and a run asks for a day more
// than it sends.
const MaxUsageDays = 365

// Options configure a run.
type Options struct {
	// Now is the run's present (default: the current time). It is
	// truncated to the minute, as metering keeps usage per minute: the
	// backdated billing periods then start and end on whole minutes and
	// bill exactly the events inside them.
	Now time.Time
	// UsageDays is how many days of usage end at Now. Zero sends usage
	// since the backdated subscriptions started, two months before Now
	// (59 to 62 days). At most MaxUsageDays.
	UsageDays int
	Seed      uint64
	Out       io.Writer
}

// validate reports bad options by field.
func (o Options) validate() error {
	if o.UsageDays < 0 || o.UsageDays > MaxUsageDays {
		return fmt.Errorf("UsageDays must be between 1 and %d (or 0 for the two backdated months), got %d", MaxUsageDays, o.UsageDays)
	}
	return nil
}

// Summary is what a run created.
type Summary struct {
	Tag           string
	Meters        int
	Plans         int
	Customers     int
	Subscriptions int
	Events        int
	// UsageDays is how many days of usage were sent; UsageFrom and UsageTo
	// are the times of the first and the last event.
	UsageDays          int
	UsageFrom, UsageTo time.Time
	// LateEventWindow is the tenant's late-event window the usage was
	// sent under (Go duration text, e.g. "1488h"); WindowRaised says the
	// run raised it.
	LateEventWindow string
	WindowRaised    bool
	// FirstPeriod is the first monthly period of the backdated
	// subscriptions, in UTC (in a zone with daylight saving a customer's
	// period may end an hour apart); FirstPeriodAPICalls counts the
	// api_call events sent inside it.
	FirstPeriod         period.Period
	FirstPeriodAPICalls int
	// APICallsMeter is the slug of the meter counting API calls.
	APICallsMeter string
	Invoices      int // finalized
	// UsageInvoices counts the finalized invoices that bill usage (a
	// usage line with a quantity) of a period that starts inside
	// FirstPeriod.
	UsageInvoices int
}

// Runner seeds one server.
type Runner struct {
	c   *client.Client
	o   Options
	rnd *rand.Rand
	tag string
	sum Summary

	custs   []*customer
	planIDs map[string]string          // plan key → id
	sent    map[string]decimal.Decimal // meter slug → the total its events add up to
	poll    time.Duration              // between looks at the invoices (0: half a second)
}

// Run seeds the server behind c. Object keys carry a run tag, so running
// twice adds a second set instead of failing on taken keys.
func Run(ctx context.Context, c *client.Client, o Options) (Summary, error) {
	if err := o.validate(); err != nil {
		return Summary{}, err
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	tag := o.Now.UTC().Format("0102-150405") // to the second: runs a minute apart do not share keys
	o.Now = o.Now.UTC().Truncate(time.Minute)
	backdated := backdate(o.Now)
	if o.UsageDays == 0 {
		o.UsageDays = int(o.Now.Sub(backdated) / (24 * time.Hour)) // whole days since
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	r := &Runner{c: c, o: o, planIDs: map[string]string{}, sent: map[string]decimal.Decimal{},
		rnd: rand.New(rand.NewPCG(o.Seed, 7)), tag: tag}
	r.sum.Tag = r.tag
	r.sum.APICallsMeter = r.slug("api_calls")
	r.sum.UsageDays = o.UsageDays
	r.sum.FirstPeriod = period.NewSchedule(backdated, period.Monthly, time.UTC).Period(0)
	steps := []struct {
		name string
		fn   func(context.Context) error
	}{
		// The admin-only steps first: a key without the admin scope is
		// refused before anything is created.
		{"late-event window", r.lateEventWindow},
		{"billing settings", r.billingSettings},
		{"meters", r.meters},
		{"features", r.features},
		{"plans", r.plans},
		{"customers", r.customers},
		{"usage", r.usage},
		{"metering", r.metered},
		{"subscriptions", r.subscriptions},
		{"invoices", r.invoices},
	}
	for _, s := range steps {
		if err := s.fn(ctx); err != nil {
			return r.sum, fmt.Errorf("demo %s: %w", s.name, err)
		}
	}
	return r.sum, nil
}

// backdate returns when the backdated subscriptions start: two months
// before now (on the last day of that month when it is shorter) and two
// hours earlier still, so that both their monthly periods have ended by now
// in every time zone, across a daylight-saving change too.
func backdate(now time.Time) time.Time {
	now = now.UTC()
	y, m, d := now.Date()
	if last := time.Date(y, m-1, 0, 0, 0, 0, 0, time.UTC).Day(); d > last {
		d = last
	}
	return time.Date(y, m-2, d, now.Hour(), now.Minute(), now.Second(), now.Nanosecond(), time.UTC).Add(-2 * time.Hour)
}

func (r *Runner) logf(format string, args ...any) { fmt.Fprintf(r.o.Out, format+"\n", args...) }

// call sends v as JSON and decodes the answer into out (when not nil).
func (r *Runner) call(ctx context.Context, method, path string, v, out any) error {
	var body []byte
	if v != nil {
		var err error
		if body, err = json.Marshal(v); err != nil {
			return err
		}
	}
	res, err := r.c.Do(ctx, method, path, "application/json", body)
	if p := (*client.Problem)(nil); errors.As(err, &p) && p.Status == http.StatusForbidden {
		return fmt.Errorf("%s %s: %w; the demo needs an API key with the admin scope: the one abacus serve printed on first start, "+
			"or one made with abacus apikeys create --name demo --scopes admin (on the server's host, with its --data-dir)", method, path, err)
	}
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if out != nil {
		if err := json.Unmarshal(res, out); err != nil {
			return fmt.Errorf("%s %s: decoding answer: %w", method, path, err)
		}
	}
	return nil
}

func (r *Runner) slug(s string) string { return s + "_" + strings.ReplaceAll(r.tag, "-", "_") }

// lateEventWindow raises the tenant's late-event window to a day more than
// the usage the run sends, so its oldest events are accepted however long
// the run takes. A window at least that long is left alone.
func (r *Runner) lateEventWindow(ctx context.Context) error {
	const path = "/api/v1/settings/metering"
	var cur usage.MeteringSettings
	if err := r.call(ctx, http.MethodGet, path, nil, &cur); err != nil {
		return err
	}
	have, err := time.ParseDuration(cur.LateEventWindow)
	if err != nil {
		return fmt.Errorf("GET %s: lateEventWindow %q is not a duration: %w", path, cur.LateEventWindow, err)
	}
	need := time.Duration(r.o.UsageDays+1) * 24 * time.Hour
	if have >= need {
		r.sum.LateEventWindow = cur.LateEventWindow
		r.logf("the tenant's late-event window, %s, already accepts %d days of usage", days(have), r.o.UsageDays)
		return nil
	}
	var set usage.MeteringSettings
	if err := r.call(ctx, http.MethodPut, path, usage.MeteringSettingsUpdate{LateEventWindow: metering.FormatWindow(need)}, &set); err != nil {
		return fmt.Errorf("raising it from %s to %s for %d days of usage: %w", days(have), days(need), r.o.UsageDays, err)
	}
	r.sum.LateEventWindow, r.sum.WindowRaised = set.LateEventWindow, true
	r.logf("raised the tenant's late-event window from %s to %s to accept %d days of usage; it stays so (PUT %s to change it)",
		days(have), days(need), r.o.UsageDays, path)
	return nil
}

// days writes a window as Go duration text, with whole days spelled out.
func days(d time.Duration) string {
	if d%(24*time.Hour) != 0 {
		return metering.FormatWindow(d)
	}
	return fmt.Sprintf("%s (%d days)", metering.FormatWindow(d), d/(24*time.Hour))
}

// Meters: one per pricing input the plans use.
func (r *Runner) meters(ctx context.Context) error {
	for _, m := range []client.Meter{
		{Slug: r.slug("api_calls"), Name: "API calls", EventType: r.slug("api_call"), Aggregation: "COUNT"},
		{Slug: r.slug("tokens"), Name: "LLM tokens", EventType: r.slug("llm"), Aggregation: "SUM", ValueProperty: "$.tokens", GroupBy: map[string]string{"model": "$.model"}},
		{Slug: r.slug("storage_gb"), Name: "Storage GB", EventType: r.slug("storage"), Aggregation: "SUM", ValueProperty: "$.gb"},
		{Slug: r.slug("payments"), Name: "Payment volume", EventType: r.slug("payment"), Aggregation: "SUM", ValueProperty: "$.amount"},
	} {
		if err := r.call(ctx, http.MethodPost, "/api/v1/meters", m, nil); err != nil {
			return err
		}
		r.sum.Meters++
	}
	r.logf("created %d meters", r.sum.Meters)
	return nil
}

func (r *Runner) features(ctx context.Context) error {
	limit := decimal.NewFromInt(2_000_000)
	for _, f := range []catalog.FeatureInput{
		{Key: r.slug("api_access"), Name: "API access", Kind: "boolean"},
		{Key: r.slug("max_projects"), Name: "Projects", Kind: "static", Value: json.RawMessage(`5`)},
		{Key: r.slug("tokens_included"), Name: "Tokens per period", Kind: "metered", MeterSlug: r.slug("tokens"), Limit: &limit, Enforcement: "soft"},
	} {
		if err := r.call(ctx, http.MethodPost, "/api/v1/features", f, nil); err != nil {
			return err
		}
	}
	return nil
}

func dec(s string) decimal.Decimal { return decimal.RequireFromString(s) }
func decp(s string) *decimal.Decimal {
	d := dec(s)
	return &d
}

type planSpec struct {
	key, name string
	spec      catalog.VersionSpec
}

// planKeys are the plans every currency gets, without the run tag.
var planKeys = []string{"starter", "growth", "scale", "team"}

func (r *Runner) planSpecs(cur string) []planSpec {
	monthly := period.Interval{Unit: period.Month, Count: 1}
	fee := func(key, amount string, billed pricing.Billing) pricing.Charge {
		return pricing.Charge{Key: key, Description: strings.ToUpper(key[:1]) + key[1:] + " fee", Kind: pricing.ChargeFee, Fee: &pricing.Fee{Amount: dec(amount), Billed: billed}}
	}
	usage := func(key, meter string, p pricing.Price) pricing.Charge {
		return pricing.Charge{Key: key, Kind: pricing.ChargeUsage, Meter: r.slug(meter), Price: &p}
	}
	tokens := []pricing.Tier{{UpTo: decp("1000000"), UnitAmount: dec("0.000010")}, {UpTo: decp("10000000"), UnitAmount: dec("0.000008")}, {UnitAmount: dec("0.000005")}}
	return []planSpec{
		{"starter", "Starter", catalog.VersionSpec{Currency: cur, BillingInterval: monthly, Charges: []pricing.Charge{
			fee("platform", "29.00", pricing.InAdvance),
			usage("api_calls", "api_calls", pricing.Price{Model: pricing.PerUnit, UnitAmount: dec("0.0010")}),
		}, Entitlements: []catalog.Grant{{Feature: r.slug("api_access")}}}},
		{"growth", "Growth", catalog.VersionSpec{Currency: cur, BillingInterval: monthly, TrialDays: 14, Charges: []pricing.Charge{
			fee("platform", "99.00", pricing.InAdvance),
			usage("tokens", "tokens", pricing.Price{Model: pricing.Graduated, Tiers: tokens}),
			usage("storage", "storage_gb", pricing.Price{Model: pricing.Package, UnitAmount: dec("5.00"), PackageSize: dec("10")}),
		}, MinimumCommitment: decp("150.00"), Entitlements: []catalog.Grant{{Feature: r.slug("api_access")}, {Feature: r.slug("tokens_included")}}}},
		{"scale", "Scale", catalog.VersionSpec{Currency: cur, BillingInterval: monthly, Charges: []pricing.Charge{
			fee("platform", "499.00", pricing.InArrears),
			usage("tokens", "tokens", pricing.Price{Model: pricing.Volume, Tiers: tokens, Maximum: decp("5000.00")}),
			usage("payments", "payments", pricing.Price{Model: pricing.Percentage, Percentage: dec("1.5"), FixedAmountPerEvent: dec("0.30")}),
		}}},
		{"team", "Team", catalog.VersionSpec{Currency: cur, BillingInterval: monthly, Charges: []pricing.Charge{
			fee("seats", "12.00", pricing.InAdvance),
			usage("api_calls", "api_calls", pricing.Price{Model: pricing.PerUnit, UnitAmount: dec("0.0008"), Minimum: decp("5.00")}),
		}}},
	}
}

type plan struct{ ID string }

// plans creates each plan in EUR and USD and publishes version 1.
func (r *Runner) plans(ctx context.Context) error {
	for _, cur := range []string{"EUR", "USD"} {
		for _, ps := range r.planSpecs(cur) {
			var p plan
			key := r.slug(ps.key + "_" + strings.ToLower(cur))
			if err := r.call(ctx, http.MethodPost, "/api/v1/plans", catalog.PlanInput{Key: key, Name: ps.name + " (" + cur + ")"}, &p); err != nil {
				return err
			}
			r.planIDs[key] = p.ID
			var v struct {
				Version int `json:"version"`
			}
			if err := r.call(ctx, http.MethodPost, "/api/v1/plans/"+p.ID+"/versions", ps.spec, &v); err != nil {
				return err
			}
			if err := r.call(ctx, http.MethodPost, fmt.Sprintf("/api/v1/plans/%s/versions/%d/publish", p.ID, v.Version), nil, nil); err != nil {
				return err
			}
			r.sum.Plans++
		}
	}
	r.logf("created and published %d plans (per-unit, package, graduated, volume, percentage, seats, commitment)", r.sum.Plans)
	return nil
}

// customer is one seeded customer with its plan choice.
type customer struct {
	in       catalog.CustomerInput
	plan     string
	backdate bool
	trial    bool
	seats    int
	id       string
}

var people = []struct {
	name, country, city, cur, tz, taxID, status string
}{
	{"Müller Maschinenbau GmbH", "DE", "Stuttgart", "EUR", "Europe/Berlin", "DE811907980", "standard"},
	{"Bäckerei Schmidt", "DE", "Berlin", "EUR", "Europe/Berlin", "", "standard"},
	{"Société Générale d'Exemple", "FR", "Paris", "EUR", "Europe/Paris", "FR40303265045", "standard"},
	{"Van den Berg Logistiek B.V.", "NL", "Rotterdam", "EUR", "Europe/Amsterdam", "NL859048949B01", "standard"},
	{"Oficina Martínez S.L.", "ES", "Madrid", "EUR", "Europe/Madrid", "ESB12345674", "standard"},
	{"Kowalski Studio", "PL", "Kraków", "EUR", "Europe/Warsaw", "", "standard"},
	{"Rossi Ricerca S.r.l.", "IT", "Milano", "EUR", "Europe/Rome", "IT00743110157", "standard"},
	{"Fundación Educa", "ES", "Sevilla", "EUR", "Europe/Madrid", "", "exempt"},
	{"Nordlys AS", "NO", "Oslo", "EUR", "Europe/Oslo", "NO974760673MVA", "standard"},
	{"Helvetia Analytics AG", "CH", "Zürich", "EUR", "Europe/Zurich", "CHE-116.281.710", "standard"},
	{"Acme Rockets Inc.", "US", "Austin", "USD", "America/Chicago", "", "standard"},
	{"Bluebird Health LLC", "US", "Boston", "USD", "America/New_York", "", "standard"},
	{"Pacific Data Co.", "US", "Seattle", "USD", "America/Los_Angeles", "", "standard"},
	{"Maple Leaf Robotics", "CA", "Toronto", "USD", "America/Toronto", "", "standard"},
	{"Sakura Systems KK", "JP", "Tokyo", "USD", "Asia/Tokyo", "", "standard"},
	{"Outback Media Pty", "AU", "Sydney", "USD", "Australia/Sydney", "", "standard"},
	{"Thames Fintech Ltd", "GB", "London", "USD", "Europe/London", "GB980780684", "standard"},
	{"Andes Agro SA", "CL", "Santiago", "USD", "America/Santiago", "", "standard"},
	{"Lagos Mobile Ltd", "NG", "Lagos", "USD", "Africa/Lagos", "", "standard"},
	{"Mumbai Cloudworks", "IN", "Mumbai", "USD", "Asia/Kolkata", "", "standard"},
}

func (r *Runner) customers(ctx context.Context) error {
	for i, p := range people {
		c := &customer{
			in: catalog.CustomerInput{
				ExternalID: fmt.Sprintf("demo-%s-%02d", r.tag, i+1), Name: p.name, Email: fmt.Sprintf("billing%02d@example.com", i+1),
				Currency: p.cur, Address: catalog.Address{Line1: fmt.Sprintf("%d Demo Street", 10+i), City: p.city, PostalCode: fmt.Sprintf("%05d", 10000+i*371), Country: p.country},
				TaxID: p.taxID, TaxStatus: catalog.TaxStatus(p.status), Timezone: p.tz,
				Subjects: []string{fmt.Sprintf("%s-app-%02d", r.tag, i+1)},
				// A Peppol address for buyers without a VAT id (a DUNS number).
				Metadata: map[string]string{"peppol_endpoint": fmt.Sprintf("0060:%09d", 100000000+i*7919)},
			},
			plan:     planKeys[i%len(planKeys)],
			backdate: i%3 != 2,
			trial:    i%5 == 1,
			seats:    1 + i%7,
		}
		var out struct {
			ID string `json:"id"`
		}
		if err := r.call(ctx, http.MethodPost, "/api/v1/customers", c.in, &out); err != nil {
			return err
		}
		c.id = out.ID
		r.custs = append(r.custs, c)
		r.sum.Customers++
	}
	r.logf("created %d customers in EUR and USD; their tax is determined by country and VAT id: domestic 19 %%, EU businesses reverse charge, an EU consumer at its country's rate (OSS), exports outside the EU, one exempt body", r.sum.Customers)
	return nil
}

// batchEvents is how many events one POST /api/v1/events carries (the
// server's default limit is 10,000 per request).
const batchEvents = 500

// usage sends UsageDays of events per customer through POST /api/v1/events
// in batches, with explicit times and ids so a retry is never counted twice.
// Every event falls on a whole minute, the first an hour after the start of
// the span (when the backdated subscriptions start), so none precedes them.
func (r *Runner) usage(ctx context.Context) error {
	start := r.o.Now.Add(-time.Duration(r.o.UsageDays) * 24 * time.Hour).Add(time.Hour)
	var batch []map[string]any
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		body, err := json.Marshal(batch)
		if err != nil {
			return err
		}
		if _, err := client.Retry(ctx, client.Backoff{}, func(ctx context.Context) error {
			return r.c.SendEvents(ctx, client.ContentTypeBatch, body)
		}); err != nil {
			return err
		}
		r.sum.Events += len(batch)
		batch = batch[:0]
		return nil
	}
	n := 0
	models := []string{"small", "large"}
	for day := 0; day < r.o.UsageDays; day++ {
		for i, c := range r.custs {
			subject := c.in.Subjects[0]
			at := start.Add(time.Duration(day)*24*time.Hour + time.Duration(i)*time.Minute)
			if r.sum.UsageFrom.IsZero() {
				r.sum.UsageFrom = at
			}
			r.sum.UsageTo = at
			ev := func(typ, meter string, value decimal.Decimal, data map[string]any) {
				n++
				batch = append(batch, map[string]any{"specversion": "1.0", "id": fmt.Sprintf("demo-%s-%d", r.tag, n),
					"source": "abacus-demo", "type": r.slug(typ), "subject": subject, "time": at.Format(time.RFC3339), "data": data})
				r.sent[r.slug(meter)] = r.sent[r.slug(meter)].Add(value)
			}
			calls := 3 + r.rnd.IntN(5)
			for k := 0; k < calls; k++ {
				ev("api_call", "api_calls", decimal.NewFromInt(1), map[string]any{"path": "/v1/things"})
			}
			if r.sum.FirstPeriod.Contains(at) {
				r.sum.FirstPeriodAPICalls += calls
			}
			tokens := 1000 + r.rnd.IntN(200000)
			ev("llm", "tokens", decimal.NewFromInt(int64(tokens)), map[string]any{"tokens": tokens, "model": models[r.rnd.IntN(2)]})
			gb := fmt.Sprintf("%.1f", 0.5+r.rnd.Float64()*3)
			ev("storage", "storage_gb", dec(gb), map[string]any{"gb": gb})
			if r.rnd.IntN(2) == 0 {
				amount := fmt.Sprintf("%d.%02d", 10+r.rnd.IntN(900), r.rnd.IntN(100))
				ev("payment", "payments", dec(amount), map[string]any{"amount": amount})
			}
			if len(batch) >= batchEvents {
				if err := flush(); err != nil {
					return err
				}
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	r.logf("sent %d usage events over %d days (%s to %s) through POST /api/v1/events, %d a request; %d API calls fall in the first backdated period",
		r.sum.Events, r.o.UsageDays, date(r.sum.UsageFrom), date(r.sum.UsageTo), batchEvents, r.sum.FirstPeriodAPICalls)
	return nil
}

func date(t time.Time) string { return t.Format("2006-01-02") }

// metered waits until every meter holds the total its events add up to:
// the backdated periods are billed, and with zero grace finalized, as
// soon as the subscriptions exist, from the usage metered by then.
func (r *Runner) metered(ctx context.Context) error {
	slugs := make([]string, 0, len(r.sent))
	for s := range r.sent {
		slugs = append(slugs, s)
	}
	sort.Strings(slugs)
	q := client.Query{From: r.sum.UsageFrom, To: r.sum.UsageTo.Add(time.Minute)}
	const wait = 60 * time.Second
	deadline := time.Now().Add(wait)
	for {
		behind := ""
		for _, slug := range slugs {
			res, err := r.c.QueryMeter(ctx, slug, q)
			if err != nil {
				return err
			}
			total := decimal.Zero
			for _, row := range res.Data {
				v, err := decimal.NewFromString(row.Value.String())
				if err != nil {
					return fmt.Errorf("meter %s answered the value %q: %w", slug, row.Value, err)
				}
				total = total.Add(v)
			}
			if !total.Equal(r.sent[slug]) {
				behind = fmt.Sprintf("meter %s holds %s of the %s sent", slug, total, r.sent[slug])
				break
			}
		}
		if behind == "" {
			r.logf("the meters hold every event sent")
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after %s %s; is the meter role running?", wait, behind)
		}
		if err := pause(ctx, 200*time.Millisecond); err != nil {
			return err
		}
	}
}

// pause waits for d or until ctx ends.
func pause(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func (r *Runner) subscriptions(ctx context.Context) error {
	for _, c := range r.custs {
		key := r.slug(c.plan + "_" + strings.ToLower(c.in.Currency))
		in := subscription.CreateInput{CustomerID: c.id, PlanID: r.planIDs[key], SkipTrial: !c.trial}
		if in.PlanID == "" {
			return fmt.Errorf("plan %s was not created", key)
		}
		if c.backdate {
			at := r.sum.FirstPeriod.Start
			in.StartAt = &at
		}
		if c.plan == "team" {
			q := decimal.NewFromInt(int64(c.seats))
			in.Quantity = &q
		}
		if err := r.call(ctx, http.MethodPost, "/api/v1/subscriptions", in, nil); err != nil {
			return err
		}
		r.sum.Subscriptions++
	}
	r.logf("created %d subscriptions (some started two months ago, on %s; some in trial)", r.sum.Subscriptions, date(r.sum.FirstPeriod.Start))
	return nil
}

// billingSettings makes the tenant a German seller with complete details
// (Peppol needs them on every invoice) and creates the VAT rates it needs.
// Grace is zero so the backdated periods finalize as soon as they are
// billed: their usage was sent, and metered, before the subscriptions
// exist.
func (r *Runner) billingSettings(ctx context.Context) error {
	settings := billing.Settings{
		InvoicePrefix: "INV", CreditNotePrefix: "CN", GraceSeconds: 0, DueDays: 14,
		Seller: document.Party{
			Name: "Abacus Demo GmbH", Address: []string{"Friedrichstraße 68"}, City: "Berlin", PostalCode: "10117", CountryCode: "DE",
			VATID: "DE136695976", LegalID: "HRB 123456", ContactName: "Billing Team", Phone: "+49 30 1234567", Email: "billing@abacus.example",
			EndpointID: "DE136695976", EndpointScheme: "9930",
		},
		PaymentTerms: "Payable within 14 days by bank transfer.",
		PaymentMeans: &document.PaymentMeans{Code: "58", IBAN: "DE89370400440532013000", AccountName: "Abacus Demo GmbH", BIC: "COBADEFFXXX"},
	}
	if err := r.call(ctx, http.MethodPut, "/api/v1/billing/settings", settings, nil); err != nil {
		return err
	}
	// The domestic rate, and Poland's for the one EU consumer abroad (OSS);
	// every other customer's tax follows from its country and VAT id.
	for _, in := range []billing.TaxRateInput{
		{Name: "VAT 19% (" + r.tag + ")", Percentage: dec("19"), Category: document.TaxCategory("S"), Country: "DE"},
		{Name: "VAT PL 23% (" + r.tag + ")", Percentage: dec("23"), Category: document.TaxCategory("S"), Country: "PL"},
	} {
		if err := r.call(ctx, http.MethodPost, "/api/v1/tax-rates", in, nil); err != nil {
			return err
		}
	}
	return nil
}

// invoices waits for the billing role to bill the backdated periods,
// reports how many invoices of this run's customers are finalized, and how
// many of those bill usage of the first backdated period.
func (r *Runner) invoices(ctx context.Context) error {
	ours := map[string]bool{}
	want := 0
	for _, c := range r.custs {
		ours[c.id] = true
		if c.backdate {
			want++
		}
	}
	// Backdated subscriptions catch up period by period: wait until every
	// backdated customer's second period (cycle 1, closed two hours ago at
	// the latest) is finalized, and the count has settled. Counting
	// invoices alone was not enough: on a loaded machine billing may have
	// finalized both periods of half the customers and none of the rest,
	// which adds up to as many invoices as customers.
	const wait = 60 * time.Second
	deadline := time.Now().Add(wait)
	stable, behind := 0, 0
	var final []string
	for {
		var closed map[string]bool
		var err error
		if final, closed, err = r.finalized(ctx, ours); err != nil {
			return err
		}
		if len(final) == r.sum.Invoices {
			stable++
		} else {
			stable = 0
		}
		r.sum.Invoices = len(final)
		behind = 0
		for _, c := range r.custs {
			if c.backdate && !closed[c.id] {
				behind++
			}
		}
		if (behind == 0 && stable >= 3) || time.Now().After(deadline) {
			break
		}
		poll := r.poll
		if poll == 0 {
			poll = 500 * time.Millisecond
		}
		if err := pause(ctx, poll); err != nil {
			return err
		}
	}
	if r.sum.Invoices < want || behind > 0 {
		return fmt.Errorf("within %s billing finalized %d invoices (at least %d expected), and the second period of %d of the %d backdated customers is not finalized; is the billing role running?",
			wait, r.sum.Invoices, want, behind, want)
	}
	for _, id := range final {
		var inv struct {
			Lines []struct {
				Kind        string          `json:"kind"`
				Quantity    decimal.Decimal `json:"quantity"`
				PeriodStart time.Time       `json:"period_start"`
			} `json:"lines"`
		}
		if err := r.call(ctx, http.MethodGet, "/api/v1/invoices/"+id, nil, &inv); err != nil {
			return err
		}
		for _, l := range inv.Lines {
			if l.Kind == "usage" && !l.Quantity.IsZero() && r.sum.FirstPeriod.Contains(l.PeriodStart) {
				r.sum.UsageInvoices++
				break
			}
		}
	}
	r.logf("billing finalized %d invoices for the backdated subscriptions; %d of them bill usage of the first period (%s to %s)",
		r.sum.Invoices, r.sum.UsageInvoices, date(r.sum.FirstPeriod.Start), date(r.sum.FirstPeriod.End))
	return nil
}

// finalized lists the ids of this run's finalized invoices, and the
// customers among them with a finalized invoice of a period after the
// first (cycle 1 or later).
func (r *Runner) finalized(ctx context.Context, ours map[string]bool) ([]string, map[string]bool, error) {
	var ids []string
	closed := map[string]bool{}
	cursor := ""
	for {
		var page struct {
			Data []struct {
				ID         string `json:"id"`
				CustomerID string `json:"customer_id"`
				Status     string `json:"status"`
				CycleIndex int    `json:"cycle_index"`
			} `json:"data"`
			NextCursor string `json:"next_cursor"`
		}
		path := "/api/v1/invoices?limit=100"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		if err := r.call(ctx, http.MethodGet, path, nil, &page); err != nil {
			return nil, nil, err
		}
		for _, inv := range page.Data {
			if ours[inv.CustomerID] && inv.Status != "draft" && inv.Status != "void" {
				ids = append(ids, inv.ID)
				if inv.CycleIndex > 0 {
					closed[inv.CustomerID] = true
				}
			}
		}
		if page.NextCursor == "" {
			return ids, closed, nil
		}
		cursor = page.NextCursor
	}
}
