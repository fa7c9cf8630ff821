package paytest

import (
	"context"
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
	"github.com/abacusbilling/abacus/internal/identity"
	"github.com/abacusbilling/abacus/internal/period"
	"github.com/abacusbilling/abacus/internal/pricing"
	"github.com/abacusbilling/abacus/internal/subscription"
)

// Tenant is a tenant with billing set up, for tests that need invoices
// to pay.
type Tenant struct {
	T       testing.TB
	DB      *db.DB
	Clock   *abacus.FakeClock
	Ctx     context.Context // carries the tenant (admin)
	ID      string
	Catalog *catalog.Service
	Subs    *subscription.Service
	Billing *billing.Service
	Usage   *catalogtest.MemoryUsage // the usage billing prices
}

// NewTenant creates a tenant in d with billing settings (invoices due 14
// days after they are finalized), at a fake clock starting at start.
func NewTenant(t testing.TB, d *db.DB, start time.Time) *Tenant {
	t.Helper()
	b := &Tenant{T: t, DB: d, Clock: abacus.NewFakeClock(start)}
	log := slog.New(slog.DiscardHandler)
	ten, err := identity.NewService(d, b.Clock, log).CreateTenant(context.Background(), "Payments GmbH")
	if err != nil {
		t.Fatal(err)
	}
	b.ID = ten.ID
	b.Ctx = abacus.WithPrincipal(context.Background(), &abacus.Principal{TenantID: b.ID, Kind: "api_key", Scopes: []abacus.Scope{abacus.ScopeAdmin}})
	usage := catalogtest.NewMemoryUsage()
	b.Usage = usage
	b.Catalog = catalog.NewService(d, b.Clock, log, usage)
	b.Subs = subscription.NewService(b.Catalog, b.Clock, log)
	b.Subs.OnEnd(billing.CycleEnds)
	b.Subs.OnSave(billing.CycleSaves)
	b.Billing = billing.NewService(d, b.Clock, log, billing.Config{}, billing.NewSubscriptionsAdvancing(b.Catalog, b.Subs), usage)
	if _, err := b.Billing.PutSettings(b.Ctx, billing.Settings{InvoicePrefix: "INV", CreditNotePrefix: "CN", GraceSeconds: 3600, DueDays: 14,
		Seller: document.Party{Name: "Payments GmbH", Address: []string{"Königstraße 12"}, City: "Stuttgart", PostalCode: "70173",
			CountryCode: "DE", VATID: "DE123456789", Email: "billing@example.com"}}); err != nil {
		t.Fatal(err)
	}
	return b
}

// Invoice returns a finalized, open invoice of a new customer (abroad,
// no tax) for amount in currency: a monthly fee billed in advance,
// finalized after an hour of grace. The clock moves two hours on.
func (b *Tenant) Invoice(currency, amount string) billing.Invoice {
	b.T.Helper()
	must := func(err error) {
		b.T.Helper()
		if err != nil {
			b.T.Fatal(err)
		}
	}
	cus, err := b.Catalog.CreateCustomer(b.Ctx, catalog.CustomerInput{Name: "Buyer " + abacus.NewID("x"), Currency: currency,
		Email: "buyer@example.com", Address: catalog.Address{Country: "US"}})
	must(err)
	key := "p" + abacus.NewID("")
	p, err := b.Catalog.CreatePlan(b.Ctx, catalog.PlanInput{Key: key, Name: key})
	must(err)
	_, err = b.Catalog.CreateVersion(b.Ctx, p.ID, catalog.VersionSpec{Currency: currency, BillingInterval: period.Monthly,
		Charges: []pricing.Charge{{Key: "fee", Description: "Fee", Kind: pricing.ChargeFee, Fee: &pricing.Fee{Amount: decimal.RequireFromString(amount)}}}})
	must(err)
	_, err = b.Catalog.PublishVersion(b.Ctx, p.ID, 1)
	must(err)
	q := decimal.NewFromInt(1)
	start := b.Clock.Now()
	_, err = b.Subs.Create(b.Ctx, subscription.CreateInput{CustomerID: cus.ID, PlanID: p.ID, Quantity: &q, StartAt: &start, SkipTrial: true})
	must(err)
	end := start.Add(2 * time.Hour)
	b.Clock.Set(end)
	_, err = b.Billing.RunOnce(context.Background(), end)
	must(err)
	page, err := b.Billing.ListInvoices(b.Ctx, billing.ListFilter{CustomerID: cus.ID, Status: billing.Open})
	must(err)
	if len(page.Data) != 1 {
		b.T.Fatalf("want one open invoice for %s %s, got %d", amount, currency, len(page.Data))
	}
	inv, err := b.Billing.GetInvoice(b.Ctx, page.Data[0].ID)
	must(err)
	return inv
}

// Get reads invoice id.
func (b *Tenant) Get(id string) billing.Invoice {
	b.T.Helper()
	inv, err := b.Billing.GetInvoice(b.Ctx, id)
	if err != nil {
		b.T.Fatal(err)
	}
	return inv
}
