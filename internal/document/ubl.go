package document

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"strings"

	"github.com/abacusbilling/abacus"
	"github.com/shopspring/decimal"
)

// Namespaces and identifiers of UBL 2.1 and Peppol BIS Billing 3.0.
const (
	nsInvoice    = "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
	nsCreditNote = "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2"
	nsCAC        = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
	nsCBC        = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"

	// CustomizationID identifies Peppol BIS Billing 3.0 (BT-24).
	CustomizationID = "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0"
	// ProfileID identifies the Peppol billing process (BT-23).
	ProfileID = "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"
)

// CodePrecisionUnsupported is the error code UBL returns for amounts with
// more than two decimals.
const CodePrecisionUnsupported = "currency_precision_unsupported"

// UBL renders d as a UBL 2.1 Invoice (or CreditNote, by d.Kind) that
// conforms to Peppol BIS Billing 3.0 and EN 16931, with elements in the
// order the UBL XSD requires. It validates d first and returns Validate's
// *abacus.Error when d is inconsistent. Peppol allows at most two decimals
// on amounts (BR-DEC-*), so a document in a three-decimal currency such as
// KWD renders only when its amounts are whole hundredths; otherwise UBL
// returns an *abacus.Error of KindUnprocessable with code
// "currency_precision_unsupported". Multiple Notes are joined into the one
// note Peppol allows (R002). Unit prices and quantities keep their full
// precision.
func UBL(d *Document) ([]byte, error) {
	if err := d.Validate(); err != nil {
		return nil, err
	}
	b, err := renderUBL(d)
	if err != nil {
		return nil, err
	}
	return b, nil
}

