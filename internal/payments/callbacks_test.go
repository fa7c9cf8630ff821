package payments_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/abacusbilling/abacus/internal/billing"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
	"github.com/abacusbilling/abacus/internal/payments"
	"github.com/abacusbilling/abacus/internal/payments/paytest"
)

// Concurrent callbacks share transactions (group commit) and one
// statement claims a batch's event ids: the same event delivered many
// times at once, in the same batch or not, is applied once; events with
// new ids about the same payment change nothing more.
func TestConcurrentRedeliveriesApplyOnce(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ten := paytest.NewTenant(t, d, start)
		svc := newPayments(t, d, ten.Clock, ten.Billing)
		inv := ten.Invoice("EUR", "119.00")
		ev := func(id string) payments.GatewayEvent {
			return payments.GatewayEvent{ID: id, Type: "payment_intent.succeeded", Payment: &payments.PaymentUpdate{InvoiceID: inv.ID, TenantID: ten.ID,
				GatewayPayment: payments.GatewayPayment{Reference: "pi_concurrent", Status: payments.StatusSucceeded, Amount: 11900, Currency: "EUR"}}}
		}
		var wg sync.WaitGroup
		errs := make(chan error, 64)
		for i := range 64 {
			id := "evt_same"
			if i%4 == 3 {
				id = fmt.Sprintf("evt_other_%d", i)
			}
			wg.Go(func() {
				known, err := svc.HandleGatewayEvent(ten.Ctx, ten.ID, payments.ProviderStripe, ev(id))
				if err == nil && !known {
					err = fmt.Errorf("%s: not known", id)
				}
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		ps, err := svc.ListPayments(ten.Ctx, payments.PaymentFilter{InvoiceID: inv.ID})
		if err != nil || len(ps.Data) != 1 || ps.Data[0].Status != payments.StatusSucceeded || ps.Data[0].Amount.String() != "119" {
			t.Fatalf("payments %+v, %v", ps.Data, err)
		}
		if got := ten.Get(inv.ID); got.Status != billing.Paid {
			t.Fatalf("invoice %s", got.Status)
		}
		var n int
		if err := d.QueryRowContext(ten.Ctx, `SELECT count(*) FROM outbox_events WHERE tenant_id = $1 AND type = 'payment.succeeded'`,
			ten.ID).Scan(&n); err != nil || n != 1 {
			t.Fatalf("payment.succeeded recorded %d times, %v", n, err)
		}
		if err := d.QueryRowContext(ten.Ctx, `SELECT count(*) FROM payment_gateway_events WHERE tenant_id = $1`, ten.ID).Scan(&n); err != nil || n != 17 {
			t.Fatalf("%d gateway events claimed, want 17: %v", n, err)
		}
	})
}
