package document

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/abacusbilling/abacus/internal/einvoicetest"
)

// poppler runs a poppler-utils tool (installed by scripts/test), an
// independent PDF reader.
func poppler(t *testing.T, tool string, args ...string) string {
	t.Helper()
	if _, err := exec.LookPath(tool); err != nil {
		t.Fatalf("%s is missing: install poppler-utils", tool)
	}
	out, err := exec.Command(tool, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", tool, args, err, out)
	}
	return string(out)
}

// TestFacturXIsReadByPoppler writes a Factur-X invoice in both profiles
// and checks it with poppler: the embedded file is factur-x.xml, the XMP
// declares PDF/A-3B and the Factur-X schema with the profile, the text is
// the invoice; the XML extracted by pdfdetach is the CII the project's
// own checks accept and (EN 16931) the official validator passes; and
// ExtractFacturX reads the same XML back.
func TestFacturXIsReadByPoppler(t *testing.T) {
	t.Parallel()
	for _, level := range []FacturXLevel{FacturXEN16931, FacturXBasic} {
		t.Run(strings.ReplaceAll(string(level), " ", ""), func(t *testing.T) {
			t.Parallel()
			d := fixtures()["standard_mixed_rates_tiers"]
			pdf, err := FacturX(d, level)
			if err != nil {
				t.Fatalf("FacturX: %v", err)
			}
			dir := t.TempDir()
			file := filepath.Join(dir, "invoice.pdf")
			if err := os.WriteFile(file, pdf, 0o600); err != nil {
				t.Fatal(err)
			}
			if list := poppler(t, "pdfdetach", "-list", file); !strings.Contains(list, "1 embedded files") || !strings.Contains(list, "1: factur-x.xml") {
				t.Fatalf("pdfdetach -list:\n%s", list)
			}
			saved := filepath.Join(dir, "saved.xml")
			poppler(t, "pdfdetach", "-save", "1", "-o", saved, file)
			xml, err := os.ReadFile(saved)
			if err != nil {
				t.Fatal(err)
			}
			meta := poppler(t, "pdfinfo", "-meta", file)
			for _, want := range []string{"<pdfaid:part>3</pdfaid:part>", "<pdfaid:conformance>B</pdfaid:conformance>",
				"<fx:DocumentFileName>factur-x.xml</fx:DocumentFileName>", "<fx:DocumentType>INVOICE</fx:DocumentType>",
				"<fx:ConformanceLevel>" + string(level) + "</fx:ConformanceLevel>", "urn:factur-x:pdfa:CrossIndustryDocument:invoice:1p0#"} {
				if !strings.Contains(meta, want) {
					t.Errorf("XMP lacks %s:\n%s", want, meta)
				}
			}
			info := strings.Join(strings.Fields(poppler(t, "pdfinfo", file)), " ")
			for _, want := range []string{"Title: Invoice INV-2026-0001", "Producer: Abacus", "Pages: 1", "PDF version: 1.7", "Author: Müller Cloud GmbH"} {
				if !strings.Contains(info, want) {
					t.Errorf("pdfinfo lacks %q:\n%s", want, info)
				}
			}
			fonts := poppler(t, "pdffonts", file)
			rows := strings.Split(strings.TrimSpace(fonts), "\n")[2:]
			if len(rows) == 0 {
				t.Errorf("no fonts:\n%s", fonts)
			}
			for _, row := range rows {
				if f := strings.Fields(row); len(f) < 5 || f[len(f)-5] != "yes" {
					t.Errorf("a font is not embedded (PDF/A needs every font embedded):\n%s", fonts)
				}
			}
			if text := einvoicetest.PDFText(t, pdf); !strings.Contains(text, "INV-2026-0001") || !strings.Contains(text, "Müller Cloud GmbH") {
				t.Errorf("the visible invoice lacks its number or seller:\n%s", text)
			}
			back := checkCII(t, "facturx_"+string(level), xml, level == FacturXEN16931)
			if back.Number != d.Number || !back.Totals.Payable.Equal(d.Totals.Payable) {
				t.Errorf("embedded invoice reads as %s payable %s", back.Number, back.Totals.Payable)
			}
			extracted, err := ExtractFacturX(pdf)
			if err != nil || !bytes.Equal(extracted, xml) {
				t.Fatalf("ExtractFacturX: %v (same as pdfdetach: %v)", err, bytes.Equal(extracted, xml))
			}
			again, _ := FacturX(d, level)
			if !bytes.Equal(again, pdf) {
				t.Error("the same document gave different bytes")
			}
		})
	}
}
