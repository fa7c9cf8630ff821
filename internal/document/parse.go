package document

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"github.com/abacusbilling/abacus"
	"github.com/shopspring/decimal"
)

// Violation is one problem found in a UBL document: a missing mandatory
// element, a value that does not parse, or an inconsistency Validate
// finds (sums, tax, category rules).
type Violation struct {
	// Path locates the problem, XPath-like with prefixes cac/cbc and
	// 1-based indexes, e.g. "/Invoice/cac:InvoiceLine[2]/cbc:LineExtensionAmount";
	// for a consistency problem without one element it is the model
	// field path, e.g. "tax_breakdown".
	Path    string `json:"path"`
	Message string `json:"message"`
	// Rule is the rule broken, e.g. "BR-CO-10", "PEPPOL-EN16931-R120",
	// "BR-DE-15", or "SYNTAX" for a value or element the syntax requires
	// and "ABACUS" for a check of Abacus's own.
	Rule string `json:"rule"`
	// Severity is "fatal" (the document is refused) or "warning".
	Severity string `json:"severity"`
}

// ruleRe finds the rule id a message names.
var ruleRe = regexp.MustCompile(`\b(BR-[A-Z]{1,3}-?[0-9]{1,3}|BR-[0-9]{1,3}|PEPPOL-EN16931-R[0-9]{3}|BR-DE-[0-9]{1,2}|BR-DEC-[0-9]{2})\b`)

// newViolation fills the rule from the message ("SYNTAX" when the message
// names none and the path is an element, "ABACUS" otherwise).
func newViolation(path, msg string) Violation {
	rule := ruleRe.FindString(msg)
	if rule == "" {
		rule = "ABACUS"
		if strings.HasPrefix(path, "/") && (strings.Contains(msg, "required") || strings.Contains(msg, "not a number") || strings.Contains(msg, "YYYY")) {
			rule = "SYNTAX"
		}
	}
	return Violation{Path: path, Message: msg, Rule: rule, Severity: "fatal"}
}

// Error codes ParseUBL returns when it cannot read a document at all.
const (
	CodeUnreadable  = "ubl_unreadable"   // not well-formed XML
	CodeNotUBL      = "ubl_not_document" // root is not a UBL 2.1 Invoice or CreditNote
	maxUBLDocuments = 20 << 20           // bytes; larger input is refused before parsing
)

// ParseUBL reads a UBL 2.1 Invoice or CreditNote (namespaces are checked:
// cbc/cac elements must be in the UBL namespaces, whatever their
// prefixes) into a Document, and lists every problem it finds instead of
// stopping at the first: mandatory elements that are missing, values that
// do not parse, and everything Validate reports (sums, tax, category
// rules), located by element path where one applies. A document with
// violations is still returned, as complete as the input allows, so it can
// be shown or converted.
//
// Every element with a value the model does not carry is listed in the
// Report's Dropped (see dropped); since issue 22 that is none of the
// official examples' elements. A converted document stays valid because
// none of the terms outside the model enter the totals.
//
// It returns an error only when data is not XML (code "ubl_unreadable") or
// not a UBL Invoice or CreditNote (code "ubl_not_document"), both
// *abacus.Error of KindInvalid.
func ParseUBL(data []byte) (*Document, []Violation, error) {
	d, rep, err := parseUBL(data)
	if err != nil {
		return nil, nil, err
	}
	return d, rep.Violations, nil
}

func parseUBL(data []byte) (*Document, *Report, error) {
	if len(data) > maxUBLDocuments {
		return nil, nil, abacus.Errorf(abacus.KindTooLarge, "ubl_too_large", "the document is larger than %d MiB", maxUBLDocuments>>20)
	}
	root, err := parseTree(data)
	if err != nil {
		return nil, nil, abacus.Invalid(CodeUnreadable, "the document is not well-formed XML: %s", err)
	}
	return parseUBLTree(root)
}

