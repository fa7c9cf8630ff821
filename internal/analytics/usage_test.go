package analytics

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/catalog"
	"github.com/abacusbilling/abacus/internal/catalog/catalogtest"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
	"github.com/abacusbilling/abacus/internal/metering"
	"github.com/abacusbilling/abacus/internal/metering/usage"
	"github.com/abacusbilling/abacus/internal/period"
	"github.com/abacusbilling/abacus/internal/pricing"
	"github.com/abacusbilling/abacus/internal/subscription"
)

// TestUsageTrends stores usage through metering's own write path and
// checks the trends per day, ISO week and month: totals, the interval
// before, growth, top customers (with the customer owning the subject)
// the risk module's spikes in the point they fall in, and the CSV form;
// then that bad parameters are named.
func TestUsageTrends(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, dd *db.DB) {
		b := newBundle(t, dd, time.Date(2026, 11, 5, 12, 0, 0, 0, time.UTC))
		log := slog.New(slog.DiscardHandler)
		us := usage.NewService(dd, b.clock, log, metering.Limits{LateWindow: 400 * 24 * time.Hour})
		_, err := us.CreateMeter(b.ctx, metering.Meter{Slug: "tokens", EventType: "tokens", Aggregation: metering.AggSum, ValueProperty: "$.n"})
		must(t, err)
		alice, err := b.cat.CreateCustomer(b.ctx, catalog.CustomerInput{Name: "Alice", Currency: "EUR", Subjects: []string{"alice"}})
		must(t, err)
		type ev struct {
			day, subject, n string
		}
		evs := []ev{{"2026-10-15", "alice", "100"}, {"2026-11-01", "bob", "4"}, {"2026-11-02", "alice", "10"},
			{"2026-11-02", "bob", "5"}, {"2026-11-03", "alice", "3"}}
		_, err = usage.Load(b.ctx, dd, b.tenant, usage.LoadConfig{Events: int64(len(evs)), Event: func(i int64, e *metering.Event) {
			at, _ := time.Parse(dateLayout, evs[i].day)
			*e = metering.Event{ID: abacus.NewID("u"), Source: "test", SpecVersion: "1.0", Type: "tokens", Subject: evs[i].subject,
				Time: at.Add(6 * time.Hour), Data: []byte(`{"n":` + evs[i].n + `}`)}
		}}, log)
		must(t, err)
		spikes := fakeSpikes{"tokens": {{Day: "2026-10-25", Subject: "bob", Value: "7", Baseline: "1"},
			{Day: "2026-11-02", Subject: "alice", Value: "10", Baseline: "1"}}}
		b.svc = NewService(dd, b.cat, b.clock, log, Ports{Usage: us, Owners: b.cat, Spikes: spikes})

		got := func(q UsageQuery) []string {
			t.Helper()
			pts, err := b.svc.UsageTrends(b.ctx, q)
			must(t, err)
			var out []string
			for _, p := range pts {
				out = append(out, strings.Join([]string{p.Meter, p.Start, p.Date, p.Total, p.Previous, p.Growth, p.TopCustomers.String(), p.Alerts.String()}, " "))
			}
			return out
		}
		want := func(what string, got []string, want ...string) {
			t.Helper()
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("%s:\n got %q\nwant %q", what, got, want)
			}
		}
		want("days", got(UsageQuery{Query: Query{From: "2026-11-02", To: "2026-11-03", Interval: "day"}, Top: 1}),
			"tokens 2026-11-02 2026-11-02 15 4 2.7500 "+alice.ID+":alice:10 2026-11-02:"+alice.ID+":alice:10:1",
			"tokens 2026-11-03 2026-11-03 3 15 -0.8000 "+alice.ID+":alice:3 ")
		want("weeks", got(UsageQuery{Query: Query{From: "2026-11-02", Interval: "week"}}),
			"tokens 2026-11-02 2026-11-05 18 4 3.5000 "+alice.ID+":alice:13;:bob:5 2026-11-02:"+alice.ID+":alice:10:1")
		want("months", got(UsageQuery{Query: Query{From: "2026-10-20", Interval: "month"}}),
			"tokens 2026-10-20 2026-10-31 0 0   2026-10-25::bob:7:1", // October from the 20th; the month before had nothing
			"tokens 2026-11-01 2026-11-05 22 0  "+alice.ID+":alice:13;:bob:9 2026-11-02:"+alice.ID+":alice:10:1")
		want("previous month", got(UsageQuery{Query: Query{From: "2026-11-01", Interval: "month"}}),
			"tokens 2026-11-01 2026-11-05 22 100 -0.7800 "+alice.ID+":alice:13;:bob:9 2026-11-02:"+alice.ID+":alice:10:1")

		pts, err := b.svc.UsageTrends(b.ctx, UsageQuery{Query: Query{From: "2026-11-01", Interval: "month"}, Meter: "tokens"})
		must(t, err)
		csv, err := csvOf(pts)
		must(t, err)
		if want := "meter,aggregation,start,date,total,previous,growth,top_customers,alerts\ntokens,SUM,2026-11-01,2026-11-05,22,100,-0.7800," +
			alice.ID + ":alice:13;:bob:9,2026-11-02:" + alice.ID + ":alice:10:1\n"; string(csv) != want {
			t.Errorf("CSV:\n%s\nwant\n%s", csv, want)
		}

		for _, c := range []struct {
			q     UsageQuery
			field string
		}{
			{UsageQuery{Meter: "nope"}, "meter"},
			{UsageQuery{Top: maxTop + 1}, "top"},
			{UsageQuery{Query: Query{Interval: "hour"}}, "interval"},
			{UsageQuery{Query: Query{From: "2026-11-06", To: "2026-11-01"}}, "from"},
		} {
			_, err := b.svc.UsageTrends(b.ctx, c.q)
			e, ok := abacus.AsError(err)
			if !ok || e.Code != "invalid_analytics_query" || len(e.Fields) != 1 || e.Fields[0].Field != c.field {
				t.Errorf("%+v: got %v, want invalid_analytics_query naming %s", c.q, err, c.field)
			}
		}
	})
}

