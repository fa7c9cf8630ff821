package backup

import "github.com/abacusbilling/abacus"

// Module declares backup's boundary (see abacus.Module; checked by
// test/arch). Backups of the embedded mode: the SQLite file, the
// JetStream streams and the data dir's other files. Owns no table and
// names none (VACUUM INTO copies the whole file); imports no module.
var Module = abacus.Module{
	Name:   "backup",
	Tables: nil,
	Uses:   []string{"abacus"},
}
