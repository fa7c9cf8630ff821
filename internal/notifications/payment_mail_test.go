package notifications_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
	"github.com/abacusbilling/abacus/internal/notifications"
	"github.com/abacusbilling/abacus/internal/notifications/smtp/smtptest"
)

// A failed first payment is followed by dunning.started and
// subscription.past_due (and, for a hard decline, by
// dunning.payment_method_required); a payment that pays an invoice by
// invoice.paid. The customer gets one e-mail for each fact, with the
// invoice's number in it.
func TestOneMailPerPaymentFact(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		b := setupTriggers(t, d)
		pay := func(status, code, kind string) map[string]any {
			return map[string]any{"payment_id": "pay_1", "invoice_id": "inv_1", "invoice_number": "INV-7", "customer_id": "cus_1",
				"provider": "stripe", "provider_reference": "pi_1", "status": status, "amount": "58.31", "amount_refunded": "0",
				"currency": "EUR", "attempt": 1, "decline_code": code, "decline_kind": kind, "invoice_amount_due": "58.31", "invoice_status": "open"}
		}
		run := map[string]any{"run_id": "dun_1", "invoice_id": "inv_1", "invoice_number": "INV-7", "customer_id": "cus_1",
			"subscription_id": "sub_1", "amount": "58.31", "currency": "EUR", "status": "active", "attempts": 1, "final_action": "suspend"}
		sub := map[string]any{"subscription": map[string]any{"id": "sub_1", "customer_id": "cus_1", "plan_id": "pln_1", "status": "past_due"}}
		cases := []struct {
			name    string
			events  []any // (type, aggregate, payload) triples
			subject string
		}{
			{"soft decline", []any{"payment.failed", "payment", pay("failed", "insufficient_funds", "soft"), "dunning.started", "dunning_run", run,
				"subscription.past_due", "subscription", sub}, "Payment for invoice INV-7 failed"},
			{"hard decline", []any{"payment.failed", "payment", pay("failed", "stolen_card", "hard"), "dunning.started", "dunning_run", run,
				"dunning.payment_method_required", "dunning_run", run, "subscription.past_due", "subscription", sub}, "Please update your payment method for invoice INV-7"},
			{"paid", []any{"payment.succeeded", "payment", pay("succeeded", "", ""), "invoice.paid", "invoice",
				map[string]any{"id": "inv_1", "number": "INV-7", "customer_id": "cus_1", "total": "58.31", "amount_due": "0",
					"currency": "EUR", "status": "paid", "period_start": "2026-10-01T00:00:00Z"}}, "Payment received for invoice INV-7"},
		}
		for i, c := range cases {
			before := len(b.mail.Messages())
			for j := 0; j < len(c.events); j += 3 {
				e := event("evt_"+c.name+string(rune('a'+j)), c.events[j].(string), c.events[j+1].(string), "agg_1", c.events[j+2])
				if err := b.svc.HandleEvent(context.Background(), e); err != nil {
					t.Fatal(err)
				}
			}
			b.deliver(t)
			b.mail.Wait(t, before+1, 30*time.Second)
			time.Sleep(50 * time.Millisecond) // a second mail would be sent by the same DeliverDue
			msgs := b.mail.Messages()
			if len(msgs) != before+1 {
				t.Fatalf("%s: %d mails, want 1", c.name, len(msgs)-before)
			}
			p := smtptest.Parse(t, msgs[before].Raw)
			if p.Subject != c.subject || !strings.Contains(p.Text, "58.31") {
				t.Fatalf("%s: mail %q\n%s", c.name, p.Subject, p.Text)
			}
			if i == 0 && !strings.Contains(p.Text, "insufficient funds") {
				t.Fatalf("%s: no reason in\n%s", c.name, p.Text)
			}
		}
		list, _, err := notifications.ListNotifications(b.ctx, d, notifications.Filter{})
		if err != nil || len(list) != len(cases) {
			t.Fatalf("%d notifications, want %d: %v", len(list), len(cases), err)
		}
	})
}
