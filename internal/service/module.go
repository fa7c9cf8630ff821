package service

import "github.com/abacusbilling/abacus"

// Module declares service's boundary (see abacus.Module; checked by
// test/arch). The lifecycle contract.
var Module = abacus.Module{
	Name:   "service",
	Tables: nil,
	Uses:   []string{"abacus"},
}
