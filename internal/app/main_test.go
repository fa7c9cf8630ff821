package app_test

import (
	"os"
	"testing"

	"github.com/abacusbilling/abacus/internal/einvoicetest"
)

// TestMain cross-checks the documents the tests queued with the official
// e-invoice validator once, at the end (see einvoicetest.Main).
func TestMain(m *testing.M) { os.Exit(einvoicetest.Main(m)) }
