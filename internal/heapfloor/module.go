package heapfloor

import "github.com/abacusbilling/abacus"

// Module declares heapfloor's boundary (see abacus.Module; checked by
// test/arch). A garbage-collector floor: standard library only.
var Module = abacus.Module{
	Name:   "heapfloor",
	Tables: nil,
	Uses:   []string{"abacus"},
}
