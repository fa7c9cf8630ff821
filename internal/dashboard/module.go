package dashboard

import "github.com/abacusbilling/abacus"

// Module declares dashboard's boundary (see abacus.Module; checked by
// test/arch). The staff web UI: static files built from web/dashboard,
// embedded in the binary. It owns no table and reads everything through
// the same tenant-scoped API as any other client.
var Module = abacus.Module{
	Name: "dashboard",
	Uses: []string{"abacus", "httpapi"},
}
