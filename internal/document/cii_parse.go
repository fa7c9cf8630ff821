package document

import (
	"fmt"
	"strings"

	"github.com/abacusbilling/abacus"
	"github.com/shopspring/decimal"
)

// Error codes of ParseCII.
const CodeNotCII = "cii_not_document" // root is not a CII CrossIndustryInvoice

// ParseCII reads a UN/CEFACT CII D16B CrossIndustryInvoice (an invoice or
// credit note by its type code, BT-3) into a Document, listing every
// problem it finds as ParseUBL does, and every element with a value the
// model does not carry (Report.Dropped). It returns an error only when
// data is not well-formed XML ("ubl_unreadable", KindInvalid) or not a
// CrossIndustryInvoice ("cii_not_document").
func ParseCII(data []byte) (*Document, *Report, error) {
	if len(data) > maxUBLDocuments {
		return nil, nil, abacus.Errorf(abacus.KindTooLarge, "document_too_large", "the document is larger than %d MiB", maxUBLDocuments>>20)
	}
	root, err := parseTree(data)
	if err != nil {
		return nil, nil, abacus.Invalid(CodeUnreadable, "the document is not well-formed XML: %s", err)
	}
	return parseCIITree(root)
}

func parseCIITree(root *node) (*Document, *Report, error) {
	if root.name.Space != nsRSM || root.name.Local != "CrossIndustryInvoice" {
		return nil, nil, abacus.Invalid(CodeNotCII, "the root element {%s}%s is not a CII D16B CrossIndustryInvoice", root.name.Space, root.name.Local)
	}
	root.used = true
	p := &parser{locs: map[string]string{}}
	d := &Document{Kind: KindInvoice}
	p.ciiHeader(root, d)
	p.violations = append(p.violations, p.fromValidate(d)...)
	return d, &Report{Format: FormatCII, Violations: p.violations, Dropped: dropped(root)}, nil
}

// ciiDateAt reads a format-102 date (YYYYMMDD) at steps below n.
func (p *parser) ciiDateAt(n *node, field string, steps ...string) Date {
	m := n.at(steps...)
	if m == nil {
		return Date{}
	}
	var s *node
	for _, k := range m.kids {
		if k.name.Local == "DateTimeString" {
			k.used = true
			s = k
		}
	}
	if s == nil {
		p.add(m.path(), "a DateTimeString is required")
		return Date{}
	}
	p.locs[field] = s.path()
	v := strings.TrimSpace(s.text)
	if f := s.attr("format"); f != "" && f != "102" {
		p.add(s.path(), "date format %q is not 102 (YYYYMMDD), the only one EN 16931 allows (BR-CL-?)", f)
		return Date{}
	}
	if len(v) != 8 {
		p.add(s.path(), "%q is not a YYYYMMDD date", v)
		return Date{}
	}
	d, err := ParseDate(v[:4] + "-" + v[4:6] + "-" + v[6:])
	if err != nil {
		p.add(s.path(), "%q is not a YYYYMMDD date", v)
	}
	return d
}

