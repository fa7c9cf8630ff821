package billing

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/abacusbilling/abacus/internal/catalog"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
	"github.com/abacusbilling/abacus/internal/pricing"
	"github.com/abacusbilling/abacus/internal/subscription"
)

func jan(day int) time.Time { return time.Date(2026, 1, day, 0, 0, 0, 0, time.UTC) }

// invoiceAt returns the invoice of subscription sub billed at boundary at.
func (b *bundle) invoiceAt(sub string, at time.Time) Invoice {
	b.t.Helper()
	for _, inv := range b.invoices() {
		if inv.SubscriptionID == sub && inv.PeriodStart.Equal(at) {
			return inv
		}
	}
	b.t.Fatalf("no invoice of %s at %s", sub, at)
	return Invoice{}
}

// sumOf adds the amounts of inv's lines of the given kinds.
func sumOf(inv Invoice, kinds ...LineKind) decimal.Decimal {
	sum := decimal.Zero
	for _, l := range inv.Lines {
		for _, k := range kinds {
			if l.Kind == k {
				sum = sum.Add(l.Amount)
			}
		}
	}
	return sum
}

// Usage pricing is per billing period: a seat change splits the period
// into phases, but tiers, the price's minimum and maximum and the
// version's commitment apply once to the period's usage. A change of plan
// version still prices the usage up to the change on the old version.
func TestUsagePricedOncePerPeriodAcrossSeatChanges(t *testing.T) {
	t.Parallel()
	tiers := []pricing.Tier{{UpTo: decp("1000"), UnitAmount: dec("1.00")}, {UnitAmount: dec("0.50")}}
	usage := func(p pricing.Price) pricing.Charge {
		return pricing.Charge{Key: "api", Kind: pricing.ChargeUsage, Meter: "api", Price: &p}
	}
	tests := []struct {
		name          string
		charge        pricing.Charge
		commitment    *decimal.Decimal
		before, after string // usage before and after the change on 16 January
		newPlan       bool   // change the plan version instead of the seats
		want          string // usage and commitment lines of the February invoice
	}{
		// 1000 × 1.00 + 200 × 0.50, not 600 + 600 at the first tier.
		{name: "graduated", charge: usage(pricing.Price{Model: pricing.Graduated, Tiers: tiers}), before: "600", after: "600", want: "1100"},
		{name: "volume", charge: usage(pricing.Price{Model: pricing.Volume, Tiers: tiers}), before: "600", after: "600", want: "600"},
		// 3 started packages of 100, not 2 + 2.
		{name: "package", charge: usage(pricing.Price{Model: pricing.Package, PackageSize: dec("100"), UnitAmount: dec("1")}),
			before: "150", after: "150", want: "3"},
		// Not 100 × 15/31 + 80.
		{name: "minimum", charge: usage(pricing.Price{Model: pricing.PerUnit, UnitAmount: dec("1"), Minimum: decp("100")}),
			before: "0", after: "80", want: "100"},
		// Not 10 + 100 × 16/31.
		{name: "maximum", charge: usage(pricing.Price{Model: pricing.PerUnit, UnitAmount: dec("1"), Maximum: decp("100")}),
			before: "10", after: "150", want: "100"},
		// 90 of usage and a true-up of 10, not 10 + 38.39 + 80.
		{name: "commitment", charge: usage(pricing.Price{Model: pricing.PerUnit, UnitAmount: dec("1")}), commitment: decp("100"),
			before: "10", after: "80", want: "100"},
		{name: "plan-version-change", charge: usage(pricing.Price{Model: pricing.Graduated, Tiers: tiers}), before: "600", after: "600",
			newPlan: true, want: "1200"},
	}
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		b := newBundle(t, d, t0, Config{})
		subs := map[string]string{}
		for _, tt := range tests {
			support := feeCharge("support", "31")
			support.Fee.Billed = pricing.InArrears
			spec := catalog.VersionSpec{Currency: "EUR", Charges: []pricing.Charge{feeCharge("seat", "10"), support, tt.charge},
				MinimumCommitment: tt.commitment}
			plan := b.plan(tt.name, spec)
			c := b.customer(catalog.CustomerInput{Name: tt.name, Currency: "EUR", Address: catalog.Address{Country: "DE"}, Subjects: []string{tt.name}})
			sub := b.subscribe(c.ID, plan, "1", t0)
			subs[tt.name] = sub.ID
			b.usage.Record(b.tenant, "api", tt.name, jan(5), dec(tt.before))
			b.usage.Record(b.tenant, "api", tt.name, jan(20), dec(tt.after))
			b.clock.Set(jan(16))
			if tt.newPlan {
				next := b.plan(tt.name+"-next", spec)
				_, err := b.subs.ChangePlan(b.ctx, sub.ID, subscription.ChangePlanInput{PlanID: next})
				must(t, err)
			} else {
				_, err := b.subs.ChangeQuantity(b.ctx, sub.ID, dec("3"))
				must(t, err)
			}
		}
		b.run(month(1))
		for _, tt := range tests {
			inv := b.invoiceAt(subs[tt.name], month(1))
			if got := sumOf(inv, LineUsage, LineCommitment); !got.Equal(dec(tt.want)) {
				t.Errorf("%s: usage and commitment %s, want %s\nlines: %+v", tt.name, got, tt.want, inv.Lines)
			}
			// Fees stay prorated per phase: February's 3 seats in advance,
			// January's support in arrears for 1 seat over 15 days and 3
			// over 16, and the seat change's proration (−5.16 + 15.48).
			wantFees := "103.32"
			if tt.newPlan { // one seat throughout: 10 + 15 + 16, and −5.16 + 5.16
				wantFees = "41"
			}
			if got := sumOf(inv, LineFee, LineProration); !got.Equal(dec(wantFees)) {
				t.Errorf("%s: fees %s, want %s\nlines: %+v", tt.name, got, wantFees, inv.Lines)
			}
		}
	})
}

