package document

import (
	"fmt"
	"testing"
)

// twentyLines is a 20-line invoice, the size the conversion targets in
// docs/benchmarks.md are stated for.
func twentyLines(tb testing.TB) *Document {
	tb.Helper()
	d := newDoc("INV-BENCH-20")
	d.Lines = make([]Line, 20)
	for i := range d.Lines {
		d.Lines[i] = Line{ID: fmt.Sprint(i + 1), Name: fmt.Sprintf("Item %d", i+1), Description: "Monthly subscription seat",
			Quantity: dec("3"), UnitCode: "C62", UnitPrice: dec("12.50"), Tax: std("19")}
	}
	d.ComputeTotals(RoundHalfUp)
	return d
}

// BenchmarkConvert measures the conversions of issue 22 on a 20-line
// invoice beside a baseline in the same run (UBL → JSON: parse and encode
// without an XML writer).
//
//	go test ./internal/document -run '^$' -bench Convert -benchtime 2s
func BenchmarkConvert(b *testing.B) {
	d := twentyLines(b)
	ubl, err := UBL(d)
	if err != nil {
		b.Fatal(err)
	}
	cii, err := CII(d)
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name string
		in   []byte
		to   Format
	}{
		{"baseline_ubl_to_json", ubl, FormatJSON},
		{"ubl_to_cii", ubl, FormatCII},
		{"cii_to_ubl", cii, FormatUBL},
		{"cii_to_facturx", cii, FormatFacturX},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := Convert(c.in, c.to); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
