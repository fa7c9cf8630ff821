package billing

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/catalog"
	"github.com/abacusbilling/abacus/internal/catalog/catalogtest"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/document"
	"github.com/abacusbilling/abacus/internal/einvoicetest"
	"github.com/abacusbilling/abacus/internal/period"
	"github.com/abacusbilling/abacus/internal/pricing"
	"github.com/abacusbilling/abacus/internal/subscription"
)

func dec(s string) decimal.Decimal { return decimal.RequireFromString(s) }
func decp(s string) *decimal.Decimal {
	d := dec(s)
	return &d
}

// bundle is what a billing test works with.
type bundle struct {
	t      testing.TB
	d      *db.DB
	clock  *abacus.FakeClock
	ctx    context.Context
	tenant string
	usage  *catalogtest.MemoryUsage
	cat    *catalog.Service
	subs   *subscription.Service
	svc    *Service
}

func newBundle(t testing.TB, d *db.DB, start time.Time, cfg Config) *bundle {
	t.Helper()
	b := &bundle{t: t, d: d, clock: abacus.NewFakeClock(start), usage: catalogtest.NewMemoryUsage(), tenant: abacus.NewID("ten")}
	if _, err := d.ExecContext(context.Background(), `INSERT INTO tenants (id, name, created_at) VALUES ($1, 'Müller Cloud GmbH', 0)`, b.tenant); err != nil {
		t.Fatal(err)
	}
	b.ctx = tenantCtx(context.Background(), b.tenant)
	log := slog.New(slog.DiscardHandler)
	b.cat = catalog.NewService(d, b.clock, log, b.usage)
	b.subs = subscription.NewService(b.cat, b.clock, log)
	b.subs.OnEnd(CycleEnds)
	b.subs.OnSave(CycleSaves)
	b.svc = NewService(d, b.clock, log, cfg, NewSubscriptionsAdvancing(b.cat, b.subs), b.usage)
	b.usage.AddMeter(b.tenant, "api")
	_, err := b.svc.PutSettings(b.ctx, Settings{InvoicePrefix: "INV", CreditNotePrefix: "CN", GraceSeconds: 3600, DueDays: 30,
		Seller: document.Party{Name: "Müller Cloud GmbH", Address: []string{"Königstraße 12"}, City: "Stuttgart", PostalCode: "70173",
			CountryCode: "DE", VATID: "DE123456789", Email: "billing@mueller-cloud.de", ContactName: "Billing team", Phone: "+49 711 123456"},
		PaymentMeans: &document.PaymentMeans{Code: "58", IBAN: "DE89370400440532013000", AccountName: "Müller Cloud GmbH"}})
	must(t, err)
	return b
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func (b *bundle) plan(key string, spec catalog.VersionSpec) string {
	b.t.Helper()
	p, err := b.cat.CreatePlan(b.ctx, catalog.PlanInput{Key: key, Name: key})
	must(b.t, err)
	if spec.BillingInterval.Unit == "" {
		spec.BillingInterval = period.Monthly
	}
	_, err = b.cat.CreateVersion(b.ctx, p.ID, spec)
	must(b.t, err)
	_, err = b.cat.PublishVersion(b.ctx, p.ID, 1)
	must(b.t, err)
	return p.ID
}

func (b *bundle) customer(in catalog.CustomerInput) catalog.Customer {
	b.t.Helper()
	c, err := b.cat.CreateCustomer(b.ctx, in)
	must(b.t, err)
	return c
}

func (b *bundle) subscribe(cus, plan string, qty string, start time.Time) subscription.Subscription {
	b.t.Helper()
	q := dec(qty)
	s, err := b.subs.Create(b.ctx, subscription.CreateInput{CustomerID: cus, PlanID: plan, Quantity: &q, StartAt: &start, SkipTrial: true})
	must(b.t, err)
	return s
}

func (b *bundle) run(at time.Time) RunStats {
	b.t.Helper()
	b.clock.Set(at)
	st, err := b.svc.RunOnce(context.Background(), at)
	must(b.t, err)
	return st
}

func feeCharge(key, amount string) pricing.Charge {
	return pricing.Charge{Key: key, Description: key, Kind: pricing.ChargeFee, Fee: &pricing.Fee{Amount: dec(amount)}}
}

func perUnit(key, meter, unit string) pricing.Charge {
	return pricing.Charge{Key: key, Description: key, Kind: pricing.ChargeUsage, Meter: meter, Price: &pricing.Price{Model: pricing.PerUnit, UnitAmount: dec(unit)}}
}

// invoicesOf returns every invoice of the tenant, with lines, by id.
func (b *bundle) invoices() []Invoice {
	b.t.Helper()
	var out []Invoice
	cursor := ""
	for {
		p, err := b.svc.ListInvoices(b.ctx, ListFilter{Limit: 100, Cursor: cursor})
		must(b.t, err)
		for _, inv := range p.Data {
			full, err := b.svc.GetInvoice(b.ctx, inv.ID)
			must(b.t, err)
			out = append(out, full)
		}
		if p.NextCursor == "" {
			return out
		}
		cursor = p.NextCursor
	}
}

// validateUBL runs the project's own EN 16931 checks on xml (ParseUBL
// reports every rule it finds broken) and, where present, the official
// validator (see einvoicetest); a rejection is a test error.
func validateUBL(t testing.TB, name string, xml []byte) {
	t.Helper()
	if _, violations, err := document.ParseUBL(xml); err != nil || len(violations) > 0 {
		t.Errorf("%s: UBL fails Abacus's own checks: %v %+v\n%s", name, err, violations, xml)
	}
	einvoicetest.CrossCheck(t, name, xml)
}