// A pause is billed as time not served: in-advance fees are credited from
// the pause and charged again from the resume, in-arrears fees and usage
// cover only the served time, and the usage around a pause in one period
// is priced once. Usage recorded while paused is not billed.
func TestPauseAndResumeInvoices(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		b := newBundle(t, d, t0, Config{})
		support := feeCharge("support", "31")
		support.Fee.Billed = pricing.InArrears
		plan := b.plan("seats", catalog.VersionSpec{Currency: "EUR", Charges: []pricing.Charge{feeCharge("seat", "31"), support,
			{Key: "api", Kind: pricing.ChargeUsage, Meter: "api", Price: &pricing.Price{Model: pricing.Graduated,
				Tiers: []pricing.Tier{{UpTo: decp("1000"), UnitAmount: dec("1.00")}, {UnitAmount: dec("0.50")}}}}}})
		sub := func(name string) string {
			c := b.customer(catalog.CustomerInput{Name: name, Currency: "EUR", Address: catalog.Address{Country: "DE"}, Subjects: []string{name}})
			return b.subscribe(c.ID, plan, "1", t0).ID
		}
		within, across := sub("within"), sub("across")
		b.run(t0)
		at := func(day time.Time, f func(context.Context, string) (subscription.Subscription, error), id string) {
			t.Helper()
			b.clock.Set(day)
			_, err := f(b.ctx, id)
			must(t, err)
		}
		// within: paused 11–21 January.
		b.usage.Record(b.tenant, "api", "within", jan(5), dec("600"))
		at(jan(11), b.subs.Pause, within)
		b.usage.Record(b.tenant, "api", "within", jan(15), dec("300"))
		at(jan(21), b.subs.Resume, within)
		b.usage.Record(b.tenant, "api", "within", jan(25), dec("600"))
		// across: paused from 11 January to 15 February.
		b.usage.Record(b.tenant, "api", "across", jan(5), dec("600"))
		at(jan(11), b.subs.Pause, across)
		b.usage.Record(b.tenant, "api", "across", jan(25), dec("400"))
		b.run(month(1))
		at(time.Date(2026, 2, 15, 0, 0, 0, 0, time.UTC), b.subs.Resume, across)
		b.usage.Record(b.tenant, "api", "across", time.Date(2026, 2, 20, 0, 0, 0, 0, time.UTC), dec("500"))
		b.run(month(2))

		tests := []struct {
			name                         string
			sub                          string
			at                           time.Time
			fees, prorations, use, total string
		}{
			// February's seat 31; support for 10 + 11 of 31 days; the pause
			// credits 21 days (−21) and the resume charges 11 (+11); usage
			// 600 + 600 through the tiers (the 300 while paused is not billed).
			{"within", within, month(1), "52", "-10", "1100", "1142"},
			// No February seat (paused at the boundary); support for 10 days.
			{"across, January", across, month(1), "10", "-21", "600", "589"},
			// March's seat 31 and support for 14 of 28 days; the resume
			// charges 14 of 28 days of February's seat.
			{"across, February", across, month(2), "46.5", "15.5", "500", "562"},
		}
		for _, tt := range tests {
			inv := b.invoiceAt(tt.sub, tt.at)
			got := []decimal.Decimal{sumOf(inv, LineFee), sumOf(inv, LineProration), sumOf(inv, LineUsage, LineCommitment), inv.Subtotal}
			for i, want := range []string{tt.fees, tt.prorations, tt.use, tt.total} {
				if !got[i].Equal(dec(want)) {
					t.Errorf("%s: fees, prorations, usage, subtotal = %v, want %s %s %s %s\nlines: %+v", tt.name, got,
						tt.fees, tt.prorations, tt.use, tt.total, inv.Lines)
					break
				}
			}
		}
	})
}

