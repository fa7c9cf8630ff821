package subscription_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/catalog"
	"github.com/abacusbilling/abacus/internal/catalog/catalogtest"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
	"github.com/abacusbilling/abacus/internal/period"
	"github.com/abacusbilling/abacus/internal/pricing"
	"github.com/abacusbilling/abacus/internal/subscription"
)

type bundle struct {
	ctx   context.Context
	d     *db.DB
	clock *abacus.FakeClock
	usage *catalogtest.MemoryUsage
	cat   *catalog.Service
	svc   *subscription.Service
}

const tenant = "ten_test"

func setup(t *testing.T, d *db.DB, at time.Time) *bundle {
	t.Helper()
	b := &bundle{d: d, clock: abacus.NewFakeClock(at), usage: catalogtest.NewMemoryUsage()}
	b.ctx = abacus.WithPrincipal(context.Background(), &abacus.Principal{TenantID: tenant, Kind: "api_key", ID: "key_test",
		Scopes: []abacus.Scope{abacus.ScopeAdmin}})
	b.usage.AddMeter(tenant, "api_calls")
	b.cat = catalog.NewService(d, b.clock, nil, b.usage)
	b.svc = subscription.NewService(b.cat, b.clock, nil)
	return b
}

func dec(s string) decimal.Decimal { return decimal.RequireFromString(s) }
func decp(s string) *decimal.Decimal {
	d := dec(s)
	return &d
}

// must returns v or panics with err (the test fails with the error's stack).
func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// publishPlan creates plan key with one published version.
func (b *bundle) publishPlan(t *testing.T, key string, sp catalog.VersionSpec) catalog.Version {
	t.Helper()
	must(b.cat.CreatePlan(b.ctx, catalog.PlanInput{Key: key, Name: key}))
	v := must(b.cat.CreateVersion(b.ctx, key, sp))
	return must(b.cat.PublishVersion(b.ctx, key, v.Version))
}

