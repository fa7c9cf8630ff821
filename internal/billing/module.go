package billing

import "github.com/abacusbilling/abacus"

// Module declares billing's boundary (see abacus.Module; checked by
// test/arch). Billing cycles, invoices, credit notes, coupons, credits, taxes,
// numbering.
var Module = abacus.Module{
	Name: "billing",
	Tables: []string{
		"billing_settings", "billing_sequences", "billing_cycles", "invoices", "invoice_lines",
		"tax_rates", "tax_assignments", "coupons", "coupon_redemptions", "credit_entries",
		"credit_notes",
	},
	Uses: []string{
		"abacus", "catalog", "country", "db", "document", "httpapi", "identity", "money", "outbox", "period", "pricing",
		"subscription",
	},
}