func parseUBLTree(root *node) (*Document, *Report, error) {
	p := &parser{locs: map[string]string{}}
	d := &Document{}
	switch root.name {
	case xml.Name{Space: nsInvoice, Local: "Invoice"}:
		d.Kind = KindInvoice
	case xml.Name{Space: nsCreditNote, Local: "CreditNote"}:
		d.Kind = KindCreditNote
	default:
		return nil, nil, abacus.Invalid(CodeNotUBL, "the root element {%s}%s is not a UBL 2.1 Invoice or CreditNote", root.name.Space, root.name.Local)
	}
	root.used = true
	p.header(root, d)
	p.violations = append(p.violations, p.fromValidate(d)...)
	return d, &Report{Format: FormatUBL, Violations: p.violations, Dropped: dropped(root)}, nil
}

// node is one XML element with its children, text and location.
type node struct {
	name  xml.Name
	attrs []xml.Attr
	text  string
	kids  []*node
	up    *node
	xpath string // memoized by path
	used  bool   // read into the model; unused leaves are reported as dropped
}

// path is the node's XPath with positions, e.g.
// /Invoice/cac:InvoiceLine[2]/cbc:ID[1]: built when first asked (most
// nodes never are), then kept.
func (n *node) path() string {
	if n.xpath != "" {
		return n.xpath
	}
	label := prefixed(n.name)
	if n.up == nil {
		n.xpath = "/" + label
		return n.xpath
	}
	i := 0
	for _, k := range n.up.kids {
		if k.name.Local == n.name.Local && (k.name.Space == n.name.Space || prefixed(k.name) == label) {
			i++
		}
		if k == n {
			break
		}
	}
	n.xpath = n.up.path() + "/" + label + "[" + strconv.Itoa(i) + "]"
	return n.xpath
}

// Bounds on XML input, checked while reading so a hostile document costs
// at most one pass: elements nest at most maxDepth deep and a document has
// at most maxElements elements (a 10,000-line CII invoice has ~300,000).
const (
	maxDepth    = 64
	maxElements = 2_000_000
)

// parseTree reads data into a tree. A DOCTYPE (and so any entity
// declaration, external entity or entity-expansion bomb) is refused before
// anything is expanded; encoding/xml knows only the five predefined
// entities and fails on any other.
func parseTree(data []byte) (*node, error) {
	dec := xml.NewDecoder(bytes.NewReader(data))
	dec.Strict = true
	var stack []*node
	var root *node
	elements := 0
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.Directive:
			return nil, fmt.Errorf("line %d: a DOCTYPE or other declaration is not allowed (document type definitions and entities are refused, never expanded)", lineOf(data, dec.InputOffset()))
		case xml.StartElement:
			if elements++; elements > maxElements {
				return nil, fmt.Errorf("more than %d elements", maxElements)
			}
			if len(stack) >= maxDepth {
				return nil, fmt.Errorf("line %d: elements nest deeper than %d levels", lineOf(data, dec.InputOffset()), maxDepth)
			}
			if len(stack) == 0 && root != nil {
				return nil, errors.New("more than one root element")
			}
			n := &node{name: t.Name, attrs: t.Attr}
			if len(stack) == 0 {
				root = n
			} else {
				parent := stack[len(stack)-1]
				n.up = parent
				parent.kids = append(parent.kids, n)
			}
			stack = append(stack, n)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 {
				stack[len(stack)-1].text += string(t)
			}
		}
	}
	if root == nil {
		return nil, errors.New("no root element")
	}
	return root, nil
}

func lineOf(data []byte, off int64) int {
	return bytes.Count(data[:min(int(off), len(data))], []byte("\n")) + 1
}

// dropped lists the leaves of the tree that carry a value the parser did
// not read into the model: what a conversion of this document loses.
func dropped(root *node) []string {
	var out []string
	var walk func(n *node)
	walk = func(n *node) {
		if len(n.kids) == 0 {
			if !n.used && strings.TrimSpace(n.text) != "" {
				out = append(out, cleanPath(n.path()))
			}
			return
		}
		for _, k := range n.kids {
			walk(k)
		}
	}
	walk(root)
	return out
}

// prefixed names an element the way UBL documents usually do.
func prefixed(n xml.Name) string {
	if p, ok := prefixOf[n.Space]; ok {
		return p + ":" + n.Local
	}
	return n.Local
}

// prefixOf and namespaceOf map the namespaces of UBL and CII to the
// prefixes their documents conventionally use.
var (
	prefixOf    = map[string]string{nsCAC: "cac", nsCBC: "cbc", nsRSM: "rsm", nsRAM: "ram", nsUDT: "udt", nsQDT: "qdt"}
	namespaceOf = map[string]string{"cac": nsCAC, "cbc": nsCBC, "rsm": nsRSM, "ram": nsRAM, "udt": nsUDT, "qdt": nsQDT}
)

