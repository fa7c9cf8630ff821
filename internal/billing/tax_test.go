package billing

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/abacusbilling/abacus/internal/catalog"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
	"github.com/abacusbilling/abacus/internal/document"
	"github.com/abacusbilling/abacus/internal/pricing"
)

func TestValidLookingVATID(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		id, country string
		want        bool
	}{
		{"DE811907980", "DE", true},
		{"de 811 907 980", "DE", true},
		{"DE81190798", "DE", false},    // eight digits
		{"FR40303265045", "DE", false}, // another country's id
		{"EL094259216", "GR", true},    // Greece's prefix is EL
		{"GR094259216", "GR", false},
		{"NL859048949B01", "NL", true},
		{"ESB12345674", "ES", true},
		{"ATU12345678", "AT", true},
		{"AT12345678", "AT", false},
		{"IE6388047V", "IE", true},
		{"SE556036079301", "SE", true},
		{"CHE-116.281.710", "CH", false}, // not an EU country
		{"", "DE", false},
	} {
		if got := validLookingVATID(tt.id, tt.country); got != tt.want {
			t.Errorf("validLookingVATID(%q, %q) = %v, want %v", tt.id, tt.country, got, tt.want)
		}
	}
}

// TestTaxDetermination is the table of the rules in docs/billing.md.
func TestTaxDetermination(t *testing.T) {
	t.Parallel()
	de := TaxRate{ID: "txr_1de", Name: "DE VAT", Percentage: dec("19"), Category: document.TaxStandard, Country: "DE"}
	deIncl := TaxRate{ID: "txr_2de", Name: "DE VAT incl.", Percentage: dec("19"), Category: document.TaxStandard, Country: "DE", Inclusive: true}
	fr := TaxRate{ID: "txr_3fr", Name: "FR TVA", Percentage: dec("20"), Category: document.TaxStandard, Country: "FR"}
	zero := TaxRate{ID: "txr_4z", Name: "Zero", Category: document.TaxZeroRated}
	exempt := TaxRate{ID: "txr_5e", Name: "Exempt", Category: document.TaxExempt, ExemptionReason: "Exempt education service"}
	rates := []TaxRate{de, deIncl, fr, zero, exempt}
	std := func(r TaxRate) LineTax { return fromRate(r) }
	for _, tt := range []struct {
		name    string
		seller  string
		rates   []TaxRate
		assign  map[string]string
		country string
		vatID   string
		status  catalog.TaxStatus
		want    LineTax
		problem string
	}{
		{name: "domestic consumer", seller: "DE", rates: rates, country: "DE", want: std(de)},
		{name: "domestic business", seller: "DE", rates: rates, country: "DE", vatID: "DE811907980", want: std(de)},
		{name: "EU business abroad: reverse charge", seller: "DE", rates: rates, country: "FR", vatID: "FR40303265045", want: reverseCharge()},
		{name: "EU consumer abroad: destination rate (OSS)", seller: "DE", rates: rates, country: "FR", want: std(fr)},
		{name: "malformed VAT id is a consumer", seller: "DE", rates: rates, country: "FR", vatID: "FR123", want: std(fr)},
		{name: "outside the EU: export", seller: "DE", rates: rates, country: "US",
			want: LineTax{Tax: document.Tax{Category: document.TaxExport, ExemptionReason: ExportNote, ExemptionReasonCode: "VATEX-EU-G"}}},
		{name: "outside the EU with a VAT id: export", seller: "DE", rates: rates, country: "CH", vatID: "CHE-116.281.710",
			want: LineTax{Tax: document.Tax{Category: document.TaxExport, ExemptionReason: ExportNote, ExemptionReasonCode: "VATEX-EU-G"}}},
		{name: "EU consumer without a rate for the country", seller: "DE", rates: rates, country: "PL", problem: "tax_rate_missing"},
		{name: "domestic without a domestic rate", seller: "AT", rates: rates, country: "AT", problem: "tax_rate_missing"},
		{name: "buyer without a country", seller: "DE", rates: rates, problem: "buyer_country_missing"},
		{name: "seller without a country", rates: rates, country: "DE", problem: "seller_country_missing"},
		{name: "no rates at all: no tax", seller: "DE", country: "DE", want: LineTax{Tax: document.Tax{Category: document.TaxZeroRated}}},
		{name: "customer assignment wins", seller: "DE", rates: rates, assign: map[string]string{"customer/cus_1": zero.ID}, country: "FR",
			vatID: "FR40303265045", want: std(zero)},
		{name: "plan assignment wins over the country rate", seller: "DE", rates: rates, assign: map[string]string{"plan/pln_1": deIncl.ID},
			country: "DE", want: std(deIncl)},
		{name: "reverse charge wins over the plan assignment", seller: "DE", rates: rates, assign: map[string]string{"plan/pln_1": de.ID},
			country: "FR", vatID: "FR40303265045", want: reverseCharge()},
		{name: "plan assignment covers a buyer without a country", seller: "DE", rates: rates, assign: map[string]string{"plan/pln_1": de.ID},
			want: std(de)},
		{name: "status exempt", seller: "DE", rates: rates, assign: map[string]string{"customer/cus_1": exempt.ID}, country: "DE",
			status: catalog.TaxExempt, want: LineTax{Tax: document.Tax{Category: document.TaxExempt, ExemptionReason: "Exempt education service"}, RateID: exempt.ID}},
		{name: "status reverse charge", seller: "DE", rates: rates, country: "DE", status: catalog.TaxReverseCharge, want: reverseCharge()},
		{name: "Greek business abroad", seller: "DE", rates: rates, country: "GR", vatID: "EL094259216", want: reverseCharge()},
		{name: "EU business bought from outside the EU: reverse charge", seller: "US", rates: rates, country: "FR", vatID: "FR40303265045", want: reverseCharge()},
	} {
		t.Run(tt.name, func(t *testing.T) {
			assign := tt.assign
			if assign == nil {
				assign = map[string]string{}
			}
			b := newTaxBook(tt.seller, tt.rates, assign)
			got := b.resolve(catalog.Customer{ID: "cus_1", TaxID: tt.vatID, TaxStatus: tt.status, Address: catalog.Address{Country: tt.country}}, "pln_1")
			if tt.problem != "" {
				if got.Problem == nil || got.Problem.Code != tt.problem {
					t.Fatalf("got %+v, want problem %s", got, tt.problem)
				}
				return
			}
			if got.Problem != nil || got.Category != tt.want.Category || !got.Rate.Equal(tt.want.Rate) || got.RateID != tt.want.RateID ||
				got.Inclusive != tt.want.Inclusive || got.ExemptionReason != tt.want.ExemptionReason || got.ExemptionReasonCode != tt.want.ExemptionReasonCode {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// taxWorld is a German seller (the test bundle) with the German and French
// standard rates and a plan of one 100 EUR fee.
type taxWorld struct {
	*bundle
	plan string
}

func newTaxWorld(t *testing.T, d *db.DB) taxWorld {
	b := newBundle(t, d, t0, Config{})
	for _, r := range []TaxRateInput{{Name: "DE VAT", Percentage: dec("19"), Country: "DE"}, {Name: "FR TVA", Percentage: dec("20"), Country: "FR"}} {
		_, err := b.svc.CreateTaxRate(b.ctx, r)
		must(t, err)
	}
	return taxWorld{b, b.plan("pro", catalog.VersionSpec{Currency: "EUR", Charges: []pricing.Charge{feeCharge("base", "100")}})}
}

// finalInvoice subscribes a customer at t0, bills past the grace period
// and returns its invoice.
func (w taxWorld) finalInvoice(in catalog.CustomerInput) Invoice {
	w.t.Helper()
	in.Currency, in.Address.Line1, in.Address.City, in.Address.PostalCode = "EUR", "Main street 1", "Town", "12345"
	in.Metadata = map[string]string{"peppol_endpoint": "0060:123456789"}
	c := w.customer(in)
	sub := w.subscribe(c.ID, w.plan, "1", t0)
	w.run(t0)
	w.run(t0.Add(2 * time.Hour))
	return w.invoiceAt(sub.ID, t0)
}

func TestTaxDeterminedOnInvoices(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		for _, tt := range []struct {
			name             string
			in               catalog.CustomerInput
			category         document.TaxCategory
			tax              string
			exemptionCode    string
			inUBL            []string
			validateOnEngine db.Engine
		}{
			// The reproduction: a German seller with a 19 % DE rate
			// billing a German business without an assignment.
			{name: "de-to-de", in: catalog.CustomerInput{Name: "Muster GmbH", TaxID: "DE811907980", Address: catalog.Address{Country: "DE"}},
				category: document.TaxStandard, tax: "19", inUBL: []string{"<cbc:Percent>19</cbc:Percent>"}},
			{name: "reverse-charge", in: catalog.CustomerInput{Name: "Exemple SA", TaxID: "FR40303265045", Address: catalog.Address{Country: "FR"}},
				category: document.TaxReverseCharge, tax: "0", exemptionCode: "VATEX-EU-AE",
				inUBL: []string{"<cbc:ID>AE</cbc:ID>", "<cbc:TaxExemptionReasonCode>VATEX-EU-AE</cbc:TaxExemptionReasonCode>"}},
			{name: "oss-b2c", in: catalog.CustomerInput{Name: "Jeanne Martin", Address: catalog.Address{Country: "FR"}},
				category: document.TaxStandard, tax: "20", inUBL: []string{"<cbc:Percent>20</cbc:Percent>"}},
			{name: "export", in: catalog.CustomerInput{Name: "Acme Inc.", Address: catalog.Address{Country: "US"}},
				category: document.TaxExport, tax: "0", exemptionCode: "VATEX-EU-G",
				inUBL: []string{"<cbc:ID>G</cbc:ID>", "<cbc:TaxExemptionReasonCode>VATEX-EU-G</cbc:TaxExemptionReasonCode>"}},
		} {
			t.Run(tt.name, func(t *testing.T) {
				w := newTaxWorld(t, d)
				inv := w.finalInvoice(tt.in)
				if inv.Status != Open || len(inv.Problems) != 0 {
					t.Fatalf("invoice %s with problems %+v, want open", inv.Status, inv.Problems)
				}
				if len(inv.TaxBreakdown) != 1 || inv.TaxBreakdown[0].Tax.Category != tt.category || !inv.TaxTotal.Equal(dec(tt.tax)) ||
					inv.TaxBreakdown[0].Tax.ExemptionReasonCode != tt.exemptionCode {
					t.Fatalf("tax %s breakdown %+v, want %s %s (%s)", inv.TaxTotal, inv.TaxBreakdown, tt.category, tt.tax, tt.exemptionCode)
				}
				doc, err := w.svc.InvoiceDocument(w.ctx, inv.ID)
				must(t, err)
				x, err := Render(doc, document.FormatUBL)
				must(t, err)
				for _, want := range tt.inUBL {
					if !bytes.Contains(x, []byte(want)) {
						t.Errorf("UBL lacks %s:\n%s", want, x)
					}
				}
				if d.Engine() == db.SQLite { // the same document on either engine; the validator takes seconds
					validateUBL(t, "tax-"+tt.name, x)
				}
			})
		}
	})
}

// TestMissingTaxRateHoldsTheDraft: a buyer in a country without a rate
// gets a draft with a problem, not an invoice at 0 %; once the rate
// exists, the draft finalizes with it.
func TestMissingTaxRateHoldsTheDraft(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		w := newTaxWorld(t, d)
		inv := w.finalInvoice(catalog.CustomerInput{Name: "Anna Nowak", Address: catalog.Address{Country: "PL"}})
		if inv.Status != Draft || inv.Number != "" {
			t.Fatalf("invoice %s %s, want a draft without a number", inv.Status, inv.Number)
		}
		got, err := w.svc.GetInvoice(w.ctx, inv.ID)
		must(t, err)
		if len(got.Problems) != 1 || got.Problems[0].Code != "tax_rate_missing" || !strings.Contains(got.Problems[0].Message, "Poland") {
			t.Fatalf("problems %+v, want tax_rate_missing for Poland", got.Problems)
		}
		_, err = w.svc.Finalize(w.ctx, inv.ID)
		wantCode(t, err, "invoice_has_problems")
		w.run(t0.Add(3 * time.Hour)) // still no rate: still a draft
		if got := w.invoiceAt(inv.SubscriptionID, t0); got.Status != Draft {
			t.Fatalf("finalized without a rate: %+v", got)
		}

		_, err = w.svc.CreateTaxRate(w.ctx, TaxRateInput{Name: "PL VAT", Percentage: dec("23"), Country: "PL"})
		must(t, err)
		w.run(t0.Add(4 * time.Hour)) // the next attempt, a refresh interval later
		got = w.invoiceAt(inv.SubscriptionID, t0)
		if got.Status != Open || got.Number == "" || !got.TaxTotal.Equal(dec("23")) || len(got.Problems) != 0 {
			t.Fatalf("after the rate was added: %s %s tax %s problems %+v, want open with 23 tax", got.Status, got.Number, got.TaxTotal, got.Problems)
		}
	})
}
