package dunning_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/shopspring/decimal"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/catalog"
	"github.com/abacusbilling/abacus/internal/catalog/catalogtest"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
	"github.com/abacusbilling/abacus/internal/outbox"
	"github.com/abacusbilling/abacus/internal/payments/dunning"
	"github.com/abacusbilling/abacus/internal/period"
	"github.com/abacusbilling/abacus/internal/pricing"
	"github.com/abacusbilling/abacus/internal/subscription"
)

const tenant = "ten_dun"

// memBilling is the billing module as dunning sees it: invoices in memory.
type memBilling struct {
	mu          sync.Mutex
	invoices    map[string]*dunning.Invoice
	paidThrough map[string]time.Time
}

func (m *memBilling) Invoice(_ context.Context, _, id string) (dunning.Invoice, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	inv, ok := m.invoices[id]
	if !ok {
		return dunning.Invoice{}, abacus.NotFound("invoice", id)
	}
	return *inv, nil
}

func (m *memBilling) PaidThrough(_ context.Context, _, sub string) (*time.Time, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if t, ok := m.paidThrough[sub]; ok {
		return &t, nil
	}
	return nil, nil
}

func (m *memBilling) MarkUncollectible(_ context.Context, _, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.invoices[id].Status = "uncollectible"
	return nil
}

func (m *memBilling) add(id, customer, sub string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.invoices[id] = &dunning.Invoice{ID: id, Number: "INV-" + id, CustomerID: customer, SubscriptionID: sub, Currency: "EUR",
		AmountDue: decimal.RequireFromString("10.00"), Status: "open"}
}

// collector answers charges from a script, recording each attempt.
type collector struct {
	mu       sync.Mutex
	answer   func(invoice string, attempt int) dunning.Attempt
	attempts map[string][]int
}

func (c *collector) collect(_ context.Context, _, invoice string, attempt int) (dunning.Attempt, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.attempts[invoice] = append(c.attempts[invoice], attempt)
	return c.answer(invoice, attempt), nil
}

type bundle struct {
	ctx   context.Context
	d     *db.DB
	clock *abacus.FakeClock
	cat   *catalog.Service
	subs  *subscription.Service
	bill  *memBilling
	coll  *collector
	svc   *dunning.Service
}

var start = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