// A seat or plan change made before a subscription's (future) start takes
// effect when billing starts: the first invoice bills it, no proration
// bills it again.
func TestChangesBeforeBillingStartsAreNotProrated(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		b := newBundle(t, d, t0.AddDate(0, 0, -10), Config{})
		small := b.plan("small", catalog.VersionSpec{Currency: "EUR", Charges: []pricing.Charge{feeCharge("seat", "10")}})
		big := b.plan("big", catalog.VersionSpec{Currency: "EUR", Charges: []pricing.Charge{feeCharge("seat", "50")}})
		sub := func(name string) string {
			c := b.customer(catalog.CustomerInput{Name: name, Currency: "EUR", Address: catalog.Address{Country: "DE"}})
			return b.subscribe(c.ID, small, "1", t0).ID
		}
		seats, plan := sub("seats"), sub("plan")
		_, err := b.subs.ChangeQuantity(b.ctx, seats, dec("3"))
		must(t, err)
		_, err = b.subs.ChangePlan(b.ctx, plan, subscription.ChangePlanInput{PlanID: big})
		must(t, err)
		b.run(t0)
		b.run(month(1))
		for _, tt := range []struct {
			name, sub, each string
		}{{"seats", seats, "30"}, {"plan", plan, "50"}} {
			for _, at := range []time.Time{t0, month(1)} {
				if inv := b.invoiceAt(tt.sub, at); !inv.Subtotal.Equal(dec(tt.each)) {
					t.Errorf("%s: invoice of %s subtotal %s, want %s\nlines: %+v", tt.name, at.Format("2006-01-02"), inv.Subtotal, tt.each, inv.Lines)
				}
			}
		}
	})
}

// A change at the very instant a period starts settles that period once,
// whether billing reached the boundary before the change, after it, or
// after finalizing the boundary's invoice: no time of the new period
// belongs to the old terms, so the totals are those of the new terms.
func TestChangesAtAPeriodBoundaryAreBilledOnce(t *testing.T) {
	t.Parallel()
	changes := []struct {
		name string
		do   func(b *bundle, sub, big string) error
		// total of every invoice: January, then February and March
		total string
	}{
		{"seats", func(b *bundle, sub, _ string) error {
			_, err := b.subs.ChangeQuantity(b.ctx, sub, dec("2"))
			return err
		}, "155"},
		{"plan", func(b *bundle, sub, big string) error {
			_, err := b.subs.ChangePlan(b.ctx, sub, subscription.ChangePlanInput{PlanID: big})
			return err
		}, "31 + 50 + 50"},
		{"pause", func(b *bundle, sub, _ string) error { _, err := b.subs.Pause(b.ctx, sub); return err }, "31"},
		{"cancel now", func(b *bundle, sub, _ string) error {
			_, err := b.subs.Cancel(b.ctx, sub, subscription.CancelInput{When: subscription.Now})
			return err
		}, "31"},
		// Paused on 11 January: 10 of 31 days, then February and March.
		{"resume", func(b *bundle, sub, _ string) error { _, err := b.subs.Resume(b.ctx, sub); return err }, "10 + 31 + 31"},
	}
	orders := []struct {
		name  string
		grace int64
		// billedFirst runs billing at the boundary before the change
		billedFirst bool
	}{
		{"change, then billing", 3600, false},
		{"billing, then change", 3600, true},
		{"billing and finalizing, then change", 0, true},
	}
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		for _, o := range orders {
			for _, ch := range changes {
				t.Run(o.name+"/"+ch.name, func(t *testing.T) {
					b := newBundle(t, d, t0, Config{})
					st, err := b.svc.Settings(b.ctx)
					must(t, err)
					st.GraceSeconds = o.grace
					_, err = b.svc.PutSettings(b.ctx, st)
					must(t, err)
					big := b.plan("big", catalog.VersionSpec{Currency: "EUR", Charges: []pricing.Charge{feeCharge("seat", "50")}})
					plan := b.plan("seat", catalog.VersionSpec{Currency: "EUR", Charges: []pricing.Charge{feeCharge("seat", "31")}})
					c := b.customer(catalog.CustomerInput{Name: "c", Currency: "EUR", Address: catalog.Address{Country: "DE"}})
					sub := b.subscribe(c.ID, plan, "1", t0).ID
					b.run(t0)
					if ch.name == "resume" {
						b.clock.Set(jan(11))
						_, err := b.subs.Pause(b.ctx, sub)
						must(t, err)
					}
					if o.billedFirst {
						b.run(month(1))
					}
					b.clock.Set(month(1))
					must(t, ch.do(b, sub, big))
					b.run(month(1))
					b.run(month(1).Add(2 * time.Hour))
					b.run(month(2))
					b.run(month(2).Add(2 * time.Hour))
					total := decimal.Zero
					var all []Invoice
					for _, inv := range b.invoices() {
						if inv.SubscriptionID == sub {
							total = total.Add(inv.Subtotal)
							all = append(all, inv)
						}
					}
					want := decimal.Zero
					for _, s := range strings.Split(ch.total, " + ") {
						want = want.Add(dec(s))
					}
					if !total.Equal(want) {
						for _, inv := range all {
							t.Logf("invoice %s %s: %s %+v", inv.PeriodStart.Format("2006-01-02"), inv.Status, inv.Subtotal, inv.Lines)
						}
						t.Errorf("billed %s in all, want %s", total, want)
					}
				})
			}
		}
	})
}

