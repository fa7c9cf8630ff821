package country

import "github.com/abacusbilling/abacus"

// Module declares country's boundary (see abacus.Module; checked by
// test/arch). ISO 3166-1 codes and English names: pure data.
var Module = abacus.Module{
	Name:   "country",
	Tables: nil,
	Uses:   []string{"abacus"},
}