func setup(t *testing.T, d *db.DB) *bundle {
	t.Helper()
	b := &bundle{d: d, clock: abacus.NewFakeClock(start), bill: &memBilling{invoices: map[string]*dunning.Invoice{}, paidThrough: map[string]time.Time{}},
		coll: &collector{attempts: map[string][]int{}, answer: func(string, int) dunning.Attempt {
			return dunning.Attempt{Outcome: dunning.Failed, DeclineCode: "insufficient_funds"}
		}}}
	b.ctx = abacus.WithPrincipal(context.Background(), &abacus.Principal{TenantID: tenant, Kind: "api_key", ID: "key_test",
		Scopes: []abacus.Scope{abacus.ScopeAdmin}})
	b.cat = catalog.NewService(d, b.clock, nil, catalogtest.NewMemoryUsage())
	b.subs = subscription.NewService(b.cat, b.clock, nil)
	b.svc = dunning.New(d, b.clock, nil, b.bill, b.subs)
	b.svc.UseCollector(b.coll.collect)
	b.subs.UseSuspendable(b.svc.Suspendable)
	must(b.cat.CreateFeature(b.ctx, catalog.FeatureInput{Key: "hd", Kind: catalog.FeatureBoolean}))
	must(b.cat.CreateFeature(b.ctx, catalog.FeatureInput{Key: "billing_portal", Kind: catalog.FeatureBoolean}))
	must(b.cat.CreatePlan(b.ctx, catalog.PlanInput{Key: "pro", Name: "Pro"}))
	v := must(b.cat.CreateVersion(b.ctx, "pro", catalog.VersionSpec{Currency: "EUR", BillingInterval: period.Monthly,
		Entitlements: []catalog.Grant{{Feature: "hd"}, {Feature: "billing_portal"}},
		Charges:      []pricing.Charge{{Key: "base", Kind: pricing.ChargeFee, Fee: &pricing.Fee{Amount: decimal.RequireFromString("10")}}}}))
	must(b.cat.PublishVersion(b.ctx, "pro", v.Version))
	return b
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// subscribe creates a customer subscribed to pro with open invoice inv.
func (b *bundle) subscribe(t *testing.T, name, inv string) subscription.Subscription {
	t.Helper()
	cus := must(b.cat.CreateCustomer(b.ctx, catalog.CustomerInput{Name: name, Currency: "EUR"}))
	sub := must(b.subs.Create(b.ctx, subscription.CreateInput{CustomerID: cus.ID, PlanID: "pro"}))
	b.bill.add(inv, cus.ID, sub.ID)
	return sub
}

func (b *bundle) access(t *testing.T, sub subscription.Subscription, feature string) (bool, string) {
	t.Helper()
	var e subscription.Entitlement
	if err := json.Unmarshal(must(b.subs.CheckJSON(b.ctx, sub.CustomerID, feature)), &e); err != nil {
		t.Fatal(err)
	}
	return e.HasAccess, e.Reason
}

func (b *bundle) status(t *testing.T, sub subscription.Subscription) subscription.Status {
	t.Helper()
	return must(b.subs.Get(b.ctx, sub.ID)).Status
}

// events returns the types of the dunning events recorded for aggregate
// (a run id), or of every event of type typ when aggregate is "".
func (b *bundle) events(t *testing.T, typ string) []string {
	t.Helper()
	rows, err := b.d.QueryContext(b.ctx, `SELECT type, payload FROM outbox_events WHERE tenant_id = $1 AND type LIKE $2 ORDER BY id`, tenant, typ)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var ty, p string
		if err := rows.Scan(&ty, &p); err != nil {
			t.Fatal(err)
		}
		out = append(out, ty)
	}
	return out
}

func (b *bundle) pass(t *testing.T, at time.Time) int {
	t.Helper()
	b.clock.Set(at)
	return must(b.svc.Pass(b.ctx, at))
}

func day(n int) time.Time { return start.Add(time.Duration(n) * 24 * time.Hour) }

