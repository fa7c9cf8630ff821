package subscription_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/catalog"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
	"github.com/abacusbilling/abacus/internal/period"
	"github.com/abacusbilling/abacus/internal/pricing"
	"github.com/abacusbilling/abacus/internal/subscription"
)

func utc(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

// seatPlan bills 100 per seat in advance and 31 per seat in arrears (the
// latter is settled from the phases at period end, never prorated).
func seatPlan() catalog.VersionSpec {
	return catalog.VersionSpec{Currency: "EUR", BillingInterval: period.Monthly,
		Entitlements: []catalog.Grant{{Feature: "hd"}},
		Charges: []pricing.Charge{
			{Key: "seats", Kind: pricing.ChargeFee, Fee: &pricing.Fee{Amount: dec("100")}},
			{Key: "support", Kind: pricing.ChargeFee, Fee: &pricing.Fee{Amount: dec("31"), Billed: pricing.InArrears}},
		}}
}

// prorationAmounts returns the amounts of the lines of sub's pending
// prorations, one slice per proration.
func prorationAmounts(t *testing.T, b *bundle, sub string) [][]string {
	t.Helper()
	var out [][]string
	for _, p := range must(b.svc.PendingProrations(b.ctx, sub)) {
		var amounts []string
		for _, l := range p.Lines {
			if l.Kind != pricing.LineProration || l.ChargeKey != "seats" || !l.Quantity.Equal(dec("2")) {
				t.Errorf("proration line %+v: want 2 seats of the in-advance fee", l)
			}
			amounts = append(amounts, l.Amount.StringFixed(2))
		}
		out = append(out, amounts)
	}
	return out
}

// Pausing credits the in-advance fees from the pause to the period end;
// resuming charges them from the resume to the end of the period it falls
// in. Amounts follow the length of each month.
func TestPauseAndResumeProrateInAdvanceFees(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name                 string
		start, pause, resume time.Time
		credit, charge       string // 2 seats × 100
	}{
		{"28-day February", utc(2026, 2, 1), utc(2026, 2, 15), utc(2026, 2, 22), "-100.00", "50.00"},    // 14/28, 7/28
		{"29-day February", utc(2024, 2, 1), utc(2024, 2, 15), utc(2024, 2, 22), "-103.45", "55.17"},    // 15/29, 8/29
		{"30-day April", utc(2026, 4, 1), utc(2026, 4, 16), utc(2026, 4, 21), "-100.00", "66.67"},       // 15/30, 10/30
		{"31-day March", utc(2026, 3, 1), utc(2026, 3, 17), utc(2026, 3, 25), "-96.77", "45.16"},        // 15/31, 7/31
		{"resumed next period", utc(2026, 1, 1), utc(2026, 1, 17), utc(2026, 2, 8), "-96.77", "150.00"}, // 15/31, 21/28
	}
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		b := setup(t, d, utc(2024, 1, 1))
		must(b.cat.CreateFeature(b.ctx, catalog.FeatureInput{Key: "hd", Kind: catalog.FeatureBoolean}))
		b.publishPlan(t, "seats", seatPlan())
		for _, tt := range tests {
			cus := must(b.cat.CreateCustomer(b.ctx, catalog.CustomerInput{Name: tt.name, Currency: "EUR"}))
			b.clock.Set(tt.start)
			sub := must(b.svc.Create(b.ctx, subscription.CreateInput{CustomerID: cus.ID, PlanID: "seats", Quantity: decp("2")}))
			b.clock.Set(tt.pause)
			sub = must(b.svc.Pause(b.ctx, sub.ID))
			if sub.Status != subscription.Paused {
				t.Fatalf("%s: paused subscription is %s", tt.name, sub.Status)
			}
			if got := prorationAmounts(t, b, sub.ID); len(got) != 1 || len(got[0]) != 1 || got[0][0] != tt.credit {
				t.Errorf("%s: after the pause, prorations %v, want [[%s]]", tt.name, got, tt.credit)
			}
			b.clock.Set(tt.resume)
			sub = must(b.svc.Resume(b.ctx, sub.ID))
			if sub.Status != subscription.Active {
				t.Fatalf("%s: resumed subscription is %s", tt.name, sub.Status)
			}
			got := prorationAmounts(t, b, sub.ID)
			if len(got) != 2 || len(got[1]) != 1 || got[1][0] != tt.charge {
				t.Errorf("%s: after the resume, prorations %v, want [[%s] [%s]]", tt.name, got, tt.credit, tt.charge)
			}
		}
	})
}

