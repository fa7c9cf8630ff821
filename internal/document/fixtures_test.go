package document

import (
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/einvoicetest"
)

func dec(s string) decimal.Decimal { return decimal.RequireFromString(s) }

func date(s string) Date {
	d, err := ParseDate(s)
	if err != nil {
		panic(err)
	}
	return d
}

// issued is the fixed "now" of every fixture, from a fake clock as billing
// would use.
var issued = DateOf(abacus.NewFakeClock(time.Date(2026, 3, 1, 9, 30, 0, 0, time.UTC)).Now())

func sellerDE() Party {
	return Party{
		Name: "Müller Cloud GmbH", Address: []string{"Königstraße 12", "3. OG"}, City: "Stuttgart", PostalCode: "70173",
		CountryCode: "DE", VATID: "DE123456789", LegalID: "HRB 765432", LegalForm: "Amtsgericht Stuttgart, Geschäftsführer: Jürgen Müller",
		ContactName: "Billing team", Phone: "+49 711 123456", Email: "billing@mueller-cloud.de",
		EndpointID: "DE123456789", EndpointScheme: "9930",
	}
}

func buyerFR() Party {
	return Party{
		Name: "Société Générale Services SAS", TradingName: "SG Services", Address: []string{"29 boulevard Haussmann"},
		City: "Paris", PostalCode: "75009", CountryCode: "FR", VATID: "FR40303265045",
		LegalID: "30326504500017", LegalIDScheme: "0009", Email: "factures@sg-services.fr",
		EndpointID: "30326504500017", EndpointScheme: "0009",
	}
}

func buyerNL() Party {
	return Party{
		Name: "Öresund Analytics B.V.", Address: []string{"Herengracht 500"}, City: "Amsterdam", PostalCode: "1017 CB",
		CountryCode: "NL", VATID: "NL123456789B01", EndpointID: "NL123456789B01", EndpointScheme: "9944",
	}
}

func std(rate string) Tax { return Tax{Category: TaxStandard, Rate: dec(rate)} }

// newDoc returns an invoice skeleton for March 2026 in EUR.
func newDoc(number string) *Document {
	return &Document{
		Kind: KindInvoice, Number: number, IssueDate: issued, DueDate: date("2026-03-31"),
		Currency: "EUR", CurrencyExponent: 2, BuyerReference: "PO-4711",
		Period: &Period{Start: date("2026-02-01"), End: date("2026-02-28")},
		Seller: sellerDE(), Buyer: buyerFR(),
		PaymentTerms: "Payable within 30 days of the invoice date without deduction.",
		PaymentMeans: &PaymentMeans{Code: "58", PaymentID: number, IBAN: "DE89370400440532013000", AccountName: "Müller Cloud GmbH", BIC: "COBADEFFXXX"},
	}
}

// usageLine is a graduated-tier usage line: 1,234,567 API calls priced
// 0 for the first 100,000, 0.0008 up to 1,000,000, 0.0005 above.
func usageLine(id string, tax Tax) Line {
	amount := dec("720").Add(dec("234567").Mul(dec("0.0005"))).Round(2) // 720 + 117.2835 = 837.28
	return Line{
		ID: id, Name: "API calls", Description: "Metered API requests, graduated pricing",
		Quantity: dec("1234567"), UnitCode: "C62", UnitPrice: AverageUnitPrice(amount, dec("1234567")), NetAmount: amount,
		Tax: tax, Period: &Period{Start: date("2026-02-01"), End: date("2026-02-28")},
		Note: "Tiers: 0–100,000 @ 0.0000 = 0.00; 100,001–1,000,000 @ 0.0008 = 720.00; 1,000,001+ @ 0.0005 = 117.28",
	}
}

