package document

import (
	"bytes"
	"fmt"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/abacusbilling/abacus/internal/einvoicetest"
)

// longInvoice has enough lines, some with long descriptions, to span pages.
func longInvoice() *Document {
	d := newDoc("INV-2026-0100")
	for i := 1; i <= 38; i++ {
		l := Line{ID: fmt.Sprint(i), Name: fmt.Sprintf("Workspace %d – Pro seats", i), Quantity: dec(fmt.Sprint(i%7 + 1)), UnitCode: "C62", UnitPrice: dec("49.90"), Tax: std("19")}
		if i%5 == 0 {
			l.Description = "Seats added during the period are prorated to the day; removed seats are credited on the next invoice. Includes SSO, audit log and priority support."
		}
		d.Lines = append(d.Lines, l)
	}
	d.Lines = append(d.Lines, usageLine("39", std("19")))
	d.ComputeTotals(RoundHalfUp)
	return d
}

// renderPNG rasterises pdf with pdftoppm and returns the page images' paths.
func renderPNG(t *testing.T, name string, pdf []byte) []string {
	t.Helper()
	if _, err := exec.LookPath("pdftoppm"); err != nil {
		t.Fatal("pdftoppm is missing: install poppler-utils (apt-get install -y poppler-utils)")
	}
	dir := t.TempDir()
	if keep := os.Getenv("DOCUMENT_KEEP"); keep != "" {
		dir = keep
	}
	f := filepath.Join(dir, name+".pdf")
	if err := os.WriteFile(f, pdf, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("pdftoppm", "-r", "70", "-png", f, filepath.Join(dir, name)).CombinedOutput(); err != nil {
		t.Fatalf("pdftoppm: %v\n%s", err, out)
	}
	pages, _ := filepath.Glob(filepath.Join(dir, name+"-*.png"))
	return pages
}

// inked returns the share of pixels that are not near-white.
func inked(t *testing.T, path string) float64 {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("decoding %s: %v", path, err)
	}
	b := img.Bounds()
	dark := 0
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			if r+g+bl < 3*0xe000 {
				dark++
			}
		}
	}
	return float64(dark) / float64(b.Dx()*b.Dy())
}

func TestPDFRendersReadablePages(t *testing.T) {
	t.Parallel()
	docs := fixtures()
	tests := []struct {
		name  string
		doc   *Document
		pages int
		text  []string // must survive text extraction: accents, € and totals
	}{
		{"standard", docs["standard_mixed_rates_tiers"], 1, []string{"Müller Cloud GmbH", "Société Générale Services SAS", "€ 3,268.39", "1,234,567", "49.90", "Page 1 of 1", "Tiers: 0–100,000"}},
		{"credit_note", docs["credit_note"], 1, []string{"CREDIT NOTE", "INV-2026-0001", "Amount credited"}},
		{"reverse_charge", docs["reverse_charge"], 1, []string{"Öresund Analytics B.V.", "Reverse charge (VATEX-EU-AE)"}},
		{"coupon", docs["coupon_and_prepaid_credits"], 1, []string{"Coupon WELCOME10 (10%)", "-31.70", "Credits and payments applied"}},
		{"jpy", docs["jpy_exponent_0"], 1, []string{"¥ 12,614"}},
		{"long", longInvoice(), 3, []string{"Page 3 of 3", "Workspace 38", "€ 9,844.13"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pdf, err := PDF(tt.doc)
			if err != nil {
				t.Fatal(err)
			}
			pages := renderPNG(t, tt.name, pdf)
			if len(pages) != tt.pages {
				t.Fatalf("%d pages, want %d", len(pages), tt.pages)
			}
			for _, p := range pages {
				if share := inked(t, p); share < 0.01 || share > 0.5 {
					t.Errorf("%s: %.3f of the page is inked; expected a readable page, not blank or black", filepath.Base(p), share)
				}
			}
			text := pdfText(t, pdf)
			for _, s := range tt.text {
				if !strings.Contains(text, s) {
					t.Errorf("PDF text lacks %q", s)
				}
			}
		})
	}
}

func pdfText(t *testing.T, pdf []byte) string { return einvoicetest.PDFText(t, pdf) }

// TestPDFBreakdownCountryAndReference: a tiered line prints its breakdown
// rows (quantity × tier price = amount) instead of the average unit price
// UBL needs, every country prints by name, and a long reference stays on
// one line.
func TestPDFBreakdownCountryAndReference(t *testing.T) {
	t.Parallel()
	d := newDoc("INV-2026-000123")
	d.BuyerReference = "sub_01m95x6rdtb4mq2z45ejbbdrjz"
	d.Buyer.CountryCode = "CI"
	d.Seller.CountryCode = "KR"
	l := usageLine("1", std("19"))
	l.Note = ""
	l.Breakdown = []LineDetail{
		{Description: "Tier 1 (up to 100,000)", Quantity: dec("100000"), Amount: dec("0")},
		{Description: "Tier 2 (100,000 – 1,000,000)", Quantity: dec("900000"), UnitPrice: dec("0.0008"), Amount: dec("720")},
		{Description: "Tier 3 (above 1,000,000)", Quantity: dec("234567"), UnitPrice: dec("0.0005"), Amount: dec("117.2835")},
	}
	d.Lines = []Line{l}
	d.ComputeTotals(RoundHalfUp)
	pdf, err := PDF(d)
	if err != nil {
		t.Fatal(err)
	}
	text := pdfText(t, pdf)
	for _, s := range []string{"Côte d'Ivoire", "South Korea", "sub_01m95x6rdtb4mq2z45ejbbdrjz", "Tier 2 (100,000 – 1,000,000)",
		"900,000", "0.0008", "720.00", "234,567", "0.0005", "117.2835"} {
		if !strings.Contains(text, s) {
			t.Errorf("PDF text lacks %q:\n%s", s, text)
		}
	}
	if avg := l.UnitPrice.String(); strings.Contains(text, avg) {
		t.Errorf("PDF prints the average unit price %s:\n%s", avg, text)
	}
}