// seatBilledThroughFebruary is a subscription to a 28.00 monthly fee from
// t0, billed for January and, in advance, February.
func seatBilledThroughFebruary(t *testing.T, d *db.DB) (*bundle, string) {
	b := newBundle(t, d, t0, Config{})
	plan := b.plan("seat", catalog.VersionSpec{Currency: "EUR", Charges: []pricing.Charge{feeCharge("seat", "28")}})
	c := b.customer(catalog.CustomerInput{Name: "c", Currency: "EUR", Address: catalog.Address{Country: "DE"}})
	sub := b.subscribe(c.ID, plan, "1", t0).ID
	b.run(t0)
	b.run(month(1))
	return b, sub
}

// Canceling now credits the unused in-advance fees on the final invoice.
func TestCancelNowCreditsTheRestOfThePeriod(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		b, sub := seatBilledThroughFebruary(t, d)
		b.clock.Set(time.Date(2026, 2, 15, 0, 0, 0, 0, time.UTC))
		_, err := b.subs.Cancel(b.ctx, sub, subscription.CancelInput{When: subscription.Now})
		must(t, err)
		b.run(time.Date(2026, 2, 15, 0, 0, 0, 0, time.UTC))
		// The final invoice is issued at the cancellation, not at the
		// period end the cycle was waiting for.
		if got := sumOf(b.invoiceAt(sub, time.Date(2026, 2, 15, 0, 0, 0, 0, time.UTC)), LineProration); !got.Equal(dec("-14")) {
			t.Errorf("final invoice credits %s, want -14", got)
		}
		b.run(month(2))
		var total decimal.Decimal
		for _, inv := range b.invoices() {
			total = total.Add(inv.Subtotal)
		}
		// January 28, February 28, 14 of February's 28 days credited.
		if !total.Equal(dec("42")) {
			t.Errorf("billed %s in all, want 42", total)
		}
	})
}

// Migration 0405 repairs the cycles of subscriptions canceled now before
// billing moved a cycle to the end: the next billing round issues their
// final invoices.
func TestMigrationIssuesFinalInvoicesOfEarlierCancellations(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		b, sub := seatBilledThroughFebruary(t, d)
		// Canceled by a service without the end hook, as before the fix.
		canceled := time.Date(2026, 2, 15, 0, 0, 0, 0, time.UTC)
		b.clock.Set(canceled)
		_, err := subscription.NewService(b.cat, b.clock, nil).Cancel(b.ctx, sub, subscription.CancelInput{When: subscription.Now})
		must(t, err)
		all, err := db.Migrations(d.Engine())
		must(t, err)
		for _, m := range all {
			if strings.HasPrefix(m.Name, "0405_") {
				_, err := d.ExecContext(b.ctx, m.SQL)
				must(t, err)
			}
		}
		b.run(canceled)
		if got := sumOf(b.invoiceAt(sub, canceled), LineProration); !got.Equal(dec("-14")) {
			t.Errorf("final invoice credits %s, want -14", got)
		}
	})
}