// renderUBL writes d without validating it. On a precision error it still
// returns the full output, which tests use to prove what Peppol rejects.
func renderUBL(d *Document) ([]byte, error) {
	w := &xmlWriter{currency: d.Currency, places: min(d.CurrencyExponent, 2)}
	w.buf.WriteString(xml.Header)
	root, ns, typeCode, lineName, qtyName := "Invoice", nsInvoice, "380", "cac:InvoiceLine", "cbc:InvoicedQuantity"
	if d.Kind == KindCreditNote {
		root, ns, typeCode, lineName, qtyName = "CreditNote", nsCreditNote, "381", "cac:CreditNoteLine", "cbc:CreditedQuantity"
	}
	fmt.Fprintf(&w.buf, "<%s xmlns=%q xmlns:cac=%q xmlns:cbc=%q>\n", root, ns, nsCAC, nsCBC)
	w.depth = 1
	w.leaf("cbc:CustomizationID", d.specification())
	process := d.Process
	if process == "" && d.Profile() != ProfileEN16931 {
		process = ProfileID
	}
	w.leaf("cbc:ProfileID", process)
	w.leaf("cbc:ID", d.Number)
	w.leaf("cbc:IssueDate", d.IssueDate.String())
	typeCode = d.typeCode()
	if d.Kind == KindCreditNote {
		w.leaf("cbc:TaxPointDate", d.TaxPointDate.String())
		w.leaf("cbc:CreditNoteTypeCode", typeCode)
	} else {
		w.leaf("cbc:DueDate", d.DueDate.String())
		w.leaf("cbc:InvoiceTypeCode", typeCode)
	}
	if d.Profile() == ProfilePeppol {
		w.leaf("cbc:Note", strings.Join(d.Notes, "\n"))
	} else {
		for _, n := range d.Notes {
			w.leaf("cbc:Note", n)
		}
	}
	if d.Kind == KindInvoice {
		w.leaf("cbc:TaxPointDate", d.TaxPointDate.String())
	}
	w.leaf("cbc:DocumentCurrencyCode", d.Currency)
	w.leaf("cbc:TaxCurrencyCode", d.TaxCurrency)
	w.leaf("cbc:AccountingCost", d.AccountingCost)
	w.leaf("cbc:BuyerReference", d.BuyerReference)
	w.invoicePeriod(d.Period, d.TaxPointDateCode)
	w.ublOrderReference(d)
	if r := d.InvoiceReference; r != nil {
		w.open("cac:BillingReference")
		w.open("cac:InvoiceDocumentReference")
		w.leaf("cbc:ID", r.Number)
		w.leaf("cbc:IssueDate", r.IssueDate.String())
		w.close("cac:InvoiceDocumentReference")
		w.close("cac:BillingReference")
	}
	w.ublHeaderReferences(d)
	sellerSEPA := ""
	if d.Payee == nil {
		sellerSEPA = d.CreditorReference // BT-90 goes with the payee when there is one
	}
	w.sellerParty(&d.Seller, sellerSEPA)
	w.party("cac:AccountingCustomerParty", &d.Buyer)
	w.ublPayeeAndRepresentative(d)
	w.ublDelivery(d)
	w.ublPaymentMeans(d)
	if d.PaymentTerms != "" {
		w.open("cac:PaymentTerms")
		w.leaf("cbc:Note", d.PaymentTerms)
		w.close("cac:PaymentTerms")
	}
	for _, ac := range d.AllowanceCharges {
		w.allowanceCharge(ac)
	}
	w.open("cac:TaxTotal")
	w.amount("cbc:TaxAmount", d.Totals.Tax)
	for _, g := range d.TaxBreakdown {
		w.open("cac:TaxSubtotal")
		w.amount("cbc:TaxableAmount", g.TaxableAmount)
		w.amount("cbc:TaxAmount", g.TaxAmount)
		w.taxCategory("cac:TaxCategory", g.Tax, true)
		w.close("cac:TaxSubtotal")
	}
	w.close("cac:TaxTotal")
	if d.TaxCurrency != "" {
		w.open("cac:TaxTotal")
		w.leafAttr("cbc:TaxAmount", w.fixed(d.TaxInTaxCurrency, "tax_in_tax_currency"), "currencyID", d.TaxCurrency)
		w.close("cac:TaxTotal")
	}
	t := d.Totals
	w.open("cac:LegalMonetaryTotal")
	w.amount("cbc:LineExtensionAmount", t.LineExtension)
	w.amount("cbc:TaxExclusiveAmount", t.TaxExclusive)
	w.amount("cbc:TaxInclusiveAmount", t.TaxInclusive)
	hasAllowance, hasCharge := false, false
	for _, ac := range d.AllowanceCharges {
		hasCharge = hasCharge || ac.Charge
		hasAllowance = hasAllowance || !ac.Charge
	}
	if hasAllowance {
		w.amount("cbc:AllowanceTotalAmount", t.AllowanceTotal)
	}
	if hasCharge {
		w.amount("cbc:ChargeTotalAmount", t.ChargeTotal)
	}
	if !t.Prepaid.IsZero() {
		w.amount("cbc:PrepaidAmount", t.Prepaid)
	}
	if !t.PayableRounding.IsZero() {
		w.amount("cbc:PayableRoundingAmount", t.PayableRounding)
	}
	w.amount("cbc:PayableAmount", t.Payable)
	w.close("cac:LegalMonetaryTotal")
	for _, l := range d.Lines {
		w.open(lineName)
		w.leaf("cbc:ID", l.ID)
		w.leaf("cbc:Note", l.Note)
		w.leafAttr(qtyName, l.Quantity.String(), "unitCode", l.UnitCode)
		w.amount("cbc:LineExtensionAmount", l.NetAmount)
		w.leaf("cbc:AccountingCost", l.AccountingCost)
		w.period("cac:InvoicePeriod", l.Period)
		if l.OrderLineRef != "" {
			w.open("cac:OrderLineReference")
			w.leaf("cbc:LineID", l.OrderLineRef)
			w.close("cac:OrderLineReference")
		}
		w.ublLineDocument(l)
		for _, ac := range l.AllowanceCharges {
			ac.Tax = nil // a line allowance takes the line's tax category
			w.allowanceCharge(ac)
		}
		w.open("cac:Item")
		w.leaf("cbc:Description", l.Description)
		w.leaf("cbc:Name", l.Name)
		if l.BuyerItemID != "" {
			w.open("cac:BuyersItemIdentification")
			w.leaf("cbc:ID", l.BuyerItemID)
			w.close("cac:BuyersItemIdentification")
		}
		if l.SellerItemID != "" {
			w.open("cac:SellersItemIdentification")
			w.leaf("cbc:ID", l.SellerItemID)
			w.close("cac:SellersItemIdentification")
		}
		w.itemIdentity(l)
		w.taxCategory("cac:ClassifiedTaxCategory", l.Tax, false)
		for _, a := range l.Attributes {
			w.open("cac:AdditionalItemProperty")
			w.leaf("cbc:Name", a.Name)
			w.leaf("cbc:Value", a.Value)
			w.close("cac:AdditionalItemProperty")
		}
		w.close("cac:Item")
		w.open("cac:Price")
		w.leafAttr("cbc:PriceAmount", l.UnitPrice.String(), "currencyID", d.Currency)
		if !l.BaseQuantity.IsZero() {
			w.leafAttr("cbc:BaseQuantity", l.BaseQuantity.String(), "unitCode", l.UnitCode)
		}
		w.ublPriceDiscount(l, d.Currency)
		w.close("cac:Price")
		w.close(lineName)
	}
	w.buf.WriteString("</" + root + ">\n")
	return w.buf.Bytes(), w.err
}

