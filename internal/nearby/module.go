package nearby

import "github.com/abacusbilling/abacus"

// Module declares nearby's boundary (see abacus.Module; checked by
// test/arch). Published locations of end users and places.
var Module = abacus.Module{
	Name:   "nearby",
	Tables: []string{"nearby_locations"},
	Uses:   []string{"abacus", "db", "httpapi"},
}
