package money

import "github.com/abacusbilling/abacus"

// Module declares money's boundary (see abacus.Module; checked by test/arch).
// Currencies and rounding: pure.
var Module = abacus.Module{
	Name:   "money",
	Tables: nil,
	Uses: []string{
		"abacus",
	},
}