// cleanPath drops the "[1]" of the first occurrence, which reads better
// for elements that occur once.
func cleanPath(p string) string { return strings.ReplaceAll(p, "[1]", "") }

// child returns the first child named local in namespace ns, or nil.
func (n *node) child(ns, local string) *node {
	if n == nil {
		return nil
	}
	for _, k := range n.kids {
		if k.name.Space == ns && k.name.Local == local {
			k.used = true
			return k
		}
	}
	return nil
}

func (n *node) children(ns, local string) []*node {
	if n == nil {
		return nil
	}
	var out []*node
	for _, k := range n.kids {
		if k.name.Space == ns && k.name.Local == local {
			k.used = true
			out = append(out, k)
		}
	}
	return out
}

// at walks a path of "cac:X" / "cbc:Y" steps.
func (n *node) at(steps ...string) *node {
	for _, s := range steps {
		prefix, local, _ := strings.Cut(s, ":")
		n = n.child(namespaceOf[prefix], local)
	}
	return n
}

func (n *node) str(steps ...string) string {
	if m := n.at(steps...); m != nil {
		return strings.TrimSpace(m.text)
	}
	return ""
}

func (n *node) attr(local string) string {
	if n == nil {
		return ""
	}
	for _, a := range n.attrs {
		if a.Name.Local == local {
			return strings.TrimSpace(a.Value)
		}
	}
	return ""
}

// parser collects violations and remembers where each model field came
// from, so Validate's field paths can be reported as element paths.
type parser struct {
	violations []Violation
	locs       map[string]string
	sellerSEPA string // BT-90 found among the seller's UBL identifiers
}

func (p *parser) add(path, format string, args ...any) {
	p.violations = append(p.violations, newViolation(cleanPath(path), fmt.Sprintf(format, args...)))
}

// required returns the text at steps below n, reporting it when missing.
func (p *parser) required(n *node, what string, steps ...string) string {
	s := n.str(steps...)
	if s == "" && n != nil {
		p.add(n.path()+"/"+strings.Join(steps, "/"), "%s is required", what)
	}
	return s
}

// decimalAt parses the amount or quantity at steps below n; field is the
// model path it fills.
func (p *parser) decimalAt(n *node, field string, required bool, steps ...string) decimal.Decimal {
	m := n.at(steps...)
	if m == nil {
		if required && n != nil {
			p.add(n.path()+"/"+strings.Join(steps, "/"), "is required")
		}
		return decimal.Zero
	}
	p.locs[field] = m.path()
	v, err := decimal.NewFromString(strings.TrimSpace(m.text))
	if err != nil {
		p.add(m.path(), "%q is not a number", strings.TrimSpace(m.text))
		return decimal.Zero
	}
	return v
}

func (p *parser) dateAt(n *node, field string, steps ...string) Date {
	m := n.at(steps...)
	if m == nil {
		return Date{}
	}
	p.locs[field] = m.path()
	d, err := ParseDate(strings.TrimSpace(m.text))
	if err != nil {
		p.add(m.path(), "%s", err)
	}
	return d
}

