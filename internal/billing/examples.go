package billing

import (
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/shopspring/decimal"

	"github.com/abacusbilling/abacus/internal/document"
)

// Examples are the values the API reference shows for the billing
// request and response bodies (httpapi.Server.Example).
func Examples() []any {
	d := decimal.RequireFromString
	start := time.Date(2026, 11, 16, 9, 30, 0, 0, time.UTC)
	end := start.AddDate(0, 1, 0)
	finalized := end.Add(time.Hour)
	due := finalized.AddDate(0, 0, 14)
	expires := time.Date(2027, 12, 31, 23, 0, 0, 0, time.UTC)
	vat := LineTax{Tax: document.Tax{Category: document.TaxStandard, Rate: d("19")}, RateID: "txr_01jbx80a2c4e6g8j0l2n4q6s8u"}
	unit := d("0.00002")
	const customer, invoice = "cus_01jbx7k2q9m4r8t6v3w5y0z1ab", "inv_01jc4k2m4p6r8t0v2x4z6b8d0f"
	inv := Invoice{ID: invoice, CustomerID: customer, SubscriptionID: "sub_01jbx7r9a1c3e5g7j9l1n3q5st", Status: Open,
		Number: "INV-2026-000042", Currency: "EUR", PeriodStart: start, CycleIndex: 1, ServiceStart: &start, ServiceEnd: &end,
		Lines: []Line{
			{ID: "il_01jc4k3a5c7e9g1j3l5n7q9s1u", Kind: LineFee, Description: "Pro plan", ChargeKey: "base", Quantity: d("5"),
				UnitAmount: &[]decimal.Decimal{d("49.00")}[0], Amount: d("245.00"), NetAmount: d("245.00"), PeriodStart: start, PeriodEnd: end, Tax: vat},
			{ID: "il_01jc4k3b6d8f0h2k4m6p8r0t2v", Kind: LineUsage, Description: "API calls", ChargeKey: "api_calls", Meter: "api_calls",
				Quantity: d("1250000"), UnitAmount: &unit, Amount: d("5.00"), NetAmount: d("5.00"), PeriodStart: start, PeriodEnd: end, Tax: vat},
		},
		Subtotal: d("250.00"), DiscountTotal: d("0.00"), TaxTotal: d("47.50"), Total: d("297.50"), CreditsApplied: d("0.00"), AmountDue: d("297.50"),
		TaxBreakdown: []document.TaxSubtotal{{Tax: vat.Tax, TaxableAmount: d("250.00"), TaxAmount: d("47.50")}},
		FinalizeAt:   finalized, FinalizedAt: &finalized, DueAt: &due, CreatedAt: start, UpdatedAt: finalized}
	ten := d("10")
	amount := d("50.00")
	return []any{
		inv,
		CreditNoteInput{InvoiceID: invoice, Amount: &amount, Reason: "Service outage on 2026-12-03", RefundToCredits: true},
		CreditNote{ID: "cn_01jc6m1a3c5e7g9j1l3n5q7s9u", InvoiceID: invoice, CustomerID: customer, Number: "CN-2026-000007", Currency: "EUR",
			Reason: "Service outage on 2026-12-03", Subtotal: d("50.00"), TaxTotal: d("9.50"), Total: d("59.50"), RefundToCredits: true, CreatedAt: due},
		CouponInput{Code: "LAUNCH10", Name: "Launch: 10 % off for 3 months", PercentOff: &ten, Duration: Repeating, DurationPeriods: 3, MaxRedemptions: 500, RedeemBy: &expires},
		Coupon{ID: "cpn_01jbx81b3d5f7h9k1m3p5r7t9v", Code: "LAUNCH10", Name: "Launch: 10 % off for 3 months", PercentOff: &ten, Duration: Repeating,
			DurationPeriods: 3, MaxRedemptions: 500, RedeemBy: &expires, Redemptions: 37, CreatedAt: start},
		RedeemInput{CustomerID: "crm-4711", SubscriptionID: "sub_01jbx7r9a1c3e5g7j9l1n3q5st"},
		Redemption{ID: "red_01jbx82c4e6g8j0l2n4q6s8uwx", CouponID: "cpn_01jbx81b3d5f7h9k1m3p5r7t9v", CustomerID: customer,
			SubscriptionID: "sub_01jbx7r9a1c3e5g7j9l1n3q5st", CreatedAt: start},
		GrantInput{Amount: d("100.00"), Currency: "EUR", Kind: CreditGrant, ExpiresAt: &expires, Description: "Onboarding credit"},
		CreditEntry{ID: "cre_01jbx83d5f7h9k1m3p5r7t9vxz", CustomerID: customer, Currency: "EUR", Kind: CreditGrant, Amount: d("100.00"),
			GrantID: "cre_01jbx83d5f7h9k1m3p5r7t9vxz", ExpiresAt: &expires, Description: "Onboarding credit", CreatedAt: start},
		Balance{CustomerID: customer, Currency: "EUR", Available: d("62.40")},
		TaxRateInput{Name: "VAT Germany", Percentage: d("19"), Category: document.TaxStandard, Country: "DE"},
		TaxRate{ID: "txr_01jbx80a2c4e6g8j0l2n4q6s8u", Name: "VAT Germany", Percentage: d("19"), Category: document.TaxStandard, Country: "DE", CreatedAt: start},
		Settings{InvoicePrefix: "INV", CreditNotePrefix: "CN", GraceSeconds: 3600, DueDays: 14, PaymentTerms: "Payable within 14 days without deduction",
			Seller:       document.Party{Name: "Example SaaS GmbH", Address: []string{"Torstraße 1"}, City: "Berlin", PostalCode: "10119", CountryCode: "DE", VATID: "DE987654321"},
			PaymentMeans: &document.PaymentMeans{Code: "58", IBAN: "DE89370400440532013000", AccountName: "Example SaaS GmbH", BIC: "COBADEFFXXX"}},
	}
}

