package timeline

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/billing"
	"github.com/abacusbilling/abacus/internal/catalog"
	"github.com/abacusbilling/abacus/internal/catalog/catalogtest"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
	"github.com/abacusbilling/abacus/internal/enduser/org"
	"github.com/abacusbilling/abacus/internal/outbox"
	"github.com/abacusbilling/abacus/internal/payments"
	"github.com/abacusbilling/abacus/internal/risk/casework"
	"github.com/abacusbilling/abacus/internal/subscription"
)

type bundle struct {
	t   *testing.T
	d   *db.DB
	svc *Service
	cat *catalog.Service
}

func setup(t *testing.T, d *db.DB) *bundle {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	clock := abacus.NewFakeClock(time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC))
	return &bundle{t: t, d: d, svc: NewService(d, nil, log), cat: catalog.NewService(d, clock, log, catalogtest.NewMemoryUsage())}
}

// tenant makes a tenant and returns a context acting in it.
func (b *bundle) tenant(name string) context.Context {
	b.t.Helper()
	id := abacus.NewID("ten")
	if _, err := b.d.ExecContext(context.Background(), `INSERT INTO tenants (id, name, created_at) VALUES ($1, $2, 0)`, id, name); err != nil {
		b.t.Fatal(err)
	}
	return abacus.WithPrincipal(context.Background(), &abacus.Principal{TenantID: id, Kind: "system", Scopes: []abacus.Scope{abacus.ScopeAdmin}})
}

func (b *bundle) customer(ctx context.Context, name, external string) catalog.Customer {
	b.t.Helper()
	c, err := b.cat.CreateCustomer(ctx, catalog.CustomerInput{Name: name, ExternalID: external, Currency: "EUR"})
	if err != nil {
		b.t.Fatal(err)
	}
	return c
}

// event is what the relay would publish for payload of kind k.
func event[P any](t *testing.T, ctx context.Context, k outbox.Kind[P], aggregate string, at time.Time, payload P) outbox.Event {
	t.Helper()
	tenant, _ := abacus.TenantFrom(ctx)
	e := k.New(tenant, aggregate, at, payload)
	b, err := json.Marshal(payload)
	if err != nil {
		t.Fatal(err)
	}
	e.ID, e.Payload = abacus.NewID("evt"), b
	return e
}

func (b *bundle) list(ctx context.Context, ref string, f Filter) abacus.List[TimelineEntry] {
	b.t.Helper()
	l, err := b.svc.List(ctx, ref, f)
	if err != nil {
		b.t.Fatal(err)
	}
	return l
}

func summaries(l abacus.List[TimelineEntry]) []string {
	out := make([]string, len(l.Data))
	for i, e := range l.Data {
		out[i] = e.Summary
	}
	return out
}

func equal(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("%s: got %q, want %q", what, got, want)
	}
}

func code(err error) string {
	if e, ok := abacus.AsError(err); ok {
		return e.Code
	}
	return ""
}

