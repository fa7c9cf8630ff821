package inbound

import (
	"time"

	"github.com/abacusbilling/abacus/internal/outbox"
)

// ReceivedEvent is the payload of document.received.
type ReceivedEvent struct {
	ID           string    `json:"id"`
	Format       string    `json:"format" doc:"the format the document came in: ubl, cii, facturx or json"`
	Source       string    `json:"source" enum:"api,email"`
	Status       Status    `json:"status" enum:"valid,invalid"`
	Kind         string    `json:"kind" doc:"invoice or credit_note; empty when unreadable"`
	Number       string    `json:"number"`
	IssueDate    string    `json:"issue_date" doc:"YYYY-MM-DD"`
	SupplierName string    `json:"supplier_name"`
	Currency     string    `json:"currency"`
	Payable      string    `json:"payable" doc:"the amount due, decimal"`
	Violations   int       `json:"violations" doc:"number of rules broken; the report is at GET /api/v1/documents/inbound/{id}"`
	DuplicateOf  string    `json:"duplicate_of,omitempty" doc:"an earlier document with the same supplier, number and issue date"`
	ReceivedAt   time.Time `json:"received_at"`
}

// DocumentReceived announces a document a tenant received (through the API
// or by e-mail), stored once and checked.
var DocumentReceived = outbox.Define[ReceivedEvent]("document.received", 1, "inbound_document",
	"A supplier document was received, stored and validated; duplicates (same supplier, number and date) are flagged.")
