package document

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/abacusbilling/abacus"
	"github.com/shopspring/decimal"
)

// Format is an output format of Render.
type Format string

const (
	FormatUBL          Format = "ubl"           // UBL 2.1; Peppol BIS 3 for Abacus's own documents (see UBL)
	FormatCII          Format = "cii"           // UN/CEFACT CII D16B, EN 16931 profile
	FormatFacturX      Format = "facturx"       // Factur-X / ZUGFeRD 2.x: PDF/A-3 with the CII inside (EN 16931 profile)
	FormatFacturXBasic Format = "facturx-basic" // Factur-X in the BASIC profile
	FormatXRechnungUBL Format = "xrechnung-ubl" // XRechnung 3.0 CIUS on UBL
	FormatXRechnungCII Format = "xrechnung-cii" // XRechnung 3.0 CIUS on CII
	FormatJSON         Format = "json"
	FormatCSV          Format = "csv"
	FormatPDF          Format = "pdf"
)

// Formats are the formats Render writes, in the order documented.
var Formats = []Format{FormatUBL, FormatCII, FormatFacturX, FormatFacturXBasic, FormatXRechnungUBL, FormatXRechnungCII, FormatJSON, FormatCSV, FormatPDF}

// ContentType returns the media type of f.
func (f Format) ContentType() string {
	switch f {
	case FormatUBL, FormatCII, FormatXRechnungUBL, FormatXRechnungCII:
		return "application/xml"
	case FormatJSON:
		return "application/json"
	case FormatCSV:
		return "text/csv; charset=utf-8"
	case FormatPDF, FormatFacturX, FormatFacturXBasic:
		return "application/pdf"
	}
	return "application/octet-stream"
}

// formatNames is the list ParseFormat's error gives.
const formatNames = "ubl, cii, facturx, facturx-basic, xrechnung-ubl, xrechnung-cii, json, csv or pdf"

// ParseFormat reads a format name (case-insensitive; "xml" means UBL,
// "zugferd" Factur-X). It returns an *abacus.Error of KindInvalid, code
// "document_format_unknown", for other names.
func ParseFormat(s string) (Format, error) {
	f := Format(strings.ToLower(strings.TrimSpace(s)))
	for _, k := range Formats {
		if f == k {
			return f, nil
		}
	}
	switch f {
	case "xml":
		return FormatUBL, nil
	case "zugferd", "factur-x":
		return FormatFacturX, nil
	}
	return "", abacus.Invalid("document_format_unknown", "format %q is not one of %s", s, formatNames).WithField("format", "must be "+formatNames)
}

// Render writes d in format f; see UBL, CII, FacturX, XRechnung, JSON, CSV
// and PDF for each format's errors.
func Render(d *Document, f Format) ([]byte, error) {
	switch f {
	case FormatUBL:
		return UBL(d)
	case FormatCII:
		return CII(d)
	case FormatFacturX:
		return FacturX(d, FacturXEN16931)
	case FormatFacturXBasic:
		return FacturX(d, FacturXBasic)
	case FormatXRechnungUBL:
		return XRechnung(d, FormatUBL)
	case FormatXRechnungCII:
		return XRechnung(d, FormatCII)
	case FormatJSON:
		return JSON(d)
	case FormatCSV:
		return CSV(d)
	case FormatPDF:
		return PDF(d)
	}
	_, err := ParseFormat(string(f))
	return nil, err
}

// JSON renders d as indented JSON with snake_case fields. Amounts are
// strings ("1234.50") so no reader loses precision; dates are YYYY-MM-DD.
// It does not validate d, so a parsed document with violations can still
// be shown; it returns an error only if encoding fails.
func JSON(d *Document) ([]byte, error) {
	b, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encoding document %s as JSON: %w", d.Number, err)
	}
	return append(b, '\n'), nil
}

// csvHeader is CSV's first row. Each row is one line; the document columns
// repeat on every row so files of several documents concatenate and filter
// cleanly. Totals, document-level allowances and the tax breakdown are not
// rows: mixing them with lines breaks spreadsheet sums, and JSON, UBL and
// PDF carry them.
var csvHeader = []string{
	"document_kind", "document_number", "issue_date", "due_date", "currency", "buyer_name", "buyer_vat_id",
	"line_id", "name", "description", "quantity", "unit_code", "unit_price", "base_quantity",
	"line_allowances", "line_charges", "net_amount", "tax_category", "tax_rate",
	"period_start", "period_end", "note",
}

// CSV renders d's lines as RFC 4180 CSV with a header row (see csvHeader
// for the columns). Amounts have the currency's decimals; prices and
// quantities their own. It returns an error only if writing fails.
func CSV(d *Document) ([]byte, error) {
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	if err := w.Write(csvHeader); err != nil {
		return nil, fmt.Errorf("writing CSV header: %w", err)
	}
	money := func(a decimal.Decimal) string { return a.StringFixed(d.CurrencyExponent) }
	for _, l := range d.Lines {
		var allowances, charges decimal.Decimal
		for _, ac := range l.AllowanceCharges {
			if ac.Charge {
				charges = charges.Add(ac.Amount)
			} else {
				allowances = allowances.Add(ac.Amount)
			}
		}
		var start, end string
		if l.Period != nil {
			start, end = l.Period.Start.String(), l.Period.End.String()
		}
		base := ""
		if !l.BaseQuantity.IsZero() {
			base = l.BaseQuantity.String()
		}
		row := []string{
			string(d.Kind), d.Number, d.IssueDate.String(), d.DueDate.String(), d.Currency, cell(d.Buyer.Name), d.Buyer.VATID,
			l.ID, cell(l.Name), cell(l.Description), l.Quantity.String(), l.UnitCode, l.UnitPrice.String(), base,
			money(allowances), money(charges), money(l.NetAmount), string(l.Tax.Category), l.Tax.Rate.String(),
			start, end, cell(l.Note),
		}
		if err := w.Write(row); err != nil {
			return nil, fmt.Errorf("writing CSV line %s: %w", l.ID, err)
		}
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return nil, fmt.Errorf("writing CSV: %w", err)
	}
	return buf.Bytes(), nil
}

// cell defuses free text a spreadsheet would run as a formula (CSV
// injection) by prefixing an apostrophe; numbers are written by the
// package and never pass through it.
func cell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}