// TestTimelineIndexesEventsByTheirCustomer indexes a mix of events twice
// (a redelivery), then reads a customer's timeline page by page, by
// type and time, by external id, and from another tenant.
func TestTimelineIndexesEventsByTheirCustomer(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		b := setup(t, d)
		ctxA, ctxB := b.tenant("A"), b.tenant("B")
		acme, other := b.customer(ctxA, "Acme", "acme-1"), b.customer(ctxA, "Other", "")
		foreign := b.customer(ctxB, "Foreign", "")
		orgCustomer := b.customer(ctxA, "Org", "org_1") // an organization's customer is named by its id
		t0 := time.Date(2026, 11, 3, 10, 0, 0, 0, time.UTC)
		inv := billing.InvoiceEvent{ID: "inv_1", CustomerID: acme.ID, Number: "INV-7", Currency: "EUR",
			Total: decimal.RequireFromString("119"), AmountDue: decimal.RequireFromString("119"), Status: "open"}
		pay := payments.PaymentEvent{PaymentID: "pay_1", CustomerID: acme.ID, InvoiceID: "inv_1", Currency: "EUR",
			Amount: decimal.RequireFromString("119.5"), Status: "succeeded"}
		created, ok := outbox.LookupType("subscription.created", 1)
		if !ok {
			t.Fatal("subscription.created is not defined")
		}
		sub := subscription.Event{Subscription: subscription.Subscription{ID: "sub_1", CustomerID: acme.ID, PlanID: "pln_unknown",
			Quantity: decimal.NewFromInt(1)}}
		subPayload, _ := json.Marshal(sub)
		tenantA, _ := abacus.TenantFrom(ctxA)
		subEvent := outbox.Event{ID: abacus.NewID("evt"), TenantID: tenantA, Type: created.Name, Version: 1,
			AggregateType: "subscription", AggregateID: "sub_1", CreatedAt: t0, Payload: subPayload}
		otherInv := inv
		otherInv.CustomerID, otherInv.ID = other.ID, "inv_2"
		garbled := event(t, ctxA, billing.InvoicePaid, "inv_1", t0.Add(3*time.Hour), inv)
		garbled.Payload = []byte(`{"customer_id": 42}`)
		events := []outbox.Event{
			subEvent,
			event(t, ctxA, billing.InvoiceFinalized, "inv_1", t0.Add(time.Hour), inv),
			event(t, ctxA, payments.PaymentSucceeded, "pay_1", t0.Add(2*time.Hour), pay),
			event(t, ctxA, billing.InvoiceFinalized, "inv_2", t0.Add(time.Hour), otherInv),
			event(t, ctxB, catalog.CustomerCreated, foreign.ID, t0, foreign),
			event(t, ctxA, catalog.PlanCreated, "pln_1", t0, catalog.Plan{ID: "pln_1"}), // names no customer
			garbled, // cannot be decoded: left out, not retried forever
			event(t, ctxA, org.MemberAdded, "org_1", t0, org.MemberEvent{OrganizationID: "org_1", UserID: "eu_1", Role: "owner", Reason: "invitation"}),
			event(t, ctxA, org.MemberAdded, "org_2", t0, org.MemberEvent{OrganizationID: "org_2", UserID: "eu_2", Role: "member"}), // no customer: left out
		}
		for range 2 { // the second time is a redelivery: nothing changes
			n, err := b.svc.Index(context.Background(), events)
			if err != nil {
				t.Fatal(err)
			}
			if n != 6 {
				t.Fatalf("indexed %d events, want 6", n)
			}
		}
		var rows int
		if err := d.QueryRowContext(context.Background(), `SELECT COUNT(*) FROM timeline_entries`).Scan(&rows); err != nil {
			t.Fatal(err)
		}
		if rows != 6 {
			t.Fatalf("%d rows after a redelivery, want 6", rows)
		}
		members := b.list(ctxA, orgCustomer.ID, Filter{Types: []string{"organization.*"}})
		equal(t, "the organization's customer", summaries(members), []string{"An end user joined the organization as owner by invitation."})
		if members.Data[0].Object != (TimelineObject{"end_user", "eu_1"}) {
			t.Fatalf("a member's entry is about %+v", members.Data[0].Object)
		}

		all := b.list(ctxA, acme.ID, Filter{})
		equal(t, "acme's timeline", summaries(all), []string{
			"Payment of EUR 119.50 succeeded.",
			"Invoice INV-7 finalized: EUR 119.00 due.",
			"Subscription to a plan created.",
		})
		if all.NextCursor != "" || all.Data[1].Object != (TimelineObject{"invoice", "inv_1"}) || all.Data[0].Data["invoice_id"] != "inv_1" ||
			!all.Data[2].OccurredAt.Equal(t0) {
			t.Fatalf("acme's timeline: %+v", all)
		}
		byExternal := b.list(ctxA, "acme-1", Filter{})
		equal(t, "by external id", summaries(byExternal), summaries(all))

		first := b.list(ctxA, acme.ID, Filter{Limit: 2})
		if len(first.Data) != 2 || first.NextCursor != first.Data[1].EventID {
			t.Fatalf("first page: %+v", first)
		}
		second := b.list(ctxA, acme.ID, Filter{Limit: 2, Cursor: first.NextCursor})
		equal(t, "second page", summaries(second), []string{"Subscription to a plan created."})
		if second.NextCursor != "" {
			t.Fatalf("the last page has a next cursor %q", second.NextCursor)
		}

		equal(t, "invoice.*", summaries(b.list(ctxA, acme.ID, Filter{Types: []string{"invoice.*"}})),
			[]string{"Invoice INV-7 finalized: EUR 119.00 due."})
		equal(t, "two types", summaries(b.list(ctxA, acme.ID, Filter{Types: []string{"payment.succeeded", "subscription.created"}})),
			[]string{"Payment of EUR 119.50 succeeded.", "Subscription to a plan created."})
		equal(t, "since, until", summaries(b.list(ctxA, acme.ID, Filter{Since: t0.Add(time.Hour), Until: t0.Add(2 * time.Hour)})),
			[]string{"Invoice INV-7 finalized: EUR 119.00 due."})

		for name, f := range map[string]Filter{
			"invalid_type":       {Types: []string{"invoice.nope"}},
			"invalid_time_range": {Since: t0, Until: t0},
			"invalid_cursor":     {Cursor: b.list(ctxA, other.ID, Filter{}).Data[0].EventID}, // another customer's entry
		} {
			if _, err := b.svc.List(ctxA, acme.ID, f); code(err) != name {
				t.Fatalf("%s: got %v", name, err)
			}
		}
		// Tenant isolation: B cannot read A's customer, and sees only its own.
		if _, err := b.svc.List(ctxB, acme.ID, Filter{}); code(err) != "customer_not_found" {
			t.Fatalf("another tenant's customer: got %v", err)
		}
		equal(t, "tenant B", summaries(b.list(ctxB, foreign.ID, Filter{})), []string{"Customer created."})
		// A customer's name may be an end user's: it is not copied here.
		var named int
		if err := d.QueryRowContext(context.Background(), `SELECT COUNT(*) FROM timeline_entries WHERE data LIKE '%Foreign%'`).Scan(&named); err != nil || named != 0 {
			t.Fatalf("the index keeps the customer's name in %d rows (%v)", named, err)
		}
	})
}