func (p *parser) ciiHeader(root *node, d *Document) {
	ctx := root.at("rsm:ExchangedDocumentContext")
	d.Process = ctx.str("ram:BusinessProcessSpecifiedDocumentContextParameter", "ram:ID")
	d.Specification = ctx.str("ram:GuidelineSpecifiedDocumentContextParameter", "ram:ID")
	if d.Specification == "" {
		p.add(root.path()+"/rsm:ExchangedDocumentContext/ram:GuidelineSpecifiedDocumentContextParameter/ram:ID", "the specification identifier is required (BR-01)")
	}
	doc := root.at("rsm:ExchangedDocument")
	if doc == nil {
		p.add(root.path()+"/rsm:ExchangedDocument", "the document header is required (BR-02, BR-03, BR-04)")
	}
	d.Number = p.required(doc, "the document number (BR-02)", "ram:ID")
	p.locs["number"] = root.path() + "/rsm:ExchangedDocument/ram:ID"
	tc := p.required(doc, "the document type code (BR-04)", "ram:TypeCode")
	switch {
	case creditTypeCodes[tc]:
		d.Kind = KindCreditNote
	case invoiceTypeCodes[tc] || tc == "":
	default:
		p.add(doc.path()+"/ram:TypeCode", "%q is not a document type code EN 16931 allows (BR-CL-01): 380 invoice, 381 credit note, 384 corrected invoice, 389 self-billed invoice", tc)
	}
	if tc != "" && tc != d.typeCode() {
		d.TypeCode = tc
	}
	p.locs["type_code"] = doc.path() + "/ram:TypeCode"
	if doc.at("ram:IssueDateTime") == nil && doc != nil {
		p.add(doc.path()+"/ram:IssueDateTime", "the issue date is required (BR-03)")
	}
	d.IssueDate = p.ciiDateAt(doc, "issue_date", "ram:IssueDateTime")
	for _, n := range doc.children(nsRAM, "IncludedNote") {
		if s := n.str("ram:Content"); s != "" {
			d.Notes = append(d.Notes, joinNote(n.str("ram:SubjectCode"), s))
		}
	}

	tx := root.at("rsm:SupplyChainTradeTransaction")
	if tx == nil {
		p.add(root.path()+"/rsm:SupplyChainTradeTransaction", "the trade transaction is required")
		return
	}
	agr := tx.at("ram:ApplicableHeaderTradeAgreement")
	d.BuyerReference = agr.str("ram:BuyerReference")
	p.locs["buyer_reference"] = tx.path() + "/ram:ApplicableHeaderTradeAgreement/ram:BuyerReference"
	d.OrderReference = agr.str("ram:BuyerOrderReferencedDocument", "ram:IssuerAssignedID")
	d.ContractReference = agr.str("ram:ContractReferencedDocument", "ram:IssuerAssignedID")
	d.Seller = p.ciiParty(agr, "ram:SellerTradeParty", "seller", tx.path()+"/ram:ApplicableHeaderTradeAgreement")
	d.Buyer = p.ciiParty(agr, "ram:BuyerTradeParty", "buyer", tx.path()+"/ram:ApplicableHeaderTradeAgreement")
	p.ciiAgreementTerms(agr, d)
	d.DeliveryDate = p.ciiDateAt(tx, "delivery_date", "ram:ApplicableHeaderTradeDelivery", "ram:ActualDeliverySupplyChainEvent", "ram:OccurrenceDateTime")
	p.ciiDeliveryTerms(tx.at("ram:ApplicableHeaderTradeDelivery"), d)

	set := tx.at("ram:ApplicableHeaderTradeSettlement")
	if set == nil {
		p.add(tx.path()+"/ram:ApplicableHeaderTradeSettlement", "the settlement (currency, tax, totals) is required")
		return
	}
	d.Currency = p.required(set, "the document currency (BR-05)", "ram:InvoiceCurrencyCode")
	p.locs["currency"] = set.path() + "/ram:InvoiceCurrencyCode"
	d.CurrencyExponent = CurrencyExponent(d.Currency)
	d.TaxCurrency = set.str("ram:TaxCurrencyCode")
	d.AccountingCost = set.str("ram:ReceivableSpecifiedTradeAccountingAccount", "ram:ID")
	paymentRef := set.str("ram:PaymentReference")
	p.ciiSettlementTerms(set, d)
	if means := set.children(nsRAM, "SpecifiedTradeSettlementPaymentMeans"); len(means) > 0 {
		for i, pm := range means {
			m := p.ciiPaymentMeans(pm, "")
			if i == 0 {
				m.PaymentID = paymentRef // CII has one payment reference; the model keeps it with the first means
				d.PaymentMeans = &m
				p.locs["payment_means.iban"] = pm.path() + "/ram:PayeePartyCreditorFinancialAccount/ram:IBANID"
				continue
			}
			p.locs[fmt.Sprintf("other_payment_means[%d].iban", i-1)] = pm.path() + "/ram:PayeePartyCreditorFinancialAccount/ram:IBANID"
			d.OtherPaymentMeans = append(d.OtherPaymentMeans, m)
		}
	} else if paymentRef != "" {
		d.PaymentMeans = &PaymentMeans{PaymentID: paymentRef}
		p.add(set.path()+"/ram:SpecifiedTradeSettlementPaymentMeans", "a payment reference needs payment means with a type code (BR-49)")
	}
	for i, tt := range set.children(nsRAM, "ApplicableTradeTax") {
		f := fmt.Sprintf("tax_breakdown[%d]", i)
		p.locs[f] = tt.path()
		g := TaxSubtotal{
			TaxableAmount: p.decimalAt(tt, f+".taxable_amount", true, "ram:BasisAmount"),
			TaxAmount:     p.decimalAt(tt, f+".tax_amount", true, "ram:CalculatedAmount"),
			Tax:           p.ciiTax(tt, f+".tax"),
		}
		g.Tax.ExemptionReason = tt.str("ram:ExemptionReason")
		g.Tax.ExemptionReasonCode = tt.str("ram:ExemptionReasonCode")
		d.TaxBreakdown = append(d.TaxBreakdown, g)
	}
	if len(d.TaxBreakdown) == 0 {
		p.add(set.path()+"/ram:ApplicableTradeTax", "a tax breakdown is required (BR-CO-18)")
	}
	d.Period = p.ciiPeriod(set.at("ram:BillingSpecifiedPeriod"), "period")
	for i, n := range set.children(nsRAM, "SpecifiedTradeAllowanceCharge") {
		d.AllowanceCharges = append(d.AllowanceCharges, p.ciiAllowanceCharge(n, fmt.Sprintf("allowance_charges[%d]", i), true))
	}
	var terms []string
	for _, t := range set.children(nsRAM, "SpecifiedTradePaymentTerms") {
		if s := t.str("ram:Description"); s != "" {
			terms = append(terms, s)
		}
		if due := p.ciiDateAt(t, "due_date", "ram:DueDateDateTime"); !due.IsZero() && d.DueDate.IsZero() {
			d.DueDate = due
		}
	}
	d.PaymentTerms = strings.Join(terms, "\n")
	p.ciiTotals(set, d)
	if ref := set.at("ram:InvoiceReferencedDocument"); ref != nil {
		d.InvoiceReference = &InvoiceReference{
			Number:    p.required(ref, "the referenced invoice number", "ram:IssuerAssignedID"),
			IssueDate: p.ciiDateAt(ref, "invoice_reference.issue_date", "ram:FormattedIssueDateTime"),
		}
	}
	lines := tx.children(nsRAM, "IncludedSupplyChainTradeLineItem")
	if len(lines) == 0 {
		p.add(tx.path()+"/ram:IncludedSupplyChainTradeLineItem", "at least one line is required (BR-16)")
	}
	for i, n := range lines {
		d.Lines = append(d.Lines, p.ciiLine(n, i))
	}
}

