package inbound

import (
	"time"

	"github.com/abacusbilling/abacus/internal/document"
)

// exampleUBL is the body the API reference shows for receiving: a small
// supplier invoice.
func exampleUBL() string {
	return `<?xml version="1.0" encoding="UTF-8"?>
<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2" xmlns:cac="urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2" xmlns:cbc="urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2">
  <cbc:CustomizationID>urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0</cbc:CustomizationID>
  <cbc:ID>SUP-2026-0042</cbc:ID>
  <cbc:IssueDate>2026-11-02</cbc:IssueDate>
  <cbc:InvoiceTypeCode>380</cbc:InvoiceTypeCode>
  <cbc:DocumentCurrencyCode>EUR</cbc:DocumentCurrencyCode>
  …
</Invoice>`
}

func exampleDocument() Document {
	return Document{ID: "idoc_01jbx7k2q9m4r8t6v3w5y0z1ab", ContentHash: "9f2c4e…", Size: 5120, Format: document.FormatUBL, Source: SourceAPI,
		Status: StatusInvalid, Kind: "invoice", Number: "SUP-2026-0042", IssueDate: "2026-11-02", SupplierKey: "DE123456789",
		SupplierName: "Supplier GmbH", Currency: "EUR", Payable: "1190.00", DuplicateOf: "idoc_01jbx6z0a1b2c3d4e5f6g7h8j9",
		Report: &document.Report{Format: document.FormatUBL, Violations: []document.Violation{{
			Path: "/Invoice/cac:LegalMonetaryTotal/cbc:PayableAmount", Rule: "BR-CO-16", Severity: "fatal",
			Message: "totals.payable 1190.01 should be 1190.00 (BR-CO-16)"}}, Dropped: []string{"/Invoice/cac:Delivery/cbc:ActualDeliveryDate"}},
		ReceivedAt: time.Date(2026, 11, 2, 9, 30, 0, 0, time.UTC), RetainUntil: time.Date(2036, 11, 2, 9, 30, 0, 0, time.UTC)}
}

// Examples are the values the API reference shows for the inbound module.
func Examples() []any { return []any{exampleDocument(), exampleAddress(), exampleMessage()} }

func exampleAddress() MailAddress {
	return MailAddress{Address: "k3v9q2m8d4x7t1bz@inbound.example.com", CreatedAt: time.Date(2026, 11, 1, 8, 0, 0, 0, time.UTC)}
}

func exampleMessage() ReceivedMail {
	done := time.Date(2026, 11, 2, 9, 30, 1, 0, time.UTC)
	return ReceivedMail{ID: "imsg_01jbx7k2q9m4r8t6v3w5y0z1ab", ContentHash: "4c1d9a…", Size: 48213, From: "billing@supplier.example",
		To: "k3v9q2m8d4x7t1bz@inbound.example.com", Subject: "Invoice SUP-2026-0042", MessageID: "20261102093000.4711@supplier.example",
		Status: MessageProcessed, Documents: []string{"idoc_01jbx7k2q9m4r8t6v3w5y0z1ab"},
		Notes:      []string{"terms.pdf (application/pdf): the PDF has no embedded invoice XML (factur-x.xml, zugferd-invoice.xml or xrechnung.xml)"},
		ReceivedAt: time.Date(2026, 11, 2, 9, 30, 0, 0, time.UTC), ProcessedAt: &done}
}
