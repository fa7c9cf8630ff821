package catalog

import "github.com/abacusbilling/abacus"

// Module declares catalog's boundary (see abacus.Module; checked by
// test/arch). Customers, features, plans and plan versions.
var Module = abacus.Module{
	Name: "catalog",
	Tables: []string{
		"customers", "customer_subjects", "features", "plans", "plan_versions",
	},
	Uses: []string{
		"abacus", "country", "db", "httpapi", "money", "outbox", "period", "pricing",
	},
}
