package document

import (
	"encoding/xml"
	"fmt"
	"strings"

	"github.com/shopspring/decimal"
)

// Namespaces of UN/CEFACT Cross Industry Invoice D16B.
const (
	nsRSM = "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
	nsRAM = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
	nsUDT = "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100"
	nsQDT = "urn:un:unece:uncefact:data:standard:QualifiedDataType:100"
)

// CII renders d as a UN/CEFACT Cross Industry Invoice D16B in the EN 16931
// profile (the syntax of Factur-X/ZUGFeRD and XRechnung CII), elements in
// the order of the D16B schema. The guideline identifier (BT-24) is d's
// Specification, or "urn:cen.eu:en16931:2017" when it is empty. It
// validates d first (by its Profile) and returns Validate's *abacus.Error
// when d is inconsistent; amounts are written with the currency's
// decimals (at most two, as for UBL: an *abacus.Error of code
// "currency_precision_unsupported" otherwise).
func CII(d *Document) ([]byte, error) {
	if d.Specification == "" {
		c := *d
		c.Specification = SpecEN16931
		d = &c
	}
	if err := d.Validate(); err != nil {
		return nil, err
	}
	return renderCII(d)
}

func renderCII(d *Document) ([]byte, error) {
	w := &xmlWriter{currency: d.Currency, places: min(d.CurrencyExponent, 2)}
	w.buf.WriteString(xml.Header)
	fmt.Fprintf(&w.buf, "<rsm:CrossIndustryInvoice xmlns:rsm=%q xmlns:ram=%q xmlns:udt=%q xmlns:qdt=%q>\n", nsRSM, nsRAM, nsUDT, nsQDT)
	w.depth = 1
	w.open("rsm:ExchangedDocumentContext")
	if d.Process != "" {
		w.open("ram:BusinessProcessSpecifiedDocumentContextParameter")
		w.leaf("ram:ID", d.Process)
		w.close("ram:BusinessProcessSpecifiedDocumentContextParameter")
	}
	w.open("ram:GuidelineSpecifiedDocumentContextParameter")
	spec := d.Specification
	if spec == "" {
		spec = SpecEN16931
	}
	w.leaf("ram:ID", spec)
	w.close("ram:GuidelineSpecifiedDocumentContextParameter")
	w.close("rsm:ExchangedDocumentContext")

	w.open("rsm:ExchangedDocument")
	w.leaf("ram:ID", d.Number)
	w.leaf("ram:TypeCode", d.typeCode())
	w.ciiDate("ram:IssueDateTime", "udt", d.IssueDate)
	for _, n := range d.Notes {
		w.open("ram:IncludedNote")
		code, text := splitNote(n)
		w.leaf("ram:Content", text)
		w.leaf("ram:SubjectCode", code)
		w.close("ram:IncludedNote")
	}
	w.close("rsm:ExchangedDocument")

	w.open("rsm:SupplyChainTradeTransaction")
	for _, l := range d.Lines {
		w.ciiLine(d, l)
	}
	w.open("ram:ApplicableHeaderTradeAgreement")
	w.leaf("ram:BuyerReference", d.BuyerReference)
	w.ciiParty("ram:SellerTradeParty", &d.Seller, true)
	w.ciiParty("ram:BuyerTradeParty", &d.Buyer, false)
	w.ciiTaxRepresentative(d)
	w.ciiDocRef("ram:SellerOrderReferencedDocument", d.SellerOrderReference)
	w.ciiDocRef("ram:BuyerOrderReferencedDocument", d.OrderReference)
	w.ciiDocRef("ram:ContractReferencedDocument", d.ContractReference)
	w.ciiAgreementReferences(d)
	w.close("ram:ApplicableHeaderTradeAgreement")
	w.open("ram:ApplicableHeaderTradeDelivery")
	w.ciiShipTo(d)
	if !d.DeliveryDate.IsZero() {
		w.open("ram:ActualDeliverySupplyChainEvent")
		w.ciiDate("ram:OccurrenceDateTime", "udt", d.DeliveryDate)
		w.close("ram:ActualDeliverySupplyChainEvent")
	}
	w.ciiDocRef("ram:DespatchAdviceReferencedDocument", d.DespatchAdviceReference)
	w.ciiDocRef("ram:ReceivingAdviceReferencedDocument", d.ReceivingAdviceReference)
	w.close("ram:ApplicableHeaderTradeDelivery")

	w.open("ram:ApplicableHeaderTradeSettlement")
	w.leaf("ram:CreditorReferenceID", d.CreditorReference)
	if pm := d.PaymentMeans; pm != nil {
		w.leaf("ram:PaymentReference", pm.PaymentID)
	}
	w.leaf("ram:TaxCurrencyCode", d.TaxCurrency)
	w.leaf("ram:InvoiceCurrencyCode", d.Currency)
	w.ciiPayee(d)
	if pm := d.PaymentMeans; pm != nil {
		w.ciiPaymentMeans(*pm)
		for _, o := range d.OtherPaymentMeans {
			w.ciiPaymentMeans(o)
		}
	}
	for i, g := range d.TaxBreakdown {
		w.open("ram:ApplicableTradeTax")
		w.amountPlain("ram:CalculatedAmount", g.TaxAmount)
		w.leaf("ram:TypeCode", "VAT")
		w.leaf("ram:ExemptionReason", g.Tax.ExemptionReason)
		w.amountPlain("ram:BasisAmount", g.TaxableAmount)
		w.leaf("ram:CategoryCode", string(g.Tax.Category))
		w.leaf("ram:ExemptionReasonCode", g.Tax.ExemptionReasonCode)
		if i == 0 {
			w.ciiTaxPoint(d)
		}
		if g.Tax.Category != TaxNotSubject {
			w.leaf("ram:RateApplicablePercent", g.Tax.Rate.String())
		}
		w.close("ram:ApplicableTradeTax")
	}
	w.ciiPeriod("ram:BillingSpecifiedPeriod", d.Period)
	for _, ac := range d.AllowanceCharges {
		w.ciiAllowanceCharge(ac, true)
	}
	if d.PaymentTerms != "" || !d.DueDate.IsZero() || d.MandateReference != "" {
		w.open("ram:SpecifiedTradePaymentTerms")
		w.leaf("ram:Description", d.PaymentTerms)
		w.ciiDate("ram:DueDateDateTime", "udt", d.DueDate)
		w.leaf("ram:DirectDebitMandateID", d.MandateReference)
		w.close("ram:SpecifiedTradePaymentTerms")
	}
	t := d.Totals
	w.open("ram:SpecifiedTradeSettlementHeaderMonetarySummation")
	w.amountPlain("ram:LineTotalAmount", t.LineExtension)
	hasAllowance, hasCharge := false, false
	for _, ac := range d.AllowanceCharges {
		hasCharge = hasCharge || ac.Charge
		hasAllowance = hasAllowance || !ac.Charge
	}
	if hasCharge {
		w.amountPlain("ram:ChargeTotalAmount", t.ChargeTotal)
	}
	if hasAllowance {
		w.amountPlain("ram:AllowanceTotalAmount", t.AllowanceTotal)
	}
	w.amountPlain("ram:TaxBasisTotalAmount", t.TaxExclusive)
	w.leafAttr("ram:TaxTotalAmount", w.fixed(t.Tax, "TaxTotalAmount"), "currencyID", d.Currency)
	if d.TaxCurrency != "" {
		w.leafAttr("ram:TaxTotalAmount", w.fixed(d.TaxInTaxCurrency, "tax_in_tax_currency"), "currencyID", d.TaxCurrency)
	}
	if !t.PayableRounding.IsZero() {
		w.amountPlain("ram:RoundingAmount", t.PayableRounding)
	}
	w.amountPlain("ram:GrandTotalAmount", t.TaxInclusive)
	if !t.Prepaid.IsZero() {
		w.amountPlain("ram:TotalPrepaidAmount", t.Prepaid)
	}
	w.amountPlain("ram:DuePayableAmount", t.Payable)
	w.close("ram:SpecifiedTradeSettlementHeaderMonetarySummation")
	if r := d.InvoiceReference; r != nil {
		w.open("ram:InvoiceReferencedDocument")
		w.leaf("ram:IssuerAssignedID", r.Number)
		w.ciiDate("ram:FormattedIssueDateTime", "qdt", r.IssueDate)
		w.close("ram:InvoiceReferencedDocument")
	}
	w.wrapped("ram:ReceivableSpecifiedTradeAccountingAccount", "ram:ID", d.AccountingCost)
	w.close("ram:ApplicableHeaderTradeSettlement")
	w.close("rsm:SupplyChainTradeTransaction")
	w.buf.WriteString("</rsm:CrossIndustryInvoice>\n")
	return w.buf.Bytes(), w.err
}

