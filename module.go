package abacus

// Module is a module's boundary, declared next to its code as
//
//	var Module = abacus.Module{Name: "billing", Tables: …, Uses: …}
//
// in internal/<name>/module.go, and enforced by the architecture test in
// test/arch on every package under internal/<name>:
//
//   - Tables are the tables the module owns. Only its SQL names them; other
//     modules read them through its Go API or its domain events. This
//     declaration is what counts, not the migration that happened to
//     create a table (tenants and api_keys came with the platform
//     migration, the subscription tables with the catalog's).
//   - Uses are the other modules it may import: "abacus" for this package,
//     otherwise the name of a directory under internal/.
type Module struct {
	Name   string
	Tables []string
	Uses   []string
}

// RootModule declares the root package: what every module shares, so it
// owns no table and imports no module.
var RootModule = Module{Name: "abacus"}
