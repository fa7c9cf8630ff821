package document

import (
	"strings"
	"testing"

	"github.com/abacusbilling/abacus/internal/einvoicetest"
)

// termsDoc is a Peppol invoice with every term issue 22 added in session
// 10: references, supporting documents, delivery, payee, tax
// representative, payment means, and per line the buyer's item id, an
// invoiced object and a gross price.
func termsDoc() *Document {
	d := newDoc("INV-TERMS-2")
	d.TaxPointDate = date("2026-02-28")
	d.ProjectReference, d.SellerOrderReference, d.TenderReference = "PRJ-9", "SO-77", "LOT-3"
	d.ReceivingAdviceReference, d.DespatchAdviceReference = "RA-12", "DA-34"
	d.Documents = []DocumentReference{
		{ID: "METER-55", Scheme: "ABT", TypeCode: "130"},
		{ID: "TS-2026-02", TypeCode: "916", Description: "Timesheet", URI: "https://supplier.example/ts/2026-02",
			Attachment: &Attachment{MimeCode: "application/pdf", Filename: "timesheet.pdf", Content: "JVBERi0xLjQKJcOkw7zDtsOfCg=="}},
	}
	d.Delivery = &Delivery{PartyName: "Warehouse Nord", LocationID: "4012345000009", LocationScheme: "0088",
		Address: &Address{Lines: []string{"Lagerweg 5", "Tor 3"}, City: "Hamburg", PostalCode: "20095", CountryCode: "DE"}}
	d.Payee = &Payee{Name: "Factoring AG", ID: "4000001000005", IDScheme: "0088", LegalID: "HRB 12345"}
	d.TaxRepresentative = &TaxRepresentative{Name: "Tax Rep GmbH", VATID: "DE987654321",
		Address: Address{Lines: []string{"Steuerstraße 1"}, City: "Berlin", PostalCode: "10115", CountryCode: "DE"}}
	d.CreditorReference = "DE98ZZZ09999999999"
	d.PaymentMeans.Information = "SEPA credit transfer"
	d.OtherPaymentMeans = []PaymentMeans{{Code: "58", IBAN: "DE02120300000000202051", AccountName: "Factoring AG"}}
	d.Seller.TaxRegistrationID = "143/456/78901"
	d.Seller.ID, d.Seller.IDScheme = "4000001123452", "0088"
	d.Seller.OtherIDs = []PartyID{{ID: "SUP-4711"}}
	d.Lines = []Line{
		{ID: "1", Name: "Seat", Quantity: dec("2"), UnitCode: "C62", UnitPrice: dec("10"), Tax: std("19"),
			BuyerItemID: "B-SEAT", ObjectID: "SUB-1", ObjectScheme: "AVE", GrossPrice: dec("12"), PriceDiscount: dec("2")},
		{ID: "2", Name: "Support", Quantity: dec("1"), UnitCode: "C62", UnitPrice: dec("50"), Tax: std("19"), PriceDiscount: dec("5")},
	}
	d.ComputeTotals(RoundHalfUp)
	return d
}

// Every term survives UBL and CII (official validator included), and the
// formats without a place for them (CSV, PDF) report them.
func TestEveryTermRoundTripsAndIsReportedWhereItCannotGo(t *testing.T) {
	t.Parallel()
	d := termsDoc()
	// BT-8 instead of BT-7 (BR-CO-3 allows one), on a credit note: UBL
	// keeps it in a period of its own, CII as code 29.
	cn := termsDoc()
	cn.Kind, cn.Number, cn.TaxPointDate, cn.TaxPointDateCode, cn.Period = KindCreditNote, "CN-TERMS-2", Date{}, "35", nil
	// A SEPA direct debit (BT-89 mandate, BT-91 debited account) on the
	// credit note, a card payment (BT-87, BT-88) on a third document: a
	// document's payment means all have one code (UBL-SR-47).
	cn.PaymentMeans = &PaymentMeans{Code: "59", PaymentID: "CN-TERMS-2", DebitedAccount: "FR7630006000011234567890189"}
	cn.OtherPaymentMeans, cn.MandateReference = nil, "MANDATE-2026-17"
	card := termsDoc()
	card.Number, card.OtherPaymentMeans = "INV-CARD-2", nil
	card.PaymentMeans = &PaymentMeans{Code: "48", PaymentID: "INV-CARD-2", Information: "Card", CardNumber: "1234", CardHolder: "J. Dupont"}
	for _, doc := range []*Document{d, cn, card} {
		roundTripBothSyntaxes(t, doc)
	}
	if b, _ := CII(cn); !strings.Contains(string(b), "<ram:DueDateTypeCode>29</ram:DueDateTypeCode>") {
		t.Errorf("CII does not write BT-8 35 as 29:\n%s", b)
	}
	for _, f := range []Format{FormatCSV, FormatPDF} {
		got := "," + strings.Join(TargetDrops(d, f), ",") + ","
		for _, term := range []string{"tax_point_date", "project_reference", "seller_order_reference", "tender_reference",
			"receiving_advice_reference", "despatch_advice_reference", "documents", "delivery", "payee", "tax_representative",
			"other_payment_means", "creditor_reference", "seller.tax_registration_id", "seller.other_ids", "payment_means.information",
			"lines[0].buyer_item_id", "lines[0].object_id", "lines[0].gross_price", "lines[0].price_discount", "lines[1].price_discount"} {
			if !strings.Contains(got, ","+term+",") {
				t.Errorf("%s: %s not reported in %s", f, term, got)
			}
		}
		if !strings.Contains(strings.Join(TargetDrops(cn, f), ","), "tax_point_date_code") {
			t.Errorf("%s: tax_point_date_code not reported", f)
		}
	}
}