// The done-when flow on the dunning side: a failed payment → past_due;
// reminders and retries on the schedule (3, 5, 7 days, a reminder a day
// before each, the last one final) on a fake clock; still unpaid after the
// grace period → suspended, suspendable features say payment_overdue and
// the others stay open; paid → restored.
func TestDunningScheduleSuspendsAndPaymentRestores(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		b := setup(t, d)
		must(b.svc.SaveSettings(b.ctx, func() dunning.DunningSettings {
			s := dunning.Defaults()
			s.SuspendableFeatures = []string{"hd"}
			return s
		}()))
		sub := b.subscribe(t, "late", "inv_1")
		if err := b.svc.PaymentFailed(b.ctx, dunning.FailedPayment{TenantID: tenant, InvoiceID: "inv_1", Attempt: 1, DeclineCode: "insufficient_funds"}); err != nil {
			t.Fatal(err)
		}
		// The same failure delivered again starts nothing more.
		if err := b.svc.PaymentFailed(b.ctx, dunning.FailedPayment{TenantID: tenant, InvoiceID: "inv_1", Attempt: 1}); err != nil {
			t.Fatal(err)
		}
		if st := b.status(t, sub); st != subscription.PastDue {
			t.Fatalf("after the failed payment: %s", st)
		}
		wantSteps := []struct {
			at     time.Time
			events []string
		}{
			{day(1), nil},
			{day(2), []string{"dunning.reminder"}},
			{day(3), []string{"dunning.retry_failed"}},
			{day(4), []string{"dunning.reminder"}},
			{day(5), []string{"dunning.retry_failed"}},
			{day(6), []string{"dunning.reminder"}},
			{day(7), []string{"dunning.retry_failed"}},
			{day(9), nil},
			{day(10), []string{"dunning.exhausted"}},
			{day(11), nil},
		}
		seen := len(b.events(t, "dunning.%"))
		reg := prometheus.NewRegistry()
		b.svc.RegisterMetrics(reg)
		overdue := func() float64 { return gaugeValue(t, reg, "abacus_dunning_overdue_seconds") }
		// The first reminder is due on day 2: unworked an hour later, the
		// gauge says so (AbacusDunningStuck); a pass brings it back to 0.
		b.clock.Set(day(2).Add(time.Hour))
		if got := overdue(); got != 3600 {
			t.Errorf("an hour after the reminder was due: abacus_dunning_overdue_seconds %v, want 3600", got)
		}
		for _, st := range wantSteps {
			b.pass(t, st.at)
			if got := overdue(); got != 0 {
				t.Errorf("after the pass at day %v: abacus_dunning_overdue_seconds %v, want 0", st.at.Sub(start).Hours()/24, got)
			}
			all := b.events(t, "dunning.%")
			got := all[seen:]
			seen = len(all)
			if fmt.Sprint(got) != fmt.Sprint(st.events) {
				t.Errorf("pass at day %v: events %v, want %v", st.at.Sub(start).Hours()/24, got, st.events)
			}
			if st.at.Before(day(10)) {
				if s := b.status(t, sub); s != subscription.PastDue {
					t.Errorf("day %v: %s, want past_due", st.at.Sub(start).Hours()/24, s)
				}
				if ok, _ := b.access(t, sub, "hd"); !ok {
					t.Errorf("day %v: past_due lost its access", st.at.Sub(start).Hours()/24)
				}
			}
		}
		if got := b.coll.attempts["inv_1"]; fmt.Sprint(got) != "[2 3 4]" {
			t.Errorf("charge attempts %v, want [2 3 4]", got)
		}
		if s := b.status(t, sub); s != subscription.Suspended {
			t.Fatalf("after the schedule: %s, want suspended", s)
		}
		if ok, reason := b.access(t, sub, "hd"); ok || reason != "payment_overdue" {
			t.Errorf("suspended, hd: access %v reason %q", ok, reason)
		}
		if ok, _ := b.access(t, sub, "billing_portal"); !ok {
			t.Error("suspended: billing_portal is not suspendable and must stay open")
		}
		if err := b.svc.InvoicePaid(b.ctx, tenant, "inv_1"); err != nil {
			t.Fatal(err)
		}
		if err := b.svc.InvoicePaid(b.ctx, tenant, "inv_1"); err != nil { // delivered twice
			t.Fatal(err)
		}
		if s := b.status(t, sub); s != subscription.Active {
			t.Fatalf("paid: %s", s)
		}
		if ok, reason := b.access(t, sub, "hd"); !ok || reason != "" {
			t.Errorf("paid, hd: access %v reason %q", ok, reason)
		}
		if got := b.events(t, "dunning.recovered"); len(got) != 1 {
			t.Errorf("dunning.recovered %d times", len(got))
		}
		if got := b.events(t, "subscription.%"); fmt.Sprint(got) != "[subscription.created subscription.activated subscription.past_due subscription.suspended subscription.reactivated]" {
			t.Errorf("subscription events %v", got)
		}
	})
}