func (p *parser) header(root *node, d *Document) {
	d.Specification = root.str("cbc:CustomizationID")
	if d.Specification == "" {
		p.add(root.path()+"/cbc:CustomizationID", "the specification identifier is required (BR-01)")
	}
	d.Process = root.str("cbc:ProfileID")
	tcName := "cbc:InvoiceTypeCode"
	if d.Kind == KindCreditNote {
		tcName = "cbc:CreditNoteTypeCode"
	}
	if tc := root.str(tcName); tc != "" && tc != d.typeCode() {
		d.TypeCode = tc
	}
	p.locs["type_code"] = root.path() + "/" + tcName
	d.Number = p.required(root, "the document number (BR-02)", "cbc:ID")
	p.locs["number"] = root.path() + "/cbc:ID"
	if root.at("cbc:IssueDate") == nil {
		p.add(root.path()+"/cbc:IssueDate", "the issue date is required (BR-03)")
	}
	d.IssueDate = p.dateAt(root, "issue_date", "cbc:IssueDate")
	d.DueDate = p.dateAt(root, "due_date", "cbc:DueDate")
	if d.DueDate.IsZero() {
		d.DueDate = p.dateAt(root, "due_date", "cac:PaymentMeans", "cbc:PaymentDueDate")
	}
	d.Currency = p.required(root, "the document currency (BR-05)", "cbc:DocumentCurrencyCode")
	p.locs["currency"] = root.path() + "/cbc:DocumentCurrencyCode"
	d.CurrencyExponent = CurrencyExponent(d.Currency)
	d.TaxCurrency = root.str("cbc:TaxCurrencyCode")
	d.BuyerReference = root.str("cbc:BuyerReference")
	p.locs["buyer_reference"] = root.path() + "/cbc:BuyerReference"
	d.OrderReference = root.str("cac:OrderReference", "cbc:ID")
	d.ContractReference = root.str("cac:ContractDocumentReference", "cbc:ID")
	p.ublReferences(root, d)
	d.AccountingCost = root.str("cbc:AccountingCost")
	d.DeliveryDate = p.dateAt(root, "delivery_date", "cac:Delivery", "cbc:ActualDeliveryDate")
	for _, n := range root.children(nsCBC, "Note") {
		if s := strings.TrimSpace(n.text); s != "" {
			d.Notes = append(d.Notes, s)
		}
	}
	if ip := root.at("cac:InvoicePeriod"); ip != nil {
		d.TaxPointDateCode = ip.str("cbc:DescriptionCode")
		p.locs["tax_point_date_code"] = ip.path() + "/cbc:DescriptionCode"
		if ip.at("cbc:StartDate") != nil || ip.at("cbc:EndDate") != nil || d.TaxPointDateCode == "" {
			d.Period = p.period(ip, "period") // a period carrying only BT-8 is no period
		}
	}
	if ref := root.at("cac:BillingReference", "cac:InvoiceDocumentReference"); ref != nil {
		d.InvoiceReference = &InvoiceReference{
			Number:    p.required(ref, "the referenced invoice number", "cbc:ID"),
			IssueDate: p.dateAt(ref, "invoice_reference.issue_date", "cbc:IssueDate"),
		}
	}
	d.Seller = p.party(root, "cac:AccountingSupplierParty", "seller")
	if d.CreditorReference == "" {
		d.CreditorReference = p.sellerSEPA
	}
	d.Buyer = p.party(root, "cac:AccountingCustomerParty", "buyer")
	p.ublParties(root, d)
	p.ublPaymentMeans(root, d)
	var terms []string
	for _, t := range root.children(nsCAC, "PaymentTerms") {
		if s := t.str("cbc:Note"); s != "" {
			terms = append(terms, s)
		}
	}
	d.PaymentTerms = strings.Join(terms, "\n")
	for i, n := range root.children(nsCAC, "AllowanceCharge") {
		d.AllowanceCharges = append(d.AllowanceCharges, p.allowanceCharge(n, fmt.Sprintf("allowance_charges[%d]", i), true))
	}
	p.taxTotals(root, d)
	p.totals(root.at("cac:LegalMonetaryTotal"), root, d)
	lineName, qtyName := "InvoiceLine", "InvoicedQuantity"
	if d.Kind == KindCreditNote {
		lineName, qtyName = "CreditNoteLine", "CreditedQuantity"
	}
	lines := root.children(nsCAC, lineName)
	if len(lines) == 0 {
		p.add(root.path()+"/cac:"+lineName, "at least one line is required (BR-16)")
	}
	for i, n := range lines {
		d.Lines = append(d.Lines, p.line(n, i, qtyName))
	}
}

func (p *parser) period(n *node, field string) *Period {
	if n == nil {
		return nil
	}
	p.locs[field] = n.path()
	return &Period{Start: p.dateAt(n, field+".start", "cbc:StartDate"), End: p.dateAt(n, field+".end", "cbc:EndDate")}
}

