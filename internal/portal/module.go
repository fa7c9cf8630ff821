package portal

import "github.com/abacusbilling/abacus"

// Module declares portal's boundary (see abacus.Module; checked by
// test/arch). The customer portal: links, portal sessions and per-tenant
// portal settings; every customer read goes through the owning module's
// Go API (catalog, subscription, billing), filtered by tenant and customer.
var Module = abacus.Module{
	Name:   "portal",
	Tables: []string{"portal_links", "portal_sessions", "portal_settings"},
	Uses: []string{
		"abacus", "billing", "catalog", "db", "document", "enduser", "httpapi", "subscription",
	},
}
