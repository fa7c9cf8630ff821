package subscription_test

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"testing"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/catalog"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
	"github.com/abacusbilling/abacus/internal/period"
	"github.com/abacusbilling/abacus/internal/pricing"
	"github.com/abacusbilling/abacus/internal/subscription"
)

// access returns has_access and reason of feature for customer, from
// Check and from CheckJSON (the cached hot path), failing when they differ.
func access(t *testing.T, b *bundle, customer, feature string) (bool, string) {
	t.Helper()
	e := must(b.svc.Check(b.ctx, customer, feature))
	var j subscription.Entitlement
	if err := json.Unmarshal(must(b.svc.CheckJSON(b.ctx, customer, feature)), &j); err != nil {
		t.Fatal(err)
	}
	if j.HasAccess != e.HasAccess || j.Reason != e.Reason {
		t.Fatalf("%s: CheckJSON says %v/%q, Check %v/%q", feature, j.HasAccess, j.Reason, e.HasAccess, e.Reason)
	}
	return e.HasAccess, e.Reason
}

// Suspended for an overdue payment, the features the tenant marks
// suspendable answer has_access false with reason payment_overdue (on the
// cached path too), the others stay open; reactivating restores them, and
// every step is a typed event.
func TestSuspendedSubscriptionClosesSuspendableFeatures(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		b := setup(t, d, utc(2026, 3, 1))
		var policyReads atomic.Int32
		b.svc.UseSuspendable(func(_ context.Context, tenant string) (subscription.Suspendable, error) {
			policyReads.Add(1)
			return subscription.Suspendable{Features: map[string]bool{"hd": true, "api_calls": true}}, nil
		})
		must(b.cat.CreateFeature(b.ctx, catalog.FeatureInput{Key: "hd", Kind: catalog.FeatureBoolean}))
		must(b.cat.CreateFeature(b.ctx, catalog.FeatureInput{Key: "export", Kind: catalog.FeatureBoolean}))
		must(b.cat.CreateFeature(b.ctx, catalog.FeatureInput{Key: "api_calls", Kind: catalog.FeatureMetered, MeterSlug: "api_calls",
			Limit: decp("1000")}))
		b.publishPlan(t, "pro", catalog.VersionSpec{Currency: "EUR", BillingInterval: period.Monthly,
			Entitlements: []catalog.Grant{{Feature: "hd"}, {Feature: "export"}, {Feature: "api_calls"}},
			Charges:      []pricing.Charge{{Key: "base", Kind: pricing.ChargeFee, Fee: &pricing.Fee{Amount: dec("10")}}}})
		cus := must(b.cat.CreateCustomer(b.ctx, catalog.CustomerInput{Name: "late", Currency: "EUR"}))
		sub := must(b.svc.Create(b.ctx, subscription.CreateInput{CustomerID: cus.ID, PlanID: "pro"}))
		for _, f := range []string{"hd", "export", "api_calls"} {
			if ok, _ := access(t, b, cus.ID, f); !ok {
				t.Fatalf("active: no access to %s", f)
			}
		}
		if policyReads.Load() != 0 {
			t.Errorf("the suspendable features were read %d times for a customer with nothing suspended", policyReads.Load())
		}

		b.clock.Set(utc(2026, 3, 4))
		sub = must(b.svc.MarkPastDue(b.ctx, sub.ID))
		if ok, _ := access(t, b, cus.ID, "hd"); sub.Status != subscription.PastDue || !ok {
			t.Fatalf("past_due (%s) keeps its access: %v", sub.Status, ok)
		}
		b.clock.Set(utc(2026, 3, 20))
		sub = must(b.svc.Suspend(b.ctx, sub.ID, subscription.SuspendInput{Invoice: "inv_1"}))
		if sub.Status != subscription.Suspended || sub.SuspendedAt == nil || sub.SuspendReason != subscription.ReasonPaymentOverdue {
			t.Fatalf("suspended: %+v", sub)
		}
		for f, want := range map[string]bool{"hd": false, "api_calls": false, "export": true} {
			ok, reason := access(t, b, cus.ID, f)
			if ok != want || (!want && reason != "payment_overdue") || (want && reason != "") {
				t.Errorf("suspended, %s: has_access %v reason %q; want %v", f, ok, reason, want)
			}
		}
		// Suspending again changes nothing and records nothing.
		must(b.svc.Suspend(b.ctx, sub.ID, subscription.SuspendInput{}))
		if n := countEvents(t, b, "subscription.suspended"); n != 1 {
			t.Errorf("%d subscription.suspended events, want 1", n)
		}
		if _, err := b.svc.ChangeQuantity(b.ctx, sub.ID, dec("2")); !isCode(err, "invalid_transition") {
			t.Errorf("changing seats of a suspended subscription: %v, want invalid_transition", err)
		}

		sub = must(b.svc.Reactivate(b.ctx, sub.ID, "paid"))
		if sub.Status != subscription.Active || sub.SuspendedAt != nil || sub.SuspendReason != "" {
			t.Fatalf("reactivated: %+v", sub)
		}
		for _, f := range []string{"hd", "export", "api_calls"} {
			if ok, reason := access(t, b, cus.ID, f); !ok || reason != "" {
				t.Errorf("reactivated: %s has_access %v reason %q", f, ok, reason)
			}
		}
		must(b.svc.Reactivate(b.ctx, sub.ID, "paid")) // paid twice: restored once
		for typ, want := range map[string]int{"subscription.past_due": 1, "subscription.suspended": 1, "subscription.reactivated": 1} {
			if n := countEvents(t, b, typ); n != want {
				t.Errorf("%d %s events, want %d", n, typ, want)
			}
		}
		var types []string
		for _, c := range must(b.svc.History(b.ctx, sub.ID)) {
			types = append(types, c.Type+":"+string(c.FromStatus)+"→"+string(c.ToStatus))
		}
		want := "[created:→active activated:→active past_due:active→past_due suspended:past_due→suspended reactivated:suspended→active]"
		if got := fmtList(types); got != want {
			t.Errorf("history %s, want %s", got, want)
		}
	})
}