// splitNote reads the "#CODE#text" convention (UBL carries the note's
// subject code, BT-21, this way) into code and text.
func splitNote(n string) (code, text string) {
	if len(n) > 2 && n[0] == '#' {
		if c, t, ok := strings.Cut(n[1:], "#"); ok && len(c) <= 3 && c != "" && strings.ToUpper(c) == c {
			return c, t
		}
	}
	return "", n
}

// joinNote is splitNote's inverse.
func joinNote(code, text string) string {
	if code == "" {
		return text
	}
	return "#" + code + "#" + text
}

// isIBAN reports whether s looks like an IBAN (two letters, two digits):
// CII has a separate element for other account identifiers.
func isIBAN(s string) bool {
	return len(s) >= 15 && s[0] >= 'A' && s[0] <= 'Z' && s[1] >= 'A' && s[1] <= 'Z' && s[2] >= '0' && s[2] <= '9' && s[3] >= '0' && s[3] <= '9'
}

// amountPlain writes an amount with the currency's decimals and no
// currency attribute (CII states the currency once).
func (w *xmlWriter) amountPlain(name string, a decimal.Decimal) {
	w.leaf(name, w.fixed(a, strings.TrimPrefix(name, "ram:")))
}

// ciiDate writes a date element with its format-102 DateTimeString in the
// prefix's namespace (udt for most dates, qdt for referenced documents).
func (w *xmlWriter) ciiDate(name, prefix string, d Date) {
	if d.IsZero() {
		return
	}
	w.open(name)
	w.leafAttr(prefix+":DateTimeString", fmt.Sprintf("%04d%02d%02d", d.Year, d.Month, d.Day), "format", "102")
	w.close(name)
}

