package document

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/abacusbilling/abacus/internal/einvoicetest"
)

// exampleFiles are the UBL and CII examples the round trips run over: the
// project's own (testdata/examples, testdata/cii) and, when the shared
// validation kit sits beside the repository, the official OpenPEPPOL UBL
// and CEN CII examples.
func exampleFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	seen := map[string]bool{} // the CEN CII examples are also copied into testdata/cii
	for _, g := range []string{
		filepath.Join("testdata", "examples", "*.xml"),
		filepath.Join("testdata", "cii", "*.xml"),
		filepath.Join(einvoicetest.SharedDir(t), "einvoice", "examples", "*.xml"),
		filepath.Join(einvoicetest.SharedDir(t), "einvoice", "examples", "cii", "*.xml"),
	} {
		m, _ := filepath.Glob(g)
		for _, f := range m {
			if !seen[filepath.Base(f)] {
				seen[filepath.Base(f)] = true
				files = append(files, f)
			}
		}
	}
	return files
}

// TestRoundTripEveryExample converts every example to each e-invoice
// syntax and JSON and back, and requires the same document every time:
// every business term the model carries survives, and what it does not
// carry is listed in the report (never silently dropped).
func TestRoundTripEveryExample(t *testing.T) {
	t.Parallel()
	files := exampleFiles(t)
	if len(files) < 4 {
		t.Fatalf("found only %d examples", len(files))
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".xml")
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			d0, rep, err := Parse(data)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !rep.Valid() {
				t.Fatalf("violations in a valid example: %+v", rep.Violations)
			}
			if len(rep.Dropped) > 0 {
				t.Logf("%s: %d elements the model does not carry: %v", rep.Format, len(rep.Dropped), rep.Dropped)
			}
			want := mustJSON(t, d0)
			official := strings.Contains(f, filepath.Join("einvoice", "examples"))
			for _, target := range []Format{FormatUBL, FormatCII, FormatJSON} {
				out, err := Render(d0, target)
				if err != nil {
					t.Fatalf("%s: %v", target, err)
				}
				d1, rep1, err := Parse(out)
				if err != nil {
					t.Fatalf("%s: reading back: %v", target, err)
				}
				if !rep1.Valid() || len(rep1.Dropped) > 0 {
					t.Fatalf("%s: reading back: violations %+v, dropped %v\n%s", target, rep1.Violations, rep1.Dropped, out)
				}
				if got := mustJSON(t, d1); got != want {
					t.Errorf("%s changed the document:\n got %s\nwant %s", target, got, want)
				}
				// An official example in the other syntax goes through the
				// official validator too (batched at the end of the binary).
				if official && target != FormatJSON && target != rep.Format {
					einvoicetest.CrossCheck(t, name+"-as-"+string(target), out)
				}
			}
		})
	}
}

func mustJSON(t *testing.T, d *Document) string {
	t.Helper()
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The buyer's references and item identifiers survive UBL and CII and are
// reported, never silently dropped, by the formats without a place for
// them (CSV, PDF).
func TestBuyerTermsRoundTripAndAreReportedWhereTheyCannotGo(t *testing.T) {
	t.Parallel()
	d := newDoc("INV-TERMS")
	d.ContractReference, d.AccountingCost, d.DeliveryDate = "CT-2026-7", "4711-IT", date("2026-02-27")
	d.Lines = []Line{{ID: "1", Name: "Seat", Quantity: dec("2"), UnitCode: "C62", UnitPrice: dec("10"), Tax: std("19"),
		OrderLineRef: "3", AccountingCost: "KST-12", StandardItemID: "4012345678901", StandardItemScheme: "0160",
		Classifications: []Classification{{Code: "43232304", ListID: "STI", ListVersion: "19.0501"}}, OriginCountry: "DE",
		Attributes: []ItemAttribute{{Name: "Colour", Value: "Blue"}}}}
	d.ComputeTotals(RoundHalfUp)
	want := mustJSON(t, d)
	for _, f := range []Format{FormatUBL, FormatCII} {
		out, err := Render(d, f)
		if err != nil {
			t.Fatal(err)
		}
		back, rep, err := Parse(out)
		if err != nil || !rep.Valid() || len(rep.Dropped) > 0 {
			t.Fatalf("%s: %v %+v %v", f, err, rep.Violations, rep.Dropped)
		}
		einvoicetest.CrossCheck(t, "buyer_terms-"+string(f), out)
		back.Specification, back.Process = "", "" // the defaults each syntax writes
		if got := mustJSON(t, back); got != want {
			t.Errorf("%s changed the document:\n got %s\nwant %s", f, got, want)
		}
	}
	for _, f := range []Format{FormatCSV, FormatPDF} {
		got := strings.Join(TargetDrops(d, f), ",")
		for _, term := range []string{"contract_reference", "accounting_cost", "delivery_date", "lines[0].order_line_ref",
			"lines[0].accounting_cost", "lines[0].standard_item_id", "lines[0].classifications", "lines[0].origin_country", "lines[0].attributes"} {
			if !strings.Contains(","+got+",", ","+term+",") {
				t.Errorf("%s: %s not reported in %q", f, term, got)
			}
		}
	}
}
