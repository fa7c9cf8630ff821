package backup

import "github.com/abacusbilling/abacus"

// Module declares backup's boundary (see abacus.Module; checked by
// test/arch). Backups of the embedded mode: the SQLite file, the
// JetStream streams and the data dir's other files. Owns no table; reads
// none by name (VACUUM INTO copies the whole file).
var Module = abacus.Module{
	Name:   "backup",
	Tables: nil,
	Uses:   []string{"abacus", "db"},
}