// A hard decline is not retried: the customer is asked for another payment
// method; once one is attached the invoice is charged at once. A plan's
// override changes the schedule. A prepaid period that was paid keeps its
// access after the final action.
func TestHardDeclineWaitsForANewPaymentMethod(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		b := setup(t, d)
		sub := b.subscribe(t, "stolen card", "inv_h")
		if err := b.svc.PaymentFailed(b.ctx, dunning.FailedPayment{TenantID: tenant, InvoiceID: "inv_h", Attempt: 1, DeclineCode: "stolen_card", Hard: true}); err != nil {
			t.Fatal(err)
		}
		if got := b.events(t, "dunning.%"); fmt.Sprint(got) != "[dunning.started dunning.payment_method_required]" {
			t.Fatalf("events %v", got)
		}
		b.pass(t, day(1))
		if err := b.svc.PaymentMethodAttached(b.ctx, tenant, sub.CustomerID); err != nil {
			t.Fatal(err)
		}
		b.coll.answer = func(string, int) dunning.Attempt { return dunning.Attempt{Outcome: dunning.Succeeded} }
		b.pass(t, day(1))
		if got := b.coll.attempts["inv_h"]; fmt.Sprint(got) != "[2]" {
			t.Fatalf("attempts %v, want one at once after the new method", got)
		}
		if s := b.status(t, sub); s != subscription.Active {
			t.Errorf("recovered by the retry: %s", s)
		}

		// A plan's override (runs started before keep their schedule):
		// max_attempts 1, no retry at all; the final action at once (grace
		// 0) keeps the paid period.
		one, zero := 1, 0
		must(b.svc.SavePlanOverride(b.ctx, must(b.cat.GetPlan(b.ctx, "pro")).ID, dunning.PlanOverride{RetryDays: []int{2}, MaxAttempts: &one,
			ReminderDaysBefore: &zero, GraceDays: &zero}))
		b.clock.Set(day(20))
		year := b.subscribe(t, "prepaid", "inv_p")
		b.bill.paidThrough[year.ID] = day(300)
		if err := b.svc.PaymentFailed(b.ctx, dunning.FailedPayment{TenantID: tenant, InvoiceID: "inv_p", Attempt: 1}); err != nil {
			t.Fatal(err)
		}
		b.pass(t, day(20))
		y := must(b.subs.Get(b.ctx, year.ID))
		if y.Status != subscription.Suspended || y.AccessUntil == nil || !y.AccessUntil.Equal(day(300)) {
			t.Fatalf("suspended with a paid period: %s %v", y.Status, y.AccessUntil)
		}
		if ok, _ := b.access(t, year, "hd"); !ok {
			t.Error("the paid period lost its access")
		}
		if got := b.coll.attempts["inv_p"]; len(got) != 0 {
			t.Errorf("max_attempts 1 retried: %v", got)
		}
	})
}

// Two runners (two nodes) passing at once take every due step exactly
// once.
func TestTwoRunnersNeverWorkTheSameInvoice(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		b := setup(t, d)
		other := dunning.New(d, b.clock, nil, b.bill, b.subs)
		other.UseCollector(b.coll.collect)
		const n = 60
		for i := range n {
			inv := fmt.Sprintf("inv_%02d", i)
			b.subscribe(t, inv, inv)
			if err := b.svc.PaymentFailed(b.ctx, dunning.FailedPayment{TenantID: tenant, InvoiceID: inv, Attempt: 1}); err != nil {
				t.Fatal(err)
			}
		}
		b.clock.Set(day(3))
		var wg sync.WaitGroup
		var got [2]int
		for i, s := range []*dunning.Service{b.svc, other} {
			wg.Go(func() { got[i] = must(s.Pass(b.ctx, day(3))) })
		}
		wg.Wait()
		// Day 3: the reminder of day 2 and the retry of day 3, per invoice.
		if got[0]+got[1] < n {
			t.Errorf("passes took %d + %d steps", got[0], got[1])
		}
		for inv, a := range b.coll.attempts {
			if fmt.Sprint(a) != "[2]" {
				t.Errorf("%s charged %v, want attempt 2 once", inv, a)
			}
		}
		if len(b.coll.attempts) != n {
			t.Errorf("%d invoices retried, want %d", len(b.coll.attempts), n)
		}
		if r := b.events(t, "dunning.reminder"); len(r) != n {
			t.Errorf("%d reminders, want %d", len(r), n)
		}
		settlingWaitsForTheRunner(t, b)
	})
}

