package document

import (
	"fmt"
	"strings"

	"github.com/abacusbilling/abacus"
)

// attachmentTypes are the media types EN 16931 allows for an attached
// supporting document (BR-CL-24).
var attachmentTypes = map[string]bool{
	"application/pdf": true, "image/png": true, "image/jpeg": true, "text/csv": true,
	"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": true,
	"application/vnd.oasis.opendocument.spreadsheet":                    true,
}

// validateTerms checks the VAT point date code (BT-8: its code list, and
// not with BT-7, BR-CO-3), the parties and references beyond the seller
// and buyer: the payee's name (BR-17), the tax representative's name, VAT
// identifier and address country (BR-18, BR-56, BR-19, BR-20), the
// delivery address country (BR-57), each document reference's identifier
// and attachment type (BR-52, BR-CL-24), each later payment means' code
// (BR-49, and the same as the first's: UBL-SR-47, CII-SR-467) and account
// (BR-50), the card number shown (BR-51), and a gross price and discount that are not
// negative (BR-28).
func (d *Document) validateTerms(v *abacus.Validation) {
	switch d.TaxPointDateCode {
	case "", "3", "35", "432":
	default:
		v.Add("tax_point_date_code", "%q is not a VAT point date code EN 16931 allows: 3 (issue date), 35 (delivery date) or 432 (date paid)", d.TaxPointDateCode)
	}
	if d.TaxPointDateCode != "" && !d.TaxPointDate.IsZero() {
		v.Add("tax_point_date_code", "must not be given with tax_point_date (BR-CO-3)")
	}
	if py := d.Payee; py != nil && strings.TrimSpace(py.Name) == "" {
		v.Add("payee.name", "is required when there is a payee (BR-17)")
	}
	if tr := d.TaxRepresentative; tr != nil {
		if strings.TrimSpace(tr.Name) == "" {
			v.Add("tax_representative.name", "is required when there is a tax representative (BR-18)")
		}
		if len(tr.VATID) < 3 {
			v.Add("tax_representative.vat_id", "is required, with the country prefix (BR-56)")
		}
		validateAddress(v, "tax_representative.address", &tr.Address, "BR-20")
	}
	if dl := d.Delivery; dl != nil && dl.Address != nil {
		validateAddress(v, "delivery.address", dl.Address, "BR-57")
	}
	for i, r := range d.Documents {
		f := fmt.Sprintf("documents[%d]", i)
		if strings.TrimSpace(r.ID) == "" {
			v.Add(f+".id", "is required (BR-52)")
		}
		if r.TypeCode == projectTypeCode {
			v.Add(f+".type_code", "50 is not a document reference here: use tender_reference (BT-17) or project_reference (BT-11)")
		}
		if a := r.Attachment; a != nil && !attachmentTypes[a.MimeCode] {
			v.Add(f+".attachment.mime_code", "%q is not a type EN 16931 allows for an attachment: application/pdf, image/png, image/jpeg, text/csv, xlsx or ods (BR-CL-24)", a.MimeCode)
		}
	}
	if pm := d.PaymentMeans; pm != nil {
		validateCard(v, "payment_means", pm)
	}
	for i, pm := range d.OtherPaymentMeans {
		f := fmt.Sprintf("other_payment_means[%d]", i)
		validateCard(v, f, &pm)
		if d.PaymentMeans != nil && pm.Code != d.PaymentMeans.Code {
			v.Add(f+".code", "%q differs from payment_means.code %q; every payment means of a document has the same code (UBL-SR-47, CII-SR-467)", pm.Code, d.PaymentMeans.Code)
		}
		if pm.Code == "" {
			v.Add(f+".code", "is required (UNCL 4461, e.g. 30 or 58) (BR-49)")
		}
		if (pm.Code == "30" || pm.Code == "58") && pm.IBAN == "" {
			v.Add(f+".iban", "is required for a credit transfer (BR-50)")
		}
	}
	for i, l := range d.Lines {
		if l.GrossPrice.IsNegative() {
			v.Add(fmt.Sprintf("lines[%d].gross_price", i), "must not be negative (BR-28)")
		}
		if l.PriceDiscount.IsNegative() {
			v.Add(fmt.Sprintf("lines[%d].price_discount", i), "must not be negative; a price discount is subtracted from the gross price")
		}
	}
}

// validateCard refuses a card holder without a card number and more of
// the card number than BR-51 allows to show (the first 6 and last 4
// digits: an invoice is no place for a full card number, which would
// then be stored, mailed and logged).
func validateCard(v *abacus.Validation, field string, pm *PaymentMeans) {
	if pm.CardHolder != "" && pm.CardNumber == "" {
		v.Add(field+".card_number", "is required with card_holder (BT-87)")
	}
	digits := 0
	for _, r := range pm.CardNumber {
		if r >= '0' && r <= '9' {
			digits++
		}
	}
	if digits > 10 {
		v.Add(field+".card_number", "shows %d digits; at most the first 6 and the last 4 may be shown, never the full number (BR-51)", digits)
	}
}

func validateAddress(v *abacus.Validation, field string, a *Address, rule string) {
	if !countryRe.MatchString(a.CountryCode) {
		v.Add(field+".country_code", "must be an ISO 3166-1 alpha-2 code such as DE (%s)", rule)
	}
	if len(a.Lines) > 3 {
		v.Add(field+".lines", "has %d lines; at most 3 fit the UBL and CII address", len(a.Lines))
	}
}