func (p *parser) party(root *node, role, field string) Party {
	n := root.at(role, "cac:Party")
	if n == nil {
		p.add(root.path()+"/"+role+"/cac:Party", "the %s party is required", field)
		return Party{}
	}
	p.locs[field+".name"] = n.path() + "/cac:PartyLegalEntity/cbc:RegistrationName"
	p.locs[field+".endpoint_id"] = n.path() + "/cbc:EndpointID"
	p.locs[field+".country_code"] = n.path() + "/cac:PostalAddress/cac:Country/cbc:IdentificationCode"
	p.locs[field+".vat_id"] = n.path() + "/cac:PartyTaxScheme/cbc:CompanyID"
	pty := Party{
		Name:           n.str("cac:PartyLegalEntity", "cbc:RegistrationName"),
		TradingName:    n.str("cac:PartyName", "cbc:Name"),
		City:           n.str("cac:PostalAddress", "cbc:CityName"),
		PostalCode:     n.str("cac:PostalAddress", "cbc:PostalZone"),
		Subdivision:    n.str("cac:PostalAddress", "cbc:CountrySubentity"),
		CountryCode:    n.str("cac:PostalAddress", "cac:Country", "cbc:IdentificationCode"),
		LegalID:        n.str("cac:PartyLegalEntity", "cbc:CompanyID"),
		LegalIDScheme:  n.at("cac:PartyLegalEntity", "cbc:CompanyID").attr("schemeID"),
		LegalForm:      n.str("cac:PartyLegalEntity", "cbc:CompanyLegalForm"),
		ContactName:    n.str("cac:Contact", "cbc:Name"),
		Phone:          n.str("cac:Contact", "cbc:Telephone"),
		Email:          n.str("cac:Contact", "cbc:ElectronicMail"),
		EndpointID:     n.str("cbc:EndpointID"),
		EndpointScheme: n.at("cbc:EndpointID").attr("schemeID"),
	}
	if a := ublAddress(n.at("cac:PostalAddress")); a != nil {
		pty.Address = a.Lines
	}
	var sellerIDList []PartyID
	for _, pi := range n.children(nsCAC, "PartyIdentification") {
		// The seller's SEPA creditor identifier (BT-90) is an identifier
		// of the party in UBL but a settlement term in the model.
		id := pi.at("cbc:ID")
		switch {
		case field == "seller" && strings.EqualFold(id.attr("schemeID"), sepaScheme):
			p.sellerSEPA = id.str()
		case field == "seller":
			sellerIDList = append(sellerIDList, PartyID{ID: id.str(), Scheme: id.attr("schemeID")})
		case pty.ID == "":
			pty.ID, pty.IDScheme = id.str(), id.attr("schemeID")
		default:
			id.used = false // the buyer has one identifier (BT-46); a second is reported
		}
	}
	if len(sellerIDList) > 0 {
		var first PartyID
		first, pty.OtherIDs = sellerIDs(sellerIDList)
		pty.ID, pty.IDScheme = first.ID, first.Scheme
	}
	for _, ts := range n.children(nsCAC, "PartyTaxScheme") {
		// Only the VAT scheme is the VAT identifier; another scheme is
		// the seller's tax registration (BT-32).
		if strings.EqualFold(ts.str("cac:TaxScheme", "cbc:ID"), "VAT") {
			pty.VATID = ts.str("cbc:CompanyID")
		} else if field == "seller" && pty.TaxRegistrationID == "" {
			pty.TaxRegistrationID = ts.str("cbc:CompanyID")
		} else {
			ts.at("cbc:CompanyID").used = false
		}
	}
	if pty.Name == "" {
		p.add(n.path()+"/cac:PartyLegalEntity/cbc:RegistrationName", "the %s name is required (BR-06/BR-07)", field)
	}
	return pty
}

func (p *parser) taxCategory(n *node, field string) Tax {
	if n == nil {
		return Tax{}
	}
	p.locs[field] = n.path()
	p.locs[field+".rate"] = n.path() + "/cbc:Percent"
	t := Tax{
		Category:            TaxCategory(p.required(n, "the VAT category code", "cbc:ID")),
		ExemptionReason:     n.str("cbc:TaxExemptionReason"),
		ExemptionReasonCode: n.str("cbc:TaxExemptionReasonCode"),
	}
	if ts := n.str("cac:TaxScheme", "cbc:ID"); !strings.EqualFold(ts, "VAT") {
		p.add(n.path()+"/cac:TaxScheme/cbc:ID", "the tax scheme must be VAT, not %q", ts)
	}
	t.Rate = p.decimalAt(n, field+".rate", false, "cbc:Percent")
	// Normalise "25.0" to "25" so groups with the same rate compare equal.
	t.Rate = decimal.RequireFromString(t.Rate.String())
	return t
}

