package app

import "github.com/abacusbilling/abacus"

// Module declares app's boundary (see abacus.Module; checked by test/arch).
// Wiring: the only package that knows every module. Owns no table.
var Module = abacus.Module{
	Name:   "app",
	Tables: nil,
	Uses: []string{
		"abacus",
		"analytics",
		"backup",
		"billing",
		"blob",
		"catalog",
		"config",
		"dashboard",
		"db",
		"document",
		"enduser",
		"httpapi",
		"identity",
		"inbound",
		"media",
		"metering",
		"natsbus",
		"nearby",
		"notifications",
		"outbox",
		"payments",
		"portal",
		"pricing",
		"realtime",
		"risk",
		"seal",
		"service",
		"subscription",
		"timeline",
		"webhooks",
	},
}
