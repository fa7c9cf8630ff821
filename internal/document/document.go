// Package document turns finalized invoices and credit notes into the
// documents customers and their accounting systems read: UBL 2.1 XML that
// conforms to Peppol BIS Billing 3.0 / EN 16931, JSON, CSV and PDF. It also
// reads UBL 2.1 invoices and credit notes from others (ParseUBL) so they can
// be checked and converted.
//
// The package knows nothing about storage or HTTP. Billing maps its invoices
// to a Document, calls ComputeTotals (which does the EN 16931 arithmetic:
// tax breakdown per category and rate, document totals) and Validate, then a
// renderer:
//
//	lines + allowances ──ComputeTotals──▶ Document ──Validate──▶ UBL / JSON / CSV / PDF
//	UBL from a supplier ──ParseUBL──▶ Document + []Violation ──▶ JSON / CSV / PDF
//
// Amounts are exact decimals. A Document carries its currency exponent
// (2 for EUR, 0 for JPY, 3 for KWD); every amount has at most that many
// decimal places. Peppol allows at most two decimals on amounts, so UBL
// refuses a document whose amounts use a third (see UBL).
package document

import (
	"fmt"
	"time"

	"github.com/shopspring/decimal"
)

// Kind says whether a Document is an invoice or a credit note.
type Kind string

const (
	KindInvoice    Kind = "invoice"     // UBL Invoice, type code 380
	KindCreditNote Kind = "credit_note" // UBL CreditNote, type code 381
)

// TaxCategory is a VAT category code from UNCL 5305 as restricted by
// EN 16931.
type TaxCategory string

const (
	TaxStandard      TaxCategory = "S"  // standard rate
	TaxZeroRated     TaxCategory = "Z"  // zero-rated goods
	TaxExempt        TaxCategory = "E"  // exempt from tax; needs an exemption reason
	TaxReverseCharge TaxCategory = "AE" // VAT reverse charge; buyer accounts for the tax
	TaxIntraEU       TaxCategory = "K"  // intra-community supply (no delivery data carried; see Validate)
	TaxExport        TaxCategory = "G"  // free export item, tax not charged
	TaxNotSubject    TaxCategory = "O"  // services outside the scope of tax
	TaxCanary        TaxCategory = "L"  // Canary Islands general indirect tax
	TaxCeutaMelilla  TaxCategory = "M"  // tax for production, services and importation in Ceuta and Melilla
)

// taxCategoryOrder orders the tax breakdown: standard first, then zero
// and the exemptions, the way invoices are usually read.
var taxCategoryOrder = map[TaxCategory]int{
	TaxStandard: 0, TaxCanary: 1, TaxCeutaMelilla: 2, TaxZeroRated: 3, TaxExempt: 4,
	TaxReverseCharge: 5, TaxIntraEU: 6, TaxExport: 7, TaxNotSubject: 8,
}

// Valid reports whether c is a category EN 16931 accepts.
func (c TaxCategory) Valid() bool {
	_, ok := taxCategoryOrder[c]
	return ok
}

// charged reports whether tax is calculated for c (taxable × rate); for the
// other categories the tax amount is zero by rule.
func (c TaxCategory) charged() bool {
	return c == TaxStandard || c == TaxCanary || c == TaxCeutaMelilla
}

// needsExemption reports whether EN 16931 requires an exemption reason text
// or code for c (BR-E-10, BR-AE-10, BR-IC-10, BR-G-10, BR-O-10), and
// forbidsExemption whether it forbids one (BR-S-10, BR-Z-10).
func (c TaxCategory) needsExemption() bool {
	return c == TaxExempt || c == TaxReverseCharge || c == TaxIntraEU || c == TaxExport || c == TaxNotSubject
}

func (c TaxCategory) forbidsExemption() bool {
	return c == TaxStandard || c == TaxZeroRated || c == TaxCanary || c == TaxCeutaMelilla
}

// defaultExemption is the exemption reason code and text ComputeTotals fills
// in when the caller gave none. E has no default: the seller must say which
// exemption applies.
var defaultExemption = map[TaxCategory][2]string{
	TaxReverseCharge: {"VATEX-EU-AE", "Reverse charge"},
	TaxIntraEU:       {"VATEX-EU-IC", "Intra-Community supply"},
	TaxExport:        {"VATEX-EU-G", "Export outside the EU"},
	TaxNotSubject:    {"VATEX-EU-O", "Not subject to VAT"},
}

