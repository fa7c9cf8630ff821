package subscription_test

import (
	"testing"
	"time"

	"github.com/abacusbilling/abacus/internal/catalog"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
	"github.com/abacusbilling/abacus/internal/period"
	"github.com/abacusbilling/abacus/internal/pricing"
	"github.com/abacusbilling/abacus/internal/subscription"
)

// feePlan bills amount a month in advance.
func feePlan(amount string) catalog.VersionSpec {
	return catalog.VersionSpec{Currency: "EUR", BillingInterval: period.Monthly,
		Charges: []pricing.Charge{{Key: "base", Kind: pricing.ChargeFee, Fee: &pricing.Fee{Amount: dec(amount)}}}}
}

// A subscription whose due transition fails stays due and does not hold
// up the others' transitions; it is applied once it can be.
func TestAFailingTransitionDoesNotHoldUpTheOthers(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		b := setup(t, d, utc(2026, 3, 10))
		b.publishPlan(t, "small", feePlan("10"))
		big := b.publishPlan(t, "big", feePlan("50"))
		var subs []string
		for _, name := range []string{"broken", "fine"} {
			c := must(b.cat.CreateCustomer(b.ctx, catalog.CustomerInput{Name: name, Currency: "EUR", Address: catalog.Address{Country: "DE"}}))
			sub := must(b.svc.Create(b.ctx, subscription.CreateInput{CustomerID: c.ID, PlanID: "small", SkipTrial: true}))
			must(b.svc.ChangePlan(b.ctx, sub.ID, subscription.ChangePlanInput{PlanID: "big", When: subscription.PeriodEnd}))
			subs = append(subs, sub.ID)
		}
		setPending := func(version string) {
			t.Helper()
			if _, err := d.ExecContext(b.ctx, `UPDATE subscriptions SET pending_version_id = $2 WHERE id = $1`, subs[0], version); err != nil {
				t.Fatal(err)
			}
		}
		setPending("ver_gone") // as after a bad manual edit
		versionOf := func(id string) string {
			t.Helper()
			return must(b.svc.Get(b.ctx, id)).VersionID
		}

		end := utc(2026, 4, 10)
		b.clock.Set(end)
		if n, err := b.svc.Advance(b.ctx, end); err != nil || n != 1 {
			t.Fatalf("advance: %d, %v; want 1 changed and no error", n, err)
		}
		if v := versionOf(subs[1]); v != big.ID {
			t.Fatalf("the other subscription is on %s, want %s", v, big.ID)
		}
		setPending(big.ID)
		if n, err := b.svc.Advance(b.ctx, end.Add(time.Minute)); err != nil || n != 1 {
			t.Fatalf("advance after the repair: %d, %v", n, err)
		}
		if v := versionOf(subs[0]); v != big.ID {
			t.Fatalf("the repaired subscription is on %s, want %s", v, big.ID)
		}
	})
}

// Workers advancing at once (several processes on PostgreSQL) apply each
// due transition exactly once.
func TestConcurrentAdvanceAppliesEachTransitionOnce(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		b := setup(t, d, utc(2026, 3, 10))
		b.publishPlan(t, "small", feePlan("10"))
		b.publishPlan(t, "big", feePlan("50"))
		const subs = 250 // more than two claim batches
		for i := range subs {
			c := must(b.cat.CreateCustomer(b.ctx, catalog.CustomerInput{Name: "c", Currency: "EUR", Address: catalog.Address{Country: "DE"}}))
			sub := must(b.svc.Create(b.ctx, subscription.CreateInput{CustomerID: c.ID, PlanID: "small", SkipTrial: true}))
			when := subscription.PeriodEnd
			if i%2 == 1 { // the other half ends at the period end
				must(b.svc.Cancel(b.ctx, sub.ID, subscription.CancelInput{When: when}))
				continue
			}
			must(b.svc.ChangePlan(b.ctx, sub.ID, subscription.ChangePlanInput{PlanID: "big", When: when}))
		}
		end := utc(2026, 4, 10)
		b.clock.Set(end)
		workers := make([]*subscription.Service, 3)
		for i := range workers {
			workers[i] = subscription.NewService(catalog.NewService(d, b.clock, nil, b.usage), b.clock, nil)
		}
		counts := make(chan int, len(workers))
		errs := make(chan error, len(workers))
		for _, w := range workers {
			go func() {
				n, err := w.Advance(b.ctx, end)
				counts <- n
				errs <- err
			}()
		}
		total := 0
		for range workers {
			total += <-counts
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		if total != subs {
			t.Errorf("workers changed %d subscriptions in all, want %d", total, subs)
		}
		if n := countEvents(t, b, "subscription.plan_changed"); n != subs/2 {
			t.Errorf("%d plan_changed events, want %d", n, subs/2)
		}
		if n := countEvents(t, b, "subscription.ended"); n != subs/2 {
			t.Errorf("%d ended events, want %d", n, subs/2)
		}
	})
}

// Usage thresholds of every other subscription are evaluated when one
// customer's data cannot be read.
func TestThresholdsAreEvaluatedPastAFailingCustomer(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		b := setup(t, d, utc(2026, 3, 10))
		must(b.cat.CreateFeature(b.ctx, catalog.FeatureInput{Key: "api_calls", Name: "API calls", Kind: catalog.FeatureMetered,
			MeterSlug: "api_calls", Limit: decp("1000")}))
		spec := feePlan("10")
		spec.Entitlements = []catalog.Grant{{Feature: "api_calls"}}
		b.publishPlan(t, "pro", spec)
		var cus []string
		for _, name := range []string{"broken", "fine"} {
			c := must(b.cat.CreateCustomer(b.ctx, catalog.CustomerInput{Name: name, Currency: "EUR", Subjects: []string{name}}))
			must(b.svc.Create(b.ctx, subscription.CreateInput{CustomerID: c.ID, PlanID: "pro", SkipTrial: true}))
			b.usage.Record(tenant, "api_calls", name, utc(2026, 3, 11), dec("900"))
			cus = append(cus, c.ID)
		}
		if _, err := d.ExecContext(b.ctx, `UPDATE customers SET metadata = '{not json' WHERE id = $1`, cus[0]); err != nil {
			t.Fatal(err)
		}
		b.clock.Set(utc(2026, 3, 12))
		// A fresh service: nothing of the broken customer is cached.
		svc := subscription.NewService(catalog.NewService(d, b.clock, nil, b.usage), b.clock, nil)
		if _, err := svc.Advance(b.ctx, utc(2026, 3, 12)); err != nil {
			t.Fatalf("advance: %v", err)
		}
		if n := countEvents(t, b, "entitlement.threshold_reached"); n != 1 {
			t.Fatalf("%d threshold events, want 1 (80%% of the readable customer)", n)
		}
	})
}
