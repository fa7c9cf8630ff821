package document

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/einvoicetest"
)

// TestUBLPassesPeppolValidator renders every fixture and checks it with
// the project's own EN 16931 rules and, where present, the official
// validator (UBL 2.1 XSD + EN 16931 + Peppol BIS 3.0 rules).
func TestUBLPassesPeppolValidator(t *testing.T) {
	t.Parallel()
	for name, d := range fixtures() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			xml, err := UBL(d)
			if err != nil {
				t.Fatalf("UBL: %v", err)
			}
			if os.Getenv("DOCUMENT_KEEP") != "" {
				_ = os.WriteFile(filepath.Join(os.TempDir(), name+".xml"), xml, 0o644)
			}
			checkUBL(t, name, xml)
			root := "<Invoice "
			if d.Kind == KindCreditNote {
				root = "<CreditNote "
			}
			if !strings.Contains(string(xml), root) {
				t.Errorf("root element is not %s", root)
			}
		})
	}
}

// TestUBLThreeDecimalCurrency documents that Peppol rejects amounts with
// three decimals (BR-DEC), so UBL refuses them up front.
func TestUBLThreeDecimalCurrency(t *testing.T) {
	t.Parallel()
	d := kwdFils()
	if err := d.Validate(); err != nil {
		t.Fatalf("the KWD document is consistent in its own currency, got %v", err)
	}
	_, err := UBL(d)
	e, ok := abacus.AsError(err)
	if !ok || e.Code != CodePrecisionUnsupported || e.Kind != abacus.KindUnprocessable {
		t.Fatalf("UBL error = %v, want %s", err, CodePrecisionUnsupported)
	}
	// What UBL refuses, the Peppol rules indeed reject.
	raw, err := renderUBL(d)
	if err == nil {
		t.Fatal("renderUBL accepted three decimals")
	}
	einvoicetest.CrossCheckRejects(t, "kwd_fils", raw, "BR-DEC")
}