func countEvents(t *testing.T, b *bundle, typ string) int {
	t.Helper()
	var n int
	if err := b.d.QueryRowContext(b.ctx, `SELECT count(*) FROM outbox_events WHERE tenant_id = $1 AND type = $2`, tenant, typ).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func proPlan() catalog.VersionSpec {
	return catalog.VersionSpec{
		Currency: "EUR", BillingInterval: period.Monthly, TrialDays: 14,
		Entitlements: []catalog.Grant{{Feature: "api_calls"}, {Feature: "hd"}},
		Charges: []pricing.Charge{
			{Key: "base", Kind: pricing.ChargeFee, Fee: &pricing.Fee{Amount: dec("10.00")}},
			{Key: "calls", Kind: pricing.ChargeUsage, Meter: "api_calls", Price: &pricing.Price{Model: pricing.Graduated, Tiers: []pricing.Tier{
				{UpTo: decp("1000"), UnitAmount: dec("0.01")}, {UnitAmount: dec("0.005")}}}},
		},
	}
}

func TestEndToEnd(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		b := setup(t, d, time.Date(2026, 1, 10, 12, 0, 0, 0, time.UTC))
		must(b.cat.CreateFeature(b.ctx, catalog.FeatureInput{Key: "api_calls", Name: "API calls", Kind: catalog.FeatureMetered,
			MeterSlug: "api_calls", Limit: decp("1000")}))
		must(b.cat.CreateFeature(b.ctx, catalog.FeatureInput{Key: "hd", Kind: catalog.FeatureBoolean}))
		cus := must(b.cat.CreateCustomer(b.ctx, catalog.CustomerInput{Name: "Acme", Currency: "EUR", Subjects: []string{"u1", "u2"}}))
		b.publishPlan(t, "pro", proPlan())
		maxSpec := proPlan()
		maxSpec.Charges[0].Fee = &pricing.Fee{Amount: dec("30.00")}
		maxSpec.Entitlements = []catalog.Grant{{Feature: "api_calls", Limit: decp("5000")}}
		maxV := b.publishPlan(t, "max", maxSpec)

		sub := must(b.svc.Create(b.ctx, subscription.CreateInput{CustomerID: cus.ID, PlanID: "pro"}))
		trialEnd := time.Date(2026, 1, 24, 12, 0, 0, 0, time.UTC)
		if sub.Status != subscription.Trialing || sub.TrialEnd == nil || !sub.TrialEnd.Equal(trialEnd) {
			t.Fatalf("new subscription: status %s trial_end %v, want trialing until %v", sub.Status, sub.TrialEnd, trialEnd)
		}
		e := must(b.svc.Check(b.ctx, cus.ID, "api_calls"))
		if !e.HasAccess || !e.Remaining.Equal(dec("1000")) || !e.PeriodEnd.Equal(trialEnd) {
			t.Fatalf("trial entitlement: %+v", e)
		}
		if hd := must(b.svc.Check(b.ctx, cus.ID, "hd")); !hd.HasAccess {
			t.Fatal("boolean feature of the plan: no access")
		}

		// Trial ends.
		b.clock.Set(time.Date(2026, 1, 25, 0, 0, 0, 0, time.UTC))
		if n := must(b.svc.Advance(b.ctx, b.clock.Now())); n != 1 {
			t.Fatalf("Advance changed %d subscriptions, want 1", n)
		}
		if n := must(b.svc.Advance(b.ctx, b.clock.Now())); n != 0 {
			t.Fatalf("second Advance changed %d, want 0 (idempotent)", n)
		}
		sub = must(b.svc.Get(b.ctx, sub.ID))
		if sub.Status != subscription.Active || !sub.CurrentPeriod.Start.Equal(trialEnd) ||
			!sub.CurrentPeriod.End.Equal(time.Date(2026, 2, 24, 12, 0, 0, 0, time.UTC)) {
			t.Fatalf("after trial: %s %+v", sub.Status, sub.CurrentPeriod)
		}

		// Usage counts down; thresholds fire once each.
		b.usage.Record(tenant, "api_calls", "u1", time.Date(2026, 1, 20, 0, 0, 0, 0, time.UTC), dec("999")) // in the trial period: not counted
		b.usage.Record(tenant, "api_calls", "u1", time.Date(2026, 1, 26, 0, 0, 0, 0, time.UTC), dec("700"))
		e = must(b.svc.Check(b.ctx, cus.ID, "api_calls"))
		if !e.Used.Equal(dec("700")) || !e.Remaining.Equal(dec("300")) || countEvents(t, b, "entitlement.threshold_reached") != 0 {
			t.Fatalf("at 700: %+v, %d events", e, countEvents(t, b, "entitlement.threshold_reached"))
		}
		b.usage.Record(tenant, "api_calls", "u2", time.Date(2026, 1, 27, 0, 0, 0, 0, time.UTC), dec("150"))
		for range 3 {
			must(b.svc.Check(b.ctx, cus.ID, "api_calls"))
		}
		if n := countEvents(t, b, "entitlement.threshold_reached"); n != 1 {
			t.Fatalf("at 850: %d threshold events, want 1", n)
		}
		b.usage.Record(tenant, "api_calls", "u1", time.Date(2026, 1, 28, 0, 0, 0, 0, time.UTC), dec("200"))
		must(b.svc.Advance(b.ctx, b.clock.Now())) // Advance evaluates thresholds too
		e = must(b.svc.Check(b.ctx, cus.ID, "api_calls"))
		if e.HasAccess || !e.Remaining.IsZero() {
			t.Fatalf("at 1050 with a hard limit: %+v", e)
		}
		// A fresh service (a restart) must not emit again.
		fresh := subscription.NewService(b.cat, b.clock, nil)
		must(fresh.Check(b.ctx, cus.ID, "api_calls"))
		if n := countEvents(t, b, "entitlement.threshold_reached"); n != 2 {
			t.Fatalf("at 1050: %d threshold events, want 2 (80 and 100)", n)
		}

		// Upgrade mid-period: fees prorated over 15 of 31 days.
		b.clock.Set(time.Date(2026, 2, 9, 12, 0, 0, 0, time.UTC))
		sub = must(b.svc.ChangePlan(b.ctx, sub.ID, subscription.ChangePlanInput{PlanID: "max"}))
		if sub.VersionID != maxV.ID {
			t.Fatalf("version after upgrade: %s, want %s", sub.VersionID, maxV.ID)
		}
		pr := must(b.svc.PendingProrations(b.ctx, sub.ID))
		if len(pr) != 1 || len(pr[0].Lines) != 2 || !pr[0].Lines[0].Amount.Equal(dec("-4.84")) || !pr[0].Lines[1].Amount.Equal(dec("14.52")) {
			t.Fatalf("prorations: %+v", pr)
		}
		period := sub.PeriodAt(b.clock.Now())
		phases := must(b.svc.Phases(b.ctx, sub.ID, period))
		if len(phases) != 2 || !phases[0].End.Equal(b.clock.Now()) || phases[1].VersionID != maxV.ID || !phases[0].Start.Equal(period.Start) {
			t.Fatalf("phases: %+v", phases)
		}
		e = must(b.svc.Check(b.ctx, cus.ID, "api_calls"))
		if !e.HasAccess || !e.Limit.Equal(dec("5000")) {
			t.Fatalf("after upgrade: %+v", e)
		}

		// Cancel at period end, then Advance past it.
		sub = must(b.svc.Cancel(b.ctx, sub.ID, subscription.CancelInput{When: subscription.PeriodEnd}))
		if sub.Status != subscription.Canceled || !sub.EndsAt.Equal(period.End) {
			t.Fatalf("canceled: %s ends %v", sub.Status, sub.EndsAt)
		}
		if e := must(b.svc.Check(b.ctx, cus.ID, "hd")); e.HasAccess {
			t.Fatal("max plan does not grant hd, but access was given")
		}
		b.clock.Set(period.End.Add(time.Hour))
		must(b.svc.Advance(b.ctx, b.clock.Now()))
		sub = must(b.svc.Get(b.ctx, sub.ID))
		if sub.Status != subscription.Ended || !sub.EndedAt.Equal(period.End) {
			t.Fatalf("after period end: %s %v", sub.Status, sub.EndedAt)
		}
		if e := must(b.svc.Check(b.ctx, cus.ID, "api_calls")); e.HasAccess {
			t.Fatalf("ended subscription still grants access: %+v", e)
		}
		hist := must(b.svc.History(b.ctx, sub.ID))
		var types []string
		for _, h := range hist {
			types = append(types, h.Type)
		}
		want := []string{"created", "trial_started", "activated", "plan_changed", "canceled", "ended"}
		if got, _ := json.Marshal(types); string(got) != mustJSON(want) {
			t.Fatalf("history %s, want %s", got, mustJSON(want))
		}
		for _, typ := range want {
			if countEvents(t, b, "subscription."+typ) != 1 {
				t.Fatalf("want exactly one subscription.%s event, got %d", typ, countEvents(t, b, "subscription."+typ))
			}
		}
	})
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