// settlingWaitsForTheRunner: a payment that arrives while a pass is taking
// a step of the same run waits for the pass (its event comes again), so
// the step cannot undo it: settling a leased run is refused as
// unavailable.
func settlingWaitsForTheRunner(t *testing.T, b *bundle) {
	sub := b.subscribe(t, "busy", "inv_busy")
	if err := b.svc.PaymentFailed(b.ctx, dunning.FailedPayment{TenantID: tenant, InvoiceID: "inv_busy", Attempt: 1}); err != nil {
		t.Fatal(err)
	}
	var during error
	b.coll.answer = func(invoice string, _ int) dunning.Attempt {
		if invoice == "inv_busy" {
			during = b.svc.InvoicePaid(b.ctx, tenant, "inv_busy") // the payment's event, mid-step
		}
		return dunning.Attempt{Outcome: dunning.Failed, DeclineCode: "insufficient_funds"}
	}
	b.pass(t, day(6)) // inv_busy's first retry (and the others' second)
	if abacus.ErrorKind(during) != abacus.KindUnavailable {
		t.Fatalf("settling a run a pass holds: %v, want unavailable", during)
	}
	if err := b.svc.InvoicePaid(b.ctx, tenant, "inv_busy"); err != nil { // the event again, after the pass
		t.Fatal(err)
	}
	if s := b.status(t, sub); s != subscription.Active {
		t.Errorf("paid after the pass: %s", s)
	}
}

// Chargebacks: with dispute_suspends, a dispute suspends (payment_disputed)
// and a won one restores; a lost one records customer.chargeback_lost once
// and marks the invoice uncollectible when asked, and the subscription
// stays suspended until the invoice is paid.
func TestDisputesSuspendAndRestore(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		b := setup(t, d)
		st := dunning.Defaults()
		st.DisputeSuspends, st.DisputeLost = true, "uncollectible"
		must(b.svc.SaveSettings(b.ctx, st))
		won := b.subscribe(t, "won", "inv_w")
		lost := b.subscribe(t, "lost", "inv_l")
		for _, x := range []struct{ dispute, inv string }{{"dp_w", "inv_w"}, {"dp_l", "inv_l"}} {
			for range 2 {
				if err := b.svc.DisputeOpened(b.ctx, tenant, x.dispute, x.inv); err != nil {
					t.Fatal(err)
				}
			}
		}
		if ok, reason := b.access(t, won, "hd"); ok || reason != "payment_disputed" {
			t.Fatalf("disputed: access %v reason %q", ok, reason)
		}
		for range 2 {
			if err := b.svc.DisputeClosed(b.ctx, dunning.ClosedDispute{TenantID: tenant, DisputeID: "dp_w", InvoiceID: "inv_w", CustomerID: won.CustomerID, Won: true}); err != nil {
				t.Fatal(err)
			}
			if err := b.svc.DisputeClosed(b.ctx, dunning.ClosedDispute{TenantID: tenant, DisputeID: "dp_l", InvoiceID: "inv_l", CustomerID: lost.CustomerID,
				Amount: decimal.RequireFromString("10"), Currency: "EUR"}); err != nil {
				t.Fatal(err)
			}
		}
		if ok, _ := b.access(t, won, "hd"); !ok || b.status(t, won) != subscription.Active {
			t.Errorf("dispute won: access %v, %s", ok, b.status(t, won))
		}
		if ok, _ := b.access(t, lost, "hd"); ok {
			t.Error("dispute lost: access restored")
		}
		if got := b.events(t, "customer.chargeback_lost"); len(got) != 1 {
			t.Errorf("customer.chargeback_lost %d times, want 1", len(got))
		}
		if inv := must(b.bill.Invoice(b.ctx, tenant, "inv_l")); inv.Status != "uncollectible" {
			t.Errorf("lost invoice is %s", inv.Status)
		}
		if err := b.svc.InvoicePaid(b.ctx, tenant, "inv_l"); err != nil {
			t.Fatal(err)
		}
		if ok, _ := b.access(t, lost, "hd"); !ok {
			t.Error("paid after a lost dispute: still suspended")
		}
	})
}

