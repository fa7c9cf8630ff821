package billing

import (
	"fmt"
	"sort"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/abacusbilling/abacus/internal/catalog"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
	"github.com/abacusbilling/abacus/internal/pricing"
)

// A batch big enough to be built and finalized in lanes (see laneCount)
// still carries a customer's coupon uses and credit ledger from one of its
// invoices to the next, in batch order: one customer with three
// subscriptions, a once-only coupon and less credit than its invoices
// need, among 70 other customers, all billed in one batch.
func TestBatchLanesCarryCustomerState(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		b := newBundle(t, d, t0, Config{BatchSize: 500})
		st, err := b.svc.Settings(b.ctx)
		must(t, err)
		st.GraceSeconds = 0
		_, err = b.svc.PutSettings(b.ctx, st)
		must(t, err)
		plan := b.plan("p", catalog.VersionSpec{Currency: "EUR", Charges: []pricing.Charge{feeCharge("base", "10")}})
		rate, err := b.svc.CreateTaxRate(b.ctx, TaxRateInput{Name: "VAT", Percentage: dec("19")})
		must(t, err)
		must(t, b.svc.AssignTaxRate(b.ctx, "plan", plan, rate.ID))
		x := b.customer(catalog.CustomerInput{Name: "X", Currency: "EUR", Address: catalog.Address{Country: "DE"}})
		var xSubs []string
		for i := 0; i < 3; i++ {
			xSubs = append(xSubs, b.subscribe(x.ID, plan, "1", t0).ID)
		}
		const others = 70
		for i := 0; i < others; i++ {
			c := b.customer(catalog.CustomerInput{Name: fmt.Sprintf("O%d", i), Currency: "EUR", Address: catalog.Address{Country: "DE"}})
			b.subscribe(c.ID, plan, "1", t0)
		}
		_, err = b.svc.CreateCoupon(b.ctx, CouponInput{Code: "ONCE", AmountOff: decp("5"), Currency: "EUR", Duration: Once})
		must(t, err)
		_, err = b.svc.Redeem(b.ctx, "ONCE", RedeemInput{CustomerID: x.ID})
		must(t, err)
		_, err = b.svc.Grant(b.ctx, x.ID, GrantInput{Amount: dec("25")})
		must(t, err)

		if s := b.run(t0); s.Invoices != 3+others || s.Finalized != 3+others {
			t.Fatalf("run: %+v, want %d invoices created and finalized", s, 3+others)
		}
		invs := b.invoices()
		assertGapless(t, d, b.tenant, "INV", len(invs))
		var xs []Invoice
		for _, inv := range invs {
			if inv.CustomerID == x.ID {
				xs = append(xs, inv)
			}
		}
		if len(xs) != 3 {
			t.Fatalf("customer X has %d invoices, want 3", len(xs))
		}
		// Batch order is subscription order (next_at, subscription_id).
		sort.Strings(xSubs)
		sort.Slice(xs, func(i, j int) bool { return xs[i].SubscriptionID < xs[j].SubscriptionID })
		left := dec("25")
		for i, inv := range xs {
			if inv.SubscriptionID != xSubs[i] {
				t.Fatalf("invoice %d of X is of %s, want %s", i, inv.SubscriptionID, xSubs[i])
			}
			discounts := 0
			for _, l := range inv.Lines {
				if l.Kind == LineDiscount {
					discounts++
				}
			}
			// The once-only coupon lands on the first invoice only:
			// (10 − 5) × 1.19 = 5.95, then 10 × 1.19 = 11.90.
			wantDiscounts, wantTotal := 0, dec("11.90")
			if i == 0 {
				wantDiscounts, wantTotal = 1, dec("5.95")
			}
			if discounts != wantDiscounts || !inv.Total.Equal(wantTotal) {
				t.Errorf("invoice %d of X: %d discount lines, total %s; want %d, %s", i, discounts, inv.Total, wantDiscounts, wantTotal)
			}
			applied := decimal.Min(inv.Total, left)
			left = left.Sub(applied)
			if !inv.CreditsApplied.Equal(applied) || !inv.AmountDue.Equal(inv.Total.Sub(applied)) {
				t.Errorf("invoice %d of X: credits %s due %s, want credits %s due %s", i, inv.CreditsApplied, inv.AmountDue, applied,
					inv.Total.Sub(applied))
			}
		}
		// The credit entries name the invoice by its number (written under
		// a placeholder, then numbered).
		numbers := map[string]string{}
		for _, inv := range xs {
			numbers[inv.ID] = inv.Number
		}
		rows, err := d.QueryContext(b.ctx, `SELECT invoice_id, description FROM credit_entries WHERE tenant_id = $1 AND kind = 'usage'`, b.tenant)
		must(t, err)
		usage := 0
		for rows.Next() {
			var inv, desc string
			must(t, rows.Scan(&inv, &desc))
			if numbers[inv] == "" || desc != "Applied to invoice "+numbers[inv] {
				t.Errorf("credit entry of invoice %s reads %q, want %q", inv, desc, "Applied to invoice "+numbers[inv])
			}
			usage++
		}
		must(t, rows.Err())
		rows.Close()
		if usage != 3 {
			t.Errorf("%d credit usage entries, want 3 (25 covers 5.95 + 11.90 and part of the third)", usage)
		}
		bal, err := b.svc.CreditBalance(b.ctx, x.ID, "")
		must(t, err)
		if !bal.Available.Equal(left) || !left.IsZero() {
			t.Fatalf("X's balance %s, want %s (= 0: 5.95 + 11.90 + 11.90 > 25)", bal.Available, left)
		}
	})
}
