package billing

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/catalog"
	"github.com/abacusbilling/abacus/internal/document"
	"github.com/abacusbilling/abacus/internal/pricing"
)

// docLines maps invoice lines onto document lines (quantity × average unit
// price = net amount, a credit as a negative quantity at a positive price)
// and discount lines onto document-level allowances. Periods are dates in
// loc (UTC when nil), the end date inclusive. The lines priced from the
// plan (fees, usage, commitments) name plan, when known, in their
// description.
func docLines(lines []Line, loc *time.Location, plan string) ([]document.Line, []document.AllowanceCharge) {
	if loc == nil {
		loc = time.UTC
	}
	var out []document.Line
	var acs []document.AllowanceCharge
	for _, l := range lines {
		tax := l.Tax.Tax
		if l.Kind == LineDiscount {
			acs = append(acs, document.AllowanceCharge{Amount: l.NetAmount.Neg(), Reason: l.Description, ReasonCode: "95", Tax: &tax})
			continue
		}
		qty := l.Quantity.Abs()
		if qty.IsZero() && !l.NetAmount.IsZero() {
			qty = decimal.NewFromInt(1)
		}
		if l.NetAmount.IsNegative() {
			qty = qty.Neg()
		}
		price := decimal.Zero
		if !qty.IsZero() {
			price = document.AverageUnitPrice(l.NetAmount.Abs(), qty.Abs())
		}
		dl := document.Line{ID: fmt.Sprint(len(out) + 1), Name: lineName(l), Quantity: qty, UnitCode: "C62", UnitPrice: price,
			NetAmount: l.NetAmount, Tax: tax, SellerItemID: l.ChargeKey}
		if l.Usage != nil && len(l.Usage.Components) > 1 {
			var parts []string
			for _, c := range l.Usage.Components {
				parts = append(parts, componentNote(c))
			}
			dl.Note = strings.Join(parts, "; ")
		}
		if plan != "" && l.Kind != LineProration {
			dl.Description = planLabel(plan)
		}
		if l.Usage != nil && !onePrice(l.Usage, price) {
			dl.Breakdown = usageBreakdown(l.Usage)
		}
		if l.PeriodEnd.After(l.PeriodStart) {
			dl.Period = &document.Period{Start: document.DateOf(l.PeriodStart.In(loc)), End: document.DateOf(l.PeriodEnd.Add(-time.Microsecond).In(loc))}
		}
		out = append(out, dl)
	}
	return out, acs
}

// componentNote describes one component of a usage line's amount, e.g.
// "1.5 % of 12000.5 = 180.0075" and "41 events × 0.3 = 12.3" for a
// percentage with a fee per event, "tier 1000 @ 0.05 = 50" otherwise.
// Amounts are exact (to 6 places); the line's amount is their rounded sum.
func componentNote(c pricing.Component) string {
	amount := c.Amount.Round(6)
	switch c.Kind {
	case pricing.ComponentPercentage:
		return fmt.Sprintf("%s %% of %s = %s", c.UnitAmount.Shift(2), c.Quantity, amount)
	case pricing.ComponentEventFee:
		return fmt.Sprintf("%s events × %s = %s", c.Quantity, c.UnitAmount, amount)
	}
	return fmt.Sprintf("%s %s @ %s = %s", c.Kind, c.Quantity, c.UnitAmount, amount)
}

// keyWords spells a charge key's separators as spaces. Built once: a
// Replacer builds its tables on first use, and lineName runs per line.
var keyWords = strings.NewReplacer("_", " ", "-", " ")

// lineName is what a line is called on documents: the charge's
// description, or, when the charge has none, its key made readable
// ("api_calls" → "Api calls", a fee "base" → "Base fee").
func lineName(l Line) string {
	if l.ChargeKey == "" || l.Description != l.ChargeKey {
		return l.Description
	}
	name := keyWords.Replace(l.ChargeKey)
	name = strings.ToUpper(name[:1]) + name[1:]
	if l.Kind == LineFee && !strings.Contains(strings.ToLower(name), "fee") {
		name += " fee"
	}
	return name
}

// planLabel is a plan's name as a line description: "Growth plan", or the
// name as it is when it already says plan.
func planLabel(name string) string {
	if strings.Contains(strings.ToLower(name), "plan") {
		return name
	}
	return name + " plan"
}

