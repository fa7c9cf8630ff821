package outbox

import "github.com/abacusbilling/abacus"

// Module declares outbox's boundary (see abacus.Module; checked by test/arch).
// The transactional outbox and the typed domain event catalog.
var Module = abacus.Module{
	Name: "outbox",
	Tables: []string{
		"outbox_events",
	},
	Uses: []string{
		"abacus", "db", "httpapi", "natsbus",
	},
}
