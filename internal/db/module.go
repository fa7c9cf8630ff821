package db

import "github.com/abacusbilling/abacus"

// Module declares db's boundary (see abacus.Module; checked by test/arch). The
// storage seam; owns only the migration ledger.
var Module = abacus.Module{
	Name: "db",
	Tables: []string{
		"schema_migrations",
	},
	Uses: []string{"abacus"},
}