func (p *parser) allowanceCharge(n *node, field string, docLevel bool) AllowanceCharge {
	ac := AllowanceCharge{
		Reason:     n.str("cbc:AllowanceChargeReason"),
		ReasonCode: n.str("cbc:AllowanceChargeReasonCode"),
	}
	switch ind := strings.TrimSpace(n.str("cbc:ChargeIndicator")); ind {
	case "true":
		ac.Charge = true
	case "false":
	default:
		p.add(n.path()+"/cbc:ChargeIndicator", "must be true or false, not %q (PEPPOL-EN16931-R043)", ind)
	}
	ac.Amount = p.decimalAt(n, field+".amount", true, "cbc:Amount")
	ac.BaseAmount = p.decimalAt(n, field+".base_amount", false, "cbc:BaseAmount")
	ac.Percent = p.decimalAt(n, field+".percent", false, "cbc:MultiplierFactorNumeric")
	if docLevel {
		if tc := n.at("cac:TaxCategory"); tc != nil {
			t := p.taxCategory(tc, field+".tax")
			ac.Tax = &t
		}
	}
	return ac
}

func (p *parser) taxTotals(root *node, d *Document) {
	var withSubtotals *node
	for _, tt := range root.children(nsCAC, "TaxTotal") {
		amount := tt.at("cbc:TaxAmount")
		if cur := amount.attr("currencyID"); cur != "" && cur == d.TaxCurrency && cur != d.Currency {
			d.TaxInTaxCurrency = p.decimalAt(tt, "tax_in_tax_currency", true, "cbc:TaxAmount")
			continue
		}
		if withSubtotals != nil {
			p.add(tt.path(), "only one tax total in the document currency is allowed (PEPPOL-EN16931-R053)")
			continue
		}
		withSubtotals = tt
		d.Totals.Tax = p.decimalAt(tt, "totals.tax", true, "cbc:TaxAmount")
		for i, st := range tt.children(nsCAC, "TaxSubtotal") {
			f := fmt.Sprintf("tax_breakdown[%d]", i)
			p.locs[f] = st.path()
			g := TaxSubtotal{
				TaxableAmount: p.decimalAt(st, f+".taxable_amount", true, "cbc:TaxableAmount"),
				TaxAmount:     p.decimalAt(st, f+".tax_amount", true, "cbc:TaxAmount"),
			}
			if tc := st.at("cac:TaxCategory"); tc != nil {
				g.Tax = p.taxCategory(tc, f+".tax")
			} else {
				p.add(st.path()+"/cac:TaxCategory", "the tax category is required")
			}
			d.TaxBreakdown = append(d.TaxBreakdown, g)
		}
	}
	if withSubtotals == nil {
		p.add(root.path()+"/cac:TaxTotal", "a tax total with the tax breakdown is required (BR-CO-18)")
	}
}

func (p *parser) totals(n, root *node, d *Document) {
	if n == nil {
		p.add(root.path()+"/cac:LegalMonetaryTotal", "the document totals are required")
		return
	}
	t := &d.Totals
	t.LineExtension = p.decimalAt(n, "totals.line_extension", true, "cbc:LineExtensionAmount")
	t.TaxExclusive = p.decimalAt(n, "totals.tax_exclusive", true, "cbc:TaxExclusiveAmount")
	t.TaxInclusive = p.decimalAt(n, "totals.tax_inclusive", true, "cbc:TaxInclusiveAmount")
	t.AllowanceTotal = p.decimalAt(n, "totals.allowance_total", false, "cbc:AllowanceTotalAmount")
	t.ChargeTotal = p.decimalAt(n, "totals.charge_total", false, "cbc:ChargeTotalAmount")
	t.Prepaid = p.decimalAt(n, "totals.prepaid", false, "cbc:PrepaidAmount")
	t.PayableRounding = p.decimalAt(n, "totals.payable_rounding", false, "cbc:PayableRoundingAmount")
	t.Payable = p.decimalAt(n, "totals.payable", true, "cbc:PayableAmount")
}