// Tax is the VAT treatment of a line, allowance or charge, and the key of a
// tax breakdown group. Rate is a percentage (25 for 25 %); it is zero for
// every category but S, L and M, and absent from UBL for O.
type Tax struct {
	Category            TaxCategory     `json:"category"`
	Rate                decimal.Decimal `json:"rate"`
	ExemptionReason     string          `json:"exemption_reason,omitempty"`
	ExemptionReasonCode string          `json:"exemption_reason_code,omitempty"` // VATEX code, e.g. "VATEX-EU-AE"
}

// key identifies a tax breakdown group: one per category and rate.
func (t Tax) key() string { return string(t.Category) + "|" + t.Rate.String() }

// Date is a calendar date without time or zone, written YYYY-MM-DD.
type Date struct {
	Year  int
	Month time.Month
	Day   int
}

// DateOf returns the calendar date of t in t's location.
func DateOf(t time.Time) Date {
	y, m, d := t.Date()
	return Date{y, m, d}
}

// ParseDate reads a YYYY-MM-DD date. It returns an error naming the
// expected format when s is not one.
func ParseDate(s string) (Date, error) {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return Date{}, fmt.Errorf("date %q is not YYYY-MM-DD", s)
	}
	return DateOf(t), nil
}

// IsZero reports whether d is unset.
func (d Date) IsZero() bool { return d == Date{} }

// String returns d as YYYY-MM-DD, or "" when unset.
func (d Date) String() string {
	if d.IsZero() {
		return ""
	}
	return fmt.Sprintf("%04d-%02d-%02d", d.Year, d.Month, d.Day)
}

// Before reports whether d is earlier than e.
func (d Date) Before(e Date) bool { return d.time().Before(e.time()) }

func (d Date) time() time.Time { return time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, time.UTC) }

