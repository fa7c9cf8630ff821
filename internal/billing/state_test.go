package billing

import (
	"database/sql"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/catalog"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
	"github.com/abacusbilling/abacus/internal/pricing"
	"github.com/abacusbilling/abacus/internal/subscription"
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
		stranger := b.customer(catalog.CustomerInput{Name: "other", Currency: "EUR", Address: catalog.Address{Country: "DE"}})
		_, err = b.svc.Redeem(b.ctx, "ONE", RedeemInput{CustomerID: stranger.ID, SubscriptionID: sub.ID})
		wantCode(t, err, "subscription_not_found") // another customer's subscription
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

// A cycle that fails to bill is deferred with its error recorded; the
// other cycles of the run are billed, and the deferred one is billed once
// it can be.
func TestAFailingCycleDoesNotHoldUpTheOthers(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		b := newBundle(t, d, t0, Config{})
		good := b.plan("good", catalog.VersionSpec{Currency: "EUR", Charges: []pricing.Charge{feeCharge("base", "10")}})
		bad := b.plan("bad", catalog.VersionSpec{Currency: "EUR", Charges: []pricing.Charge{feeCharge("base", "20")}})
		var subs []string
		for _, plan := range []string{bad, good} {
			c := b.customer(catalog.CustomerInput{Name: plan, Currency: "EUR", Address: catalog.Address{Country: "DE"}})
			subs = append(subs, b.subscribe(c.ID, plan, "1", t0).ID)
		}
		// A version body no longer readable (as after a bad manual edit).
		corrupt := func(from, to string) {
			t.Helper()
			if _, err := d.ExecContext(b.ctx, `UPDATE plan_versions SET body = REPLACE(body, $2, $3) WHERE plan_id = $1`, bad, from, to); err != nil {
				t.Fatal(err)
			}
		}
		corrupt(`"EUR"`, `"ZZZ"`)
		cycle := func(sub string) (failures int, lastError string, nextAt db.Time) {
			t.Helper()
			var le sql.NullString
			if err := d.QueryRowContext(b.ctx, `SELECT failures, last_error, next_at FROM billing_cycles WHERE subscription_id = $1`, sub).Scan(&failures, &le, &nextAt); err != nil {
				t.Fatal(err)
			}
			return failures, le.String, nextAt
		}
		invoicesOf := func(sub string) int {
			n := 0
			for _, inv := range b.invoices() {
				if inv.SubscriptionID == sub {
					n++
				}
			}
			return n
		}

		if st := b.run(t0); st.Invoices != 1 || invoicesOf(subs[1]) != 1 || invoicesOf(subs[0]) != 0 {
			t.Fatalf("run: %+v; invoices of bad %d, good %d", st, invoicesOf(subs[0]), invoicesOf(subs[1]))
		}
		f, le, next := cycle(subs[0])
		if f != 1 || !strings.Contains(le, "ZZZ") || !next.Time.Equal(t0.Add(time.Minute)) {
			t.Fatalf("deferred cycle: failures %d, error %q, next at %s", f, le, next.Time)
		}
		b.run(t0.Add(time.Minute))
		if f, _, next := cycle(subs[0]); f != 2 || !next.Time.Equal(t0.Add(3*time.Minute)) {
			t.Fatalf("second failure: failures %d, next at %s; want 2, 2 minutes later", f, next.Time)
		}
		corrupt(`"ZZZ"`, `"EUR"`)
		if b.run(t0.Add(2 * time.Minute)); invoicesOf(subs[0]) != 0 {
			t.Fatal("billed before it was due again")
		}
		// Published versions are cached for good: a process started after
		// the repair reads it.
		log := slog.New(slog.DiscardHandler)
		cat := catalog.NewService(d, b.clock, log, b.usage)
		svc := subscription.NewService(cat, b.clock, log)
		svc.OnSave(CycleSaves)
		b.svc = NewService(d, b.clock, log, Config{}, NewSubscriptionsAdvancing(cat, svc), b.usage)
		b.run(t0.Add(3 * time.Minute))
		if n := invoicesOf(subs[0]); n != 1 {
			t.Fatalf("invoices of the repaired subscription: %d, want 1", n)
		}
		if f, le, next := cycle(subs[0]); f != 0 || le != "" || !next.Time.Equal(month(1)) {
			t.Fatalf("after success: failures %d, error %q, next at %s", f, le, next.Time)
		}
	})
}

// A draft that fails to refresh or finalize is put off; the others are
// finalized on time, and it is finalized once it can be.
func TestAFailingDraftDoesNotHoldUpTheOthers(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		b := newBundle(t, d, t0, Config{RefreshInterval: 5 * time.Minute})
		plan := b.plan("p", catalog.VersionSpec{Currency: "EUR", Charges: []pricing.Charge{feeCharge("base", "10")}})
		var cus []string
		for _, name := range []string{"broken", "fine"} {
			c := b.customer(catalog.CustomerInput{Name: name, Currency: "EUR", Address: catalog.Address{Country: "DE"}})
			cus = append(cus, c.ID)
			b.subscribe(c.ID, plan, "1", t0)
		}
		if st := b.run(t0); st.Invoices != 2 {
			t.Fatalf("run: %+v", st)
		}
		setMetadata := func(v string) {
			t.Helper()
			if _, err := d.ExecContext(b.ctx, `UPDATE customers SET metadata = $2 WHERE id = $1`, cus[0], v); err != nil {
				t.Fatal(err)
			}
		}
		setMetadata(`{not json`) // unreadable, as after a bad manual edit
		statusOf := func(customer string) (Status, time.Time) {
			t.Helper()
			for _, inv := range b.invoices() {
				if inv.CustomerID == customer {
					return inv.Status, inv.FinalizeAt
				}
			}
			t.Fatalf("no invoice of %s", customer)
			return "", time.Time{}
		}
		late := t0.Add(2 * time.Hour)
		if st := b.run(late); st.Finalized != 1 {
			t.Fatalf("run: %+v, want 1 finalized", st)
		}
		if s, _ := statusOf(cus[1]); s != Open {
			t.Fatalf("the other draft is %s, want open", s)
		}
		if s, at := statusOf(cus[0]); s != Draft || !at.Equal(late.Add(5*time.Minute)) {
			t.Fatalf("failing draft: %s, finalize at %s; want a draft finalized 5 minutes later", s, at)
		}
		setMetadata(`{}`)
		b.run(late.Add(5 * time.Minute))
		if s, _ := statusOf(cus[0]); s != Open {
			t.Fatalf("repaired draft is %s, want open", s)
		}
	})
}
