package document

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/einvoicetest"
)

// TestParseUBLExamples parses the project's own example documents
// (testdata/examples, written for these tests) and, when the shared
// validation kit sits beside the repository, the OpenPEPPOL examples too.
// Each must parse without violations into what it says, and re-render as
// UBL that passes the project's own checks and, where present, the
// official validator.
func TestParseUBLExamples(t *testing.T) {
	t.Parallel()
	// What each own example says, in a few words: kind, number, currency,
	// seller and buyer country, lines, categories, tax, payable.
	want := map[string]string{
		"creditnote-reverse-charge-at-be": "credit_note AL-CN-2026-0031 EUR AT>BE lines=1 AE tax=0 payable=114",
		"invoice-export-ie-us":            "invoice HM-2026-3310 USD IE>US lines=2 G tax=0 payable=850",
		"invoice-mixed-rates-fr":          "invoice AN-F-2027-0107 EUR FR>FR lines=2 S,E tax=384 payable=2604",
		"invoice-saas-de":                 "invoice WW-2027-00042 EUR DE>DE lines=3 S tax=230.68 payable=1444.78",
	}
	own, err := filepath.Glob(filepath.Join("testdata", "examples", "*.xml"))
	if err != nil || len(own) != len(want) {
		t.Fatalf("want the %d own examples in testdata/examples, found %v (%v)", len(want), own, err)
	}
	shared, _ := filepath.Glob(filepath.Join(einvoicetest.SharedDir(t), "einvoice", "examples", "*.xml"))
	for _, f := range append(own, shared...) {
		name := strings.TrimSuffix(filepath.Base(f), ".xml")
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			d := parseExample(t, f)
			if w, ok := want[name]; ok && summary(d) != w {
				t.Errorf("parsed as %q, want %q", summary(d), w)
			}
			xml, err := UBL(d)
			if err != nil {
				t.Fatalf("UBL of parsed example: %v", err)
			}
			checkUBL(t, name, xml)
		})
	}
}

// parseExample reads a valid example and fails on any violation or a
// missing basic.
func parseExample(t *testing.T, file string) *Document {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	d, violations, err := ParseUBL(data)
	if err != nil {
		t.Fatalf("ParseUBL: %v", err)
	}
	if len(violations) > 0 {
		t.Fatalf("violations in a valid example: %+v", violations)
	}
	if d.Number == "" || len(d.Lines) == 0 || d.Totals.Payable.IsZero() || d.Seller.Name == "" {
		t.Fatalf("parsed document is missing basics: %+v", d)
	}
	return d
}

// summary is d in a few words, for comparing a parsed example with what
// its file says.
func summary(d *Document) string {
	var cats []string
	for _, b := range d.TaxBreakdown {
		cats = append(cats, string(b.Tax.Category))
	}
	return fmt.Sprintf("%s %s %s %s>%s lines=%d %s tax=%s payable=%s", d.Kind, d.Number, d.Currency,
		d.Seller.CountryCode, d.Buyer.CountryCode, len(d.Lines), strings.Join(cats, ","), d.Totals.Tax, d.Totals.Payable)
}

// TestParseUBLRoundTrip checks that UBL then ParseUBL gives back the same
// model for every fixture, so nothing the model carries is lost.
func TestParseUBLRoundTrip(t *testing.T) {
	t.Parallel()
	for name, d := range fixtures() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			xml, err := UBL(d)
			if err != nil {
				t.Fatal(err)
			}
			got, violations, err := ParseUBL(xml)
			if err != nil || len(violations) > 0 {
				t.Fatalf("ParseUBL: %v %+v", err, violations)
			}
			a, _ := JSON(comparable(d))
			b, _ := JSON(got)
			if string(a) != string(b) {
				t.Fatalf("round trip changed the document:\nwant %s\ngot  %s", a, b)
			}
		})
	}
}

// comparable is d as UBL carries it: lines keep no exemption reason (the
// breakdown does) and notes are one.
func comparable(d *Document) *Document {
	c := *d
	if c.Specification == "" { // UBL writes Peppol's identifiers, and reading keeps them
		c.Specification, c.Process = CustomizationID, ProfileID
	}
	c.Lines = append([]Line(nil), d.Lines...)
	for i := range c.Lines {
		c.Lines[i].Tax.ExemptionReason, c.Lines[i].Tax.ExemptionReasonCode = "", ""
	}
	if len(d.Notes) > 1 {
		c.Notes = []string{strings.Join(d.Notes, "\n")}
	}
	return &c
}

// TestParseUBLBroken expects every planted mistake to be reported at its
// element, and the document to come back anyway.
func TestParseUBLBroken(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(filepath.Join("testdata", "broken-invoice.xml"))
	if err != nil {
		t.Fatal(err)
	}
	d, violations, err := ParseUBL(data)
	if err != nil {
		t.Fatalf("ParseUBL: %v", err)
	}
	if d == nil || d.Seller.Name != "Zuliefer Österreich GmbH" || len(d.Lines) != 2 {
		t.Fatalf("document not returned as far as readable: %+v", d)
	}
	want := []struct{ path, contains string }{
		{"/Invoice/cbc:ID", "document number"},
		{"/Invoice/cac:AccountingSupplierParty/cac:Party/cbc:EndpointID", "electronic address"},
		{"/Invoice/cac:InvoiceLine/cbc:LineExtensionAmount", "R120"},
		{"/Invoice/cac:InvoiceLine[2]/cbc:InvoicedQuantity", "not a number"},
		{"/Invoice/cac:TaxTotal/cac:TaxSubtotal/cbc:TaxAmount", "BR-CO-17"},
		{"/Invoice/cac:TaxTotal/cac:TaxSubtotal[2]/cac:TaxCategory", "exemption"},
		{"/Invoice/cac:LegalMonetaryTotal/cbc:PayableAmount", "BR-CO-16"},
	}
	for _, w := range want {
		found := false
		for _, v := range violations {
			if v.Path == w.path && strings.Contains(v.Message, w.contains) {
				found = true
			}
		}
		if !found {
			t.Errorf("no violation at %s mentioning %q", w.path, w.contains)
		}
	}
	if t.Failed() {
		for _, v := range violations {
			t.Logf("got %s: %s", v.Path, v.Message)
		}
	}
}

func TestParseUBLRefusesNonUBL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, input, code string
	}{
		{"not xml", "this is not xml <", CodeUnreadable},
		{"empty", "", CodeUnreadable},
		{"other root", `<Order xmlns="urn:oasis:names:specification:ubl:schema:xsd:Order-2"/>`, CodeNotUBL},
		{"invoice without namespace", `<Invoice><ID>1</ID></Invoice>`, CodeNotUBL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, _, err := ParseUBL([]byte(tt.input))
			e, ok := abacus.AsError(err)
			if !ok || e.Code != tt.code || e.Kind != abacus.KindInvalid {
				t.Fatalf("err = %v, want code %s", err, tt.code)
			}
		})
	}
}
