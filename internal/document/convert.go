package document

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/abacusbilling/abacus"
)

// Report is what reading a document found: the syntax it was in, every
// rule it breaks, and every element with a value the model does not carry
// (which a conversion of it therefore cannot carry either).
type Report struct {
	Format     Format      `json:"format"`
	Violations []Violation `json:"violations"`
	// Dropped lists what a conversion loses: element paths of the input
	// the model does not carry, and model fields the target format cannot
	// carry ("lines[0].breakdown"). Empty when nothing is lost.
	Dropped []string `json:"dropped"`
}

// Valid reports whether the document broke no fatal rule.
func (r *Report) Valid() bool {
	for _, v := range r.Violations {
		if v.Severity != "warning" {
			return false
		}
	}
	return true
}

// Error codes of Detect and Parse.
const (
	CodeUnrecognised = "document_format_unrecognised" // none of the formats Detect knows
	CodeNoEmbedded   = "facturx_no_xml"               // a PDF without an embedded invoice
)

// Detect tells the format of data from its content: a PDF (read as
// Factur-X/ZUGFeRD), a JSON document of the model, a UBL 2.1 Invoice or
// CreditNote, or a CII CrossIndustryInvoice. It returns an *abacus.Error
// of KindInvalid, code "document_format_unrecognised", otherwise.
func Detect(data []byte) (Format, error) {
	b := bytes.TrimLeft(bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")), " \t\r\n")
	switch {
	case bytes.HasPrefix(b, []byte("%PDF-")):
		return FormatFacturX, nil
	case bytes.HasPrefix(b, []byte("{")):
		return FormatJSON, nil
	case bytes.HasPrefix(b, []byte("<")):
		dec := xml.NewDecoder(bytes.NewReader(b))
		for {
			tok, err := dec.Token()
			if errors.Is(err, io.EOF) || err != nil {
				return "", abacus.Invalid(CodeUnreadable, "the document is not well-formed XML: %v", err)
			}
			switch t := tok.(type) {
			case xml.Directive:
				return "", abacus.Invalid(CodeUnreadable, "the document is not acceptable XML: a DOCTYPE or other declaration is not allowed (document type definitions and entities are refused, never expanded)")
			case xml.StartElement:
				switch {
				case t.Name.Space == nsInvoice && t.Name.Local == "Invoice", t.Name.Space == nsCreditNote && t.Name.Local == "CreditNote":
					return FormatUBL, nil
				case t.Name.Space == nsRSM && t.Name.Local == "CrossIndustryInvoice":
					return FormatCII, nil
				}
				return "", abacus.Invalid(CodeUnrecognised, "the root element {%s}%s is neither a UBL 2.1 Invoice or CreditNote nor a CII D16B CrossIndustryInvoice (check the namespace)", t.Name.Space, t.Name.Local)
			}
		}
	}
	return "", abacus.Invalid(CodeUnrecognised, "the document is not UBL, CII, Factur-X (PDF) or JSON: it starts with neither <, { nor %%PDF-")
}

// Parse detects data's format (see Detect) and reads it into a Document
// with a Report. A PDF must be a Factur-X/ZUGFeRD with an embedded CII
// (error "facturx_no_xml" otherwise). Like ParseUBL it returns the document
// even when it breaks rules, and an error only when it cannot be read.
func Parse(data []byte) (*Document, *Report, error) {
	if len(data) > maxUBLDocuments {
		return nil, nil, abacus.Errorf(abacus.KindTooLarge, "document_too_large", "the document is larger than %d MiB", maxUBLDocuments>>20)
	}
	f, err := Detect(data)
	if err != nil {
		return nil, nil, err
	}
	switch f {
	case FormatFacturX:
		xmlData, err := ExtractFacturX(data)
		if err != nil {
			return nil, nil, err
		}
		d, rep, err := Parse(xmlData)
		if err != nil {
			return nil, nil, err
		}
		rep.Format = FormatFacturX
		return d, rep, nil
	case FormatJSON:
		return parseJSON(data)
	}
	root, err := parseTree(data)
	if err != nil {
		return nil, nil, abacus.Invalid(CodeUnreadable, "the document is not well-formed XML: %s", err)
	}
	if f == FormatCII {
		return parseCIITree(root)
	}
	return parseUBLTree(root)
}

// parseJSON reads the model's own JSON (what JSON writes). Unknown fields
// are refused rather than dropped.
func parseJSON(data []byte) (*Document, *Report, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var d Document
	if err := dec.Decode(&d); err != nil {
		return nil, nil, abacus.Invalid(CodeUnreadable, "the JSON document does not match the document model: %s", err)
	}
	if dec.More() {
		return nil, nil, abacus.Invalid(CodeUnreadable, "the JSON document is followed by more data")
	}
	p := &parser{locs: map[string]string{}}
	return &d, &Report{Format: FormatJSON, Violations: p.fromValidate(&d), Dropped: []string{}}, nil
}

// Convert reads data in any format Parse knows and renders it in f. A
// document that breaks a rule is refused with a KindUnprocessable
// *abacus.Error of code "document_invalid" whose Fields list every
// violation ("[RULE severity] message" at its element path); the Report is
// returned beside it. The Report's Dropped lists what the conversion lost.
// Errors of Parse and Render.
func Convert(data []byte, f Format) ([]byte, *Report, error) {
	d, rep, err := Parse(data)
	if err != nil {
		return nil, nil, err
	}
	if !rep.Valid() {
		return nil, rep, ReportError(rep)
	}
	out, err := Render(d, f)
	if err != nil {
		return nil, rep, err
	}
	rep.Dropped = append(rep.Dropped, TargetDrops(d, f)...)
	return out, rep, nil
}

// ReportError is the *abacus.Error (KindUnprocessable, code
// "document_invalid") that refuses a document with rep's violations.
func ReportError(rep *Report) *abacus.Error {
	first := rep.Violations[0]
	e := abacus.Errorf(abacus.KindUnprocessable, CodeInvalid, "the %s document breaks %d rules; the first: %s at %s: %s",
		rep.Format, len(rep.Violations), first.Rule, first.Path, first.Message)
	for _, v := range rep.Violations {
		e.Fields = append(e.Fields, abacus.FieldError{Field: v.Path, Message: fmt.Sprintf("[%s %s] %s", v.Rule, v.Severity, v.Message)})
	}
	return e
}

// TargetDrops lists the fields of d that format f cannot carry: a line's
// breakdown in every e-invoice syntax, the buyer's legal form and a later
// payment means' own payment id in CII, a gross price UBL cannot state
// validly (see ublCarriesGross), everything but the lines in CSV, and in
// CSV and PDF the references, parties and item terms only the e-invoice
// syntaxes carry (BT-7, BT-8, BT-11 to BT-19, a second BT-29, BT-32, BT-72, BT-82, BT-89, BT-90,
// BT-87/88, BT-91, BG-10, BG-11, BG-13, BG-24, and per line BT-128, BT-132, BT-133,
// BT-147/148, BT-156 to BT-161).
func TargetDrops(d *Document, f Format) []string {
	var out []string
	switch f {
	case FormatJSON:
		return nil
	case FormatPDF:
		return buyerTerms(d)
	case FormatCSV:
		out = buyerTerms(d)
		for _, s := range []struct {
			field string
			set   bool
		}{
			{"seller", d.Seller.Name != ""}, {"buyer", d.Buyer.Name != ""}, {"tax_breakdown", len(d.TaxBreakdown) > 0},
			{"totals", true}, {"allowance_charges", len(d.AllowanceCharges) > 0}, {"payment_means", d.PaymentMeans != nil},
			{"payment_terms", d.PaymentTerms != ""}, {"notes", len(d.Notes) > 0}, {"invoice_reference", d.InvoiceReference != nil},
		} {
			if s.set {
				out = append(out, s.field)
			}
		}
		return out
	}
	for i, l := range d.Lines {
		if len(l.Breakdown) > 0 {
			out = append(out, fmt.Sprintf("lines[%d].breakdown", i))
		}
	}
	cii := f == FormatCII || f == FormatXRechnungCII || f == FormatFacturX || f == FormatFacturXBasic
	if cii && d.Buyer.LegalForm != "" {
		out = append(out, "buyer.legal_form")
	}
	if cii {
		out = append(out, ciiCannotCarry(d)...)
	} else {
		out = append(out, ublCannotCarry(d)...)
	}
	return out
}

// ublCannotCarry lists the set fields of d UBL has no valid place for: a
// gross price with a base quantity of its own or that does not give the
// net price (see ublCarriesGross; the discount itself is carried), and a
// mandate without payment means to hang it on.
func ublCannotCarry(d *Document) []string {
	var out []string
	for i, l := range d.Lines {
		if ublCarriesGross(l) {
			continue
		}
		if !l.GrossPrice.IsZero() {
			out = append(out, fmt.Sprintf("lines[%d].gross_price", i))
		}
		if !l.GrossBaseQuantity.IsZero() {
			out = append(out, fmt.Sprintf("lines[%d].gross_base_quantity", i))
		}
	}
	if d.MandateReference != "" && d.PaymentMeans == nil {
		out = append(out, "mandate_reference")
	}
	return out
}

// XRechnung renders d as XRechnung 3.0 in syntax (FormatUBL or FormatCII):
// the specification identifier becomes XRechnung's, and the XRechnung
// rules (BR-DE-*: the buyer reference carrying the Leitweg-ID, seller
// contact, addresses, payment instructions, electronic addresses) are
// checked beside EN 16931's. Errors as UBL and CII.
func XRechnung(d *Document, syntax Format) ([]byte, error) {
	c := *d
	c.Specification = SpecXRechnung
	if c.Process == "" {
		c.Process = ProfileID
	}
	if syntax == FormatCII {
		return CII(&c)
	}
	return UBL(&c)
}

// buyerTerms lists the set fields only the XML syntaxes and JSON carry.
func buyerTerms(d *Document) []string {
	var out []string
	for field, set := range map[string]bool{"contract_reference": d.ContractReference != "", "accounting_cost": d.AccountingCost != "",
		"delivery_date": !d.DeliveryDate.IsZero(), "tax_point_date": !d.TaxPointDate.IsZero(), "tax_point_date_code": d.TaxPointDateCode != "",
		"project_reference": d.ProjectReference != "", "seller_order_reference": d.SellerOrderReference != "",
		"receiving_advice_reference": d.ReceivingAdviceReference != "", "despatch_advice_reference": d.DespatchAdviceReference != "",
		"tender_reference": d.TenderReference != "", "documents": len(d.Documents) > 0, "delivery": d.Delivery != nil,
		"payee": d.Payee != nil, "tax_representative": d.TaxRepresentative != nil, "other_payment_means": len(d.OtherPaymentMeans) > 0,
		"mandate_reference": d.MandateReference != "", "creditor_reference": d.CreditorReference != "",
		"seller.tax_registration_id": d.Seller.TaxRegistrationID != "", "seller.other_ids": len(d.Seller.OtherIDs) > 0,
		"payment_means.information":     d.PaymentMeans != nil && d.PaymentMeans.Information != "",
		"payment_means.debited_account": d.PaymentMeans != nil && d.PaymentMeans.DebitedAccount != "",
		"payment_means.card_number":     d.PaymentMeans != nil && d.PaymentMeans.CardNumber != ""} {
		if set {
			out = append(out, field)
		}
	}
	slices.Sort(out)
	for i, l := range d.Lines {
		for _, t := range []struct {
			field string
			set   bool
		}{
			{"order_line_ref", l.OrderLineRef != ""}, {"accounting_cost", l.AccountingCost != ""},
			{"standard_item_id", l.StandardItemID != ""}, {"classifications", len(l.Classifications) > 0},
			{"origin_country", l.OriginCountry != ""}, {"attributes", len(l.Attributes) > 0},
			{"buyer_item_id", l.BuyerItemID != ""}, {"object_id", l.ObjectID != ""}, {"gross_price", !l.GrossPrice.IsZero()},
			{"price_discount", !l.PriceDiscount.IsZero()}, {"gross_base_quantity", !l.GrossBaseQuantity.IsZero()},
		} {
			if t.set {
				out = append(out, fmt.Sprintf("lines[%d].%s", i, t.field))
			}
		}
	}
	return out
}
