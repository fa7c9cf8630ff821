package document

import "fmt"

// The EN 16931 terms beyond Abacus's own invoices, read from and written to
// CII (see ubl_terms.go for the list), in the order of the D16B schema.

// projectName is what CII's mandatory project name holds when the
// invoice has only BT-11 (the EN 16931 binding's fixed text).
const projectName = "Project reference"

// supportingTypeCode marks an additional supporting document (BG-24): CII
// allows a link and a description only with it (CII-DT-015, CII-DT-021);
// UBL leaves it out. The readers fill it in when a document has no type.
const supportingTypeCode = "916"

// ciiAgreementTerms reads the tax representative and the references of
// the header trade agreement.
func (p *parser) ciiAgreementTerms(agr *node, d *Document) {
	if n := agr.at("ram:SellerTaxRepresentativeTradeParty"); n != nil {
		tr := &TaxRepresentative{Name: n.str("ram:Name")}
		for _, reg := range n.children(nsRAM, "SpecifiedTaxRegistration") {
			if id := reg.at("ram:ID"); id.attr("schemeID") == "VA" {
				tr.VATID = id.str()
			} else {
				id.used = false
			}
		}
		if a := ciiAddress(n.at("ram:PostalTradeAddress")); a != nil {
			tr.Address = *a
		}
		p.locs["tax_representative.name"] = n.path() + "/ram:Name"
		p.locs["tax_representative.vat_id"] = n.path() + "/ram:SpecifiedTaxRegistration/ram:ID"
		p.locs["tax_representative.address"] = n.path() + "/ram:PostalTradeAddress"
		d.TaxRepresentative = tr
	}
	d.SellerOrderReference = agr.str("ram:SellerOrderReferencedDocument", "ram:IssuerAssignedID")
	for _, n := range agr.children(nsRAM, "AdditionalReferencedDocument") {
		code := n.str("ram:TypeCode")
		if code == projectTypeCode { // BT-17, the tender or lot
			if d.TenderReference == "" {
				d.TenderReference = n.str("ram:IssuerAssignedID")
			} else {
				n.at("ram:TypeCode").used = false
			}
			continue
		}
		if code == "" {
			code = supportingTypeCode // a document without a type is a supporting one (BG-24)
		}
		ref := DocumentReference{ID: n.str("ram:IssuerAssignedID"), URI: n.str("ram:URIID"), TypeCode: code,
			Description: n.str("ram:Name"), Scheme: n.str("ram:ReferenceTypeCode")}
		if bin := n.at("ram:AttachmentBinaryObject"); bin != nil {
			ref.Attachment = &Attachment{MimeCode: bin.attr("mimeCode"), Filename: bin.attr("filename"), Content: bin.str()}
		}
		d.Documents = append(d.Documents, ref)
	}
	if pr := agr.at("ram:SpecifiedProcuringProject"); pr != nil {
		d.ProjectReference = pr.str("ram:ID")
		if name := pr.at("ram:Name"); name != nil && name.str() != projectName {
			name.used = false // a name of its own is not carried: UBL has no place for it
		}
	}
}

// ciiDeliveryTerms reads the ship-to party and the delivery documents.
func (p *parser) ciiDeliveryTerms(del *node, d *Document) {
	if n := del.at("ram:ShipToTradeParty"); n != nil {
		dl := &Delivery{PartyName: n.str("ram:Name"), Address: ciiAddress(n.at("ram:PostalTradeAddress"))}
		if g := n.at("ram:GlobalID"); g != nil {
			dl.LocationID, dl.LocationScheme = g.str(), g.attr("schemeID")
		} else {
			dl.LocationID = n.str("ram:ID")
		}
		p.locs["delivery.address"] = n.path() + "/ram:PostalTradeAddress"
		d.Delivery = dl
	}
	d.DespatchAdviceReference = del.str("ram:DespatchAdviceReferencedDocument", "ram:IssuerAssignedID")
	d.ReceivingAdviceReference = del.str("ram:ReceivingAdviceReferencedDocument", "ram:IssuerAssignedID")
}