func (p *parser) line(n *node, i int, qtyName string) Line {
	f := fmt.Sprintf("lines[%d]", i)
	item := n.at("cac:Item")
	l := Line{
		ID:           p.required(n, "the line identifier (BR-21)", "cbc:ID"),
		Note:         n.str("cbc:Note"),
		Name:         p.required(n, "the item name (BR-25)", "cac:Item", "cbc:Name"),
		Description:  item.str("cbc:Description"),
		SellerItemID: item.str("cac:SellersItemIdentification", "cbc:ID"),
		UnitCode:     n.at("cbc:" + qtyName).attr("unitCode"),
	}
	p.locs[f+".name"] = n.path() + "/cac:Item/cbc:Name"
	p.locs[f+".unit_code"] = n.path() + "/cbc:" + qtyName
	l.Quantity = p.decimalAt(n, f+".quantity", true, "cbc:"+qtyName)
	l.NetAmount = p.decimalAt(n, f+".net_amount", true, "cbc:LineExtensionAmount")
	l.UnitPrice = p.decimalAt(n, f+".unit_price", true, "cac:Price", "cbc:PriceAmount")
	l.BaseQuantity = p.decimalAt(n, f+".base_quantity", false, "cac:Price", "cbc:BaseQuantity")
	l.Period = p.period(n.at("cac:InvoicePeriod"), f+".period")
	for j, ac := range n.children(nsCAC, "AllowanceCharge") {
		l.AllowanceCharges = append(l.AllowanceCharges, p.allowanceCharge(ac, fmt.Sprintf("%s.allowance_charges[%d]", f, j), false))
	}
	if tc := item.at("cac:ClassifiedTaxCategory"); tc != nil {
		l.Tax = p.taxCategory(tc, f+".tax")
	} else if item != nil {
		p.add(item.path()+"/cac:ClassifiedTaxCategory", "the item's VAT category is required (BR-CO-4)")
	}
	l.AccountingCost, l.OrderLineRef = n.str("cbc:AccountingCost"), n.str("cac:OrderLineReference", "cbc:LineID")
	std := item.at("cac:StandardItemIdentification", "cbc:ID")
	l.StandardItemID, l.StandardItemScheme = std.str(), std.attr("schemeID")
	l.OriginCountry = item.str("cac:OriginCountry", "cbc:IdentificationCode")
	for _, c := range item.children(nsCAC, "CommodityClassification") {
		code := c.at("cbc:ItemClassificationCode")
		l.Classifications = append(l.Classifications, Classification{Code: code.str(), ListID: code.attr("listID"), ListVersion: code.attr("listVersionID")})
	}
	for _, a := range item.children(nsCAC, "AdditionalItemProperty") {
		l.Attributes = append(l.Attributes, ItemAttribute{Name: a.str("cbc:Name"), Value: a.str("cbc:Value")})
	}
	ublLineTerms(n, item, &l)
	// The breakdown carries the exemption reason; lines do not in UBL.
	return l
}

// fromValidate runs Validate on the parsed document and reports each
// field problem at the element it came from.
func (p *parser) fromValidate(d *Document) []Violation {
	err := d.Validate()
	e, ok := abacus.AsError(err)
	if !ok {
		return nil
	}
	seen := map[string]bool{}
	for _, v := range p.violations {
		seen[v.Path] = true
	}
	var out []Violation
	for _, f := range e.Fields {
		path, msg := f.Field, f.Message
		if loc, exact := p.lookup(f.Field); loc != "" {
			path = cleanPath(loc)
			if !exact { // located at a parent element: say which part
				msg = f.Field[strings.LastIndex(f.Field, ".")+1:] + " " + msg
			}
		}
		if seen[path] && strings.HasSuffix(f.Message, "is required") {
			continue // already reported as a missing element
		}
		out = append(out, newViolation(path, msg))
	}
	return out
}

// lookup finds the element for a model field, or for its closest parent
// (exact is false then).
func (p *parser) lookup(field string) (loc string, exact bool) {
	for f := field; f != ""; {
		if loc, ok := p.locs[f]; ok {
			return loc, f == field
		}
		i := strings.LastIndex(f, ".")
		if i < 0 {
			return "", false
		}
		f = f[:i]
	}
	return "", false
}
