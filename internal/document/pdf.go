package document

import (
	"bytes"
	"fmt"
	"strings"
	"time"

	"github.com/go-pdf/fpdf"
	"github.com/shopspring/decimal"
	"golang.org/x/image/font/gofont/gobold"
	"golang.org/x/image/font/gofont/goregular"

	"github.com/abacusbilling/abacus/internal/country"
)

// Layout of the A4 page, in millimetres.
const (
	pageW, pageH = 210.0, 297.0
	margin       = 18.0
	contentW     = pageW - 2*margin
	footerH      = 16.0 // kept free at the bottom for the footer
)

// Colours (RGB): a dark blue accent, body text, muted text, table rules
// and a light band for table headers.
var (
	colAccent = [3]int{28, 57, 99}
	colText   = [3]int{33, 37, 41}
	colMuted  = [3]int{108, 117, 125}
	colRule   = [3]int{222, 226, 230}
	colBand   = [3]int{240, 243, 247}
)

// lineColumns are the lines table: title, width, alignment.
var lineColumns = []struct {
	title string
	w     float64
	align string
}{
	{"#", 8, "L"}, {"Description", 72, "L"}, {"Quantity", 20, "R"}, {"Unit", 14, "L"},
	{"Unit price", 24, "R"}, {"VAT", 13, "R"}, {"Amount", 23, "R"},
}

// unitNames spells out the common UN/ECE rec 20 codes; others are shown
// as the code.
var unitNames = map[string]string{
	"C62": "unit", "EA": "each", "H87": "piece", "HUR": "hour", "MIN": "minute", "SEC": "second",
	"DAY": "day", "WEE": "week", "MON": "month", "ANN": "year", "GB": "GB", "TB": "TB", "MB": "MB",
	"E48": "service", "KWH": "kWh", "KGM": "kg", "MTR": "m", "LTR": "l", "ZZ": "",
}

// currencySymbols are symbols the PDF core fonts (cp1252) can draw.
var currencySymbols = map[string]string{"EUR": "€", "USD": "$", "GBP": "£", "JPY": "¥"}

// PDF renders d as an A4 PDF: seller and buyer blocks, document details
// (number, dates, period, references), a lines table whose descriptions
// wrap and whose header repeats on every page, the tax summary with
// exemption reasons, totals, payment terms and means, notes, and a footer
// with page numbers. Text is drawn with the PDF core fonts in Windows-1252,
// which covers Western European names and €, £, ¥; characters outside it
// print as "?". It does not validate d, so a parsed document with
// violations can be shown; it returns an error only if the PDF cannot be
// written.
func PDF(d *Document) ([]byte, error) { return renderPDF(d, false) }

// renderPDF draws d; with embedFonts the text is set in the Go fonts,
// embedded (subset) as PDF/A requires, instead of the core fonts, and the
// dates in the file are d's issue date so the output is reproducible.
func renderPDF(d *Document, embedFonts bool) ([]byte, error) {
	pdf := fpdf.New("P", "mm", "A4", "")
	r := &pdfRenderer{pdf: pdf, d: d, tr: pdf.UnicodeTranslatorFromDescriptor(""), family: "Helvetica"}
	if embedFonts {
		pdf.AddUTF8FontFromBytes("Go", "", goregular.TTF)
		pdf.AddUTF8FontFromBytes("Go", "B", gobold.TTF)
		r.family, r.tr = "Go", func(s string) string { return s }
		at := time.Date(d.IssueDate.Year, d.IssueDate.Month, d.IssueDate.Day, 0, 0, 0, 0, time.UTC)
		pdf.SetCreationDate(at)
		pdf.SetModificationDate(at)
		pdf.SetCatalogSort(true)
	}
	pdf.SetMargins(margin, margin, margin)
	pdf.SetAutoPageBreak(false, footerH)
	pdf.SetTitle(r.title()+" "+d.Number, true)
	pdf.SetAuthor(d.Seller.Name, true)
	pdf.SetCreator("Abacus", true)
	pdf.AliasNbPages("{nb}")
	pdf.SetFooterFunc(r.footer)
	pdf.AddPage()
	r.header()
	r.lines()
	r.summary()
	r.payment()
	var buf bytes.Buffer
	if err := pdf.Output(&buf); err != nil {
		return nil, fmt.Errorf("writing PDF of document %s: %w", d.Number, err)
	}
	return buf.Bytes(), nil
}