// ciiSettlementTerms reads the creditor reference, the payee, the tax
// point date and the mandate.
func (p *parser) ciiSettlementTerms(set *node, d *Document) {
	d.CreditorReference = set.str("ram:CreditorReferenceID")
	if n := set.at("ram:PayeeTradeParty"); n != nil {
		py := &Payee{Name: n.str("ram:Name")}
		if g := n.at("ram:GlobalID"); g != nil {
			py.ID, py.IDScheme = g.str(), g.attr("schemeID")
		} else {
			py.ID = n.str("ram:ID")
		}
		legal := n.at("ram:SpecifiedLegalOrganization", "ram:ID")
		py.LegalID, py.LegalIDScheme = legal.str(), legal.attr("schemeID")
		p.locs["payee.name"] = n.path() + "/ram:Name"
		d.Payee = py
	}
	// BT-7 sits in each tax group in CII; EN 16931 has one per document,
	// so a group with a different date is left unread (and so reported).
	for _, tt := range set.children(nsRAM, "ApplicableTradeTax") {
		s := tt.at("ram:TaxPointDate", "udt:DateString")
		if s == nil {
			continue
		}
		v, err := ParseDate(ciiDashed(s.str()))
		switch {
		case err != nil || s.attr("format") != "102":
			p.add(s.path(), "%q is not a format-102 YYYYMMDD date", s.str())
		case d.TaxPointDate.IsZero():
			d.TaxPointDate = v
			p.locs["tax_point_date"] = s.path()
		case v != d.TaxPointDate:
			s.used = false
		}
	}
	for _, tt := range set.children(nsRAM, "ApplicableTradeTax") {
		c := tt.at("ram:DueDateTypeCode")
		if c == nil {
			continue
		}
		code := taxPointCodeFromCII[c.str()]
		if code == "" {
			code = c.str() // not one EN 16931 allows: Validate names it
		}
		switch {
		case d.TaxPointDateCode == "":
			d.TaxPointDateCode = code
			p.locs["tax_point_date_code"] = c.path()
		case code != d.TaxPointDateCode:
			c.used = false
		}
	}
	for _, t := range set.children(nsRAM, "SpecifiedTradePaymentTerms") {
		if m := t.str("ram:DirectDebitMandateID"); m != "" && d.MandateReference == "" {
			d.MandateReference = m
		}
	}
}

// ciiDashed turns YYYYMMDD into YYYY-MM-DD for ParseDate.
func ciiDashed(v string) string {
	if len(v) != 8 {
		return v
	}
	return v[:4] + "-" + v[4:6] + "-" + v[6:]
}

// ciiPaymentMeans reads one payment means.
func (p *parser) ciiPaymentMeans(pm *node, paymentRef string) PaymentMeans {
	m := PaymentMeans{
		Code:        p.required(pm, "the payment means code (BR-49)", "ram:TypeCode"),
		Information: pm.str("ram:Information"),
		PaymentID:   paymentRef,
		IBAN:        pm.str("ram:PayeePartyCreditorFinancialAccount", "ram:IBANID"),
		AccountName: pm.str("ram:PayeePartyCreditorFinancialAccount", "ram:AccountName"),
		BIC:         pm.str("ram:PayeeSpecifiedCreditorFinancialInstitution", "ram:BICID"),
		CardNumber:  pm.str("ram:ApplicableTradeSettlementFinancialCard", "ram:ID"),
		CardHolder:  pm.str("ram:ApplicableTradeSettlementFinancialCard", "ram:CardholderName"),
	}
	m.DebitedAccount = pm.str("ram:PayerPartyDebtorFinancialAccount", "ram:IBANID")
	if m.IBAN == "" {
		m.IBAN = pm.str("ram:PayeePartyCreditorFinancialAccount", "ram:ProprietaryID")
	}
	return m
}

// ciiAddress reads a PostalTradeAddress, or nil when n is nil.
func ciiAddress(n *node) *Address {
	if n == nil {
		return nil
	}
	a := &Address{City: n.str("ram:CityName"), PostalCode: n.str("ram:PostcodeCode"), Subdivision: n.str("ram:CountrySubDivisionName"),
		CountryCode: n.str("ram:CountryID")}
	for _, step := range []string{"ram:LineOne", "ram:LineTwo", "ram:LineThree"} {
		if s := n.str(step); s != "" {
			a.Lines = append(a.Lines, s)
		}
	}
	return a
}

// ciiLineExtraTerms reads a line's BT-156, BT-128 and gross price.
func ciiLineExtraTerms(n, prod, set *node, l *Line) {
	l.BuyerItemID = prod.str("ram:BuyerAssignedID")
	for _, ref := range set.children(nsRAM, "AdditionalReferencedDocument") {
		if ref.str("ram:TypeCode") == objectTypeCode && l.ObjectID == "" {
			l.ObjectID, l.ObjectScheme = ref.str("ram:IssuerAssignedID"), ref.str("ram:ReferenceTypeCode")
		} else {
			ref.at("ram:TypeCode").used = false
		}
	}
	gp := n.at("ram:SpecifiedLineTradeAgreement", "ram:GrossPriceProductTradePrice")
	if gp == nil {
		return
	}
	l.GrossPrice = decimalOrZero(gp.str("ram:ChargeAmount"))
	l.GrossBaseQuantity = decimalOrZero(gp.str("ram:BasisQuantity"))
	for _, ac := range gp.children(nsRAM, "AppliedTradeAllowanceCharge") {
		if ac.str("ram:ChargeIndicator", "udt:Indicator") == "false" && l.PriceDiscount.IsZero() {
			l.PriceDiscount = decimalOrZero(ac.str("ram:ActualAmount"))
		} else {
			ac.at("ram:ActualAmount").used = false
		}
	}
}

