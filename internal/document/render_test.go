package document

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"strings"
	"testing"

	"github.com/abacusbilling/abacus"
)

func TestJSONRoundTripsExactly(t *testing.T) {
	t.Parallel()
	d := fixtures()["coupon_and_prepaid_credits"]
	b, err := JSON(d)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"payable": "289.51"`, `"issue_date": "2026-03-01"`, `"kind": "invoice"`, `"reason_code": "95"`} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("JSON lacks %s", want)
		}
	}
	var back Document
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !back.Totals.Payable.Equal(d.Totals.Payable) || back.IssueDate != d.IssueDate || back.Lines[1].UnitPrice.String() != "0.12" {
		t.Fatalf("JSON did not round-trip: %+v", back)
	}
	if err := back.Validate(); err != nil {
		t.Fatalf("decoded document no longer valid: %v", err)
	}
}

func TestCSVOneRowPerLine(t *testing.T) {
	t.Parallel()
	d := fixtures()["standard_mixed_rates_tiers"]
	d.Lines[1].Name = "=HYPERLINK(\"http://evil\")"
	b, err := CSV(d)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1+len(d.Lines) {
		t.Fatalf("%d rows, want header + %d lines", len(rows), len(d.Lines))
	}
	col := map[string]int{}
	for i, h := range rows[0] {
		col[h] = i
	}
	if got := rows[1][col["net_amount"]]; got != "1247.50" {
		t.Errorf("net_amount = %q, want 1247.50 (currency decimals)", got)
	}
	if got := rows[3][col["unit_price"]]; got != AverageUnitPrice(dec("837.28"), dec("1234567")).String() {
		t.Errorf("unit_price = %q, want full precision", got)
	}
	if got := rows[2][col["name"]]; !strings.HasPrefix(got, "'=") {
		t.Errorf("formula not defused: %q", got)
	}
	if got := rows[1][col["buyer_name"]]; got != "Société Générale Services SAS" {
		t.Errorf("buyer_name = %q", got)
	}
}

func TestRenderFormats(t *testing.T) {
	t.Parallel()
	d := fixtures()["exempt"]
	tests := []struct {
		format string
		prefix string
	}{
		{"ubl", "<?xml"}, {"XML", "<?xml"}, {"json", "{"}, {"csv", "document_kind,"}, {"pdf", "%PDF-"},
	}
	for _, tt := range tests {
		f, err := ParseFormat(tt.format)
		if err != nil {
			t.Fatalf("ParseFormat(%q): %v", tt.format, err)
		}
		b, err := Render(d, f)
		if err != nil || !bytes.HasPrefix(b, []byte(tt.prefix)) {
			t.Errorf("Render(%s) = %.20q, %v", f, b, err)
		}
		if f.ContentType() == "application/octet-stream" {
			t.Errorf("%s has no content type", f)
		}
	}
	if _, err := ParseFormat("docx"); abacus.ErrorKind(err) != abacus.KindInvalid {
		t.Errorf("ParseFormat(docx) = %v, want invalid", err)
	}
}

func TestUBLRefusesInvalidDocument(t *testing.T) {
	t.Parallel()
	d := fixtures()["exempt"]
	d.Totals.Payable = dec("0.01")
	if _, err := UBL(d); abacus.ErrorKind(err) != abacus.KindInvalid {
		t.Fatalf("UBL of an inconsistent document: %v, want invalid", err)
	}
}