func (p *parser) ciiPeriod(n *node, field string) *Period {
	if n == nil {
		return nil
	}
	p.locs[field] = n.path()
	return &Period{Start: p.ciiDateAt(n, field+".start", "ram:StartDateTime"), End: p.ciiDateAt(n, field+".end", "ram:EndDateTime")}
}

func (p *parser) ciiTax(n *node, field string) Tax {
	if n == nil {
		return Tax{}
	}
	p.locs[field] = n.path()
	p.locs[field+".rate"] = n.path() + "/ram:RateApplicablePercent"
	if tc := n.str("ram:TypeCode"); tc != "VAT" {
		p.add(n.path()+"/ram:TypeCode", "the tax type code must be VAT, not %q (BR-CL-?)", tc)
	}
	t := Tax{Category: TaxCategory(p.required(n, "the VAT category code", "ram:CategoryCode"))}
	t.Rate = p.decimalAt(n, field+".rate", false, "ram:RateApplicablePercent")
	t.Rate = decimal.RequireFromString(t.Rate.String())
	return t
}

func (p *parser) ciiParty(agr *node, role, field, parentPath string) Party {
	n := agr.at(role)
	if n == nil {
		p.add(parentPath+"/"+role, "the %s party is required", field)
		return Party{}
	}
	p.locs[field+".name"] = n.path() + "/ram:Name"
	p.locs[field+".endpoint_id"] = n.path() + "/ram:URIUniversalCommunication/ram:URIID"
	p.locs[field+".country_code"] = n.path() + "/ram:PostalTradeAddress/ram:CountryID"
	p.locs[field+".vat_id"] = n.path() + "/ram:SpecifiedTaxRegistration/ram:ID"
	addr := n.at("ram:PostalTradeAddress")
	pty := Party{
		Name:           n.str("ram:Name"),
		TradingName:    n.str("ram:SpecifiedLegalOrganization", "ram:TradingBusinessName"),
		City:           addr.str("ram:CityName"),
		PostalCode:     addr.str("ram:PostcodeCode"),
		Subdivision:    addr.str("ram:CountrySubDivisionName"),
		CountryCode:    addr.str("ram:CountryID"),
		LegalID:        n.str("ram:SpecifiedLegalOrganization", "ram:ID"),
		LegalIDScheme:  n.at("ram:SpecifiedLegalOrganization", "ram:ID").attr("schemeID"),
		ContactName:    n.str("ram:DefinedTradeContact", "ram:PersonName"),
		Phone:          n.str("ram:DefinedTradeContact", "ram:TelephoneUniversalCommunication", "ram:CompleteNumber"),
		Email:          n.str("ram:DefinedTradeContact", "ram:EmailURIUniversalCommunication", "ram:URIID"),
		EndpointID:     n.str("ram:URIUniversalCommunication", "ram:URIID"),
		EndpointScheme: n.at("ram:URIUniversalCommunication", "ram:URIID").attr("schemeID"),
	}
	if field == "seller" {
		pty.LegalForm = n.str("ram:Description")
	}
	if field == "seller" { // BT-29 occurs more than once
		var ids []PartyID
		for _, g := range n.children(nsRAM, "GlobalID") {
			ids = append(ids, PartyID{ID: g.str(), Scheme: g.attr("schemeID")})
		}
		for _, id := range n.children(nsRAM, "ID") {
			ids = append(ids, PartyID{ID: id.str()})
		}
		var first PartyID
		first, pty.OtherIDs = sellerIDs(ids)
		pty.ID, pty.IDScheme = first.ID, first.Scheme
	} else if g := n.at("ram:GlobalID"); g != nil {
		pty.ID, pty.IDScheme = strings.TrimSpace(g.text), g.attr("schemeID")
	} else {
		pty.ID = n.str("ram:ID")
	}
	if a := ciiAddress(addr); a != nil {
		pty.Address = a.Lines
	}
	for _, tr := range n.children(nsRAM, "SpecifiedTaxRegistration") {
		id := tr.at("ram:ID")
		switch {
		case id.attr("schemeID") == "VA":
			pty.VATID = strings.TrimSpace(id.text)
		case id.attr("schemeID") == "FC" && field == "seller" && pty.TaxRegistrationID == "":
			pty.TaxRegistrationID = strings.TrimSpace(id.text) // BT-32
		default:
			id.used = false
		}
	}
	if pty.Name == "" {
		p.add(n.path()+"/ram:Name", "the %s name is required (BR-06/BR-07)", field)
	}
	return pty
}