// TestTimelineShowsUsageSpikes: risk.usage_anomaly v2 names the customer
// owning the spiking subject and shows on its timeline as a sentence; v1
// (no customer) and a v2 spike of a subject nobody owns are left out.
func TestTimelineShowsUsageSpikes(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		b := setup(t, d)
		ctx := b.tenant("A")
		acme := b.customer(ctx, "Acme", "")
		day := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
		spike := casework.UsageAnomalyEvent{Meter: "api_calls", Subject: "acme-key", Day: day, Value: 1235, Median: 100, MAD: 4, Days: 28, Ratio: 12.35}
		fromZero := casework.UsageAnomalyEvent{Meter: "tokens", Subject: "acme-key", Day: day.AddDate(0, 0, 1), Value: 120, Days: 9}
		at := day.Add(26 * time.Hour)
		events := []outbox.Event{
			event(t, ctx, casework.UsageAnomaly, "acme-key", at, casework.UsageAnomalyEventV2{CustomerID: acme.ID, UsageAnomalyEvent: spike}),
			event(t, ctx, casework.UsageAnomaly, "acme-key", at.Add(time.Hour), casework.UsageAnomalyEventV2{CustomerID: acme.ID, UsageAnomalyEvent: fromZero}),
			event(t, ctx, casework.UsageAnomaly, "stray", at, casework.UsageAnomalyEventV2{UsageAnomalyEvent: spike}), // no customer owns it
			event(t, ctx, casework.UsageAnomalyV1, "acme-key", at, spike),                                             // v1 names no customer
		}
		n, err := b.svc.Index(context.Background(), events)
		if err != nil {
			t.Fatal(err)
		}
		if n != 2 {
			t.Fatalf("indexed %d events, want the 2 v2 spikes of acme's subject", n)
		}
		got := b.list(ctx, acme.ID, Filter{Types: []string{"risk.*"}})
		equal(t, "acme's spikes", summaries(got), []string{
			"Usage of tokens rose to 120 on 2026-11-03, from a baseline of 0.",
			"Usage of api_calls was 12.35× its baseline on 2026-11-02.",
		})
		e := got.Data[1]
		if e.Type != "risk.usage_anomaly" || e.Object != (TimelineObject{"meter", "api_calls"}) || e.Data["value"] != "1235" ||
			e.Data["baseline_median"] != "100" || e.Data["day"] != "2026-11-02" || e.Data["subject"] != "" {
			t.Fatalf("the spike's entry: %+v", e)
		}
		equal(t, "exact type", summaries(b.list(ctx, acme.ID, Filter{Types: []string{"risk.usage_anomaly"}})), summaries(got))
	})
}