// onePrice reports whether usage r is one price times the quantity, which
// the line's unit price (computed back from the amount) then shows as it is.
func onePrice(r *pricing.Result, unitPrice decimal.Decimal) bool {
	if len(r.Components) != 1 || !r.Adjustment.IsZero() {
		return false
	}
	c := r.Components[0]
	return c.Kind == pricing.ComponentUnits && c.UnitAmount.Equal(unitPrice)
}

// usageBreakdown lists how a usage amount is made up with the real prices:
// one row per tier used (its quantity × its price), a row for each tier's
// flat fee, the percentage or per-event fee, and the minimum or maximum
// that adjusted the total. Amounts are exact; the line's is their rounded sum.
func usageBreakdown(r *pricing.Result) []document.LineDetail {
	var out []document.LineDetail
	for _, c := range r.Components {
		switch c.Kind {
		case pricing.ComponentPercentage:
			out = append(out, document.LineDetail{Description: fmt.Sprintf("%s %% of %s", c.UnitAmount.Shift(2), c.Quantity), Amount: c.Amount})
			continue
		case pricing.ComponentEventFee:
			out = append(out, document.LineDetail{Description: "Fee per event", Quantity: c.Quantity, UnitPrice: c.UnitAmount, Amount: c.Amount})
			continue
		}
		label := map[pricing.ComponentKind]string{pricing.ComponentUnits: "Units", pricing.ComponentPackages: "Packages"}[c.Kind]
		if c.Kind == pricing.ComponentTier {
			label = tierLabel(c)
		}
		if !c.Quantity.IsZero() {
			out = append(out, document.LineDetail{Description: label, Quantity: c.Quantity, UnitPrice: c.UnitAmount, Amount: c.Quantity.Mul(c.UnitAmount)})
		}
		if !c.FlatAmount.IsZero() {
			out = append(out, document.LineDetail{Description: label + ", flat fee", Amount: c.FlatAmount})
		}
	}
	if !r.Adjustment.IsZero() {
		what := "Minimum charge"
		if r.AdjustedBy == pricing.BoundMaximum {
			what = "Maximum charge"
		}
		out = append(out, document.LineDetail{Description: what + " adjustment", Amount: r.Adjustment})
	}
	return out
}

// tierLabel names a tier by its number and bounds, e.g. "Tier 2 (1,000 – 10,000)".
func tierLabel(c pricing.Component) string {
	n := 1
	if c.Tier != nil {
		n = *c.Tier + 1
	}
	from := decimal.Zero
	if c.From != nil {
		from = *c.From
	}
	switch {
	case c.UpTo == nil:
		return fmt.Sprintf("Tier %d (above %s)", n, document.GroupDigits(from))
	case from.IsZero():
		return fmt.Sprintf("Tier %d (up to %s)", n, document.GroupDigits(*c.UpTo))
	}
	return fmt.Sprintf("Tier %d (%s – %s)", n, document.GroupDigits(from), document.GroupDigits(*c.UpTo))
}

// vatSchemes maps a VAT id's country prefix to its Peppol EAS scheme.
var vatSchemes = map[string]string{
	"AT": "9914", "BE": "9925", "BG": "9926", "CY": "9928", "CZ": "9929", "DE": "9930", "EE": "9931", "GB": "9932", "EL": "9933",
	"HR": "9934", "IE": "9935", "LU": "9938", "LV": "9939", "MT": "9943", "NL": "9944", "PL": "9945", "PT": "9946", "RO": "9947",
	"SI": "9949", "SK": "9950", "FR": "9957", "HU": "9910", "ES": "9920",
}

// withEndpoint fills a party's Peppol address when it has none: its VAT
// id where the country has a VAT scheme. There is no e-mail fallback: the
// Peppol code list has no e-mail scheme, so a party without an address
// gets a UBL error that says what to set, not an invalid document.
func withEndpoint(p document.Party) document.Party {
	if p.EndpointID != "" {
		return p
	}
	if len(p.VATID) > 2 {
		if scheme, ok := vatSchemes[strings.ToUpper(p.VATID[:2])]; ok {
			p.EndpointID, p.EndpointScheme = p.VATID, scheme
		}
	}
	return p
}

