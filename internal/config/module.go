package config

import "github.com/abacusbilling/abacus"

// Module declares config's boundary (see abacus.Module; checked by test/arch).
// The typed configuration.
var Module = abacus.Module{
	Name:   "config",
	Tables: nil,
	Uses: []string{
		"abacus", "metering",
	},
}
