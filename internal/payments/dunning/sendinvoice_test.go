package dunning_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
	"github.com/abacusbilling/abacus/internal/payments/dunning"
	"github.com/abacusbilling/abacus/internal/subscription"
)

// sendInvoice makes every customer pay by the hosted page, each invoice
// due on due, and gives reminders a pay link per invoice.
func (b *bundle) sendInvoice(due time.Time) {
	b.svc.UseCollectionMethods(func(context.Context, string, string) (string, error) { return dunning.SendInvoice, nil })
	b.svc.UsePayLinks(func(_ context.Context, _, invoice string) (string, error) { return "https://pay.test/" + invoice, nil })
	b.bill.mu.Lock()
	defer b.bill.mu.Unlock()
	for _, inv := range b.bill.invoices {
		inv.DueAt = &due
	}
}

// payloads returns the dunning events of invoice, oldest first.
func (b *bundle) payloads(t *testing.T, invoice string) []dunning.RunEvent {
	t.Helper()
	rows, err := b.d.QueryContext(b.ctx, `SELECT payload FROM outbox_events WHERE tenant_id = $1 AND type LIKE 'dunning.%' ORDER BY id`, tenant)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []dunning.RunEvent
	for rows.Next() {
		var p string
		var e dunning.RunEvent
		if err := rows.Scan(&p); err != nil || json.Unmarshal([]byte(p), &e) != nil {
			t.Fatal(err)
		}
		if e.InvoiceID == invoice {
			out = append(out, e)
		}
	}
	return out
}

