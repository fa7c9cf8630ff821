package cli

import "github.com/abacusbilling/abacus"

// Module declares cli's boundary (see abacus.Module; checked by test/arch).
// The abacus command line. Owns no table.
var Module = abacus.Module{
	Name:   "cli",
	Tables: nil,
	Uses: []string{
		"abacus", "analytics", "app", "backup", "client", "cluster", "config", "db", "demo", "heapfloor", "httpapi", "identity",
		"loadgen", "metering", "natsbus",
	},
}
