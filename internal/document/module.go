package document

import "github.com/abacusbilling/abacus"

// Module declares document's boundary (see abacus.Module; checked by
// test/arch). The format-neutral invoice model and its formats: pure.
var Module = abacus.Module{
	Name:   "document",
	Tables: nil,
	Uses: []string{
		"abacus", "country",
	},
}
