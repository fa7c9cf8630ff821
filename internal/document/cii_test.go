package document

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/einvoicetest"
)

// checkCII runs the project's own checks on rendered CII (it must read
// back without violations or dropped elements) and, where present, the
// official validator (CII D16B schema + EN 16931 CII rules).
func checkCII(t *testing.T, name string, xml []byte, crossCheck bool) *Document {
	t.Helper()
	d, rep, err := ParseCII(xml)
	if err != nil || !rep.Valid() || len(rep.Dropped) > 0 {
		t.Fatalf("%s: CII fails Abacus's own checks: %v %+v %v\n%s", name, err, rep.Violations, rep.Dropped, xml)
	}
	if crossCheck {
		einvoicetest.CrossCheck(t, name, xml)
	}
	return d
}

// TestCIIPassesOfficialValidator renders fixtures as CII and XRechnung
// CII; a few go through the official validator (five seconds each), all
// through the project's own checks.
func TestCIIPassesOfficialValidator(t *testing.T) {
	t.Parallel()
	official := map[string]bool{"credit_note": true} // the Factur-X and XRechnung tests validate the standard invoice
	for name, d := range fixtures() {
		if name == "kwd_exponent_3_hundredths" {
			continue
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			xml, err := CII(d)
			if err != nil {
				t.Fatalf("CII: %v", err)
			}
			back := checkCII(t, name, xml, official[name])
			if back.Kind != d.Kind || back.Number != d.Number || !back.Totals.Payable.Equal(d.Totals.Payable) || len(back.Lines) != len(d.Lines) {
				t.Errorf("read back as %s %s payable %s with %d lines", back.Kind, back.Number, back.Totals.Payable, len(back.Lines))
			}
			want := "<ram:TypeCode>380</ram:TypeCode>"
			if d.Kind == KindCreditNote {
				want = "<ram:TypeCode>381</ram:TypeCode>"
			}
			if !strings.Contains(string(xml), want) {
				t.Errorf("type code: want %s", want)
			}
		})
	}
	t.Run("xrechnung", func(t *testing.T) {
		t.Parallel()
		d := fixtures()["standard_mixed_rates_tiers"]
		d.BuyerReference = "04011000-12345-34" // a Leitweg-ID
		xml, err := XRechnung(d, FormatCII)
		if err != nil {
			t.Fatalf("XRechnung CII: %v", err)
		}
		for _, s := range []string{SpecXRechnung, "<ram:BuyerReference>04011000-12345-34</ram:BuyerReference>"} {
			if !strings.Contains(string(xml), s) {
				t.Errorf("XRechnung CII lacks %s", s)
			}
		}
		back := checkCII(t, "xrechnung_cii", xml, true)
		if back.Profile() != ProfileXRechnung {
			t.Errorf("read back with profile %s", back.Profile())
		}
		ubl, err := XRechnung(d, FormatUBL)
		if err != nil {
			t.Fatalf("XRechnung UBL: %v", err)
		}
		if b, rep, err := Parse(ubl); err != nil || !rep.Valid() || b.Profile() != ProfileXRechnung {
			t.Fatalf("XRechnung UBL read back: %v %+v", err, rep)
		}
	})
}

// TestXRechnungRules shows the BR-DE rules refusing what XRechnung needs
// and EN 16931 alone does not.
func TestXRechnungRules(t *testing.T) {
	t.Parallel()
	d := fixtures()["standard_mixed_rates_tiers"]
	d.BuyerReference, d.Seller.Phone, d.PaymentMeans = "", "", nil
	_, err := XRechnung(d, FormatCII)
	e, ok := abacus.AsError(err)
	if !ok {
		t.Fatalf("XRechnung accepted a document without Leitweg-ID: %v", err)
	}
	got := fmt.Sprint(e.Fields)
	for _, rule := range []string{"BR-DE-15", "BR-DE-6", "BR-DE-1"} {
		if !strings.Contains(got, rule) {
			t.Errorf("missing %s in %s", rule, got)
		}
	}
	d.OrderReference = "PO-1"
	if _, err := CII(d); err != nil {
		t.Errorf("plain EN 16931 CII refused what only XRechnung requires: %v", err)
	}
}