type pdfRenderer struct {
	pdf    *fpdf.Fpdf
	d      *Document
	tr     func(string) string
	family string // core Helvetica, or the embedded Go font for PDF/A
}

func (r *pdfRenderer) title() string {
	if r.d.Kind == KindCreditNote {
		return "Credit note"
	}
	return "Invoice"
}

func (r *pdfRenderer) font(style string, size float64, col [3]int) {
	r.pdf.SetFont(r.family, style, size)
	r.pdf.SetTextColor(col[0], col[1], col[2])
}

// text draws s at (x, y) in a cell of width w, translated to cp1252.
func (r *pdfRenderer) text(x, y, w, h float64, s, align string) {
	r.pdf.SetXY(x, y)
	r.pdf.CellFormat(w, h, r.tr(s), "", 0, align, false, 0, "")
}

// fitSize is the largest font size from size down to smallest (in half
// points) at which s fits width w in the current font style: references
// and dates must stay on one line to be copied or read as one.
func (r *pdfRenderer) fitSize(s string, w, size, smallest float64) float64 {
	for ; size > smallest; size -= 0.5 {
		r.pdf.SetFontSize(size)
		if r.pdf.GetStringWidth(r.tr(s)) <= w {
			break
		}
	}
	return size
}

// wrap splits s into lines that fit width w in the current font.
func (r *pdfRenderer) wrap(s string, w float64) []string {
	var out []string
	for _, para := range strings.Split(s, "\n") {
		if para == "" {
			out = append(out, "")
			continue
		}
		for _, l := range r.pdf.SplitLines([]byte(r.tr(para)), w) {
			out = append(out, string(l))
		}
	}
	return out
}

// block draws already-translated lines from (x, y) and returns the y below.
func (r *pdfRenderer) block(x, y, w, h float64, lines []string, align string) float64 {
	for _, l := range lines {
		r.pdf.SetXY(x, y)
		r.pdf.CellFormat(w, h, l, "", 0, align, false, 0, "")
		y += h
	}
	return y
}

func (r *pdfRenderer) money(a decimal.Decimal) string { return groupDigits(a, r.d.CurrencyExponent) }

func (r *pdfRenderer) moneySym(a decimal.Decimal) string {
	if sym, ok := currencySymbols[r.d.Currency]; ok {
		if a.IsNegative() {
			return "-" + sym + " " + r.money(a.Neg())
		}
		return sym + " " + r.money(a)
	}
	return r.d.Currency + " " + r.money(a)
}

// GroupDigits formats a with thousands separators and as many decimals as
// it has, e.g. 1,000 or 0.000008.
func GroupDigits(a decimal.Decimal) string { return groupDigits(a, natural(a, 0)) }