func (p *parser) ciiAllowanceCharge(n *node, field string, docLevel bool) AllowanceCharge {
	ac := AllowanceCharge{Reason: n.str("ram:Reason"), ReasonCode: n.str("ram:ReasonCode")}
	switch ind := n.str("ram:ChargeIndicator", "udt:Indicator"); ind {
	case "true":
		ac.Charge = true
	case "false":
	default:
		p.add(n.path()+"/ram:ChargeIndicator/udt:Indicator", "must be true or false, not %q", ind)
	}
	ac.Amount = p.decimalAt(n, field+".amount", true, "ram:ActualAmount")
	ac.BaseAmount = p.decimalAt(n, field+".base_amount", false, "ram:BasisAmount")
	ac.Percent = p.decimalAt(n, field+".percent", false, "ram:CalculationPercent")
	if docLevel {
		if tc := n.at("ram:CategoryTradeTax"); tc != nil {
			t := p.ciiTax(tc, field+".tax")
			ac.Tax = &t
		}
	}
	return ac
}

func (p *parser) ciiTotals(set *node, d *Document) {
	n := set.at("ram:SpecifiedTradeSettlementHeaderMonetarySummation")
	if n == nil {
		p.add(set.path()+"/ram:SpecifiedTradeSettlementHeaderMonetarySummation", "the document totals are required")
		return
	}
	t := &d.Totals
	t.LineExtension = p.decimalAt(n, "totals.line_extension", true, "ram:LineTotalAmount")
	t.ChargeTotal = p.decimalAt(n, "totals.charge_total", false, "ram:ChargeTotalAmount")
	t.AllowanceTotal = p.decimalAt(n, "totals.allowance_total", false, "ram:AllowanceTotalAmount")
	t.TaxExclusive = p.decimalAt(n, "totals.tax_exclusive", true, "ram:TaxBasisTotalAmount")
	for _, tt := range n.children(nsRAM, "TaxTotalAmount") {
		cur := tt.attr("currencyID")
		v, err := decimal.NewFromString(strings.TrimSpace(tt.text))
		if err != nil {
			p.add(tt.path(), "%q is not a number", strings.TrimSpace(tt.text))
			continue
		}
		if cur != "" && cur == d.TaxCurrency && cur != d.Currency {
			d.TaxInTaxCurrency = v
			p.locs["tax_in_tax_currency"] = tt.path()
			continue
		}
		t.Tax = v
		p.locs["totals.tax"] = tt.path()
	}
	t.PayableRounding = p.decimalAt(n, "totals.payable_rounding", false, "ram:RoundingAmount")
	t.TaxInclusive = p.decimalAt(n, "totals.tax_inclusive", true, "ram:GrandTotalAmount")
	t.Prepaid = p.decimalAt(n, "totals.prepaid", false, "ram:TotalPrepaidAmount")
	t.Payable = p.decimalAt(n, "totals.payable", true, "ram:DuePayableAmount")
}