// fixtures builds one document per case the issue names.
func fixtures() map[string]*Document {
	out := map[string]*Document{}

	d := newDoc("INV-2026-0001")
	d.Lines = []Line{
		{ID: "1", Name: "Pro plan", Description: "Monthly subscription, 25 seats, including priority support and the audit log add-on for all workspaces", Quantity: dec("25"), UnitCode: "C62", UnitPrice: dec("49.90"), Tax: std("19")},
		{ID: "2", Name: "Onboarding workshop", Quantity: dec("3.5"), UnitCode: "HUR", UnitPrice: dec("180"), Tax: std("25")},
		usageLine("3", std("19")),
	}
	d.Notes = []string{"Thank you for your business.", "Questions? billing@mueller-cloud.de"}
	d.ComputeTotals(RoundHalfUp)
	out["standard_mixed_rates_tiers"] = d

	d = newDoc("INV-2026-0002")
	d.Seller.CountryCode, d.Seller.VATID, d.Seller.EndpointID = "GB", "GB123456789", "GB123456789"
	d.Seller.EndpointScheme = "9932"
	d.Lines = []Line{{ID: "1", Name: "Printed manuals", Quantity: dec("40"), UnitCode: "H87", UnitPrice: dec("12.50"), Tax: Tax{Category: TaxZeroRated, Rate: decimal.Zero}}}
	d.ComputeTotals(RoundHalfUp)
	out["zero_rated"] = d

	d = newDoc("INV-2026-0003")
	d.Lines = []Line{{ID: "1", Name: "Financial data training course", Quantity: dec("2"), UnitCode: "DAY", UnitPrice: dec("950"),
		Tax: Tax{Category: TaxExempt, Rate: decimal.Zero, ExemptionReason: "Exempt educational service", ExemptionReasonCode: "VATEX-EU-132-1I"}}}
	d.ComputeTotals(RoundHalfUp)
	out["exempt"] = d

	d = newDoc("INV-2026-0004")
	d.Buyer = buyerNL()
	d.Lines = []Line{
		{ID: "1", Name: "Enterprise plan", Quantity: dec("1"), UnitCode: "MON", UnitPrice: dec("2400"), Tax: Tax{Category: TaxReverseCharge}},
		usageLine("2", Tax{Category: TaxReverseCharge}),
	}
	d.Notes = []string{"Reverse charge: VAT to be accounted for by the recipient (Art. 196 Directive 2006/112/EC)."}
	d.ComputeTotals(RoundHalfUp)
	out["reverse_charge"] = d

	d = newDoc("INV-2026-0005")
	d.Lines = []Line{{ID: "1", Name: "Team plan", Quantity: dec("1"), UnitCode: "MON", UnitPrice: dec("299"), Tax: std("19")},
		{ID: "2", Name: "Extra storage", Quantity: dec("150"), UnitCode: "GB", UnitPrice: dec("0.12"), Tax: std("19")}}
	d.AllowanceCharges = []AllowanceCharge{{Amount: dec("31.70"), BaseAmount: dec("317"), Percent: dec("10"), Reason: "Coupon WELCOME10", ReasonCode: "95", Tax: &Tax{Category: TaxStandard, Rate: dec("19")}}}
	d.Totals.Prepaid = dec("50.00")
	d.ComputeTotals(RoundHalfUp)
	out["coupon_and_prepaid_credits"] = d

	d = newDoc("CN-2026-0001")
	d.Kind = KindCreditNote
	d.InvoiceReference = &InvoiceReference{Number: "INV-2026-0001", IssueDate: issued}
	d.Lines = []Line{{ID: "1", Name: "Pro plan, 5 seats removed mid-period", Quantity: dec("5"), UnitCode: "C62", UnitPrice: dec("24.95"), Tax: std("19")}}
	d.PaymentTerms = "The credited amount will be offset against your next invoice."
	d.ComputeTotals(RoundHalfUp)
	out["credit_note"] = d

	d = newDoc("INV-2026-0007")
	d.Currency, d.CurrencyExponent = "JPY", 0
	d.Lines = []Line{{ID: "1", Name: "Starter plan", Quantity: dec("1"), UnitCode: "MON", UnitPrice: dec("9800"), Tax: std("10")},
		{ID: "2", Name: "API calls", Quantity: dec("3333"), UnitCode: "C62", UnitPrice: AverageUnitPrice(dec("1667"), dec("3333")), NetAmount: dec("1667"), Tax: std("10"), Note: "3,333 calls @ ¥0.5, rounded to whole yen"}}
	d.PaymentMeans = nil
	d.ComputeTotals(RoundHalfUp)
	out["jpy_exponent_0"] = d

	d = newDoc("INV-2026-0008")
	d.Currency, d.CurrencyExponent = "KWD", 3
	d.Lines = []Line{{ID: "1", Name: "Starter plan", Quantity: dec("3"), UnitCode: "MON", UnitPrice: dec("15.20"), Tax: std("5")}}
	d.PaymentMeans = nil
	d.ComputeTotals(RoundHalfUp)
	out["kwd_exponent_3_hundredths"] = d
	return out
}

// kwdFils is a KWD invoice whose amounts use the third decimal (fils),
// which Peppol's BR-DEC rules reject.
func kwdFils() *Document {
	d := newDoc("INV-2026-0009")
	d.Currency, d.CurrencyExponent = "KWD", 3
	d.Lines = []Line{{ID: "1", Name: "Starter plan", Quantity: dec("3"), UnitCode: "MON", UnitPrice: dec("15.125"), Tax: std("5")}}
	d.PaymentMeans = nil
	d.ComputeTotals(RoundHalfUp)
	return d
}

// checkUBL runs the project's own EN 16931 checks on rendered xml
// (ParseUBL reports every rule it finds broken) and then, where it is
// present, the official validator (see einvoicetest).
func checkUBL(t *testing.T, name string, xml []byte) {
	t.Helper()
	if _, violations, err := ParseUBL(xml); err != nil || len(violations) > 0 {
		t.Errorf("%s: UBL fails Abacus's own checks: %v %+v\n%s", name, err, violations, xml)
	}
	einvoicetest.CrossCheck(t, name, xml)
}
