package demo

import "github.com/abacusbilling/abacus"

// Module declares demo's boundary (see abacus.Module; checked by test/arch).
// The demo seed: drives the HTTP API through client.
var Module = abacus.Module{
	Name:   "demo",
	Tables: nil,
	Uses: []string{
		"abacus", "billing", "catalog", "client", "document", "metering", "period", "pricing",
		"subscription",
	},
}
