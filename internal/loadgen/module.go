package loadgen

import "github.com/abacusbilling/abacus"

// Module declares loadgen's boundary (see abacus.Module; checked by
// test/arch). The load generator behind abacus bench.
var Module = abacus.Module{
	Name:   "loadgen",
	Tables: nil,
	Uses: []string{
		"abacus", "client", "natsbus",
	},
}