// fakeSpikes answers the risk module's spikes per meter slug.
type fakeSpikes map[string][]UsageSpike

func (f fakeSpikes) UsageSpikes(_ context.Context, meter string, from, to time.Time) ([]UsageSpike, error) {
	var out []UsageSpike
	for _, sp := range f[meter] {
		if d := mustDate(sp.Day); !d.Before(from) && !d.After(to) {
			out = append(out, sp)
		}
	}
	return out, nil
}

// TestCustomerQuotasAndDevices: the customer figures list usage against
// each metered feature from the subscriptions' entitlements (the real
// service, usage from the catalog's usage seam), skip features without
// usage, and carry the devices port's answer.
func TestCustomerQuotasAndDevices(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, dd *db.DB) {
		start := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
		b := newBundle(t, dd, start)
		log := slog.New(slog.DiscardHandler)
		mem := catalogtest.NewMemoryUsage()
		mem.AddMeter(b.tenant, "calls")
		b.cat = catalog.NewService(dd, b.clock, log, mem)
		b.subs = subscription.NewService(b.cat, b.clock, log)
		limit := d("1000")
		_, err := b.cat.CreateFeature(b.ctx, catalog.FeatureInput{Key: "api_calls", Name: "API calls", Kind: catalog.FeatureMetered,
			MeterSlug: "calls", Limit: &limit})
		must(t, err)
		_, err = b.cat.CreateFeature(b.ctx, catalog.FeatureInput{Key: "sso", Name: "SSO", Kind: catalog.FeatureBoolean})
		must(t, err)
		p, err := b.cat.CreatePlan(b.ctx, catalog.PlanInput{Key: "pro", Name: "Pro"})
		must(t, err)
		on := true
		_, err = b.cat.CreateVersion(b.ctx, p.ID, catalog.VersionSpec{BillingInterval: period.Monthly, Currency: "EUR",
			Charges:      []pricing.Charge{{Key: "base", Kind: pricing.ChargeFee, Fee: &pricing.Fee{Amount: d("10")}}},
			Entitlements: []catalog.Grant{{Feature: "api_calls"}, {Feature: "sso", Enabled: &on}}})
		must(t, err)
		_, err = b.cat.PublishVersion(b.ctx, p.ID, 1)
		must(t, err)
		cus, err := b.cat.CreateCustomer(b.ctx, catalog.CustomerInput{Name: "Q", Currency: "EUR", Subjects: []string{"q"}})
		must(t, err)
		_, err = b.subs.Create(b.ctx, subscription.CreateInput{CustomerID: cus.ID, PlanID: p.ID})
		must(t, err)
		b.clock.Set(start.Add(time.Hour))
		mem.Record(b.tenant, "calls", "q", start.Add(30*time.Minute), d("250"))
		b.svc = NewService(dd, b.cat, b.clock, log, Ports{Entitlements: b.subs, Devices: devicesOf{Sessions: 2, Connections: 3, Total: 5}})
		b.feed(50)
		fig, err := b.svc.Customer(b.ctx, cus.ID)
		must(t, err)
		if len(fig.Usage) != 1 {
			t.Fatalf("usage %+v, want api_calls only", fig.Usage)
		}
		u := fig.Usage[0]
		if u.Feature != "api_calls" || u.Used != "250" || u.Limit == nil || *u.Limit != "1000" || u.Remaining == nil || *u.Remaining != "750" ||
			u.Share == nil || *u.Share != "0.2500" || u.PeriodStart == "" {
			t.Errorf("api_calls: %+v", u)
		}
		if fig.Devices == nil || *fig.Devices != (CustomerDevices{Sessions: 2, Connections: 3, Total: 5}) {
			t.Errorf("devices %+v", fig.Devices)
		}
	})
}

// devicesOf answers a fixed device count (the real port is wired in the
// app from end users and realtime; internal/app TestMaxDevices checks it).
type devicesOf CustomerDevices

func (d devicesOf) CustomerDevices(context.Context, string) (CustomerDevices, error) {
	return CustomerDevices(d), nil
}
