package payments

import (
	"context"
	"crypto/rand"
	"log/slog"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/billing"
	"github.com/abacusbilling/abacus/internal/catalog"
	"github.com/abacusbilling/abacus/internal/catalog/catalogtest"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/document"
	"github.com/abacusbilling/abacus/internal/period"
	"github.com/abacusbilling/abacus/internal/pricing"
	"github.com/abacusbilling/abacus/internal/subscription"
)

// testKey is one sealing key for every service of a test binary, so a
// second service (a restarted process) opens the first one's secrets.
var testKey = func() []byte {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return b
}()

var t0 = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

// bundle is what a payments test works with: a tenant with billing
// settings, the services, and a fake clock.
type bundle struct {
	t      testing.TB
	d      *db.DB
	clock  *abacus.FakeClock
	ctx    context.Context
	tenant string
	cat    *catalog.Service
	subs   *subscription.Service
	bill   *billing.Service
	svc    *Service
}

func newBundle(t testing.TB, d *db.DB) *bundle {
	t.Helper()
	b := &bundle{t: t, d: d, clock: abacus.NewFakeClock(t0), tenant: abacus.NewID("ten")}
	if _, err := d.ExecContext(context.Background(), `INSERT INTO tenants (id, name, created_at) VALUES ($1, 'Payments GmbH', 0)`, b.tenant); err != nil {
		t.Fatal(err)
	}
	b.ctx = tenantCtx(context.Background(), b.tenant)
	log := slog.New(slog.DiscardHandler)
	usage := catalogtest.NewMemoryUsage()
	b.cat = catalog.NewService(d, b.clock, log, usage)
	b.subs = subscription.NewService(b.cat, b.clock, log)
	b.subs.OnEnd(billing.CycleEnds)
	b.subs.OnSave(billing.CycleSaves)
	b.bill = billing.NewService(d, b.clock, log, billing.Config{}, billing.NewSubscriptionsAdvancing(b.cat, b.subs), usage)
	_, err := b.bill.PutSettings(b.ctx, billing.Settings{InvoicePrefix: "INV", CreditNotePrefix: "CN", GraceSeconds: 3600, DueDays: 14,
		Seller: document.Party{Name: "Payments GmbH", Address: []string{"Königstraße 12"}, City: "Stuttgart", PostalCode: "70173",
			CountryCode: "DE", VATID: "DE123456789", Email: "billing@example.com"}})
	must(t, err)
	b.svc = newService(t, d, b.clock)
	return b
}

func newService(t testing.TB, d *db.DB, clock abacus.Clock) *Service {
	t.Helper()
	s, err := NewService(d, clock, slog.New(slog.DiscardHandler), Config{EncryptionKey: testKey, BaseURL: "https://billing.example.com"},
		billing.NewService(d, clock, slog.New(slog.DiscardHandler), billing.Config{}, nil, nil))
	must(t, err)
	return s
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func num(s string) decimal.Decimal { return decimal.RequireFromString(s) }

// invoice returns a finalized, open invoice of a new customer for a
// monthly fee of amount in currency (no tax: the customer is abroad and
// the seller exempt), due 14 days after it is finalized.
func (b *bundle) invoice(currency, amount string) billing.Invoice {
	b.t.Helper()
	cus, err := b.cat.CreateCustomer(b.ctx, catalog.CustomerInput{Name: "Buyer " + abacus.NewID("x"), Currency: currency,
		Email: "buyer@example.com", Address: catalog.Address{Country: "US"}})
	must(b.t, err)
	key := "p" + abacus.NewID("")
	p, err := b.cat.CreatePlan(b.ctx, catalog.PlanInput{Key: key, Name: key})
	must(b.t, err)
	_, err = b.cat.CreateVersion(b.ctx, p.ID, catalog.VersionSpec{Currency: currency, BillingInterval: period.Monthly,
		Charges: []pricing.Charge{{Key: "fee", Description: "Fee", Kind: pricing.ChargeFee, Fee: &pricing.Fee{Amount: num(amount)}}}})
	must(b.t, err)
	_, err = b.cat.PublishVersion(b.ctx, p.ID, 1)
	must(b.t, err)
	q := decimal.NewFromInt(1)
	start := b.clock.Now()
	_, err = b.subs.Create(b.ctx, subscription.CreateInput{CustomerID: cus.ID, PlanID: p.ID, Quantity: &q, StartAt: &start, SkipTrial: true})
	must(b.t, err)
	end := start.Add(2 * time.Hour) // a fee is billed in advance: one invoice, finalized after the hour of grace
	b.clock.Set(end)
	_, err = b.bill.RunOnce(context.Background(), end)
	must(b.t, err)
	page, err := b.bill.ListInvoices(b.ctx, billing.ListFilter{CustomerID: cus.ID, Status: billing.Open})
	must(b.t, err)
	if len(page.Data) == 0 {
		all, _ := b.bill.ListInvoices(b.ctx, billing.ListFilter{CustomerID: cus.ID})
		b.t.Fatalf("no open invoice for %s %s: %+v", amount, currency, all.Data)
	}
	inv, err := b.bill.GetInvoice(b.ctx, page.Data[0].ID)
	must(b.t, err)
	return inv
}

func (b *bundle) getInvoice(id string) billing.Invoice {
	b.t.Helper()
	inv, err := b.bill.GetInvoice(b.ctx, id)
	must(b.t, err)
	return inv
}

// events returns the types of the tenant's recorded domain events of
// aggregate id, oldest first.
func (b *bundle) events(id string) []string {
	b.t.Helper()
	rows, err := b.d.QueryContext(context.Background(), `SELECT type FROM outbox_events WHERE tenant_id = $1 AND aggregate_id = $2 ORDER BY seq`,
		b.tenant, id)
	must(b.t, err)
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		must(b.t, rows.Scan(&s))
		out = append(out, s)
	}
	return out
}
