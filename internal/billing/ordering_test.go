package billing

import (
	"context"
	"log/slog"
	"sync"
	"testing"

	"github.com/abacusbilling/abacus/internal/catalog"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
	"github.com/abacusbilling/abacus/internal/pricing"
	"github.com/abacusbilling/abacus/internal/subscription"
)

// A plan change scheduled for period end is billed on the new plan even
// when billing runs before the subscriptions worker: with an Advancer it
// applies the change itself; without one the cycle waits for the worker.
func TestScheduledPlanChangeBeforeSubscriptionsWorker(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		for _, advancing := range []bool{true, false} {
			b := newBundle(t, d, t0, Config{Grace: 1})
			if !advancing {
				b.svc = NewService(d, b.clock, slog.New(slog.DiscardHandler), Config{}, NewSubscriptions(b.cat), b.usage)
			}
			small := b.plan("small", catalog.VersionSpec{Currency: "EUR", Charges: []pricing.Charge{feeCharge("base", "10")}})
			big := b.plan("big", catalog.VersionSpec{Currency: "EUR", Charges: []pricing.Charge{feeCharge("base", "50")}})
			c := b.customer(catalog.CustomerInput{Name: "C", Currency: "EUR", Address: catalog.Address{Country: "DE"}})
			sub := b.subscribe(c.ID, small, "1", t0)
			b.run(t0)
			_, err := b.subs.ChangePlan(b.ctx, sub.ID, subscription.ChangePlanInput{PlanID: big, When: subscription.PeriodEnd})
			must(t, err)
			// Billing runs at the boundary; the subscriptions worker has not.
			st := b.run(month(1))
			if !advancing {
				if st.Invoices != 0 {
					t.Fatalf("without an advancer billing must wait for the change, billed %+v", st)
				}
				_, err := b.subs.Advance(context.Background(), month(1))
				must(t, err)
				b.run(month(1))
			}
			invs := b.invoices()
			if len(invs) != 2 {
				t.Fatalf("advancing=%v: want 2 invoices, got %d", advancing, len(invs))
			}
			second := invs[1]
			if second.PeriodStart != month(1) || !second.Subtotal.Equal(dec("50")) {
				t.Fatalf("advancing=%v: February invoice %s subtotal %s, want the new plan's 50", advancing, second.PeriodStart, second.Subtotal)
			}
		}
	})
}

// Two workers expiring the same grants at once write one expiry entry
// per grant (the 0401 unique index; the loser's insert is skipped).
func TestCreditExpiryRace(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		b := newBundle(t, d, t0, Config{})
		c := b.customer(catalog.CustomerInput{Name: "C", Currency: "EUR", Address: catalog.Address{Country: "DE"}})
		exp := month(1)
		const grants = 20
		for i := 0; i < grants; i++ {
			_, err := b.svc.Grant(b.ctx, c.ID, GrantInput{Amount: dec("5"), ExpiresAt: &exp})
			must(t, err)
		}
		var wg sync.WaitGroup
		counts := make([]int, 3)
		for w := range counts {
			wg.Add(1)
			go func() {
				defer wg.Done()
				n, err := b.svc.expireCredits(context.Background(), month(2))
				if err != nil {
					t.Error(err)
				}
				counts[w] = n
			}()
		}
		wg.Wait()
		if total := counts[0] + counts[1] + counts[2]; total != grants {
			t.Errorf("workers reported %v expiries, want %d in total", counts, grants)
		}
		var n int
		must(t, d.QueryRowContext(b.ctx, `SELECT COUNT(*) FROM credit_entries WHERE tenant_id = $1 AND kind = 'expiry'`, b.tenant).Scan(&n))
		if n != grants {
			t.Fatalf("%d expiry entries, want %d", n, grants)
		}
		bal, err := b.svc.CreditBalance(b.ctx, c.ID, "")
		must(t, err)
		if !bal.Available.IsZero() {
			t.Fatalf("balance %s after expiry, want 0", bal.Available)
		}
		// A second expiry of the same grant is refused by the index.
		_, err = d.ExecContext(b.ctx, `INSERT INTO credit_entries (id, tenant_id, customer_id, currency, kind, amount, grant_id, description, created_at)
			SELECT 'dup', tenant_id, customer_id, currency, kind, amount, grant_id, description, created_at FROM credit_entries
			WHERE tenant_id = $1 AND kind = 'expiry' LIMIT 1`, b.tenant)
		if !db.IsUniqueViolation(err) {
			t.Fatalf("duplicate expiry: want a unique violation, got %v", err)
		}
	})
}
