package seal

import "github.com/abacusbilling/abacus"

// Module declares seal's boundary (see abacus.Module; checked by test/arch).
// A platform building block: secrets encrypted at rest. Owns no table.
var Module = abacus.Module{Name: "seal", Uses: []string{"abacus"}}