// xmlWriter writes indented UBL. Empty leaves are skipped because Peppol
// rejects empty elements (R008).
type xmlWriter struct {
	buf      bytes.Buffer
	depth    int
	currency string
	places   int32
	err      error
}

func (w *xmlWriter) indent() { w.buf.WriteString(strings.Repeat("  ", w.depth)) }

func (w *xmlWriter) open(name string) {
	w.indent()
	w.buf.WriteString("<" + name + ">\n")
	w.depth++
}

func (w *xmlWriter) close(name string) {
	w.depth--
	w.indent()
	w.buf.WriteString("</" + name + ">\n")
}

func (w *xmlWriter) leaf(name, text string) { w.leafAttr(name, text, "", "") }

func (w *xmlWriter) leafAttr(name, text, attr, value string) { w.leafAttrs(name, text, attr, value) }

// leafAttrs writes a leaf with attributes given as name, value pairs;
// an empty value leaves its attribute out.
func (w *xmlWriter) leafAttrs(name, text string, attrs ...string) {
	if text == "" {
		return
	}
	w.indent()
	w.buf.WriteString("<" + name)
	for i := 0; i+1 < len(attrs); i += 2 {
		if attrs[i] == "" || attrs[i+1] == "" {
			continue
		}
		w.buf.WriteString(" " + attrs[i] + `="`)
		_ = xml.EscapeText(&w.buf, []byte(attrs[i+1])) // writes to a bytes.Buffer cannot fail
		w.buf.WriteString(`"`)
	}
	w.buf.WriteString(">")
	_ = xml.EscapeText(&w.buf, []byte(text))
	w.buf.WriteString("</" + name + ">\n")
}

// fixed formats a with the currency's decimals (at most two) and records
// an error when that would lose precision.
func (w *xmlWriter) fixed(a decimal.Decimal, what string) string {
	if !decimalsOK(a, w.places) {
		if w.err == nil {
			w.err = abacus.Errorf(abacus.KindUnprocessable, CodePrecisionUnsupported,
				"%s %s has more than two decimals; Peppol BIS 3.0 (BR-DEC) accepts at most two, so this %s document cannot be sent as UBL — round its amounts to hundredths", what, a, w.currency)
		}
		return a.String() // exact, never silently rounded
	}
	return a.StringFixed(w.places)
}

func (w *xmlWriter) amount(name string, a decimal.Decimal) {
	w.leafAttr(name, w.fixed(a, strings.TrimPrefix(name, "cbc:")), "currencyID", w.currency)
}

func (w *xmlWriter) period(name string, p *Period) {
	if p == nil {
		return
	}
	w.open(name)
	w.leaf("cbc:StartDate", p.Start.String())
	w.leaf("cbc:EndDate", p.End.String())
	w.close(name)
}

func (w *xmlWriter) taxCategory(name string, t Tax, exemption bool) {
	w.open(name)
	w.leaf("cbc:ID", string(t.Category))
	if t.Category != TaxNotSubject { // BR-O-05..07: category O carries no rate
		w.leaf("cbc:Percent", t.Rate.String())
	}
	if exemption {
		w.leaf("cbc:TaxExemptionReasonCode", t.ExemptionReasonCode)
		w.leaf("cbc:TaxExemptionReason", t.ExemptionReason)
	}
	w.open("cac:TaxScheme")
	w.leaf("cbc:ID", "VAT")
	w.close("cac:TaxScheme")
	w.close(name)
}