// buyerParty maps a customer onto the buyer. The customer's metadata
// "peppol_endpoint" ("SCHEME:ID", e.g. "0088:4035811991021") sets its
// Peppol address; otherwise its VAT id, else its e-mail is used.
func buyerParty(cus catalog.Customer) document.Party {
	var addr []string
	for _, a := range []string{cus.Address.Line1, cus.Address.Line2} {
		if a != "" {
			addr = append(addr, a)
		}
	}
	p := document.Party{Name: cus.Name, Address: addr, City: cus.Address.City, PostalCode: cus.Address.PostalCode,
		Subdivision: cus.Address.State, CountryCode: cus.Address.Country, VATID: cus.TaxID, Email: cus.Email, ID: cus.ID}
	if scheme, id, ok := strings.Cut(cus.Metadata["peppol_endpoint"], ":"); ok {
		p.EndpointScheme, p.EndpointID = scheme, id
	}
	return withEndpoint(p)
}

func paymentTerms(st Settings) string {
	if st.PaymentTerms != "" {
		return st.PaymentTerms
	}
	return fmt.Sprintf("Payable within %d days of the invoice date.", st.DueDays)
}

// invoiceDocument maps a finalized invoice onto the document model, with
// totals computed by document.ComputeTotals.
func invoiceDocument(inv *Invoice, cus catalog.Customer, st Settings) *document.Document {
	loc := cus.Location()
	d := &document.Document{Kind: document.KindInvoice, Number: inv.Number, Currency: inv.Currency,
		CurrencyExponent: document.CurrencyExponent(inv.Currency), BuyerReference: inv.SubscriptionID,
		Seller: withEndpoint(st.Seller), Buyer: buyerParty(cus), PaymentTerms: paymentTerms(st)}
	if st.PaymentMeans != nil {
		pm := *st.PaymentMeans
		pm.PaymentID = inv.Number
		d.PaymentMeans = &pm
	}
	if inv.FinalizedAt != nil {
		d.IssueDate = document.DateOf(inv.FinalizedAt.In(loc))
	}
	if inv.DueAt != nil {
		d.DueDate = document.DateOf(inv.DueAt.In(loc))
	}
	if inv.ServiceStart != nil && inv.ServiceEnd != nil && inv.ServiceEnd.After(*inv.ServiceStart) {
		d.Period = &document.Period{Start: document.DateOf(inv.ServiceStart.In(loc)), End: document.DateOf(inv.ServiceEnd.Add(-time.Microsecond).In(loc))}
	}
	d.Lines, d.AllowanceCharges = docLines(inv.Lines, loc, inv.planName)
	for _, l := range inv.Lines {
		if l.Tax.Category == document.TaxReverseCharge {
			d.Notes = []string{ReverseChargeNote + "."}
			break
		}
	}
	d.Totals.Prepaid = inv.CreditsApplied
	d.ComputeTotals(document.RoundHalfUp)
	return d
}

// InvoiceDocument returns the frozen document of finalized invoice id.
// Errors: "invoice_not_found", conflict "invoice_not_finalized" for a draft.
func (s *Service) InvoiceDocument(ctx context.Context, id string) (*document.Document, error) {
	inv, err := s.GetInvoice(ctx, id)
	if err != nil {
		return nil, err
	}
	if inv.Status == Draft || len(inv.doc) == 0 {
		return nil, abacus.Conflict("invoice_not_finalized", "invoice %s is a draft; finalize it before asking for its document", id).
			WithField("status", "is draft")
	}
	var d document.Document
	if err := json.Unmarshal(inv.doc, &d); err != nil {
		return nil, fmt.Errorf("decoding document of %s: %w", id, err)
	}
	return &d, nil
}

// Render renders d in format f (see document.Render for its errors).
func Render(d *document.Document, f document.Format) ([]byte, error) { return document.Render(d, f) }

// Convert reads an invoice or credit note in any format document.Parse
// detects (UBL, CII, Factur-X PDF, the model's JSON) and renders it in
// format f. A document that breaks a rule is refused with a
// KindUnprocessable *abacus.Error of code "document_invalid" listing every
// violation in Fields (field = element path, message "[RULE severity]
// …"). The report lists what the conversion dropped. Errors of
// document.Parse for unreadable input; "document_format_unknown".
func Convert(data []byte, f document.Format) ([]byte, *document.Report, error) {
	return document.Convert(data, f)
}
