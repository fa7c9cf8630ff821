package billing

import (
	"testing"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/catalog"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
	"github.com/abacusbilling/abacus/internal/pricing"
)

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if e, ok := abacus.AsError(err); !ok || e.Code != code {
		t.Fatalf("got %v, want %s", err, code)
	}
}

func TestInvoiceStateErrors(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		b := newBundle(t, d, t0, Config{})
		plan := b.plan("p", catalog.VersionSpec{Currency: "EUR", Charges: []pricing.Charge{feeCharge("base", "10")}})
		c := b.customer(catalog.CustomerInput{Name: "C", Currency: "EUR", TaxID: "DE999999999", Address: catalog.Address{Country: "DE"}})
		sub := b.subscribe(c.ID, plan, "1", t0)
		b.run(t0)
		p, err := b.svc.ListInvoices(b.ctx, ListFilter{})
		must(t, err)
		if len(p.Data) != 1 || p.Data[0].Status != Draft {
			t.Fatalf("want one draft, got %+v", p.Data)
		}
		id := p.Data[0].ID
		_, err = b.svc.InvoiceDocument(b.ctx, id)
		wantCode(t, err, "invoice_not_finalized")
		_, err = b.svc.Void(b.ctx, id)
		wantCode(t, err, "invalid_invoice_transition")
		inv, err := b.svc.Finalize(b.ctx, id)
		must(t, err)
		if inv.Number != "INV-2026-000001" || inv.Status != Open {
			t.Fatalf("finalized: %s %s", inv.Number, inv.Status)
		}
		_, err = b.svc.Finalize(b.ctx, id)
		wantCode(t, err, "invalid_invoice_transition")
		_, err = b.svc.MarkPaid(b.ctx, id)
		must(t, err)
		_, err = b.svc.Void(b.ctx, id)
		wantCode(t, err, "invalid_invoice_transition")
		again, err := b.svc.GetInvoice(b.ctx, id)
		must(t, err)
		if again.Status != Paid || again.Number != inv.Number {
			t.Fatalf("a refused change changed the invoice: %+v", again)
		}
		// Coupons: limit and expiry.
		past := t0.Add(-1)
		_, err = b.svc.CreateCoupon(b.ctx, CouponInput{Code: "ONE", AmountOff: decp("5"), Currency: "EUR", Duration: Once, MaxRedemptions: 1})
		must(t, err)
		_, err = b.svc.CreateCoupon(b.ctx, CouponInput{Code: "OLD", PercentOff: decp("5"), Duration: Forever, RedeemBy: &past})
		must(t, err)
		_, err = b.svc.Redeem(b.ctx, "ONE", RedeemInput{CustomerID: c.ID, SubscriptionID: sub.ID})
		must(t, err)
		_, err = b.svc.Redeem(b.ctx, "ONE", RedeemInput{CustomerID: c.ID})
		wantCode(t, err, "coupon_exhausted")
		_, err = b.svc.Redeem(b.ctx, "OLD", RedeemInput{CustomerID: c.ID})
		wantCode(t, err, "coupon_expired")
		_, err = b.svc.CreateCoupon(b.ctx, CouponInput{Code: "BAD", PercentOff: decp("120"), Duration: Repeating})
		if e, ok := abacus.AsError(err); !ok || len(e.Fields) != 2 {
			t.Fatalf("want two field errors, got %v", err)
		}
		// Credit notes above what remains name the amount.
		_, err = b.svc.CreateCreditNote(b.ctx, CreditNoteInput{InvoiceID: id, Amount: decp("11")})
		wantCode(t, err, "credit_note_exceeds_remaining")
		// Another tenant sees nothing.
		other := newBundle(t, d, t0, Config{})
		_, err = other.svc.GetInvoice(other.ctx, id)
		wantCode(t, err, "invoice_not_found")
		// The upcoming invoice (1 Feb) bills February's fee with the coupon.
		up, err := b.svc.UpcomingInvoice(b.ctx, sub.ID)
		must(t, err)
		if !up.Total.Equal(dec("5")) {
			t.Fatalf("upcoming total %s, want 5 (10 − coupon 5, zero-rated without a tax rate)", up.Total)
		}
	})
}