func (w *xmlWriter) allowanceCharge(ac AllowanceCharge) {
	w.open("cac:AllowanceCharge")
	w.leaf("cbc:ChargeIndicator", fmt.Sprint(ac.Charge))
	w.leaf("cbc:AllowanceChargeReasonCode", ac.ReasonCode)
	w.leaf("cbc:AllowanceChargeReason", ac.Reason)
	if !ac.BaseAmount.IsZero() {
		w.leaf("cbc:MultiplierFactorNumeric", ac.Percent.String())
	}
	w.amount("cbc:Amount", ac.Amount)
	if !ac.BaseAmount.IsZero() {
		w.amount("cbc:BaseAmount", ac.BaseAmount)
	}
	if ac.Tax != nil {
		w.taxCategory("cac:TaxCategory", *ac.Tax, false)
	}
	w.close("cac:AllowanceCharge")
}

func (w *xmlWriter) party(name string, p *Party) { w.partyWith(name, p, "") }

// sellerParty writes the seller with the SEPA creditor identifier (BT-90)
// among its identifiers when there is no payee to carry it.
func (w *xmlWriter) sellerParty(p *Party, sepa string) {
	w.partyWith("cac:AccountingSupplierParty", p, sepa)
}

func (w *xmlWriter) partyWith(name string, p *Party, sepa string) {
	w.open(name)
	w.open("cac:Party")
	w.leafAttr("cbc:EndpointID", p.EndpointID, "schemeID", p.EndpointScheme)
	for _, id := range append([]PartyID{{ID: p.ID, Scheme: p.IDScheme}}, p.OtherIDs...) {
		if id.ID != "" {
			w.open("cac:PartyIdentification")
			w.leafAttr("cbc:ID", id.ID, "schemeID", id.Scheme)
			w.close("cac:PartyIdentification")
		}
	}
	w.ublSEPA(sepa)
	if p.TradingName != "" {
		w.open("cac:PartyName")
		w.leaf("cbc:Name", p.TradingName)
		w.close("cac:PartyName")
	}
	w.ublAddress("cac:PostalAddress", p.postalAddress())
	w.partyTaxScheme(p.VATID, "VAT")
	// BT-32: any tax scheme but VAT; "TAX" is the one Peppol's examples use.
	w.partyTaxScheme(p.TaxRegistrationID, "TAX")
	w.open("cac:PartyLegalEntity")
	w.leaf("cbc:RegistrationName", p.Name)
	w.leafAttr("cbc:CompanyID", p.LegalID, "schemeID", p.LegalIDScheme)
	w.leaf("cbc:CompanyLegalForm", p.LegalForm)
	w.close("cac:PartyLegalEntity")
	if p.ContactName != "" || p.Phone != "" || p.Email != "" {
		w.open("cac:Contact")
		w.leaf("cbc:Name", p.ContactName)
		w.leaf("cbc:Telephone", p.Phone)
		w.leaf("cbc:ElectronicMail", p.Email)
		w.close("cac:Contact")
	}
	w.close("cac:Party")
	w.close(name)
}

// itemIdentity writes the UBL item's standard identifier, origin and
// classifications (BT-157, BT-159, BT-158), in the schema's order.
func (w *xmlWriter) itemIdentity(l Line) {
	if l.StandardItemID != "" {
		w.open("cac:StandardItemIdentification")
		w.leafAttr("cbc:ID", l.StandardItemID, "schemeID", l.StandardItemScheme)
		w.close("cac:StandardItemIdentification")
	}
	if l.OriginCountry != "" {
		w.open("cac:OriginCountry")
		w.leaf("cbc:IdentificationCode", l.OriginCountry)
		w.close("cac:OriginCountry")
	}
	for _, c := range l.Classifications {
		w.open("cac:CommodityClassification")
		w.leafAttrs("cbc:ItemClassificationCode", c.Code, "listID", c.ListID, "listVersionID", c.ListVersion)
		w.close("cac:CommodityClassification")
	}
}
