package httpapi

import "github.com/abacusbilling/abacus"

// Module declares httpapi's boundary (see abacus.Module; checked by
// test/arch). The HTTP edge; owns the stored Idempotency-Key responses.
var Module = abacus.Module{
	Name: "httpapi",
	Tables: []string{
		"idempotency_keys",
	},
	Uses: []string{
		"abacus", "db",
	},
}