func (w *xmlWriter) ciiPeriod(name string, p *Period) {
	if p == nil {
		return
	}
	w.open(name)
	w.ciiDate("ram:StartDateTime", "udt", p.Start)
	w.ciiDate("ram:EndDateTime", "udt", p.End)
	w.close(name)
}

func (w *xmlWriter) ciiAllowanceCharge(ac AllowanceCharge, docLevel bool) {
	w.open("ram:SpecifiedTradeAllowanceCharge")
	w.open("ram:ChargeIndicator")
	w.leaf("udt:Indicator", fmt.Sprint(ac.Charge))
	w.close("ram:ChargeIndicator")
	if !ac.BaseAmount.IsZero() {
		w.leaf("ram:CalculationPercent", ac.Percent.String())
		w.amountPlain("ram:BasisAmount", ac.BaseAmount)
	}
	w.amountPlain("ram:ActualAmount", ac.Amount)
	w.leaf("ram:ReasonCode", ac.ReasonCode)
	w.leaf("ram:Reason", ac.Reason)
	if docLevel && ac.Tax != nil {
		w.open("ram:CategoryTradeTax")
		w.leaf("ram:TypeCode", "VAT")
		w.leaf("ram:CategoryCode", string(ac.Tax.Category))
		if ac.Tax.Category != TaxNotSubject {
			w.leaf("ram:RateApplicablePercent", ac.Tax.Rate.String())
		}
		w.close("ram:CategoryTradeTax")
	}
	w.close("ram:SpecifiedTradeAllowanceCharge")
}

func (w *xmlWriter) ciiParty(name string, p *Party, seller bool) {
	w.open(name)
	// The schema wants every ID before every GlobalID.
	all := append([]PartyID{{ID: p.ID, Scheme: p.IDScheme}}, p.OtherIDs...)
	for _, withScheme := range []bool{false, true} {
		for _, id := range all {
			if id.ID != "" && (id.Scheme != "") == withScheme {
				w.ciiID(id.ID, id.Scheme)
			}
		}
	}
	w.leaf("ram:Name", p.Name)
	if seller {
		w.leaf("ram:Description", p.LegalForm)
	}
	if p.LegalID != "" || p.TradingName != "" {
		w.open("ram:SpecifiedLegalOrganization")
		w.leafAttr("ram:ID", p.LegalID, "schemeID", p.LegalIDScheme)
		w.leaf("ram:TradingBusinessName", p.TradingName)
		w.close("ram:SpecifiedLegalOrganization")
	}
	if p.ContactName != "" || p.Phone != "" || p.Email != "" {
		w.open("ram:DefinedTradeContact")
		w.leaf("ram:PersonName", p.ContactName)
		if p.Phone != "" {
			w.open("ram:TelephoneUniversalCommunication")
			w.leaf("ram:CompleteNumber", p.Phone)
			w.close("ram:TelephoneUniversalCommunication")
		}
		if p.Email != "" {
			w.open("ram:EmailURIUniversalCommunication")
			w.leaf("ram:URIID", p.Email)
			w.close("ram:EmailURIUniversalCommunication")
		}
		w.close("ram:DefinedTradeContact")
	}
	w.ciiAddress(p.postalAddress())
	if p.EndpointID != "" {
		w.open("ram:URIUniversalCommunication")
		w.leafAttr("ram:URIID", p.EndpointID, "schemeID", p.EndpointScheme)
		w.close("ram:URIUniversalCommunication")
	}
	w.ciiTaxRegistration(p.VATID, "VA")
	if seller {
		w.ciiTaxRegistration(p.TaxRegistrationID, "FC")
	}
	w.close(name)
}

