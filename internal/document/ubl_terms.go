package document

import (
	"fmt"
	"strings"

	"github.com/shopspring/decimal"
)

// The EN 16931 terms beyond Abacus's own invoices, read from and written to
// UBL: references (BT-7, BT-11, BT-14 to BT-18, BG-24), the payee (BG-10),
// the seller's tax representative (BG-11), delivery (BG-13, BG-15), every
// payment means (BG-16, BT-82, BT-89, BT-90) and the line's buyer item
// identifier, object identifier and gross price (BT-156, BT-128,
// BT-147/148). The element order follows the UBL 2.1 schema; where UBL
// and CII differ the EN 16931 syntax bindings decide.

// sepaScheme marks the SEPA creditor identifier (BT-90) among a party's
// identifiers in UBL.
const sepaScheme = "SEPA"

// projectTypeCode is the document type code of a project reference
// written as an additional document in a UBL CreditNote (which has no
// ProjectReference) and of a tender or lot reference in CII.
const projectTypeCode = "50"

// cardNetworkUnknown fills UBL's mandatory card network, which EN 16931
// does not carry (the binding's "NA").
const cardNetworkUnknown = "NA"

// objectTypeCode marks an invoiced object identifier (BT-18, BT-128).
const objectTypeCode = "130"

// invoicePeriod writes the document's period (BG-14) with the VAT point
// date code (BT-8), which UBL keeps there.
func (w *xmlWriter) invoicePeriod(p *Period, code string) {
	if p == nil && code == "" {
		return
	}
	w.open("cac:InvoicePeriod")
	if p != nil {
		w.leaf("cbc:StartDate", p.Start.String())
		w.leaf("cbc:EndDate", p.End.String())
	}
	w.leaf("cbc:DescriptionCode", code)
	w.close("cac:InvoicePeriod")
}

// ublReferences reads the header's document references.
func (p *parser) ublReferences(root *node, d *Document) {
	d.TaxPointDate = p.dateAt(root, "tax_point_date", "cbc:TaxPointDate")
	if sales := root.str("cac:OrderReference", "cbc:SalesOrderID"); sales != "" {
		d.SellerOrderReference = sales
		if d.OrderReference == "NA" { // the binding's filler when only BT-14 is known
			d.OrderReference = ""
		}
	}
	d.DespatchAdviceReference = root.str("cac:DespatchDocumentReference", "cbc:ID")
	d.ReceivingAdviceReference = root.str("cac:ReceiptDocumentReference", "cbc:ID")
	d.TenderReference = root.str("cac:OriginatorDocumentReference", "cbc:ID")
	d.ProjectReference = root.str("cac:ProjectReference", "cbc:ID")
	for _, n := range root.children(nsCAC, "AdditionalDocumentReference") {
		id := n.at("cbc:ID")
		code := n.str("cbc:DocumentTypeCode")
		if code == projectTypeCode {
			if d.ProjectReference == "" {
				d.ProjectReference = id.str()
			} else { // one project per document (PEPPOL-EN16931-R080): a second is reported
				id.used, n.at("cbc:DocumentTypeCode").used = false, false
			}
			continue
		}
		if code == "" {
			code = supportingTypeCode // the binding's BG-24 has no type code in UBL
		}
		ref := DocumentReference{ID: id.str(), Scheme: id.attr("schemeID"), TypeCode: code, Description: n.str("cbc:DocumentDescription"),
			URI: n.str("cac:Attachment", "cac:ExternalReference", "cbc:URI")}
		if bin := n.at("cac:Attachment", "cbc:EmbeddedDocumentBinaryObject"); bin != nil {
			ref.Attachment = &Attachment{MimeCode: bin.attr("mimeCode"), Filename: bin.attr("filename"), Content: bin.str()}
		}
		d.Documents = append(d.Documents, ref)
	}
}