// groupDigits formats a with places decimals and thousands separators.
func groupDigits(a decimal.Decimal, places int32) string {
	s := a.Abs().StringFixed(places)
	intPart, frac, hasFrac := strings.Cut(s, ".")
	var b strings.Builder
	if a.IsNegative() && !a.Round(places).IsZero() {
		b.WriteByte('-')
	}
	for i, c := range intPart {
		if i > 0 && (len(intPart)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if hasFrac {
		b.WriteString("." + frac)
	}
	return b.String()
}

// natural is the number of decimals to show v with: its own, but at least
// minimum (prices show at least the currency's decimals: 49.90, not 49.9).
func natural(v decimal.Decimal, minimum int32) int32 {
	trimmed := decimal.RequireFromString(v.String()) // String drops trailing zeros
	return max(minimum, -trimmed.Exponent())
}

// formatDate writes a date as "5 Mar 2025", unambiguous in every locale.
func formatDate(d Date) string {
	if d.IsZero() {
		return ""
	}
	return d.time().Format("2 Jan 2006")
}

func formatPeriod(p *Period) string {
	if p == nil {
		return ""
	}
	switch {
	case p.Start.IsZero():
		return "until " + formatDate(p.End)
	case p.End.IsZero():
		return "from " + formatDate(p.Start)
	}
	return formatDate(p.Start) + " – " + formatDate(p.End)
}

// partyLines is the address block of p, without the name.
func partyLines(p *Party) []string {
	var out []string
	if p.TradingName != "" && p.TradingName != p.Name {
		out = append(out, p.TradingName)
	}
	out = append(out, p.Address...)
	city := strings.TrimSpace(strings.Join([]string{p.PostalCode, p.City}, " "))
	if p.Subdivision != "" {
		city = strings.TrimSpace(city + ", " + p.Subdivision)
	}
	if city != "" {
		out = append(out, city)
	}
	if p.CountryCode != "" {
		out = append(out, country.Name(p.CountryCode))
	}
	return out
}

func partyIDs(p *Party) []string {
	var out []string
	if p.VATID != "" {
		out = append(out, "VAT ID: "+p.VATID)
	}
	if p.LegalID != "" {
		out = append(out, "Company reg.: "+p.LegalID)
	}
	if p.Email != "" {
		out = append(out, p.Email)
	}
	return out
}

func (r *pdfRenderer) header() {
	d, pdf := r.d, r.pdf
	// Seller, top left.
	r.font("B", 15, colText)
	nameLines := r.wrap(d.Seller.Name, 100)
	y := r.block(margin, margin, 100, 7, nameLines, "L") + 1
	r.font("", 8.5, colMuted)
	var seller []string
	for _, s := range append(partyLines(&d.Seller), partyIDs(&d.Seller)...) {
		seller = append(seller, r.wrap(s, 100)...)
	}
	sellerBottom := r.block(margin, y, 100, 4, seller, "L")

	// Title and number, top right.
	right := margin + contentW
	r.font("B", 22, colAccent)
	r.text(right-80, margin-1, 80, 10, strings.ToUpper(r.title()), "R")
	r.font("", 10, colText)
	r.text(right-80, margin+10, 80, 5, "No. "+d.Number, "R")

	top := max(sellerBottom, margin+20) + 8
	pdf.SetDrawColor(colRule[0], colRule[1], colRule[2])
	pdf.SetLineWidth(0.3)
	pdf.Line(margin, top-4, right, top-4)

	// Buyer, left.
	r.font("B", 7.5, colAccent)
	r.text(margin, top, 90, 4, "BILL TO", "L")
	r.font("B", 10, colText)
	y = r.block(margin, top+5, 90, 5, r.wrap(d.Buyer.Name, 90), "L")
	r.font("", 9, colText)
	var buyer []string
	for _, s := range partyLines(&d.Buyer) {
		buyer = append(buyer, r.wrap(s, 90)...)
	}
	y = r.block(margin, y, 90, 4.4, buyer, "L")
	r.font("", 8.5, colMuted)
	var ids []string
	for _, s := range partyIDs(&d.Buyer) {
		ids = append(ids, r.wrap(s, 90)...)
	}
	buyerBottom := r.block(margin, y+1, 90, 4, ids, "L")

	// Details, right: label and value columns.
	type kv struct{ k, v string }
	meta := []kv{{"Issue date", formatDate(d.IssueDate)}}
	if !d.DueDate.IsZero() {
		meta = append(meta, kv{"Due date", formatDate(d.DueDate)})
	}
	if d.Period != nil {
		meta = append(meta, kv{"Billing period", formatPeriod(d.Period)})
	}
	if d.InvoiceReference != nil {
		ref := d.InvoiceReference.Number
		if !d.InvoiceReference.IssueDate.IsZero() {
			ref += " of " + formatDate(d.InvoiceReference.IssueDate)
		}
		meta = append(meta, kv{"Credits invoice", ref})
	}
	if d.BuyerReference != "" {
		meta = append(meta, kv{"Your reference", d.BuyerReference})
	}
	if d.OrderReference != "" {
		meta = append(meta, kv{"Order", d.OrderReference})
	}
	meta = append(meta, kv{"Currency", d.Currency})
	x0, labelW, valueW := right-84.0, 26.0, 58.0
	my := top
	for _, m := range meta {
		r.font("", 8.5, colMuted)
		r.text(x0, my, labelW, 5, m.k, "L")
		r.font("B", 8.5, colText)
		r.pdf.SetFontSize(r.fitSize(m.v, valueW, 8.5, 6))
		r.text(x0+labelW, my, valueW, 5, m.v, "R")
		my += 5
	}
	pdf.SetY(max(buyerBottom, my) + 8)
}

// tableHeader draws the lines table header at the current y.
func (r *pdfRenderer) tableHeader() {
	pdf := r.pdf
	y := pdf.GetY()
	pdf.SetFillColor(colAccent[0], colAccent[1], colAccent[2])
	pdf.Rect(margin, y, contentW, 7, "F")
	r.font("B", 8, [3]int{255, 255, 255})
	x := margin
	for _, c := range lineColumns {
		title := c.title
		if c.title == "Amount" {
			title = "Amount " + r.d.Currency
		}
		r.text(x+1, y, c.w-2, 7, title, c.align)
		x += c.w
	}
	pdf.SetY(y + 9)
}

// newPageIfNeeded starts a new page when h more millimetres do not fit.
func (r *pdfRenderer) newPageIfNeeded(h float64, withTableHeader bool) {
	if r.pdf.GetY()+h <= pageH-footerH-4 {
		return
	}
	r.pdf.AddPage()
	r.pdf.SetY(margin)
	if withTableHeader {
		r.tableHeader()
	}
}

func (r *pdfRenderer) lines() {
	d, pdf := r.d, r.pdf
	r.tableHeader()
	descW := lineColumns[1].w - 2
	for i, l := range d.Lines {
		r.font("B", 8.5, colText)
		name := r.wrap(l.Name, descW)
		r.font("", 8, colText)
		desc := []string{}
		if l.Description != "" && l.Description != l.Name {
			desc = r.wrap(l.Description, descW)
		}
		r.font("", 7.5, colMuted)
		var extra []string
		if l.Period != nil {
			extra = append(extra, r.wrap(formatPeriod(l.Period), descW)...)
		}
		if l.Note != "" && len(l.Breakdown) == 0 {
			extra = append(extra, r.wrap(l.Note, descW)...)
		}
		for _, ac := range l.AllowanceCharges {
			extra = append(extra, r.wrap(allowanceLabel(ac)+" "+r.signed(ac), descW)...)
		}
		h := 4.4*float64(len(name)) + 4*float64(len(desc)) + 3.6*float64(len(extra)+len(l.Breakdown)) + 3
		r.newPageIfNeeded(h, true)
		y := pdf.GetY()

		cells := []string{l.ID, "", groupDigits(l.Quantity, natural(l.Quantity, 0)), unitName(l.UnitCode),
			groupDigits(l.UnitPrice, natural(l.UnitPrice, d.CurrencyExponent)), taxLabel(l.Tax), r.money(l.NetAmount)}
		if !l.BaseQuantity.IsZero() && !l.BaseQuantity.Equal(decimal.NewFromInt(1)) {
			cells[4] += " / " + l.BaseQuantity.String()
		}
		if len(l.Breakdown) > 0 {
			// The unit price of a tiered line is an average that exists for
			// UBL's arithmetic; the breakdown below shows the real prices.
			cells[4] = ""
		}
		r.font("", 8.5, colText)
		x := margin
		for j, c := range lineColumns {
			if j != 1 {
				r.text(x+1, y, c.w-2, 4.4, cells[j], c.align)
			}
			x += c.w
		}
		dx := margin + lineColumns[0].w + 1
		r.font("B", 8.5, colText)
		yy := r.block(dx, y, descW, 4.4, name, "L")
		r.font("", 8, colText)
		yy = r.block(dx, yy, descW, 4, desc, "L")
		r.font("", 7.5, colMuted)
		yy = r.block(dx, yy, descW, 3.6, extra, "L")
		yy = r.breakdown(l.Breakdown, yy)
		yy += 1.5
		if i < len(d.Lines)-1 {
			pdf.SetDrawColor(colRule[0], colRule[1], colRule[2])
			pdf.SetLineWidth(0.2)
			pdf.Line(margin, yy, margin+contentW, yy)
		}
		pdf.SetY(yy + 1.5)
	}
	pdf.SetDrawColor(colAccent[0], colAccent[1], colAccent[2])
	pdf.SetLineWidth(0.4)
	pdf.Line(margin, pdf.GetY(), margin+contentW, pdf.GetY())
	pdf.SetY(pdf.GetY() + 6)
}

// breakdown draws a line's breakdown rows from y in the table's columns
// (quantity, unit price, exact amount), muted, and returns the y below.
func (r *pdfRenderer) breakdown(rows []LineDetail, y float64) float64 {
	r.font("", 7.5, colMuted)
	exp := r.d.CurrencyExponent
	for _, d := range rows {
		cells := []string{"", d.Description, "", "", "", "", groupDigits(d.Amount, natural(d.Amount, exp))}
		if !d.Quantity.IsZero() {
			cells[2], cells[4] = groupDigits(d.Quantity, natural(d.Quantity, 0)), groupDigits(d.UnitPrice, natural(d.UnitPrice, exp))
			cells[3] = "×"
		}
		x := margin
		for j, c := range lineColumns {
			if cells[j] != "" {
				r.text(x+1, y, c.w-2, 3.6, cells[j], c.align)
			}
			x += c.w
		}
		y += 3.6
	}
	return y
}

func (r *pdfRenderer) signed(ac AllowanceCharge) string {
	if ac.Charge {
		return "+" + r.money(ac.Amount)
	}
	return "-" + r.money(ac.Amount)
}

func allowanceLabel(ac AllowanceCharge) string {
	label := ac.Reason
	if label == "" {
		label = "Discount"
		if ac.Charge {
			label = "Charge"
		}
	}
	if !ac.Percent.IsZero() {
		label += " (" + ac.Percent.String() + "%)"
	}
	return label
}

func unitName(code string) string {
	if n, ok := unitNames[code]; ok {
		return n
	}
	return code
}

func taxLabel(t Tax) string {
	if t.Category.charged() {
		return t.Rate.String() + "%"
	}
	return string(t.Category)
}

var categoryNames = map[TaxCategory]string{
	TaxStandard: "Standard rate", TaxZeroRated: "Zero rated", TaxExempt: "Exempt",
	TaxReverseCharge: "Reverse charge", TaxIntraEU: "Intra-community supply", TaxExport: "Export",
	TaxNotSubject: "Not subject to VAT", TaxCanary: "IGIC", TaxCeutaMelilla: "IPSI",
}

// summary draws the tax breakdown on the left and the totals on the right.
func (r *pdfRenderer) summary() {
	d, pdf := r.d, r.pdf
	type row struct {
		label, value string
		bold         bool
	}
	t := d.Totals
	rows := []row{{"Subtotal", r.money(t.LineExtension), false}}
	for _, ac := range d.AllowanceCharges {
		rows = append(rows, row{allowanceLabel(ac), r.signed(ac), false})
	}
	rows = append(rows,
		row{"Total excl. VAT", r.money(t.TaxExclusive), true},
		row{"VAT", r.money(t.Tax), false},
		row{"Total incl. VAT", r.money(t.TaxInclusive), true},
	)
	if !t.Prepaid.IsZero() {
		rows = append(rows, row{"Credits and payments applied", "-" + r.money(t.Prepaid), false})
	}
	if !t.PayableRounding.IsZero() {
		rows = append(rows, row{"Rounding", r.money(t.PayableRounding), false})
	}

	// Left column: tax summary, as wide as it needs to be beside the totals.
	const leftW, rightW = 92.0, 74.0
	var reasons []string
	r.font("", 7.5, colMuted)
	for _, g := range d.TaxBreakdown {
		if reason := exemptionText(g.Tax); reason != "" {
			reasons = append(reasons, r.wrap(string(g.Tax.Category)+": "+reason, leftW)...)
		}
	}
	leftH := 6 + 5*float64(len(d.TaxBreakdown)+1) + 3.6*float64(len(reasons))
	rightH := 5.5*float64(len(rows)) + 12
	r.newPageIfNeeded(max(leftH, rightH), false)
	top := pdf.GetY()

	r.font("B", 7.5, colAccent)
	r.text(margin, top, leftW, 4, "VAT SUMMARY", "L")
	cols := []struct {
		t string
		w float64
		a string
	}{{"Category", 38, "L"}, {"Rate", 12, "R"}, {"Taxable", 21, "R"}, {"VAT", 21, "R"}}
	y := top + 5
	pdf.SetFillColor(colBand[0], colBand[1], colBand[2])
	pdf.Rect(margin, y, leftW, 5, "F")
	r.font("B", 7.5, colText)
	x := margin
	for _, c := range cols {
		r.text(x+1, y, c.w-2, 5, c.t, c.a)
		x += c.w
	}
	y += 5
	r.font("", 8, colText)
	for _, g := range d.TaxBreakdown {
		rate := g.Tax.Rate.String() + "%"
		if g.Tax.Category == TaxNotSubject {
			rate = ""
		}
		vals := []string{categoryNames[g.Tax.Category] + " (" + string(g.Tax.Category) + ")", rate, r.money(g.TaxableAmount), r.money(g.TaxAmount)}
		x = margin
		for j, c := range cols {
			r.text(x+1, y, c.w-2, 5, vals[j], c.a)
			x += c.w
		}
		y += 5
	}
	r.font("", 7.5, colMuted)
	leftBottom := r.block(margin, y+1, leftW, 3.6, reasons, "L")

	// Right column: totals and the amount due.
	x0 := margin + contentW - rightW
	y = top
	for _, rw := range rows {
		style := ""
		if rw.bold {
			style = "B"
		}
		r.font(style, 8.5, colText)
		r.text(x0, y, rightW-30, 5.5, rw.label, "L")
		r.text(x0+rightW-30, y, 30, 5.5, rw.value, "R")
		y += 5.5
	}
	y += 1.5
	pdf.SetFillColor(colAccent[0], colAccent[1], colAccent[2])
	pdf.Rect(x0, y, rightW, 9, "F")
	due := "Amount due"
	if d.Kind == KindCreditNote {
		due = "Amount credited"
	}
	r.font("B", 10, [3]int{255, 255, 255})
	r.text(x0+2, y, rightW/2, 9, due, "L")
	r.text(x0+rightW/2, y, rightW/2-2, 9, r.moneySym(t.Payable), "R")
	pdf.SetY(max(leftBottom, y+9) + 8)
}

func exemptionText(t Tax) string {
	switch {
	case t.ExemptionReason != "" && t.ExemptionReasonCode != "":
		return t.ExemptionReason + " (" + t.ExemptionReasonCode + ")"
	case t.ExemptionReason != "":
		return t.ExemptionReason
	}
	return t.ExemptionReasonCode
}

// payment draws payment terms, means and notes.
func (r *pdfRenderer) payment() {
	d := r.d
	type section struct {
		title string
		lines []string
	}
	var sections []section
	var pay []string
	if d.PaymentTerms != "" {
		pay = append(pay, d.PaymentTerms)
	}
	if pm := d.PaymentMeans; pm != nil {
		if pm.IBAN != "" {
			s := "Bank transfer to IBAN " + pm.IBAN
			if pm.BIC != "" {
				s += ", BIC " + pm.BIC
			}
			if pm.AccountName != "" {
				s += " (" + pm.AccountName + ")"
			}
			pay = append(pay, s)
		}
		if pm.PaymentID != "" {
			pay = append(pay, "Please quote reference "+pm.PaymentID+" with your payment.")
		}
	}
	if len(pay) > 0 {
		sections = append(sections, section{"PAYMENT", pay})
	}
	if len(d.Notes) > 0 {
		sections = append(sections, section{"NOTES", d.Notes})
	}
	for _, s := range sections {
		r.font("", 8.5, colText)
		var body []string
		for _, l := range s.lines {
			body = append(body, r.wrap(l, contentW)...)
		}
		r.newPageIfNeeded(6+4.4*float64(len(body)), false)
		y := r.pdf.GetY()
		r.font("B", 7.5, colAccent)
		r.text(margin, y, contentW, 4, s.title, "L")
		r.font("", 8.5, colText)
		y = r.block(margin, y+5, contentW, 4.4, body, "L")
		r.pdf.SetY(y + 5)
	}
}

func (r *pdfRenderer) footer() {
	pdf, d := r.pdf, r.d
	y := pageH - footerH + 4
	pdf.SetDrawColor(colRule[0], colRule[1], colRule[2])
	pdf.SetLineWidth(0.2)
	pdf.Line(margin, y, margin+contentW, y)
	parts := []string{d.Seller.Name}
	if d.Seller.VATID != "" {
		parts = append(parts, "VAT ID "+d.Seller.VATID)
	}
	if d.Seller.LegalID != "" {
		parts = append(parts, "Reg. "+d.Seller.LegalID)
	}
	if d.Seller.LegalForm != "" {
		parts = append(parts, d.Seller.LegalForm)
	}
	r.font("", 7, colMuted)
	left := r.wrap(strings.Join(parts, "  ·  "), contentW-64)
	if len(left) > 2 {
		left = left[:2]
	}
	r.block(margin, y+1.5, contentW-64, 3.4, left, "L")
	r.text(margin+contentW-64, y+1.5, 45, 3.4, fmt.Sprintf("%s %s  ·  Page %d of {nb}", r.title(), d.Number, pdf.PageNo()), "R")
}
