package client

import "github.com/abacusbilling/abacus"

// Module declares client's boundary (see abacus.Module; checked by test/arch).
// A Go client of the HTTP API: talks HTTP only.
var Module = abacus.Module{
	Name:   "client",
	Tables: nil,
	Uses: []string{
		"abacus",
	},
}