// ublParties reads the payee, the tax representative and the delivery.
func (p *parser) ublParties(root *node, d *Document) {
	if n := root.at("cac:PayeeParty"); n != nil {
		py := &Payee{Name: n.str("cac:PartyName", "cbc:Name")}
		for _, pi := range n.children(nsCAC, "PartyIdentification") {
			id := pi.at("cbc:ID")
			if strings.EqualFold(id.attr("schemeID"), sepaScheme) {
				d.CreditorReference = id.str()
			} else if py.ID == "" {
				py.ID, py.IDScheme = id.str(), id.attr("schemeID")
			}
		}
		legal := n.at("cac:PartyLegalEntity", "cbc:CompanyID")
		py.LegalID, py.LegalIDScheme = legal.str(), legal.attr("schemeID")
		p.locs["payee.name"] = n.path() + "/cac:PartyName/cbc:Name"
		d.Payee = py
	}
	if n := root.at("cac:TaxRepresentativeParty"); n != nil {
		tr := &TaxRepresentative{Name: n.str("cac:PartyName", "cbc:Name")}
		for _, ts := range n.children(nsCAC, "PartyTaxScheme") {
			if strings.EqualFold(ts.str("cac:TaxScheme", "cbc:ID"), "VAT") {
				tr.VATID = ts.str("cbc:CompanyID")
			}
		}
		if a := ublAddress(n.at("cac:PostalAddress")); a != nil {
			tr.Address = *a
		}
		p.locs["tax_representative.name"] = n.path() + "/cac:PartyName/cbc:Name"
		p.locs["tax_representative.vat_id"] = n.path() + "/cac:PartyTaxScheme/cbc:CompanyID"
		p.locs["tax_representative.address"] = n.path() + "/cac:PostalAddress"
		d.TaxRepresentative = tr
	}
	if n := root.at("cac:Delivery"); n != nil {
		loc := n.at("cac:DeliveryLocation")
		id := loc.at("cbc:ID")
		dl := &Delivery{PartyName: n.str("cac:DeliveryParty", "cac:PartyName", "cbc:Name"), LocationID: id.str(), LocationScheme: id.attr("schemeID"),
			Address: ublAddress(loc.at("cac:Address"))}
		if *dl != (Delivery{}) {
			p.locs["delivery.address"] = loc.path() + "/cac:Address"
			d.Delivery = dl
		}
	}
}

// ublAddress reads a postal address, or nil when n is nil.
func ublAddress(n *node) *Address {
	if n == nil {
		return nil
	}
	a := &Address{City: n.str("cbc:CityName"), PostalCode: n.str("cbc:PostalZone"), Subdivision: n.str("cbc:CountrySubentity"),
		CountryCode: n.str("cac:Country", "cbc:IdentificationCode")}
	for _, step := range []string{"cbc:StreetName", "cbc:AdditionalStreetName"} {
		if s := n.str(step); s != "" {
			a.Lines = append(a.Lines, s)
		}
	}
	if s := n.str("cac:AddressLine", "cbc:Line"); s != "" {
		a.Lines = append(a.Lines, s)
	}
	return a
}

// ublPaymentMeans reads every payment means: the first is
// Document.PaymentMeans, the rest OtherPaymentMeans. A later means' payment
// id equal to the first's is the same remittance information, kept once
// (as CII keeps it).
func (p *parser) ublPaymentMeans(root *node, d *Document) {
	for i, pm := range root.children(nsCAC, "PaymentMeans") {
		code := pm.at("cbc:PaymentMeansCode")
		m := PaymentMeans{
			Code:        p.required(pm, "the payment means code (BR-49)", "cbc:PaymentMeansCode"),
			Information: code.attr("name"),
			PaymentID:   pm.str("cbc:PaymentID"),
			IBAN:        pm.str("cac:PayeeFinancialAccount", "cbc:ID"),
			AccountName: pm.str("cac:PayeeFinancialAccount", "cbc:Name"),
			BIC:         pm.str("cac:PayeeFinancialAccount", "cac:FinancialInstitutionBranch", "cbc:ID"),
		}
		if id := pm.at("cac:PaymentMandate", "cbc:ID"); id != nil {
			if d.MandateReference == "" {
				d.MandateReference = id.str()
			} else if id.str() != d.MandateReference {
				id.used = false // EN 16931 has one mandate per document
			}
		}
		m.DebitedAccount = pm.str("cac:PaymentMandate", "cac:PayerFinancialAccount", "cbc:ID")
		if card := pm.at("cac:CardAccount"); card != nil {
			m.CardNumber, m.CardHolder = card.str("cbc:PrimaryAccountNumberID"), card.str("cbc:HolderName")
			if n := card.at("cbc:NetworkID"); n != nil && n.str() != cardNetworkUnknown {
				n.used = false // the card network is no EN 16931 term: reported, not carried
			}
		}
		if i == 0 {
			d.PaymentMeans = &m
			p.locs["payment_means.iban"] = pm.path() + "/cac:PayeeFinancialAccount/cbc:ID"
			continue
		}
		if m.PaymentID == d.PaymentMeans.PaymentID {
			m.PaymentID = ""
		}
		p.locs[fmt.Sprintf("other_payment_means[%d].iban", i-1)] = pm.path() + "/cac:PayeeFinancialAccount/cbc:ID"
		d.OtherPaymentMeans = append(d.OtherPaymentMeans, m)
	}
}