// exampleDocument is the invoice document the API reference shows.
func exampleDocument() *document.Document {
	d := decimal.RequireFromString
	vat := document.Tax{Category: document.TaxStandard, Rate: d("19")}
	period := &document.Period{Start: document.Date{Year: 2026, Month: time.November, Day: 16}, End: document.Date{Year: 2026, Month: time.December, Day: 15}}
	doc := &document.Document{Kind: document.KindInvoice, Number: "INV-2026-000042", IssueDate: document.Date{Year: 2026, Month: time.December, Day: 16},
		DueDate: document.Date{Year: 2026, Month: time.December, Day: 30}, Currency: "EUR", CurrencyExponent: 2, BuyerReference: "crm-4711", Period: period,
		Seller: document.Party{Name: "Example SaaS GmbH", Address: []string{"Torstraße 1"}, City: "Berlin", PostalCode: "10119", CountryCode: "DE",
			VATID: "DE987654321", EndpointID: "DE987654321", EndpointScheme: "9930"},
		Buyer: document.Party{Name: "Acme GmbH", Address: []string{"Friedrichstraße 68"}, City: "Berlin", PostalCode: "10117", CountryCode: "DE",
			VATID: "DE123456789", EndpointID: "DE123456789", EndpointScheme: "9930"},
		Lines: []document.Line{
			{ID: "1", Name: "Pro plan", Quantity: d("5"), UnitCode: "C62", UnitPrice: d("49.00"), Tax: vat, Period: period},
			{ID: "2", Name: "API calls", Quantity: d("1250000"), UnitCode: "C62", UnitPrice: d("0.000004"), Tax: vat, Period: period,
				Note: "1,000,000 × 0.00 EUR + 250,000 × 0.00002 EUR"},
		},
		PaymentTerms: "Payable within 14 days without deduction",
		PaymentMeans: &document.PaymentMeans{Code: "58", PaymentID: "INV-2026-000042", IBAN: "DE89370400440532013000", AccountName: "Example SaaS GmbH"},
	}
	doc.ComputeTotals(document.RoundHalfUp)
	return doc
}

// documentResponses documents the 200 answer of a document route in each
// format it renders, with the example document in it.
func documentResponses(formats ...document.Format) map[string]*huma.Response {
	doc := exampleDocument()
	content := map[string]*huma.MediaType{}
	for _, f := range formats {
		m := &huma.MediaType{Schema: &huma.Schema{Type: "string"}}
		switch f {
		case document.FormatJSON:
			m.Schema = &huma.Schema{Type: "object", Description: "the format-neutral document", AdditionalProperties: true}
			m.Example = doc
		case document.FormatPDF:
			m.Schema.Format = "binary"
		default:
			if b, err := document.Render(doc, f); err == nil {
				m.Example = string(b)
			}
		}
		content[strings.TrimSuffix(f.ContentType(), "; charset=utf-8")] = m
	}
	return map[string]*huma.Response{"200": {Description: "the document in the format asked for", Content: content}}
}

// exampleUBL is the example document as UBL 2.1, the body the conversion
// route reads.
func exampleUBL() string {
	b, err := document.UBL(exampleDocument())
	if err != nil {
		return ""
	}
	return string(b)
}

// documentOp is o answering a document in each of formats.
func documentOp(o huma.Operation, formats ...document.Format) huma.Operation {
	o.Responses = documentResponses(formats...)
	return o
}
