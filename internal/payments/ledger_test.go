package payments

import (
	"slices"
	"testing"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/billing"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
)

func TestManualPaymentsPartialFullAndOver(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		b := newBundle(t, d)
		inv := b.invoice("EUR", "100.00")
		if !inv.AmountDue.Equal(num("100")) {
			t.Fatalf("amount due %s, want 100", inv.AmountDue)
		}
		p, err := b.svc.RecordManual(b.ctx, ManualPaymentInput{InvoiceID: inv.ID, Amount: num("40.00"), Reference: "SEPA-1"})
		must(t, err)
		if p.Status != StatusSucceeded || p.Provider != ProviderManual {
			t.Fatalf("payment %+v", p)
		}
		got := b.getInvoice(inv.ID)
		if got.Status != billing.Open || !got.AmountDue.Equal(num("60")) {
			t.Fatalf("after 40: %s due %s, want open 60", got.Status, got.AmountDue)
		}
		// The same bank reference twice is one payment.
		if _, err := b.svc.RecordManual(b.ctx, ManualPaymentInput{InvoiceID: inv.ID, Amount: num("40.00"), Reference: "SEPA-1"}); abacus.ErrorKind(err) != abacus.KindConflict {
			t.Fatalf("duplicate reference: %v", err)
		}
		// 70 more pays it and leaves 10 in credits.
		_, err = b.svc.RecordManual(b.ctx, ManualPaymentInput{InvoiceID: inv.ID, Amount: num("70.00"), Reference: "SEPA-2"})
		must(t, err)
		got = b.getInvoice(inv.ID)
		if got.Status != billing.Paid || !got.AmountDue.IsZero() || got.PaidAt == nil {
			t.Fatalf("after 110: %s due %s", got.Status, got.AmountDue)
		}
		bal, err := b.svc.Balance(b.ctx, inv.CustomerID)
		must(t, err)
		if !bal.Credits.Equal(num("10")) || !bal.Due.IsZero() || len(bal.Lines) != 0 {
			t.Fatalf("balance %+v, want 10 in credits and nothing due", bal)
		}
		if ev := b.events(inv.ID); !slices.Contains(ev, "invoice.paid") {
			t.Fatalf("invoice events %v lack invoice.paid", ev)
		}
		list, err := b.svc.ListPayments(b.ctx, PaymentFilter{InvoiceID: inv.ID})
		must(t, err)
		if len(list.Data) != 2 || list.Data[0].Amount.String() != "40" {
			t.Fatalf("payments of the invoice: %+v", list.Data)
		}
		// A paid invoice takes no more and a bad amount is refused with its field.
		other := b.invoice("JPY", "1200")
		_, err = b.svc.RecordManual(b.ctx, ManualPaymentInput{InvoiceID: other.ID, Amount: num("10.5")})
		if e, ok := abacus.AsError(err); !ok || e.Kind != abacus.KindInvalid || len(e.Fields) == 0 || e.Fields[0].Field != "amount" {
			t.Fatalf("10.5 JPY: %v", err)
		}
		if _, err := b.svc.RecordManual(b.ctx, ManualPaymentInput{InvoiceID: "inv_missing", Amount: num("1")}); abacus.ErrorKind(err) != abacus.KindNotFound {
			t.Fatalf("unknown invoice: %v", err)
		}
	})
}

func TestMinorUnits(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		amount, currency string
		minor            int64
		bad              bool
	}{
		{"12.34", "EUR", 1234, false},
		{"0.01", "USD", 1, false},
		{"1234", "JPY", 1234, false},
		{"1.234", "KWD", 1234, false},
		{"0.001", "KWD", 1, false},
		{"1.2", "KWD", 1200, false},
		{"12.345", "EUR", 0, true},
		{"1.5", "JPY", 0, true},
		{"1.2345", "KWD", 0, true},
		{"99999999.99", "EUR", 9999999999, false},
		{"1", "XXX1", 0, true},
	} {
		got, err := ToMinor(num(tt.amount), tt.currency)
		if (err != nil) != tt.bad || got != tt.minor {
			t.Errorf("ToMinor(%s %s) = %d, %v; want %d (error %v)", tt.amount, tt.currency, got, err, tt.minor, tt.bad)
			continue
		}
		if tt.bad {
			continue
		}
		back, err := FromMinor(got, tt.currency)
		if err != nil || !back.Equal(num(tt.amount)) {
			t.Errorf("FromMinor(%d %s) = %s, %v; want %s", got, tt.currency, back, err, tt.amount)
		}
	}
}