func TestSettingsAreValidatedWithFieldPaths(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		b := setup(t, d)
		bad := dunning.Defaults()
		bad.RetryDays, bad.MaxAttempts, bad.FinalAction, bad.DisputeLost = []int{5, 3}, 0, "explode", "maybe"
		_, err := b.svc.SaveSettings(b.ctx, bad)
		e, ok := abacus.AsError(err)
		if !ok || e.Code != "invalid_dunning_settings" {
			t.Fatalf("bad settings: %v", err)
		}
		fields := map[string]bool{}
		for _, f := range e.Fields {
			fields[f.Field] = true
		}
		for _, f := range []string{"retry_days[1]", "max_attempts", "final_action", "dispute_lost"} {
			if !fields[f] {
				t.Errorf("no problem for %s in %v", f, e.Fields)
			}
		}
		if got := must(b.svc.Settings(b.ctx)); got.FinalAction != dunning.Suspend || !got.KeepPrepaidAccess {
			t.Errorf("defaults %+v", got)
		}
	})
}

// The consumer reads the payments core's and billing's payloads: each
// event handled twice changes nothing more, and a payment that succeeded
// before its failure arrived (events out of order) starts no dunning.
func TestEventsTwiceAndOutOfOrder(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		b := setup(t, d)
		sub := b.subscribe(t, "events", "inv_e")
		ev := func(id, typ string, payload map[string]any) outbox.Event {
			body, _ := json.Marshal(payload)
			return outbox.Event{ID: id, TenantID: tenant, Type: typ, Payload: body}
		}
		failed := ev("evt_1", "payment.failed", map[string]any{"invoice_id": "inv_e", "customer_id": sub.CustomerID, "attempt": 1,
			"decline_code": "insufficient_funds", "decline_kind": "soft", "invoice_status": "open"})
		for range 2 {
			if err := b.svc.HandleEvent(b.ctx, failed); err != nil {
				t.Fatal(err)
			}
		}
		if got := b.events(t, "dunning.started"); len(got) != 1 || b.status(t, sub) != subscription.PastDue {
			t.Fatalf("payment.failed twice: %d runs started, %s", len(got), b.status(t, sub))
		}
		b.bill.mu.Lock()
		b.bill.invoices["inv_e"].Status = "paid"
		b.bill.mu.Unlock()
		paid := ev("evt_2", "invoice.paid", map[string]any{"id": "inv_e", "customer_id": sub.CustomerID, "status": "paid"})
		for range 2 {
			if err := b.svc.HandleEvent(b.ctx, paid); err != nil {
				t.Fatal(err)
			}
		}
		if got := b.events(t, "dunning.recovered"); len(got) != 1 || b.status(t, sub) != subscription.Active {
			t.Fatalf("invoice.paid twice: %d recovered, %s", len(got), b.status(t, sub))
		}

		// Reverse order on another invoice: paid first, then the failure.
		other := b.subscribe(t, "reverse", "inv_r")
		b.bill.mu.Lock()
		b.bill.invoices["inv_r"].Status = "paid"
		b.bill.mu.Unlock()
		for _, e := range []outbox.Event{
			ev("evt_3", "invoice.paid", map[string]any{"id": "inv_r"}),
			ev("evt_4", "payment.failed", map[string]any{"invoice_id": "inv_r", "attempt": 1, "decline_kind": "hard"}),
		} {
			if err := b.svc.HandleEvent(b.ctx, e); err != nil {
				t.Fatal(err)
			}
		}
		if s := b.status(t, other); s != subscription.Active {
			t.Errorf("paid, then a late failure: %s", s)
		}
		if runs := must(b.svc.ListRuns(b.ctx, dunning.RunFilter{InvoiceID: "inv_r"})); len(runs.Data) != 0 {
			t.Errorf("a late failure of a paid invoice started a run: %+v", runs.Data)
		}
		// An inquiry withdraws nothing; an unknown type is ignored.
		for _, e := range []outbox.Event{
			ev("evt_5", "dispute.created", map[string]any{"dispute_id": "dp_1", "invoice_id": "inv_e", "kind": "inquiry"}),
			ev("evt_6", "something.else", map[string]any{}),
		} {
			if err := b.svc.HandleEvent(b.ctx, e); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// gaugeValue reads the gauge name from reg.
func gaugeValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}
