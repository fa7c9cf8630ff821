package pricing

import "github.com/abacusbilling/abacus"

// Module declares pricing's boundary (see abacus.Module; checked by
// test/arch). The pricing engine: pure.
var Module = abacus.Module{
	Name:   "pricing",
	Tables: nil,
	Uses: []string{
		"abacus", "money", "period",
	},
}