func (p *parser) ciiLine(n *node, i int) Line {
	f := fmt.Sprintf("lines[%d]", i)
	prod := n.at("ram:SpecifiedTradeProduct")
	doc := n.at("ram:AssociatedDocumentLineDocument")
	var notes []string
	for _, note := range doc.children(nsRAM, "IncludedNote") {
		if s := note.str("ram:Content"); s != "" {
			notes = append(notes, s)
		}
	}
	qty := n.at("ram:SpecifiedLineTradeDelivery", "ram:BilledQuantity")
	l := Line{
		ID:           p.required(doc, "the line identifier (BR-21)", "ram:LineID"),
		Note:         strings.Join(notes, "\n"),
		Name:         p.required(n, "the item name (BR-25)", "ram:SpecifiedTradeProduct", "ram:Name"),
		Description:  prod.str("ram:Description"),
		SellerItemID: prod.str("ram:SellerAssignedID"),
		UnitCode:     qty.attr("unitCode"),
	}
	p.locs[f+".name"] = n.path() + "/ram:SpecifiedTradeProduct/ram:Name"
	p.locs[f+".unit_code"] = n.path() + "/ram:SpecifiedLineTradeDelivery/ram:BilledQuantity"
	l.Quantity = p.decimalAt(n, f+".quantity", true, "ram:SpecifiedLineTradeDelivery", "ram:BilledQuantity")
	set := n.at("ram:SpecifiedLineTradeSettlement")
	l.NetAmount = p.decimalAt(set, f+".net_amount", true, "ram:SpecifiedTradeSettlementLineMonetarySummation", "ram:LineTotalAmount")
	l.UnitPrice = p.decimalAt(n, f+".unit_price", true, "ram:SpecifiedLineTradeAgreement", "ram:NetPriceProductTradePrice", "ram:ChargeAmount")
	l.BaseQuantity = p.decimalAt(n, f+".base_quantity", false, "ram:SpecifiedLineTradeAgreement", "ram:NetPriceProductTradePrice", "ram:BasisQuantity")
	l.Period = p.ciiPeriod(set.at("ram:BillingSpecifiedPeriod"), f+".period")
	for j, ac := range set.children(nsRAM, "SpecifiedTradeAllowanceCharge") {
		l.AllowanceCharges = append(l.AllowanceCharges, p.ciiAllowanceCharge(ac, fmt.Sprintf("%s.allowance_charges[%d]", f, j), false))
	}
	if tt := set.at("ram:ApplicableTradeTax"); tt != nil {
		l.Tax = p.ciiTax(tt, f+".tax")
	} else if set != nil {
		p.add(set.path()+"/ram:ApplicableTradeTax", "the line's VAT category is required (BR-CO-4)")
	}
	ciiLineTerms(n, prod, set, &l)
	ciiLineExtraTerms(n, prod, set, &l)
	return l
}

// ciiLineTerms reads BT-132, BT-133 and the item's BT-157 to BT-161.
func ciiLineTerms(n, prod, set *node, l *Line) {
	l.OrderLineRef = n.str("ram:SpecifiedLineTradeAgreement", "ram:BuyerOrderReferencedDocument", "ram:LineID")
	l.AccountingCost = set.str("ram:ReceivableSpecifiedTradeAccountingAccount", "ram:ID")
	g := prod.at("ram:GlobalID")
	l.StandardItemID, l.StandardItemScheme = g.str(), g.attr("schemeID")
	l.OriginCountry = prod.str("ram:OriginTradeCountry", "ram:ID")
	for _, c := range prod.children(nsRAM, "DesignatedProductClassification") {
		code := c.at("ram:ClassCode")
		l.Classifications = append(l.Classifications, Classification{Code: code.str(), ListID: code.attr("listID"), ListVersion: code.attr("listVersionID")})
	}
	for _, a := range prod.children(nsRAM, "ApplicableProductCharacteristic") {
		l.Attributes = append(l.Attributes, ItemAttribute{Name: a.str("ram:Description"), Value: a.str("ram:Value")})
	}
}
