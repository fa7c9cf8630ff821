package natsbus

import "github.com/abacusbilling/abacus"

// Module declares natsbus's boundary (see abacus.Module; checked by
// test/arch). The JetStream bus: embedded or external.
var Module = abacus.Module{
	Name:   "natsbus",
	Tables: nil,
	Uses:   []string{"abacus"},
}
