package einvoicetest

import "github.com/abacusbilling/abacus"

// Module declares einvoicetest's boundary (see abacus.Module; checked by
// test/arch). Test helper: the official e-invoice validator.
var Module = abacus.Module{
	Name:   "einvoicetest",
	Tables: nil,
	Uses:   []string{"abacus"},
}