// ublLineTerms reads a line's BT-156, BT-128 and gross price.
func ublLineTerms(n, item *node, l *Line) {
	l.BuyerItemID = item.str("cac:BuyersItemIdentification", "cbc:ID")
	for _, ref := range n.children(nsCAC, "DocumentReference") {
		if ref.str("cbc:DocumentTypeCode") == objectTypeCode && l.ObjectID == "" {
			id := ref.at("cbc:ID")
			l.ObjectID, l.ObjectScheme = id.str(), id.attr("schemeID")
		}
	}
	if ac := n.at("cac:Price", "cac:AllowanceCharge"); ac != nil && ac.str("cbc:ChargeIndicator") == "false" {
		l.PriceDiscount = decimalOrZero(ac.str("cbc:Amount"))
		l.GrossPrice = decimalOrZero(ac.str("cbc:BaseAmount"))
		if !l.GrossPrice.IsZero() {
			l.GrossBaseQuantity = l.BaseQuantity // UBL's one base quantity is the gross price's too
		}
	}
}

// decimalOrZero reads an optional price-level amount; one that does not
// parse reads as absent and is reported by Validate's price checks.
func decimalOrZero(s string) decimal.Decimal {
	v, err := decimal.NewFromString(s)
	if err != nil {
		return decimal.Zero
	}
	return v
}

// ublCarriesGross reports whether UBL can carry l's gross price: it has
// one base quantity for both prices, and Peppol requires net = gross −
// discount (PEPPOL-EN16931-R046).
func ublCarriesGross(l Line) bool {
	return !l.GrossPrice.IsZero() && l.GrossBaseQuantity.Equal(l.BaseQuantity) && l.GrossPrice.Sub(l.PriceDiscount).Equal(l.UnitPrice)
}

// ublHeaderReferences writes the references between BillingReference and
// the parties, in the order of the Invoice or CreditNote schema.
func (w *xmlWriter) ublHeaderReferences(d *Document) {
	w.ublDocRef("cac:DespatchDocumentReference", d.DespatchAdviceReference)
	w.ublDocRef("cac:ReceiptDocumentReference", d.ReceivingAdviceReference)
	if d.Kind == KindInvoice {
		w.ublDocRef("cac:OriginatorDocumentReference", d.TenderReference)
	}
	w.ublDocRef("cac:ContractDocumentReference", d.ContractReference)
	if d.Kind == KindCreditNote && d.ProjectReference != "" {
		w.open("cac:AdditionalDocumentReference")
		w.leaf("cbc:ID", d.ProjectReference)
		w.leaf("cbc:DocumentTypeCode", projectTypeCode)
		w.close("cac:AdditionalDocumentReference")
	}
	for _, r := range d.Documents {
		w.open("cac:AdditionalDocumentReference")
		w.leafAttr("cbc:ID", r.ID, "schemeID", r.Scheme)
		if r.TypeCode != supportingTypeCode {
			w.leaf("cbc:DocumentTypeCode", r.TypeCode)
		}
		w.leaf("cbc:DocumentDescription", r.Description)
		if r.URI != "" || r.Attachment != nil {
			w.open("cac:Attachment")
			if a := r.Attachment; a != nil {
				w.leafAttrs("cbc:EmbeddedDocumentBinaryObject", a.Content, "mimeCode", a.MimeCode, "filename", a.Filename)
			}
			w.wrapped("cac:ExternalReference", "cbc:URI", r.URI)
			w.close("cac:Attachment")
		}
		w.close("cac:AdditionalDocumentReference")
	}
	if d.Kind == KindInvoice {
		w.ublDocRef("cac:ProjectReference", d.ProjectReference)
	} else {
		w.ublDocRef("cac:OriginatorDocumentReference", d.TenderReference)
	}
}