// ciiTaxRepresentative writes BG-11 after the buyer.
func (w *xmlWriter) ciiTaxRepresentative(d *Document) {
	tr := d.TaxRepresentative
	if tr == nil {
		return
	}
	w.open("ram:SellerTaxRepresentativeTradeParty")
	w.leaf("ram:Name", tr.Name)
	w.ciiAddress(&tr.Address)
	w.ciiTaxRegistration(tr.VATID, "VA")
	w.close("ram:SellerTaxRepresentativeTradeParty")
}

func (w *xmlWriter) ciiAddress(a *Address) {
	w.open("ram:PostalTradeAddress")
	w.leaf("ram:PostcodeCode", a.PostalCode)
	for i, step := range []string{"ram:LineOne", "ram:LineTwo", "ram:LineThree"} {
		if i < len(a.Lines) {
			w.leaf(step, a.Lines[i])
		}
	}
	w.leaf("ram:CityName", a.City)
	w.leaf("ram:CountryID", a.CountryCode)
	w.leaf("ram:CountrySubDivisionName", a.Subdivision)
	w.close("ram:PostalTradeAddress")
}

func (w *xmlWriter) ciiDocRef(name, id string) { w.wrapped(name, "ram:IssuerAssignedID", id) }

// ciiID writes a party's identifier: GlobalID with its scheme, ID
// without one.
func (w *xmlWriter) ciiID(id, scheme string) {
	if scheme == "" {
		w.leaf("ram:ID", id)
	} else {
		w.leafAttr("ram:GlobalID", id, "schemeID", scheme)
	}
}

// ciiTaxRegistration writes a tax registration with its scheme (VA: VAT,
// FC: the seller's local one), or nothing when id is empty.
func (w *xmlWriter) ciiTaxRegistration(id, scheme string) {
	if id == "" {
		return
	}
	w.open("ram:SpecifiedTaxRegistration")
	w.leafAttr("ram:ID", id, "schemeID", scheme)
	w.close("ram:SpecifiedTaxRegistration")
}

// ciiAgreementReferences writes BT-17, BT-18, BG-24 and BT-11, which follow
// the contract reference.
func (w *xmlWriter) ciiAgreementReferences(d *Document) {
	for _, r := range d.Documents {
		w.open("ram:AdditionalReferencedDocument")
		w.leaf("ram:IssuerAssignedID", r.ID)
		w.leaf("ram:URIID", r.URI)
		w.leaf("ram:TypeCode", r.TypeCode)
		w.leaf("ram:Name", r.Description)
		if a := r.Attachment; a != nil {
			w.leafAttrs("ram:AttachmentBinaryObject", a.Content, "mimeCode", a.MimeCode, "filename", a.Filename)
		}
		w.leaf("ram:ReferenceTypeCode", r.Scheme)
		w.close("ram:AdditionalReferencedDocument")
	}
	if d.TenderReference != "" {
		w.open("ram:AdditionalReferencedDocument")
		w.leaf("ram:IssuerAssignedID", d.TenderReference)
		w.leaf("ram:TypeCode", projectTypeCode)
		w.close("ram:AdditionalReferencedDocument")
	}
	if d.ProjectReference != "" {
		w.open("ram:SpecifiedProcuringProject")
		w.leaf("ram:ID", d.ProjectReference)
		w.leaf("ram:Name", projectName)
		w.close("ram:SpecifiedProcuringProject")
	}
}

// ciiShipTo writes BG-13's party and address (the date follows it).
func (w *xmlWriter) ciiShipTo(d *Document) {
	dl := d.Delivery
	if dl == nil {
		return
	}
	w.open("ram:ShipToTradeParty")
	w.ciiID(dl.LocationID, dl.LocationScheme)
	w.leaf("ram:Name", dl.PartyName)
	if dl.Address != nil {
		w.ciiAddress(dl.Address)
	}
	w.close("ram:ShipToTradeParty")
}

// ciiPayee writes BG-10 after the currencies.
func (w *xmlWriter) ciiPayee(d *Document) {
	py := d.Payee
	if py == nil {
		return
	}
	w.open("ram:PayeeTradeParty")
	w.ciiID(py.ID, py.IDScheme)
	w.leaf("ram:Name", py.Name)
	if py.LegalID != "" {
		w.open("ram:SpecifiedLegalOrganization")
		w.leafAttr("ram:ID", py.LegalID, "schemeID", py.LegalIDScheme)
		w.close("ram:SpecifiedLegalOrganization")
	}
	w.close("ram:PayeeTradeParty")
}

