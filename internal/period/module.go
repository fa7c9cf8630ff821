package period

import "github.com/abacusbilling/abacus"

// Module declares period's boundary (see abacus.Module; checked by test/arch).
// Billing periods and proration: pure.
var Module = abacus.Module{
	Name:   "period",
	Tables: nil,
	Uses: []string{
		"abacus",
	},
}