func (w *xmlWriter) ublDocRef(name, id string) { w.wrapped(name, "cbc:ID", id) }

// wrapped writes an element holding one leaf, or nothing when text is
// empty.
func (w *xmlWriter) wrapped(outer, leaf, text string) {
	if text == "" {
		return
	}
	w.open(outer)
	w.leaf(leaf, text)
	w.close(outer)
}

// partyTaxScheme writes a party's identifier in a tax scheme (VAT: BT-31,
// BT-48, BT-63; another: BT-32), or nothing when id is empty.
func (w *xmlWriter) partyTaxScheme(id, scheme string) {
	if id == "" {
		return
	}
	w.open("cac:PartyTaxScheme")
	w.leaf("cbc:CompanyID", id)
	w.wrapped("cac:TaxScheme", "cbc:ID", scheme)
	w.close("cac:PartyTaxScheme")
}

// postalAddress is the party's address in the shape of the other
// parties' (see Address).
func (p *Party) postalAddress() *Address {
	return &Address{Lines: p.Address, City: p.City, PostalCode: p.PostalCode, Subdivision: p.Subdivision, CountryCode: p.CountryCode}
}

// ublOrderReference writes BT-13 and BT-14; UBL requires the order's ID,
// so a seller's order without the buyer's gets the binding's "NA".
func (w *xmlWriter) ublOrderReference(d *Document) {
	if d.OrderReference == "" && d.SellerOrderReference == "" {
		return
	}
	w.open("cac:OrderReference")
	id := d.OrderReference
	if id == "" {
		id = "NA"
	}
	w.leaf("cbc:ID", id)
	w.leaf("cbc:SalesOrderID", d.SellerOrderReference)
	w.close("cac:OrderReference")
}

// ublPayeeAndRepresentative writes BG-10 and BG-11, which follow the
// buyer.
func (w *xmlWriter) ublPayeeAndRepresentative(d *Document) {
	if py := d.Payee; py != nil {
		w.open("cac:PayeeParty")
		if py.ID != "" {
			w.open("cac:PartyIdentification")
			w.leafAttr("cbc:ID", py.ID, "schemeID", py.IDScheme)
			w.close("cac:PartyIdentification")
		}
		w.ublSEPA(d.CreditorReference)
		w.wrapped("cac:PartyName", "cbc:Name", py.Name)
		if py.LegalID != "" {
			w.open("cac:PartyLegalEntity")
			w.leafAttr("cbc:CompanyID", py.LegalID, "schemeID", py.LegalIDScheme)
			w.close("cac:PartyLegalEntity")
		}
		w.close("cac:PayeeParty")
	}
	if tr := d.TaxRepresentative; tr != nil {
		w.open("cac:TaxRepresentativeParty")
		w.wrapped("cac:PartyName", "cbc:Name", tr.Name)
		w.ublAddress("cac:PostalAddress", &tr.Address)
		w.partyTaxScheme(tr.VATID, "VAT")
		w.close("cac:TaxRepresentativeParty")
	}
}

func (w *xmlWriter) ublSEPA(creditor string) {
	if creditor == "" {
		return
	}
	w.open("cac:PartyIdentification")
	w.leafAttr("cbc:ID", creditor, "schemeID", sepaScheme)
	w.close("cac:PartyIdentification")
}

// ublDelivery writes BG-13 with its date (BT-72).
func (w *xmlWriter) ublDelivery(d *Document) {
	dl := d.Delivery
	if d.DeliveryDate.IsZero() && dl == nil {
		return
	}
	w.open("cac:Delivery")
	w.leaf("cbc:ActualDeliveryDate", d.DeliveryDate.String())
	if dl != nil {
		if dl.LocationID != "" || dl.Address != nil {
			w.open("cac:DeliveryLocation")
			w.leafAttr("cbc:ID", dl.LocationID, "schemeID", dl.LocationScheme)
			w.ublAddress("cac:Address", dl.Address)
			w.close("cac:DeliveryLocation")
		}
		if dl.PartyName != "" {
			w.open("cac:DeliveryParty")
			w.wrapped("cac:PartyName", "cbc:Name", dl.PartyName)
			w.close("cac:DeliveryParty")
		}
	}
	w.close("cac:Delivery")
}