func (w *xmlWriter) ciiLine(d *Document, l Line) {
	w.open("ram:IncludedSupplyChainTradeLineItem")
	w.open("ram:AssociatedDocumentLineDocument")
	w.leaf("ram:LineID", l.ID)
	if l.Note != "" {
		w.open("ram:IncludedNote")
		w.leaf("ram:Content", l.Note)
		w.close("ram:IncludedNote")
	}
	w.close("ram:AssociatedDocumentLineDocument")
	w.ciiProduct(l)
	w.open("ram:SpecifiedLineTradeAgreement")
	if l.OrderLineRef != "" {
		w.open("ram:BuyerOrderReferencedDocument")
		w.leaf("ram:LineID", l.OrderLineRef)
		w.close("ram:BuyerOrderReferencedDocument")
	}
	w.ciiGrossPrice(l)
	w.open("ram:NetPriceProductTradePrice")
	w.leaf("ram:ChargeAmount", l.UnitPrice.String())
	if !l.BaseQuantity.IsZero() {
		w.leafAttr("ram:BasisQuantity", l.BaseQuantity.String(), "unitCode", l.UnitCode)
	}
	w.close("ram:NetPriceProductTradePrice")
	w.close("ram:SpecifiedLineTradeAgreement")
	w.open("ram:SpecifiedLineTradeDelivery")
	w.leafAttr("ram:BilledQuantity", l.Quantity.String(), "unitCode", l.UnitCode)
	w.close("ram:SpecifiedLineTradeDelivery")
	w.open("ram:SpecifiedLineTradeSettlement")
	w.open("ram:ApplicableTradeTax")
	w.leaf("ram:TypeCode", "VAT")
	w.leaf("ram:CategoryCode", string(l.Tax.Category))
	if l.Tax.Category != TaxNotSubject {
		w.leaf("ram:RateApplicablePercent", l.Tax.Rate.String())
	}
	w.close("ram:ApplicableTradeTax")
	w.ciiPeriod("ram:BillingSpecifiedPeriod", l.Period)
	for _, ac := range l.AllowanceCharges {
		w.ciiAllowanceCharge(ac, false)
	}
	w.open("ram:SpecifiedTradeSettlementLineMonetarySummation")
	w.amountPlain("ram:LineTotalAmount", l.NetAmount)
	w.close("ram:SpecifiedTradeSettlementLineMonetarySummation")
	w.ciiLineObject(l)
	if l.AccountingCost != "" {
		w.open("ram:ReceivableSpecifiedTradeAccountingAccount")
		w.leaf("ram:ID", l.AccountingCost)
		w.close("ram:ReceivableSpecifiedTradeAccountingAccount")
	}
	w.close("ram:SpecifiedLineTradeSettlement")
	w.close("ram:IncludedSupplyChainTradeLineItem")
}

// ciiProduct writes the line's item: identifiers, name, description,
// attributes, classifications and origin (BT-157, BT-155, BT-153, BT-154,
// BT-160/161, BT-158, BT-159), in the schema's order.
func (w *xmlWriter) ciiProduct(l Line) {
	w.open("ram:SpecifiedTradeProduct")
	w.leafAttr("ram:GlobalID", l.StandardItemID, "schemeID", l.StandardItemScheme)
	w.leaf("ram:SellerAssignedID", l.SellerItemID)
	w.leaf("ram:BuyerAssignedID", l.BuyerItemID)
	w.leaf("ram:Name", l.Name)
	w.leaf("ram:Description", l.Description)
	for _, a := range l.Attributes {
		w.open("ram:ApplicableProductCharacteristic")
		w.leaf("ram:Description", a.Name)
		w.leaf("ram:Value", a.Value)
		w.close("ram:ApplicableProductCharacteristic")
	}
	for _, c := range l.Classifications {
		w.open("ram:DesignatedProductClassification")
		w.leafAttrs("ram:ClassCode", c.Code, "listID", c.ListID, "listVersionID", c.ListVersion)
		w.close("ram:DesignatedProductClassification")
	}
	if l.OriginCountry != "" {
		w.open("ram:OriginTradeCountry")
		w.leaf("ram:ID", l.OriginCountry)
		w.close("ram:OriginTradeCountry")
	}
	w.close("ram:SpecifiedTradeProduct")
}
