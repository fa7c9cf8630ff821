package inbound

import "github.com/abacusbilling/abacus"

// Module declares inbound's boundary (see abacus.Module; checked by
// test/arch). Received e-documents: their metadata and reports; the
// originals live in the object store.
var Module = abacus.Module{
	Name:   "inbound",
	Tables: []string{"inbound_documents", "inbound_addresses", "inbound_messages", "inbound_settings"},
	Uses:   []string{"abacus", "blob", "db", "document", "httpapi", "outbox"},
}