func (w *xmlWriter) ublAddress(name string, a *Address) {
	if a == nil {
		return
	}
	w.open(name)
	if len(a.Lines) > 0 {
		w.leaf("cbc:StreetName", a.Lines[0])
	}
	if len(a.Lines) > 1 {
		w.leaf("cbc:AdditionalStreetName", a.Lines[1])
	}
	w.leaf("cbc:CityName", a.City)
	w.leaf("cbc:PostalZone", a.PostalCode)
	w.leaf("cbc:CountrySubentity", a.Subdivision)
	if len(a.Lines) > 2 {
		w.wrapped("cac:AddressLine", "cbc:Line", a.Lines[2])
	}
	w.wrapped("cac:Country", "cbc:IdentificationCode", a.CountryCode)
	w.close(name)
}

// ublPaymentMeans writes every payment means. The mandate (BT-89) goes
// with the first direct debit, else the first means.
func (w *xmlWriter) ublPaymentMeans(d *Document) {
	if d.PaymentMeans == nil {
		return
	}
	all := append([]PaymentMeans{*d.PaymentMeans}, d.OtherPaymentMeans...)
	mandateAt := 0
	for i, pm := range all {
		if pm.Code == "49" || pm.Code == "59" {
			mandateAt = i
			break
		}
	}
	for i, pm := range all {
		w.open("cac:PaymentMeans")
		w.leafAttr("cbc:PaymentMeansCode", pm.Code, "name", pm.Information)
		if i == 0 && d.Kind == KindCreditNote {
			w.leaf("cbc:PaymentDueDate", d.DueDate.String())
		}
		w.leaf("cbc:PaymentID", pm.PaymentID)
		if pm.CardNumber != "" {
			w.open("cac:CardAccount")
			w.leaf("cbc:PrimaryAccountNumberID", pm.CardNumber)
			w.leaf("cbc:NetworkID", cardNetworkUnknown) // required by UBL, no EN 16931 term
			w.leaf("cbc:HolderName", pm.CardHolder)
			w.close("cac:CardAccount")
		}
		if pm.IBAN != "" {
			w.open("cac:PayeeFinancialAccount")
			w.leaf("cbc:ID", pm.IBAN)
			w.leaf("cbc:Name", pm.AccountName)
			if pm.BIC != "" {
				w.open("cac:FinancialInstitutionBranch")
				w.leaf("cbc:ID", pm.BIC)
				w.close("cac:FinancialInstitutionBranch")
			}
			w.close("cac:PayeeFinancialAccount")
		}
		mandate := ""
		if i == mandateAt {
			mandate = d.MandateReference
		}
		if mandate != "" || pm.DebitedAccount != "" {
			w.open("cac:PaymentMandate")
			w.leaf("cbc:ID", mandate)
			w.wrapped("cac:PayerFinancialAccount", "cbc:ID", pm.DebitedAccount)
			w.close("cac:PaymentMandate")
		}
		w.close("cac:PaymentMeans")
	}
}

// ublLineDocument writes BT-128 (Peppol allows only invoiced objects,
// type 130, on a line: PEPPOL-EN16931-R101).
func (w *xmlWriter) ublLineDocument(l Line) {
	if l.ObjectID == "" {
		return
	}
	w.open("cac:DocumentReference")
	w.leafAttr("cbc:ID", l.ObjectID, "schemeID", l.ObjectScheme)
	w.leaf("cbc:DocumentTypeCode", objectTypeCode)
	w.close("cac:DocumentReference")
}

// ublPriceDiscount writes the price discount and, when UBL can carry it,
// the gross price (see ublCarriesGross; TargetDrops reports it otherwise).
func (w *xmlWriter) ublPriceDiscount(l Line, currency string) {
	gross := ublCarriesGross(l)
	if l.PriceDiscount.IsZero() && !gross {
		return
	}
	w.open("cac:AllowanceCharge")
	w.leaf("cbc:ChargeIndicator", "false")
	w.leafAttr("cbc:Amount", l.PriceDiscount.String(), "currencyID", currency)
	if gross {
		w.leafAttr("cbc:BaseAmount", l.GrossPrice.String(), "currencyID", currency)
	}
	w.close("cac:AllowanceCharge")
}
