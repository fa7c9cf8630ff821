package billing

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/abacusbilling/abacus/internal/catalog"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
	"github.com/abacusbilling/abacus/internal/document"
	"github.com/abacusbilling/abacus/internal/einvoicetest"
	"github.com/abacusbilling/abacus/internal/period"
	"github.com/abacusbilling/abacus/internal/pricing"
)

// TestInvoicePDFShowsNamesTiersAndCountries: the document and its PDF
// name the charges (not their keys) and the plan, break a graduated line
// down into its tiers at their real prices (not a price computed back from
// the amount), print the buyer's country by name and keep the reference on
// one line.
func TestInvoicePDFShowsNamesTiersAndCountries(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		b := newBundle(t, d, t0, Config{})
		b.usage.AddMeter(b.tenant, "tokens")
		p, err := b.cat.CreatePlan(b.ctx, catalog.PlanInput{Key: "growth", Name: "Growth"})
		must(t, err)
		tokens := pricing.Charge{Key: "tokens", Kind: pricing.ChargeUsage, Meter: "tokens", Price: &pricing.Price{Model: pricing.Graduated,
			Tiers: []pricing.Tier{{UpTo: decp("1000")}, {UpTo: decp("10000"), UnitAmount: dec("0.01"), FlatAmount: dec("5")}, {UnitAmount: dec("0.000008")}}}}
		base := pricing.Charge{Key: "base", Kind: pricing.ChargeFee, Fee: &pricing.Fee{Amount: dec("49")}}
		_, err = b.cat.CreateVersion(b.ctx, p.ID, catalog.VersionSpec{Currency: "EUR", BillingInterval: period.Monthly, Charges: []pricing.Charge{base, tokens}})
		must(t, err)
		_, err = b.cat.PublishVersion(b.ctx, p.ID, 1)
		must(t, err)
		c := b.customer(catalog.CustomerInput{Name: "Hanbit Soft Co.", Currency: "EUR", Subjects: []string{"hanbit"},
			Address: catalog.Address{Line1: "1 Teheran-ro", City: "Seoul", PostalCode: "06236", Country: "KR"}})
		sub := b.subscribe(c.ID, p.ID, "1", t0)
		b.usage.Record(b.tenant, "tokens", "hanbit", t0.AddDate(0, 0, 3), dec("1271234"))
		b.run(month(1).Add(2 * time.Hour))
		inv := b.invoiceAt(sub.ID, month(1))
		doc, err := b.svc.InvoiceDocument(b.ctx, inv.ID)
		must(t, err)

		var usage *document.Line
		for i := range doc.Lines {
			if doc.Lines[i].SellerItemID == "tokens" {
				usage = &doc.Lines[i]
			}
		}
		if usage == nil || usage.Name != "Tokens" || usage.Description != "Growth plan" {
			t.Fatalf("usage line %+v, want Tokens of the Growth plan", usage)
		}
		want := []document.LineDetail{
			{Description: "Tier 2 (1,000 – 10,000)", Quantity: dec("9000"), UnitPrice: dec("0.01"), Amount: dec("90")},
			{Description: "Tier 2 (1,000 – 10,000), flat fee", Amount: dec("5")},
			{Description: "Tier 3 (above 10,000)", Quantity: dec("1261234"), UnitPrice: dec("0.000008"), Amount: dec("10.089872")},
		}
		if len(usage.Breakdown) != len(want)+1 { // the free first tier comes first
			t.Fatalf("breakdown %+v, want the free tier and %+v", usage.Breakdown, want)
		}
		for i, w := range want {
			g := usage.Breakdown[i+1]
			if g.Description != w.Description || !g.Quantity.Equal(w.Quantity) || !g.UnitPrice.Equal(w.UnitPrice) || !g.Amount.Equal(w.Amount) {
				t.Errorf("breakdown row %d: %+v, want %+v", i+1, g, w)
			}
		}

		pdf, err := Render(doc, document.FormatPDF)
		must(t, err)
		if dir := os.Getenv("DOCUMENT_KEEP"); dir != "" { // to look at it: pdftoppm -png
			must(t, os.WriteFile(filepath.Join(dir, "tiers-"+string(d.Engine())+".pdf"), pdf, 0o644))
		}
		text := einvoicetest.PDFText(t, pdf)
		for _, s := range []string{"Tokens", "Base fee", "Growth plan", "Tier 2 (1,000 – 10,000)", "9,000", "0.01", "90.00", "flat fee", "5.00",
			"1,261,234", "0.000008", "10.089872", "South Korea", "Germany", inv.SubscriptionID} {
			if !strings.Contains(text, s) {
				t.Errorf("PDF text lacks %q:\n%s", s, text)
			}
		}
		// The average price UBL needs (105.09 / 1,271,234) is not printed.
		if avg := regexp.MustCompile(`0\.0000826`); avg.MatchString(text) {
			t.Errorf("PDF prints the back-computed unit price:\n%s", text)
		}
		for _, key := range []string{" tokens ", " base "} {
			if strings.Contains(text, key) {
				t.Errorf("PDF prints the charge key %q:\n%s", key, text)
			}
		}
	})
}