// MarshalText writes d as YYYY-MM-DD.
func (d Date) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText reads YYYY-MM-DD; an empty text leaves d unset.
func (d *Date) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*d = Date{}
		return nil
	}
	v, err := ParseDate(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// Period is a billing or delivery period; either end may be unset
// (BR-CO-19 requires at least one).
type Period struct {
	Start Date `json:"start,omitzero"`
	End   Date `json:"end,omitzero"`
}

// Party is the seller or the buyer.
type Party struct {
	Name        string   `json:"name"`                   // legal (registration) name, BT-27 / BT-44
	TradingName string   `json:"trading_name,omitempty"` // name used in trade when it differs
	Address     []string `json:"address,omitempty"`      // up to three lines: street, additional, extra line
	City        string   `json:"city,omitempty"`
	PostalCode  string   `json:"postal_code,omitempty"`
	Subdivision string   `json:"subdivision,omitempty"` // state, region, county
	CountryCode string   `json:"country_code"`          // ISO 3166-1 alpha-2

	VATID         string `json:"vat_id,omitempty"`          // with country prefix, e.g. "DE123456789"
	LegalID       string `json:"legal_id,omitempty"`        // company registration number
	LegalIDScheme string `json:"legal_id_scheme,omitempty"` // ISO 6523 ICD, e.g. "0183"
	LegalForm     string `json:"legal_form,omitempty"`      // seller's additional legal information, e.g. share capital
	ID            string `json:"id,omitempty"`              // seller/buyer identifier (PartyIdentification)
	IDScheme      string `json:"id_scheme,omitempty"`

	ContactName string `json:"contact_name,omitempty"`
	Phone       string `json:"phone,omitempty"`
	Email       string `json:"email,omitempty"`

	// EndpointID is the Peppol electronic address; EndpointScheme its EAS
	// code, e.g. "0088" (GLN), "9930" (German VAT number), "0208" (Belgian
	// enterprise number).
	EndpointID     string `json:"endpoint_id"`
	EndpointScheme string `json:"endpoint_scheme"`

	// TaxRegistrationID is the seller's local tax registration (BT-32),
	// beside or instead of the VAT identifier.
	TaxRegistrationID string `json:"tax_registration_id,omitempty"`
	// OtherIDs are the seller's identifiers after ID (BT-29 occurs more
	// than once, e.g. a GLN and a supplier number at the buyer). Both
	// syntaxes are read into one order: those with a scheme first, then
	// those without, ID being the first of all.
	OtherIDs []PartyID `json:"other_ids,omitempty"`
}

// PartyID is an identifier of a party with its scheme (ISO 6523 ICD),
// which may be empty.
type PartyID struct {
	ID     string `json:"id"`
	Scheme string `json:"scheme,omitempty"`
}

// sellerIDs orders a seller's identifiers as the model keeps them: those
// with a scheme first, then those without, each in document order.
func sellerIDs(ids []PartyID) (first PartyID, others []PartyID) {
	var withScheme, without []PartyID
	for _, id := range ids {
		if id.Scheme != "" {
			withScheme = append(withScheme, id)
		} else {
			without = append(without, id)
		}
	}
	all := append(withScheme, without...)
	if len(all) == 0 {
		return PartyID{}, nil
	}
	return all[0], all[1:]
}

// Address is a postal address of someone who is not the seller or the
// buyer: the delivery address (BG-15) and the seller tax representative's
// (BG-12).
type Address struct {
	Lines       []string `json:"lines,omitempty"` // up to three: street, additional, extra line
	City        string   `json:"city,omitempty"`
	PostalCode  string   `json:"postal_code,omitempty"`
	Subdivision string   `json:"subdivision,omitempty"`
	CountryCode string   `json:"country_code"` // ISO 3166-1 alpha-2; required (BR-20, BR-57)
}

// Delivery says where the goods or services went (BG-13): the deliver-to
// party's name (BT-70), the location's identifier with its scheme (BT-71)
// and the address (BG-15). The date (BT-72) is Document.DeliveryDate.
type Delivery struct {
	PartyName      string   `json:"party_name,omitempty"`
	LocationID     string   `json:"location_id,omitempty"`
	LocationScheme string   `json:"location_scheme,omitempty"`
	Address        *Address `json:"address,omitempty"`
}

// Payee is who receives the payment when it is not the seller (BG-10),
// e.g. a factoring company.
type Payee struct {
	Name          string `json:"name"`                      // BT-59
	ID            string `json:"id,omitempty"`              // BT-60
	IDScheme      string `json:"id_scheme,omitempty"`       // ISO 6523 ICD
	LegalID       string `json:"legal_id,omitempty"`        // BT-61
	LegalIDScheme string `json:"legal_id_scheme,omitempty"` // ISO 6523 ICD
}

// TaxRepresentative is the seller's tax representative (BG-11), who
// accounts for the VAT on the seller's behalf.
type TaxRepresentative struct {
	Name    string  `json:"name"`   // BT-62
	VATID   string  `json:"vat_id"` // BT-63
	Address Address `json:"address"`
}

// DocumentReference is a document the invoice points at: an invoiced
// object (BT-18, TypeCode "130", Scheme its identifier scheme) or an
// additional supporting document (BG-24: BT-122 to BT-125; TypeCode "916",
// which the readers fill in when the syntax leaves it out), with a
// description, a link or the file itself.
type DocumentReference struct {
	ID          string      `json:"id"`
	Scheme      string      `json:"scheme,omitempty"`
	TypeCode    string      `json:"type_code"` // UNTDID 1001: 130 invoiced object, 916 supporting document (the default)
	Description string      `json:"description,omitempty"`
	URI         string      `json:"uri,omitempty"`
	Attachment  *Attachment `json:"attachment,omitempty"`
}

// Attachment is a file sent inside the invoice (BT-125). Content is the
// base64 text exactly as the XML carries it, so it is never decoded and
// re-encoded differently.
type Attachment struct {
	MimeCode string `json:"mime_code"`
	Filename string `json:"filename"`
	Content  string `json:"content"`
}

// AllowanceCharge is an allowance (a coupon or discount, Charge false) or a
// charge (Charge true) on the whole document or on one line. Document-level
// ones carry a Tax; line-level ones take the line's. Reason or ReasonCode is
// required: allowance codes come from UNCL 5189 (e.g. "95" discount),
// charge codes from UNCL 7161. Percent and BaseAmount are optional and go
// together (Amount = BaseAmount × Percent / 100).
type AllowanceCharge struct {
	Charge     bool            `json:"charge"`
	Amount     decimal.Decimal `json:"amount"`
	BaseAmount decimal.Decimal `json:"base_amount,omitzero"`
	Percent    decimal.Decimal `json:"percent,omitzero"`
	Reason     string          `json:"reason,omitempty"`
	ReasonCode string          `json:"reason_code,omitempty"`
	Tax        *Tax            `json:"tax,omitempty"`
}

// Line is one invoice or credit-note line.
type Line struct {
	ID          string          `json:"id"`
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Quantity    decimal.Decimal `json:"quantity"`
	UnitCode    string          `json:"unit_code"` // UN/ECE rec 20: C62 one, HUR hour, DAY day, MON month, GB gigabyte…
	// UnitPrice is the net price per BaseQuantity units (per one unit when
	// BaseQuantity is zero). For a tiered usage line use AverageUnitPrice.
	UnitPrice    decimal.Decimal `json:"unit_price"`
	BaseQuantity decimal.Decimal `json:"base_quantity,omitzero"`
	// NetAmount is Quantity × UnitPrice / BaseQuantity + charges −
	// allowances, rounded to the currency; ComputeTotals fills it in when
	// it is zero.
	NetAmount        decimal.Decimal   `json:"net_amount"`
	Tax              Tax               `json:"tax"`
	Period           *Period           `json:"period,omitempty"`
	Note             string            `json:"note,omitempty"` // e.g. the tier breakdown of a usage line
	AllowanceCharges []AllowanceCharge `json:"allowance_charges,omitempty"`
	SellerItemID     string            `json:"seller_item_id,omitempty"`
	// What the buyer's systems match and book a line by (EN 16931 BT-132,
	// BT-133, BT-157 to BT-161), carried between UBL and CII.
	OrderLineRef       string           `json:"order_line_ref,omitempty"`       // BT-132: the line of the buyer's order
	AccountingCost     string           `json:"accounting_cost,omitempty"`      // BT-133: the buyer's accounting reference
	StandardItemID     string           `json:"standard_item_id,omitempty"`     // BT-157, e.g. a GTIN
	StandardItemScheme string           `json:"standard_item_scheme,omitempty"` // its scheme (ISO 6523 ICD, 0160 = GTIN)
	Classifications    []Classification `json:"classifications,omitempty"`      // BT-158
	OriginCountry      string           `json:"origin_country,omitempty"`       // BT-159, ISO 3166-1 alpha-2
	Attributes         []ItemAttribute  `json:"attributes,omitempty"`           // BT-160 name, BT-161 value
	BuyerItemID        string           `json:"buyer_item_id,omitempty"`        // BT-156: the buyer's identifier of the item
	ObjectID           string           `json:"object_id,omitempty"`            // BT-128: an object the line invoices (a meter, a subscription)
	ObjectScheme       string           `json:"object_scheme,omitempty"`        // its scheme (UNTDID 1153)
	// GrossPrice is the price before the price discount (BT-148), and
	// PriceDiscount that discount (BT-147); UnitPrice stays the net price.
	// GrossBaseQuantity is the quantity the gross price is for when CII
	// gives one (UBL has one base quantity for both prices).
	GrossPrice        decimal.Decimal `json:"gross_price,omitzero"`
	PriceDiscount     decimal.Decimal `json:"price_discount,omitzero"`
	GrossBaseQuantity decimal.Decimal `json:"gross_base_quantity,omitzero"`
	// Breakdown is how NetAmount is made up when it does not come from one
	// price (one row per tier used, a tier's flat fee, a percentage, a
	// minimum): the PDF prints it under the line instead of the average
	// UnitPrice, which exists only because Peppol wants quantity × price.
	// UBL does not carry it (billing puts the components in the Note).
	Breakdown []LineDetail `json:"breakdown,omitempty"`
}

// Classification is an item classification code (BT-158) with its list
// (UNTDID 7143, e.g. STI) and the list's version.
type Classification struct {
	Code        string `json:"code"`
	ListID      string `json:"list_id"`
	ListVersion string `json:"list_version,omitempty"`
}

// ItemAttribute is a property of the item (BT-160, BT-161).
type ItemAttribute struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// LineDetail is one row of a line's breakdown: Quantity × UnitPrice =
// Amount, or just Amount for a flat fee, a percentage or an adjustment
// (Quantity zero).
type LineDetail struct {
	Description string          `json:"description"`
	Quantity    decimal.Decimal `json:"quantity"`
	UnitPrice   decimal.Decimal `json:"unit_price"`
	Amount      decimal.Decimal `json:"amount"`
}

// TaxSubtotal is one group of the tax breakdown: all lines, allowances and
// charges with the same category and rate.
type TaxSubtotal struct {
	Tax           Tax             `json:"tax"`
	TaxableAmount decimal.Decimal `json:"taxable_amount"`
	TaxAmount     decimal.Decimal `json:"tax_amount"`
}

// Totals are the document totals (EN 16931 BG-22).
type Totals struct {
	LineExtension   decimal.Decimal `json:"line_extension"`   // Σ line net amounts
	AllowanceTotal  decimal.Decimal `json:"allowance_total"`  // Σ document-level allowances
	ChargeTotal     decimal.Decimal `json:"charge_total"`     // Σ document-level charges
	TaxExclusive    decimal.Decimal `json:"tax_exclusive"`    // line extension − allowances + charges
	Tax             decimal.Decimal `json:"tax"`              // Σ breakdown tax amounts
	TaxInclusive    decimal.Decimal `json:"tax_inclusive"`    // tax exclusive + tax
	Prepaid         decimal.Decimal `json:"prepaid"`          // credits and payments already applied; set by the caller
	PayableRounding decimal.Decimal `json:"payable_rounding"` // rounding of the amount due; usually zero
	Payable         decimal.Decimal `json:"payable"`          // tax inclusive − prepaid + rounding
}

// PaymentMeans says how to pay: Code is UNCL 4461 ("30" credit transfer,
// "58" SEPA credit transfer, "49" direct debit, "48" card).
type PaymentMeans struct {
	Code        string `json:"code"`
	PaymentID   string `json:"payment_id,omitempty"` // remittance reference the payer should quote
	IBAN        string `json:"iban,omitempty"`       // payee account (an IBAN for SEPA)
	AccountName string `json:"account_name,omitempty"`
	BIC         string `json:"bic,omitempty"`
	Information string `json:"information,omitempty"` // BT-82: the payment means in words
	// DebitedAccount is the buyer's account a direct debit takes the
	// money from (BT-91); CardNumber and CardHolder the payment card
	// (BT-87, normally only its last digits, and BT-88).
	DebitedAccount string `json:"debited_account,omitempty"`
	CardNumber     string `json:"card_number,omitempty"`
	CardHolder     string `json:"card_holder,omitempty"`
}

// InvoiceReference points a credit note at the invoice it corrects.
type InvoiceReference struct {
	Number    string `json:"number"`
	IssueDate Date   `json:"issue_date,omitzero"`
}

// Document is a finalized invoice or credit note in a format-neutral form.
// Amounts on a credit note are positive: the kind says they are credited.
type Document struct {
	Kind Kind `json:"kind"`
	// TypeCode is the UNTDID 1001 document type (BT-3) when it is not the
	// kind's default: 384 corrected invoice, 389 self-billed invoice (both
	// KindInvoice). Empty means 380 for an invoice and 381 for a credit note.
	TypeCode string `json:"type_code,omitempty"`
	// Specification is the specification identifier (BT-24) the document
	// claims; empty means Peppol BIS Billing 3.0 (CustomizationID). It picks
	// the rules Validate applies: Peppol's, XRechnung's (BR-DE-*) or EN 16931's
	// alone (see Profile).
	Specification string `json:"specification,omitempty"`
	// Process is the business process type (BT-23); empty means Peppol's
	// billing process when the specification is Peppol's.
	Process          string `json:"process,omitempty"`
	Number           string `json:"number"`
	IssueDate        Date   `json:"issue_date"`
	DueDate          Date   `json:"due_date,omitzero"`
	Currency         string `json:"currency"`          // ISO 4217
	CurrencyExponent int32  `json:"currency_exponent"` // decimal places of the minor unit
	BuyerReference   string `json:"buyer_reference,omitempty"`
	OrderReference   string `json:"order_reference,omitempty"`
	// BT-12, BT-19, BT-72: the buyer's contract and accounting reference,
	// and when the goods or services were delivered.
	ContractReference string            `json:"contract_reference,omitempty"`
	AccountingCost    string            `json:"accounting_cost,omitempty"`
	DeliveryDate      Date              `json:"delivery_date,omitzero"`
	Period            *Period           `json:"period,omitempty"`
	InvoiceReference  *InvoiceReference `json:"invoice_reference,omitempty"`
	Seller            Party             `json:"seller"`
	Buyer             Party             `json:"buyer"`
	Lines             []Line            `json:"lines"`
	AllowanceCharges  []AllowanceCharge `json:"allowance_charges,omitempty"`
	TaxBreakdown      []TaxSubtotal     `json:"tax_breakdown"`
	Totals            Totals            `json:"totals"`
	// TaxCurrency and TaxInTaxCurrency carry the VAT total in the seller's
	// accounting currency when it differs from Currency (BT-6, BT-111).
	TaxCurrency      string          `json:"tax_currency,omitempty"`
	TaxInTaxCurrency decimal.Decimal `json:"tax_in_tax_currency,omitzero"`
	PaymentTerms     string          `json:"payment_terms,omitempty"`
	PaymentMeans     *PaymentMeans   `json:"payment_means,omitempty"`
	// OtherPaymentMeans are the ways to pay after the first (BG-16 occurs
	// more than once, e.g. two bank accounts).
	OtherPaymentMeans []PaymentMeans `json:"other_payment_means,omitempty"`
	// BT-89 and BT-90: the direct-debit mandate and the seller's (or
	// payee's) SEPA creditor identifier.
	MandateReference  string `json:"mandate_reference,omitempty"`
	CreditorReference string `json:"creditor_reference,omitempty"`
	// TaxPointDate is when VAT became chargeable when it is not the issue
	// date (BT-7).
	TaxPointDate Date `json:"tax_point_date,omitzero"`
	// TaxPointDateCode says which date VAT became chargeable on when there
	// is no TaxPointDate (BT-8, UNTDID 2005 as UBL writes it): "3" the
	// issue date, "35" the delivery date, "432" the date paid. CII writes
	// its UNTDID 2475 equivalents (5, 29, 72).
	TaxPointDateCode string `json:"tax_point_date_code,omitempty"`
	// BT-11, BT-14, BT-15, BT-16, BT-17: the project, the seller's order,
	// the receiving and despatch advices, and the tender or lot.
	ProjectReference         string `json:"project_reference,omitempty"`
	SellerOrderReference     string `json:"seller_order_reference,omitempty"`
	ReceivingAdviceReference string `json:"receiving_advice_reference,omitempty"`
	DespatchAdviceReference  string `json:"despatch_advice_reference,omitempty"`
	TenderReference          string `json:"tender_reference,omitempty"`
	// Documents are the invoiced object (BT-18) and the supporting
	// documents (BG-24), in the order given.
	Documents         []DocumentReference `json:"documents,omitempty"`
	Delivery          *Delivery           `json:"delivery,omitempty"`
	Payee             *Payee              `json:"payee,omitempty"`
	TaxRepresentative *TaxRepresentative  `json:"tax_representative,omitempty"`
	// Notes are free text. Peppol allows one note, so UBL joins them with
	// line breaks.
	Notes []string `json:"notes,omitempty"`
}

// CurrencyExponent returns the ISO 4217 minor-unit exponent for code: 0 for
// JPY, KRW…, 3 for KWD, BHD…, otherwise 2.
func CurrencyExponent(code string) int32 {
	switch code {
	case "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI", "VND", "VUV", "XAF", "XOF", "XPF":
		return 0
	case "BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND":
		return 3
	case "CLF", "UYW":
		return 4
	}
	return 2
}
