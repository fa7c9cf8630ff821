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
		ReceivedAt: time.Date(2026, 11, 2, 9, 30, 0, 0, time.UTC)}
}

// Examples are the values the API reference shows for the inbound module.
func Examples() []any { return []any{exampleDocument()} }
