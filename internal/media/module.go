package media

import "github.com/abacusbilling/abacus"

// Module declares media's boundary (see abacus.Module; checked by
// test/arch). Images: files by content hash, uploads, tenant settings;
// the bytes live in the object store.
var Module = abacus.Module{
	Name:   "media",
	Tables: []string{"media_files", "media", "media_settings"},
	Uses:   []string{"abacus", "blob", "db", "httpapi", "outbox"},
}