// A prepaid period that was paid keeps its access while suspended for a
// later invoice; when it ends the suspension closes the features. Without
// a Suspendable reader every feature is suspendable; a dispute gives its
// own reason; a subscription canceled while suspended stays closed.
func TestSuspensionKeepsAPrepaidPeriod(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		b := setup(t, d, utc(2026, 1, 1))
		must(b.cat.CreateFeature(b.ctx, catalog.FeatureInput{Key: "hd", Kind: catalog.FeatureBoolean}))
		b.publishPlan(t, "year", catalog.VersionSpec{Currency: "EUR", BillingInterval: period.Interval{Unit: period.Year, Count: 1},
			Entitlements: []catalog.Grant{{Feature: "hd"}},
			Charges:      []pricing.Charge{{Key: "base", Kind: pricing.ChargeFee, Fee: &pricing.Fee{Amount: dec("120")}}}})
		cus := must(b.cat.CreateCustomer(b.ctx, catalog.CustomerInput{Name: "prepaid", Currency: "EUR"}))
		sub := must(b.svc.Create(b.ctx, subscription.CreateInput{CustomerID: cus.ID, PlanID: "year"}))
		b.clock.Set(utc(2026, 6, 10))
		paidThrough := utc(2027, 1, 1)
		sub = must(b.svc.Suspend(b.ctx, sub.ID, subscription.SuspendInput{AccessUntil: &paidThrough}))
		if ok, _ := access(t, b, cus.ID, "hd"); !ok || sub.AccessUntil == nil || !sub.AccessUntil.Equal(paidThrough) {
			t.Fatalf("suspended within a paid year: access %v, access_until %v", ok, sub.AccessUntil)
		}
		b.clock.Set(paidThrough)
		if ok, reason := access(t, b, cus.ID, "hd"); ok || reason != "payment_overdue" {
			t.Errorf("after the paid year: access %v reason %q", ok, reason)
		}

		other := must(b.cat.CreateCustomer(b.ctx, catalog.CustomerInput{Name: "disputed", Currency: "EUR"}))
		s2 := must(b.svc.Create(b.ctx, subscription.CreateInput{CustomerID: other.ID, PlanID: "year"}))
		must(b.svc.Suspend(b.ctx, s2.ID, subscription.SuspendInput{Reason: subscription.ReasonPaymentDisputed}))
		if ok, reason := access(t, b, other.ID, "hd"); ok || reason != "payment_disputed" {
			t.Errorf("disputed: access %v reason %q", ok, reason)
		}
		s2 = must(b.svc.Cancel(b.ctx, s2.ID, subscription.CancelInput{}))
		if ok, _ := access(t, b, other.ID, "hd"); s2.Status != subscription.Canceled || ok {
			t.Errorf("canceled while suspended (%s): access %v", s2.Status, ok)
		}
		s2 = must(b.svc.Reactivate(b.ctx, s2.ID, "dispute_won"))
		if ok, _ := access(t, b, other.ID, "hd"); s2.Status != subscription.Canceled || !ok {
			t.Errorf("canceled, then the dispute won (%s): access %v, want access until it ends", s2.Status, ok)
		}
		if _, err := b.svc.Suspend(b.ctx, s2.ID, subscription.SuspendInput{}); !isCode(err, "invalid_transition") {
			t.Errorf("suspending a canceled subscription: %v", err)
		}
	})
}

func isCode(err error, code string) bool {
	e, ok := abacus.AsError(err)
	return ok && e.Code == code
}

func fmtList(s []string) string {
	out := "["
	for i, x := range s {
		if i > 0 {
			out += " "
		}
		out += x
	}
	return out + "]"
}