// The send_invoice side of dunning, on a fake clock: an invoice the
// customer pays by the hosted page is not dunned before its due date
// (not even when a checkout fails); the day after it, still unpaid, the
// subscription is past_due and dunning.started carries the pay link;
// reminders with the link follow on the tenant's schedule (3, 5, 7 days
// after the due date, the last one final), nothing is charged, and after
// the grace period the final action is taken: suspend (payment_overdue),
// cancel or mark uncollectible, each as its run's policy says. Paying
// restores access; an invoice paid before it is due leaves no trace.
func TestSendInvoiceRemindsFromTheDueDateAndTakesTheFinalAction(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		b := setup(t, d)
		finals := map[string]dunning.FinalAction{"inv_s": dunning.Suspend, "inv_c": dunning.Cancel, "inv_u": dunning.MarkUncollectible}
		subs := map[string]subscription.Subscription{}
		for _, inv := range []string{"inv_s", "inv_c", "inv_u", "inv_early", "inv_late"} {
			subs[inv] = b.subscribe(t, inv, inv)
		}
		due := day(14)
		b.sendInvoice(due)
		for _, inv := range []string{"inv_s", "inv_c", "inv_u", "inv_early", "inv_late"} {
			st := dunning.Defaults()
			if f, ok := finals[inv]; ok {
				st.FinalAction = f
			}
			must(b.svc.SaveSettings(b.ctx, st)) // a run keeps the policy of its invoice's finalization
			for range 2 {
				if err := b.svc.InvoiceFinalized(b.ctx, tenant, inv); err != nil {
					t.Fatal(err)
				}
			}
		}
		if runs := must(b.svc.ListRuns(b.ctx, dunning.RunFilter{Status: dunning.StatusScheduled})); len(runs.Data) != 5 {
			t.Fatalf("scheduled runs: %d, want one per invoice", len(runs.Data))
		}
		// A failed checkout before the due date starts nothing.
		if err := b.svc.PaymentFailed(b.ctx, dunning.FailedPayment{TenantID: tenant, InvoiceID: "inv_s", DeclineCode: "card_declined"}); err != nil {
			t.Fatal(err)
		}
		// inv_early is paid before it is due (its event arrives); inv_late
		// is paid, but the pass sees it before the event does.
		b.bill.mu.Lock()
		b.bill.invoices["inv_early"].Status, b.bill.invoices["inv_late"].Status = "paid", "paid"
		b.bill.mu.Unlock()
		if err := b.svc.InvoicePaid(b.ctx, tenant, "inv_early"); err != nil {
			t.Fatal(err)
		}
		if n := b.pass(t, day(13)); n != 0 || len(b.events(t, "dunning.%")) != 0 {
			t.Fatalf("before the due date: %d steps, events %v", n, b.events(t, "dunning.%"))
		}
		wantSteps := []struct {
			at     time.Time
			events []string
		}{
			{due, []string{"dunning.started", "dunning.started", "dunning.started"}},
			{day(16), nil},
			{day(17), []string{"dunning.reminder", "dunning.reminder", "dunning.reminder"}},
			{day(19), []string{"dunning.reminder", "dunning.reminder", "dunning.reminder"}},
			{day(21), []string{"dunning.reminder", "dunning.reminder", "dunning.reminder"}},
			{day(23), nil},
			{day(24), []string{"dunning.exhausted", "dunning.exhausted", "dunning.exhausted"}},
		}
		seen := 0
		for _, st := range wantSteps {
			b.pass(t, st.at)
			all := b.events(t, "dunning.%")
			if got := all[seen:]; fmt.Sprint(got) != fmt.Sprint(st.events) {
				t.Errorf("pass at day %v: events %v, want %v", st.at.Sub(start).Hours()/24, got, st.events)
			}
			seen = len(all)
			if st.at.Before(day(24)) && st.at.After(due) {
				for inv := range finals {
					if s := b.status(t, subs[inv]); s != subscription.PastDue {
						t.Errorf("day %v, %s: %s, want past_due", st.at.Sub(start).Hours()/24, inv, s)
					}
				}
			}
		}
		if len(b.coll.attempts) != 0 {
			t.Errorf("a send_invoice invoice was charged: %v", b.coll.attempts)
		}
		evs := b.payloads(t, "inv_s")
		if len(evs) != 5 {
			t.Fatalf("inv_s events: %+v", evs)
		}
		for i, e := range evs {
			if e.Link != "https://pay.test/inv_s" || e.CollectionMethod != dunning.SendInvoice || e.RetryAt != nil {
				t.Errorf("inv_s event %d: link %q method %q retry_at %v", i, e.Link, e.CollectionMethod, e.RetryAt)
			}
			if final := i == 3; e.Final != final {
				t.Errorf("inv_s event %d: final %v, want %v", i, e.Final, final)
			}
		}
		if evs[0].FinalActionAt == nil || !evs[0].FinalActionAt.Equal(day(24)) {
			t.Errorf("dunning.started: final_action_at %v, want day 24", evs[0].FinalActionAt)
		}

		if s := b.status(t, subs["inv_s"]); s != subscription.Suspended {
			t.Errorf("suspend: %s", s)
		}
		if ok, reason := b.access(t, subs["inv_s"], "hd"); ok || reason != "payment_overdue" {
			t.Errorf("suspended: access %v reason %q", ok, reason)
		}
		if s := b.status(t, subs["inv_c"]); s != subscription.Ended { // canceled now: it ends
			t.Errorf("cancel: %s", s)
		}
		if st := must(b.bill.Invoice(b.ctx, tenant, "inv_u")).Status; st != "uncollectible" || b.status(t, subs["inv_u"]) != subscription.Active {
			t.Errorf("mark_uncollectible: invoice %s, subscription %s", st, b.status(t, subs["inv_u"]))
		}
		for _, inv := range []string{"inv_early", "inv_late"} {
			if s := b.status(t, subs[inv]); s != subscription.Active || len(b.payloads(t, inv)) != 0 {
				t.Errorf("%s paid before it was due: %s, events %+v", inv, s, b.payloads(t, inv))
			}
			if runs := must(b.svc.ListRuns(b.ctx, dunning.RunFilter{InvoiceID: inv})); len(runs.Data) != 0 {
				t.Errorf("%s paid before it was due keeps a run: %+v", inv, runs.Data)
			}
		}

		if err := b.svc.InvoicePaid(b.ctx, tenant, "inv_s"); err != nil {
			t.Fatal(err)
		}
		if ok, _ := b.access(t, subs["inv_s"], "hd"); !ok || b.status(t, subs["inv_s"]) != subscription.Active {
			t.Errorf("paid: access %v, %s", ok, b.status(t, subs["inv_s"]))
		}
		if got := b.payloads(t, "inv_s"); got[len(got)-1].Status != dunning.StatusRecovered {
			t.Errorf("paid: last event %+v", got[len(got)-1])
		}
	})
}
