package timeline

import "github.com/abacusbilling/abacus"

// Module declares timeline's boundary (see abacus.Module; checked by
// test/arch). The index of domain events by customer (migrations
// 1250–1299), kept by a consumer of the events stream. The producers are
// read only through their events' Go types (catalog, subscription,
// billing, payments and its dunning, end-user organizations, risk's usage
// spikes); customers (by id or external id) and plan names through
// catalog's read API.
var Module = abacus.Module{
	Name:   "timeline",
	Tables: []string{"timeline_entries"},
	Uses: []string{
		"abacus", "billing", "catalog", "db", "enduser", "httpapi", "money", "natsbus", "outbox", "payments", "risk", "subscription",
	},
}