// ciiPaymentMeans writes one payment means (the payment reference is the
// header's, written once).
func (w *xmlWriter) ciiPaymentMeans(pm PaymentMeans) {
	w.open("ram:SpecifiedTradeSettlementPaymentMeans")
	w.leaf("ram:TypeCode", pm.Code)
	w.leaf("ram:Information", pm.Information)
	if pm.CardNumber != "" {
		w.open("ram:ApplicableTradeSettlementFinancialCard")
		w.leaf("ram:ID", pm.CardNumber)
		w.leaf("ram:CardholderName", pm.CardHolder)
		w.close("ram:ApplicableTradeSettlementFinancialCard")
	}
	w.wrapped("ram:PayerPartyDebtorFinancialAccount", "ram:IBANID", pm.DebitedAccount)
	if pm.IBAN != "" || pm.AccountName != "" {
		w.open("ram:PayeePartyCreditorFinancialAccount")
		if isIBAN(pm.IBAN) {
			w.leaf("ram:IBANID", pm.IBAN)
		}
		w.leaf("ram:AccountName", pm.AccountName)
		if !isIBAN(pm.IBAN) {
			w.leaf("ram:ProprietaryID", pm.IBAN)
		}
		w.close("ram:PayeePartyCreditorFinancialAccount")
	}
	w.wrapped("ram:PayeeSpecifiedCreditorFinancialInstitution", "ram:BICID", pm.BIC)
	w.close("ram:SpecifiedTradeSettlementPaymentMeans")
}

// ciiLineObject writes BT-128 in the line's settlement.
func (w *xmlWriter) ciiLineObject(l Line) {
	if l.ObjectID == "" {
		return
	}
	w.open("ram:AdditionalReferencedDocument")
	w.leaf("ram:IssuerAssignedID", l.ObjectID)
	w.leaf("ram:TypeCode", objectTypeCode)
	w.leaf("ram:ReferenceTypeCode", l.ObjectScheme)
	w.close("ram:AdditionalReferencedDocument")
}

// ciiGrossPrice writes BT-148 with its base quantity and BT-147.
func (w *xmlWriter) ciiGrossPrice(l Line) {
	if l.GrossPrice.IsZero() && l.PriceDiscount.IsZero() {
		return
	}
	w.open("ram:GrossPriceProductTradePrice")
	w.leaf("ram:ChargeAmount", l.GrossPrice.String())
	if !l.GrossBaseQuantity.IsZero() {
		w.leafAttr("ram:BasisQuantity", l.GrossBaseQuantity.String(), "unitCode", l.UnitCode)
	}
	if !l.PriceDiscount.IsZero() {
		w.open("ram:AppliedTradeAllowanceCharge")
		w.open("ram:ChargeIndicator")
		w.leaf("udt:Indicator", "false")
		w.close("ram:ChargeIndicator")
		w.leaf("ram:ActualAmount", l.PriceDiscount.String())
		w.close("ram:AppliedTradeAllowanceCharge")
	}
	w.close("ram:GrossPriceProductTradePrice")
}

// ciiTaxPoint writes BT-7 and BT-8 in a tax group (the first one carries
// them).
func (w *xmlWriter) ciiTaxPoint(d *Document) {
	if t := d.TaxPointDate; !t.IsZero() {
		w.open("ram:TaxPointDate")
		w.leafAttr("udt:DateString", fmt.Sprintf("%04d%02d%02d", t.Year, t.Month, t.Day), "format", "102")
		w.close("ram:TaxPointDate")
	}
	code := d.TaxPointDateCode
	if c, ok := taxPointCodeToCII[code]; ok {
		code = c
	}
	w.leaf("ram:DueDateTypeCode", code)
}

// taxPointCodeToCII maps BT-8 from UNTDID 2005 (UBL, the model) to UNTDID
// 2475 (CII), as the EN 16931 syntax bindings do; taxPointCodeFromCII
// the other way.
var (
	taxPointCodeToCII   = map[string]string{"3": "5", "35": "29", "432": "72"}
	taxPointCodeFromCII = map[string]string{"5": "3", "29": "35", "72": "432"}
)

// ciiCannotCarry lists the set fields of d CII has no place for (see
// TargetDrops): a later payment means' own payment id (CII has one
// payment reference per document).
func ciiCannotCarry(d *Document) []string {
	var out []string
	for i, pm := range d.OtherPaymentMeans {
		if pm.PaymentID != "" {
			out = append(out, fmt.Sprintf("other_payment_means[%d].payment_id", i))
		}
	}
	return out
}