// A pause settles what was billed: nothing at the very start of billing,
// a credit for a past_due subscription too, and no second credit when a
// paused subscription is canceled at once.
func TestPauseProrationEdges(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		start := utc(2026, 3, 1)
		b := setup(t, d, start)
		must(b.cat.CreateFeature(b.ctx, catalog.FeatureInput{Key: "hd", Kind: catalog.FeatureBoolean}))
		b.publishPlan(t, "seats", seatPlan())
		create := func(name string) subscription.Subscription {
			cus := must(b.cat.CreateCustomer(b.ctx, catalog.CustomerInput{Name: name, Currency: "EUR"}))
			return must(b.svc.Create(b.ctx, subscription.CreateInput{CustomerID: cus.ID, PlanID: "seats", Quantity: decp("2")}))
		}

		// Paused and resumed at the instant billing starts: the first
		// invoice bills what applies then, there is nothing to settle.
		first := create("at start")
		must(b.svc.Pause(b.ctx, first.ID))
		must(b.svc.Resume(b.ctx, first.ID))
		if got := prorationAmounts(t, b, first.ID); len(got) != 0 {
			t.Errorf("pause and resume at the start of billing: prorations %v, want none", got)
		}

		late := create("past due")
		paused := create("canceled while paused")
		b.clock.Set(utc(2026, 3, 17))
		must(b.svc.MarkPastDue(b.ctx, late.ID))
		must(b.svc.Pause(b.ctx, late.ID))
		if got := prorationAmounts(t, b, late.ID); len(got) != 1 || got[0][0] != "-96.77" {
			t.Errorf("past_due paused: prorations %v, want [[-96.77]]", got)
		}
		must(b.svc.Pause(b.ctx, paused.ID))
		b.clock.Set(utc(2026, 3, 20))
		sub := must(b.svc.Cancel(b.ctx, paused.ID, subscription.CancelInput{When: subscription.Now}))
		if sub.Status != subscription.Ended {
			t.Fatalf("canceled now: %s", sub.Status)
		}
		if got := prorationAmounts(t, b, paused.ID); len(got) != 1 || got[0][0] != "-96.77" {
			t.Errorf("canceled while paused: prorations %v, want only the pause's [[-96.77]]", got)
		}
		must(b.svc.Resume(b.ctx, late.ID))
		_, err := b.svc.Resume(b.ctx, late.ID)
		if e, ok := abacus.AsError(err); !ok || e.Code != "invalid_transition" {
			t.Errorf("resuming an active subscription: %v, want invalid_transition", err)
		}
	})
}

// A paused subscription grants nothing (has_access false, no
// subscription) until it resumes; usage recorded meanwhile is kept.
func TestPausedSubscriptionHasNoAccess(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		b := setup(t, d, utc(2026, 3, 1))
		must(b.cat.CreateFeature(b.ctx, catalog.FeatureInput{Key: "hd", Kind: catalog.FeatureBoolean}))
		must(b.cat.CreateFeature(b.ctx, catalog.FeatureInput{Key: "api_calls", Kind: catalog.FeatureMetered, MeterSlug: "api_calls",
			Limit: decp("1000")}))
		spec := seatPlan()
		spec.Entitlements = append(spec.Entitlements, catalog.Grant{Feature: "api_calls"})
		b.publishPlan(t, "seats", spec)
		cus := must(b.cat.CreateCustomer(b.ctx, catalog.CustomerInput{Name: "Acme", Currency: "EUR", Subjects: []string{"u1"}}))
		sub := must(b.svc.Create(b.ctx, subscription.CreateInput{CustomerID: cus.ID, PlanID: "seats"}))
		access := func(feature string) (bool, string) {
			t.Helper()
			e := must(b.svc.Check(b.ctx, cus.ID, feature))
			var m map[string]any
			if err := json.Unmarshal(must(b.svc.CheckJSON(b.ctx, cus.ID, feature)), &m); err != nil {
				t.Fatal(err)
			}
			if m["has_access"] != e.HasAccess {
				t.Fatalf("%s: CheckJSON has_access %v, Check %v", feature, m["has_access"], e.HasAccess)
			}
			return e.HasAccess, e.SubscriptionID
		}
		b.clock.Set(utc(2026, 3, 10))
		b.usage.Record(tenant, "api_calls", "u1", utc(2026, 3, 5), dec("100"))
		if ok, _ := access("hd"); !ok {
			t.Fatal("active: no access to hd")
		}
		if ok, _ := access("api_calls"); !ok {
			t.Fatal("active: no access to api_calls")
		}
		must(b.svc.Pause(b.ctx, sub.ID))
		b.usage.Record(tenant, "api_calls", "u1", utc(2026, 3, 12), dec("50"))
		for _, f := range []string{"hd", "api_calls"} {
			if ok, id := access(f); ok || id != "" {
				t.Errorf("paused: %s has_access %v subscription %q, want no access and no subscription", f, ok, id)
			}
		}
		b.clock.Set(utc(2026, 3, 15))
		must(b.svc.Resume(b.ctx, sub.ID))
		e := must(b.svc.Check(b.ctx, cus.ID, "api_calls"))
		if !e.HasAccess || e.SubscriptionID != sub.ID || !e.Used.Equal(dec("150")) {
			t.Errorf("resumed: %+v, want access with the period's 150 used", e)
		}

		// Canceled at period end while paused: it stays without access.
		must(b.svc.Pause(b.ctx, sub.ID))
		if s := must(b.svc.Cancel(b.ctx, sub.ID, subscription.CancelInput{})); s.Status != subscription.Canceled {
			t.Fatalf("canceled: %s", s.Status)
		}
		if ok, id := access("hd"); ok || id != "" {
			t.Errorf("canceled while paused: has_access %v subscription %q, want no access", ok, id)
		}
	})
}
