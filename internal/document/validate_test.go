package document

import (
	"slices"
	"testing"

	"github.com/abacusbilling/abacus"
	"github.com/shopspring/decimal"
)

func TestFixturesAreValid(t *testing.T) {
	t.Parallel()
	for name, d := range fixtures() {
		if err := d.Validate(); err != nil {
			t.Errorf("%s: %v (%+v)", name, err, err.(*abacus.Error).Fields)
		}
	}
}

func TestValidateReportsEachRule(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		base   string // fixture to start from
		mutate func(d *Document)
		field  string
	}{
		{"number required", "standard_mixed_rates_tiers", func(d *Document) { d.Number = "" }, "number"},
		{"buyer or order reference", "standard_mixed_rates_tiers", func(d *Document) { d.BuyerReference = "" }, "buyer_reference"},
		{"seller endpoint", "standard_mixed_rates_tiers", func(d *Document) { d.Seller.EndpointID = "" }, "seller.endpoint_id"},
		{"buyer country", "standard_mixed_rates_tiers", func(d *Document) { d.Buyer.CountryCode = "France" }, "buyer.country_code"},
		{"line net vs quantity × price (R120)", "standard_mixed_rates_tiers", func(d *Document) { d.Lines[0].UnitPrice = dec("50") }, "lines[0].net_amount"},
		{"line sum (BR-CO-10)", "standard_mixed_rates_tiers", func(d *Document) { d.Totals.LineExtension = d.Totals.LineExtension.Add(dec("1")) }, "totals.line_extension"},
		{"tax inclusive (BR-CO-15)", "standard_mixed_rates_tiers", func(d *Document) { d.Totals.TaxInclusive = dec("1") }, "totals.tax_inclusive"},
		{"payable (BR-CO-16)", "coupon_and_prepaid_credits", func(d *Document) { d.Totals.Prepaid = dec("60") }, "totals.payable"},
		{"allowance total (BR-CO-11)", "coupon_and_prepaid_credits", func(d *Document) { d.AllowanceCharges[0].Amount = dec("30") }, "totals.allowance_total"},
		{"allowance percent (R040)", "coupon_and_prepaid_credits", func(d *Document) { d.AllowanceCharges[0].Percent = dec("20") }, "allowance_charges[0].amount"},
		{"document allowance needs a tax category", "coupon_and_prepaid_credits", func(d *Document) { d.AllowanceCharges[0].Tax = nil }, "allowance_charges[0].tax"},
		{"tax per category (BR-CO-17)", "standard_mixed_rates_tiers", func(d *Document) { d.TaxBreakdown[0].TaxAmount = d.TaxBreakdown[0].TaxAmount.Add(dec("0.02")) }, "tax_breakdown[0].tax_amount"},
		{"taxable per category", "standard_mixed_rates_tiers", func(d *Document) { d.TaxBreakdown[0].TaxableAmount = dec("1") }, "tax_breakdown[0].taxable_amount"},
		{"missing group", "standard_mixed_rates_tiers", func(d *Document) { d.TaxBreakdown = d.TaxBreakdown[:1] }, "tax_breakdown"},
		{"exempt needs a reason", "exempt", func(d *Document) {
			d.TaxBreakdown[0].Tax.ExemptionReason, d.TaxBreakdown[0].Tax.ExemptionReasonCode = "", ""
		}, "tax_breakdown[0].tax.exemption_reason"},
		{"zero-rated must not have a reason", "zero_rated", func(d *Document) { d.TaxBreakdown[0].Tax.ExemptionReason = "Books" }, "tax_breakdown[0].tax.exemption_reason"},
		{"reverse charge needs the buyer's VAT id", "reverse_charge", func(d *Document) { d.Buyer.VATID = "" }, "buyer.vat_id"},
		{"standard rate above zero", "standard_mixed_rates_tiers", func(d *Document) { d.Lines[1].Tax.Rate = decimal.Zero }, "lines[1].tax.rate"},
		{"seller VAT id for taxed supplies", "zero_rated", func(d *Document) { d.Seller.VATID = "" }, "seller.vat_id"},
		{"decimals beyond the currency", "jpy_exponent_0", func(d *Document) { d.Lines[0].NetAmount = dec("9800.5") }, "lines[0].net_amount"},
		{"line period inside document period (R111)", "standard_mixed_rates_tiers", func(d *Document) { d.Lines[2].Period = &Period{Start: date("2026-02-01"), End: date("2026-03-05")} }, "lines[2].period.end"},
		{"due date or terms (BR-CO-25)", "standard_mixed_rates_tiers", func(d *Document) { d.DueDate, d.PaymentTerms = Date{}, "" }, "due_date"},
		{"IBAN for credit transfer", "standard_mixed_rates_tiers", func(d *Document) { d.PaymentMeans.IBAN = "" }, "payment_means.iban"},
		{"credit note kind", "credit_note", func(d *Document) { d.Kind = "refund" }, "kind"},
		{"tax point date or its code (BR-CO-3)", "standard_mixed_rates_tiers", func(d *Document) { d.TaxPointDate, d.TaxPointDateCode = date("2026-02-28"), "3" }, "tax_point_date_code"},
		{"VAT point date code list", "standard_mixed_rates_tiers", func(d *Document) { d.TaxPointDateCode = "5" }, "tax_point_date_code"},
		{"payee name (BR-17)", "standard_mixed_rates_tiers", func(d *Document) { d.Payee = &Payee{ID: "4000001000005"} }, "payee.name"},
		{"tax representative VAT id (BR-56)", "standard_mixed_rates_tiers", func(d *Document) {
			d.TaxRepresentative = &TaxRepresentative{Name: "Rep", Address: Address{CountryCode: "DE"}}
		}, "tax_representative.vat_id"},
		{"tax representative country (BR-20)", "standard_mixed_rates_tiers", func(d *Document) {
			d.TaxRepresentative = &TaxRepresentative{Name: "Rep", VATID: "DE987654321"}
		}, "tax_representative.address.country_code"},
		{"delivery country (BR-57)", "standard_mixed_rates_tiers", func(d *Document) { d.Delivery = &Delivery{Address: &Address{City: "Lyon"}} }, "delivery.address.country_code"},
		{"supporting document id (BR-52)", "standard_mixed_rates_tiers", func(d *Document) { d.Documents = []DocumentReference{{TypeCode: "916", Description: "Timesheet"}} }, "documents[0].id"},
		{"attachment type (BR-CL-24)", "standard_mixed_rates_tiers", func(d *Document) {
			d.Documents = []DocumentReference{{ID: "x", TypeCode: "916", Attachment: &Attachment{MimeCode: "application/zip", Filename: "x.zip", Content: "UEs="}}}
		}, "documents[0].attachment.mime_code"},
		{"no tender or project among the documents", "standard_mixed_rates_tiers", func(d *Document) { d.Documents = []DocumentReference{{ID: "LOT-1", TypeCode: "50"}} }, "documents[0].type_code"},
		{"one payment means code (UBL-SR-47)", "standard_mixed_rates_tiers", func(d *Document) { d.OtherPaymentMeans = []PaymentMeans{{Code: "30", IBAN: "DE02120300000000202051"}} }, "other_payment_means[0].code"},
		{"no full card number (BR-51)", "standard_mixed_rates_tiers", func(d *Document) { d.PaymentMeans = &PaymentMeans{Code: "48", CardNumber: "4111111111111111"} }, "payment_means.card_number"},
		{"gross price not negative (BR-28)", "standard_mixed_rates_tiers", func(d *Document) { d.Lines[0].GrossPrice = dec("-1") }, "lines[0].gross_price"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := fixtures()[tt.base]
			tt.mutate(d)
			err := d.Validate()
			e, ok := abacus.AsError(err)
			if !ok || e.Code != CodeInvalid || e.Kind != abacus.KindInvalid {
				t.Fatalf("Validate() = %v, want a %s error", err, CodeInvalid)
			}
			if !slices.ContainsFunc(e.Fields, func(f abacus.FieldError) bool { return f.Field == tt.field }) {
				t.Fatalf("no problem reported at %s; got %+v", tt.field, e.Fields)
			}
		})
	}
}

func TestValidateListsEveryProblem(t *testing.T) {
	t.Parallel()
	d := fixtures()["standard_mixed_rates_tiers"]
	d.Number, d.Seller.Name, d.Totals.Payable = "", "", dec("1")
	e, _ := abacus.AsError(d.Validate())
	if e == nil || len(e.Fields) < 3 {
		t.Fatalf("want at least 3 problems at once, got %v", e)
	}
}