// roundTripBothSyntaxes requires d to come back unchanged from UBL and
// CII, with nothing reported lost, and the official validator to accept
// both.
func roundTripBothSyntaxes(t *testing.T, d *Document) {
	t.Helper()
	want := mustJSON(t, d)
	for _, f := range []Format{FormatUBL, FormatCII} {
		out, err := Render(d, f)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if lost := TargetDrops(d, f); len(lost) > 0 {
			t.Errorf("%s reports %v lost", f, lost)
		}
		back, rep, err := Parse(out)
		if err != nil || !rep.Valid() || len(rep.Dropped) > 0 {
			t.Fatalf("%s: %v %+v %v\n%s", f, err, rep.Violations, rep.Dropped, out)
		}
		einvoicetest.CrossCheck(t, d.Number+"-"+string(f), out)
		back.Specification, back.Process = "", "" // the defaults each syntax writes
		if got := mustJSON(t, back); got != want {
			t.Errorf("%s changed the document:\n got %s\nwant %s", f, got, want)
		}
	}
}

// A gross price UBL cannot state validly (net ≠ gross − discount, or a
// base quantity of its own) stays in CII, is reported lost in UBL, and the
// UBL still passes the validator with the discount alone.
func TestGrossPriceUBLCannotCarryIsReported(t *testing.T) {
	t.Parallel()
	d := newDoc("INV-GROSS")
	d.Lines = []Line{
		{ID: "1", Name: "Paper", Quantity: dec("2"), UnitCode: "C62", UnitPrice: dec("2.48"), Tax: std("19"),
			GrossPrice: dec("2.75"), PriceDiscount: dec("0.275")}, // rounded net price: 2.75 − 0.275 ≠ 2.48
		{ID: "2", Name: "Laptop", Quantity: dec("1"), UnitCode: "C62", UnitPrice: dec("1273"), Tax: std("19"),
			GrossPrice: dec("1498"), PriceDiscount: dec("225"), GrossBaseQuantity: dec("2")},
	}
	d.ComputeTotals(RoundHalfUp)
	if got := strings.Join(TargetDrops(d, FormatCII), ","); got != "" {
		t.Errorf("CII reports %s lost", got)
	}
	lost := TargetDrops(d, FormatUBL)
	if got, want := strings.Join(lost, ","), "lines[0].gross_price,lines[1].gross_price,lines[1].gross_base_quantity"; got != want {
		t.Fatalf("UBL reports %q lost, want %q", got, want)
	}
	out, err := UBL(d)
	if err != nil {
		t.Fatal(err)
	}
	einvoicetest.CrossCheck(t, "gross-price-ubl", out)
	back, rep, err := Parse(out)
	if err != nil || !rep.Valid() {
		t.Fatalf("%v %+v", err, rep.Violations)
	}
	skip := append(lost, "specification", "process") // the defaults UBL writes
	if got, want := modelJSON(t, back, skip), modelJSON(t, d, skip); got != want {
		t.Errorf("UBL changed more than it reported:\n got %s\nwant %s", got, want)
	}
	if !back.Lines[0].PriceDiscount.Equal(dec("0.275")) {
		t.Errorf("the discount was not kept: %s", back.Lines[0].PriceDiscount)
	}
}

// A second project (UBL) or tender (CII) reference has no place in the
// model: it is reported dropped, not turned into another kind of reference.
func TestASecondProjectOrTenderIsReported(t *testing.T) {
	t.Parallel()
	d := termsDoc()
	ubl, err := UBL(d)
	if err != nil {
		t.Fatal(err)
	}
	extra := "<cac:AdditionalDocumentReference><cbc:ID>PRJ-X</cbc:ID><cbc:DocumentTypeCode>50</cbc:DocumentTypeCode></cac:AdditionalDocumentReference>\n  <cac:ProjectReference>"
	back, rep, err := Parse([]byte(strings.Replace(string(ubl), "<cac:ProjectReference>", extra, 1)))
	if err != nil || !rep.Valid() {
		t.Fatalf("%v %+v", err, rep.Violations)
	}
	if got := strings.Join(rep.Dropped, ","); !strings.Contains(got, "AdditionalDocumentReference[3]/cbc:ID") || !strings.Contains(got, "AdditionalDocumentReference[3]/cbc:DocumentTypeCode") {
		t.Errorf("the second project is not reported: %s", got)
	}
	if back.ProjectReference != "PRJ-9" || len(back.Documents) != len(d.Documents) {
		t.Errorf("project %q, %d documents: the second project was taken for something else", back.ProjectReference, len(back.Documents))
	}
	cii, err := CII(d)
	if err != nil {
		t.Fatal(err)
	}
	tender := "<ram:AdditionalReferencedDocument>\n        <ram:IssuerAssignedID>LOT-3</ram:IssuerAssignedID>"
	second := "<ram:AdditionalReferencedDocument><ram:IssuerAssignedID>LOT-4</ram:IssuerAssignedID><ram:TypeCode>50</ram:TypeCode></ram:AdditionalReferencedDocument>\n      " + tender
	if !strings.Contains(string(cii), tender) {
		t.Fatalf("no tender reference in\n%s", cii)
	}
	back, rep, err = Parse([]byte(strings.Replace(string(cii), tender, second, 1)))
	if err != nil || !rep.Valid() {
		t.Fatalf("%v %+v", err, rep.Violations)
	}
	if len(rep.Dropped) != 2 || back.TenderReference != "LOT-4" && back.TenderReference != "LOT-3" {
		t.Errorf("tender %q, dropped %v", back.TenderReference, rep.Dropped)
	}
}
