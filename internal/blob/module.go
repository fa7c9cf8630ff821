package blob

import "github.com/abacusbilling/abacus"

// Module declares blob's boundary (see abacus.Module; checked by
// test/arch). The object-storage seam: no tables.
var Module = abacus.Module{
	Name:   "blob",
	Tables: nil,
	Uses:   []string{"abacus"},
}