// TestParseRefusesHostileXML: DOCTYPEs (external entities, entity bombs)
// are refused before anything is expanded, as are undefined entities,
// wrong namespaces and nesting bombs; each answer names the problem.
func TestParseRefusesHostileXML(t *testing.T) {
	t.Parallel()
	laughs := `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">` +
		`<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]><rsm:CrossIndustryInvoice xmlns:rsm="` + nsRSM + `">&lol3;</rsm:CrossIndustryInvoice>`
	xxe := `<?xml version="1.0"?><!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><Invoice xmlns="` + nsInvoice + `"><cbc:ID xmlns:cbc="` + nsCBC + `">&xxe;</cbc:ID></Invoice>`
	undefined := `<Invoice xmlns="` + nsInvoice + `"><ID>&xxe;</ID></Invoice>`
	wrongNS := `<Invoice xmlns="urn:example:not-ubl"><ID>1</ID></Invoice>`
	deep := `<rsm:CrossIndustryInvoice xmlns:rsm="` + nsRSM + `">` + strings.Repeat("<a>", 100) + strings.Repeat("</a>", 100) + `</rsm:CrossIndustryInvoice>`
	for name, c := range map[string]struct{ body, code, says string }{
		"billion laughs":     {laughs, CodeUnreadable, "DOCTYPE"},
		"external entity":    {xxe, CodeUnreadable, "DOCTYPE"},
		"undefined entity":   {undefined, CodeUnreadable, "entity"},
		"wrong namespace":    {wrongNS, CodeUnrecognised, "urn:example:not-ubl"},
		"nesting bomb":       {deep, CodeUnreadable, "deeper than 64"},
		"not a document":     {"hello", CodeUnrecognised, "starts with"},
		"pdf without an xml": {"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n", CodeNoEmbedded, "factur-x.xml"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, _, err := Parse([]byte(c.body))
			e, ok := abacus.AsError(err)
			if !ok || e.Code != c.code || !strings.Contains(e.Message, c.says) || e.Kind != abacus.KindInvalid {
				t.Fatalf("Parse = %v, want %s saying %q", err, c.code, c.says)
			}
		})
	}
}

// TestTenThousandLines: a 10,000-line invoice converts UBL → CII → UBL and
// reads back whole (CPU is bounded by the one-pass reader and the element
// and size limits; its cost is measured in BenchmarkConvert).
func TestTenThousandLines(t *testing.T) {
	t.Parallel()
	d := newDoc("INV-BIG")
	d.Lines = make([]Line, 10_000)
	for i := range d.Lines {
		d.Lines[i] = Line{ID: fmt.Sprint(i + 1), Name: fmt.Sprintf("Item %d", i+1), Quantity: dec("3"), UnitCode: "C62", UnitPrice: dec("1.25"), Tax: std("19")}
	}
	d.ComputeTotals(RoundHalfUp)
	ubl, err := UBL(d)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	cii, rep, err := Convert(ubl, FormatCII)
	if err != nil || len(rep.Dropped) > 0 {
		t.Fatalf("Convert: %v %v", err, rep)
	}
	back, rep, err := Parse(cii)
	if err != nil || !rep.Valid() || len(back.Lines) != 10_000 || !back.Totals.Payable.Equal(d.Totals.Payable) {
		t.Fatalf("read back: %v %+v", err, rep)
	}
	t.Logf("10,000 lines: %d KiB UBL, %d KiB CII, converted and read back in %s", len(ubl)>>10, len(cii)>>10, time.Since(start))
	if !bytes.Contains(cii, []byte("<ram:LineID>10000</ram:LineID>")) {
		t.Error("the last line is missing")
	}
}
