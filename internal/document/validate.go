package document

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/abacusbilling/abacus"
	"github.com/shopspring/decimal"
)

// CodeInvalid is the error code of Validate's *abacus.Error.
const CodeInvalid = "document_invalid"

var (
	currencyRe = regexp.MustCompile(`^[A-Z]{3}$`)
	countryRe  = regexp.MustCompile(`^[A-Z]{2}$`)
)

// Validate checks what a Peppol validator checks that the model can get
// wrong: mandatory fields (number, dates, currency, parties with
// electronic addresses, at least one line, a buyer or order reference),
// the totals (BR-CO-10 to BR-CO-16), each line's net amount against
// quantity × price (PEPPOL-EN16931-R120, within 0.02), the tax breakdown
// against the lines and allowances (one group per category and rate; tax
// within one cent of taxable × rate, BR-CO-17), the category rules (rates,
// VAT identifiers, exemption reasons: required for E, AE, K, G and O,
// forbidden for S and Z), periods, and that no amount has more decimals
// than the currency. It returns nil or an *abacus.Error of KindInvalid and
// code "document_invalid" whose Fields list every problem with its path
// (e.g. "lines[2].net_amount"). Validate does not enforce Peppol's two-decimal limit;
// UBL does.
func (d *Document) Validate() error {
	var v abacus.Validation
	d.validateHeader(&v)
	d.validateTerms(&v)
	validateParty(&v, "seller", &d.Seller)
	validateParty(&v, "buyer", &d.Buyer)
	d.validateLines(&v)
	d.validateAllowanceCharges(&v)
	d.validateBreakdown(&v)
	d.validateTotals(&v)
	d.validateCategories(&v)
	d.validateProfile(&v)
	return v.Err(CodeInvalid)
}

func (d *Document) validateHeader(v *abacus.Validation) {
	if d.Kind != KindInvoice && d.Kind != KindCreditNote {
		v.Add("kind", "must be %q or %q", KindInvoice, KindCreditNote)
	}
	if strings.TrimSpace(d.Number) == "" {
		v.Add("number", "is required")
	}
	if d.IssueDate.IsZero() {
		v.Add("issue_date", "is required")
	}
	if !d.DueDate.IsZero() && !d.IssueDate.IsZero() && d.DueDate.Before(d.IssueDate) {
		v.Add("due_date", "must not be before issue_date %s", d.IssueDate)
	}
	if !currencyRe.MatchString(d.Currency) {
		v.Add("currency", "must be an ISO 4217 code such as EUR")
	}
	if d.CurrencyExponent < 0 || d.CurrencyExponent > 4 {
		v.Add("currency_exponent", "must be between 0 and 4")
	}
	if d.TaxCurrency != "" && (d.TaxCurrency == d.Currency || !currencyRe.MatchString(d.TaxCurrency)) {
		v.Add("tax_currency", "must be an ISO 4217 code different from currency")
	}
	validatePeriod(v, "period", d.Period)
	if d.InvoiceReference != nil && d.InvoiceReference.Number == "" {
		v.Add("invoice_reference.number", "is required when invoice_reference is set")
	}
	if pm := d.PaymentMeans; pm != nil {
		if pm.Code == "" {
			v.Add("payment_means.code", "is required (UNCL 4461, e.g. 30 or 58)")
		}
		if (pm.Code == "30" || pm.Code == "58") && pm.IBAN == "" {
			v.Add("payment_means.iban", "is required for a credit transfer (BR-50)")
		}
	}
	if !d.Totals.Payable.IsPositive() {
		return
	}
	if d.DueDate.IsZero() && d.PaymentTerms == "" {
		v.Add("due_date", "due_date or payment_terms is required when an amount is due (BR-CO-25)")
	} else if d.Kind == KindCreditNote && d.PaymentTerms == "" && d.PaymentMeans == nil {
		// A UBL CreditNote carries its due date only inside PaymentMeans.
		v.Add("payment_terms", "payment_terms or payment_means is required on a credit note with an amount due (BR-CO-25)")
	}
}

func validatePeriod(v *abacus.Validation, field string, p *Period) {
	if p == nil {
		return
	}
	if p.Start.IsZero() && p.End.IsZero() {
		v.Add(field, "needs a start or an end date (BR-CO-19)")
	}
	if !p.Start.IsZero() && !p.End.IsZero() && p.End.Before(p.Start) {
		v.Add(field+".end", "must not be before start %s", p.Start)
	}
}

func validateParty(v *abacus.Validation, field string, p *Party) {
	if strings.TrimSpace(p.Name) == "" {
		v.Add(field+".name", "is required")
	}
	if !countryRe.MatchString(p.CountryCode) {
		v.Add(field+".country_code", "must be an ISO 3166-1 alpha-2 code such as DE")
	}
	if len(p.Address) > 3 {
		v.Add(field+".address", "has %d lines; at most 3 fit the UBL address", len(p.Address))
	}
	if p.VATID != "" && len(p.VATID) < 3 {
		v.Add(field+".vat_id", "must start with the country prefix, e.g. DE123456789")
	}
}

// decimalsOK reports whether a has at most exp decimal places.
func decimalsOK(a decimal.Decimal, exp int32) bool { return a.Equal(a.Truncate(exp)) }

func (d *Document) checkAmount(v *abacus.Validation, field string, a decimal.Decimal) {
	if !decimalsOK(a, d.CurrencyExponent) {
		v.Add(field, "%s has more decimals than %s allows (%d)", a, d.Currency, d.CurrencyExponent)
	}
}

func (d *Document) validateLines(v *abacus.Validation) {
	if len(d.Lines) == 0 {
		v.Add("lines", "at least one line is required (BR-16)")
	}
	ids := map[string]bool{}
	tolerance := decimal.New(2, -2)
	peppol := d.Profile() == ProfilePeppol
	for i := range d.Lines {
		l := &d.Lines[i]
		f := fmt.Sprintf("lines[%d]", i)
		if l.ID == "" {
			v.Add(f+".id", "is required")
		} else if ids[l.ID] {
			v.Add(f+".id", "%q is used by another line", l.ID)
		}
		ids[l.ID] = true
		if strings.TrimSpace(l.Name) == "" {
			v.Add(f+".name", "is required (BR-25)")
		}
		if l.UnitCode == "" {
			v.Add(f+".unit_code", "is required, a UN/ECE rec 20 code such as C62 or HUR")
		}
		if l.UnitPrice.IsNegative() {
			v.Add(f+".unit_price", "must not be negative (BR-27); use a negative quantity")
		}
		if l.BaseQuantity.IsNegative() {
			v.Add(f+".base_quantity", "must be positive (PEPPOL-EN16931-R121)")
		}
		d.checkAmount(v, f+".net_amount", l.NetAmount)
		// Peppol's rule only: EN 16931 itself does not tie the line net amount to quantity × price.
		if want := l.lineBase(); peppol && l.NetAmount.Sub(want).Abs().GreaterThan(tolerance) {
			v.Add(f+".net_amount", "%s does not match quantity × unit price ± line allowances/charges = %s (PEPPOL-EN16931-R120); set unit_price with AverageUnitPrice for tiered amounts", l.NetAmount, want)
		}
		if !l.Tax.Category.Valid() {
			v.Add(f+".tax.category", "%q is not a VAT category (S, Z, E, AE, K, G, O, L, M)", l.Tax.Category)
		}
		validatePeriod(v, f+".period", l.Period)
		if l.Period != nil && d.Period != nil {
			if !d.Period.Start.IsZero() && !l.Period.Start.IsZero() && l.Period.Start.Before(d.Period.Start) {
				v.Add(f+".period.start", "must be within the document period (PEPPOL-EN16931-R110)")
			}
			if !d.Period.End.IsZero() && !l.Period.End.IsZero() && d.Period.End.Before(l.Period.End) {
				v.Add(f+".period.end", "must be within the document period (PEPPOL-EN16931-R111)")
			}
		}
		for j, ac := range l.AllowanceCharges {
			d.validateAllowanceCharge(v, fmt.Sprintf("%s.allowance_charges[%d]", f, j), ac, false)
		}
	}
}

func (d *Document) validateAllowanceCharges(v *abacus.Validation) {
	for i, ac := range d.AllowanceCharges {
		d.validateAllowanceCharge(v, fmt.Sprintf("allowance_charges[%d]", i), ac, true)
	}
}

func (d *Document) validateAllowanceCharge(v *abacus.Validation, f string, ac AllowanceCharge, docLevel bool) {
	d.checkAmount(v, f+".amount", ac.Amount)
	if ac.Reason == "" && ac.ReasonCode == "" {
		v.Add(f+".reason", "reason or reason_code is required (BR-33/BR-38)")
	}
	if !ac.BaseAmount.IsZero() {
		d.checkAmount(v, f+".base_amount", ac.BaseAmount)
		if want := ac.BaseAmount.Mul(ac.Percent).Div(hundred); !ac.Amount.Sub(want).Abs().LessThanOrEqual(decimal.New(1, -2)) {
			v.Add(f+".amount", "%s is not base_amount × percent / 100 = %s (PEPPOL-EN16931-R040)", ac.Amount, want)
		}
	} else if !ac.Percent.IsZero() {
		v.Add(f+".base_amount", "is required with percent (PEPPOL-EN16931-R041)")
	}
	if !docLevel {
		return
	}
	if ac.Tax == nil {
		v.Add(f+".tax", "is required on a document-level allowance or charge (BR-32/BR-37)")
	} else if !ac.Tax.Category.Valid() {
		v.Add(f+".tax.category", "%q is not a VAT category", ac.Tax.Category)
	}
}

// expectedBreakdown groups the lines and allowances as ComputeTotals does.
func (d *Document) expectedBreakdown() map[string]decimal.Decimal {
	m := map[string]decimal.Decimal{}
	for _, l := range d.Lines {
		m[l.Tax.key()] = m[l.Tax.key()].Add(l.NetAmount)
	}
	for _, ac := range d.AllowanceCharges {
		if ac.Tax == nil {
			continue
		}
		a := ac.Amount
		if !ac.Charge {
			a = a.Neg()
		}
		m[ac.Tax.key()] = m[ac.Tax.key()].Add(a)
	}
	return m
}

func (d *Document) validateBreakdown(v *abacus.Validation) {
	if len(d.TaxBreakdown) == 0 {
		v.Add("tax_breakdown", "at least one tax group is required (BR-CO-18); call ComputeTotals")
		return
	}
	want := d.expectedBreakdown()
	seen := map[string]bool{}
	for i, g := range d.TaxBreakdown {
		f := fmt.Sprintf("tax_breakdown[%d]", i)
		k := g.Tax.key()
		if seen[k] {
			v.Add(f, "category %s at %s%% appears twice; one group per category and rate", g.Tax.Category, g.Tax.Rate)
		}
		seen[k] = true
		d.checkAmount(v, f+".taxable_amount", g.TaxableAmount)
		d.checkAmount(v, f+".tax_amount", g.TaxAmount)
		if w, ok := want[k]; !ok {
			v.Add(f, "category %s at %s%% is used by no line, allowance or charge", g.Tax.Category, g.Tax.Rate)
		} else if !w.Equal(g.TaxableAmount) {
			v.Add(f+".taxable_amount", "%s is not the sum of its lines, allowances and charges %s", g.TaxableAmount, w)
		}
		if g.Tax.Category.charged() {
			exact := g.TaxableAmount.Mul(g.Tax.Rate).Div(hundred)
			// One minor unit of slack accepts half-even or truncating
			// rounding; Peppol's own BR-CO-17 slack is wider.
			if g.TaxAmount.Sub(exact).Abs().GreaterThan(decimal.New(1, -d.CurrencyExponent)) {
				v.Add(f+".tax_amount", "%s is not taxable amount × rate = %s rounded (BR-CO-17)", g.TaxAmount, exact.Round(d.CurrencyExponent))
			}
		} else if !g.TaxAmount.IsZero() {
			v.Add(f+".tax_amount", "must be zero for category %s", g.Tax.Category)
		}
		validateExemption(v, f+".tax", g.Tax)
	}
	for k := range want {
		if !seen[k] {
			c, r, _ := strings.Cut(k, "|")
			v.Add("tax_breakdown", "has no group for category %s at %s%%, used by a line, allowance or charge", c, r)
		}
	}
}

func validateExemption(v *abacus.Validation, f string, t Tax) {
	hasReason := t.ExemptionReason != "" || t.ExemptionReasonCode != ""
	switch {
	case t.Category.needsExemption() && !hasReason:
		v.Add(f+".exemption_reason", "is required for category %s: give exemption_reason or exemption_reason_code (e.g. VATEX-EU-132-1I)", t.Category)
	case t.Category.forbidsExemption() && hasReason:
		v.Add(f+".exemption_reason", "must be empty for category %s (BR-S-10, BR-Z-10)", t.Category)
	}
	if t.ExemptionReasonCode != "" && !strings.HasPrefix(strings.ToUpper(t.ExemptionReasonCode), "VATEX-") {
		v.Add(f+".exemption_reason_code", "%q is not a VATEX code such as VATEX-EU-AE", t.ExemptionReasonCode)
	}
}

func (d *Document) validateTotals(v *abacus.Validation) {
	t := d.Totals
	var lines, allowances, charges, tax decimal.Decimal
	for _, l := range d.Lines {
		lines = lines.Add(l.NetAmount)
	}
	for _, ac := range d.AllowanceCharges {
		if ac.Charge {
			charges = charges.Add(ac.Amount)
		} else {
			allowances = allowances.Add(ac.Amount)
		}
	}
	for _, g := range d.TaxBreakdown {
		tax = tax.Add(g.TaxAmount)
	}
	check := func(field, rule string, got, want decimal.Decimal) {
		d.checkAmount(v, "totals."+field, got)
		if !got.Equal(want) {
			v.Add("totals."+field, "%s should be %s (%s)", got, want, rule)
		}
	}
	check("line_extension", "BR-CO-10", t.LineExtension, lines)
	check("allowance_total", "BR-CO-11", t.AllowanceTotal, allowances)
	check("charge_total", "BR-CO-12", t.ChargeTotal, charges)
	check("tax_exclusive", "BR-CO-13", t.TaxExclusive, t.LineExtension.Sub(t.AllowanceTotal).Add(t.ChargeTotal))
	check("tax", "BR-CO-14", t.Tax, tax)
	check("tax_inclusive", "BR-CO-15", t.TaxInclusive, t.TaxExclusive.Add(t.Tax))
	d.checkAmount(v, "totals.prepaid", t.Prepaid)
	check("payable", "BR-CO-16", t.Payable, t.TaxInclusive.Sub(t.Prepaid).Add(t.PayableRounding))
}

// validateCategories checks the per-category rules on rates and VAT
// identifiers (BR-S-*, BR-Z-*, BR-E-*, BR-AE-*, BR-IC-*, BR-G-*, BR-O-*).
func (d *Document) validateCategories(v *abacus.Validation) {
	used := map[TaxCategory]bool{}
	checkRate := func(f string, t Tax) {
		used[t.Category] = true
		switch {
		case t.Category.charged() && !t.Rate.IsPositive():
			v.Add(f+".rate", "must be above zero for category %s", t.Category)
		case !t.Category.charged() && !t.Rate.IsZero():
			v.Add(f+".rate", "must be 0 for category %s", t.Category)
		}
	}
	for i, l := range d.Lines {
		checkRate(fmt.Sprintf("lines[%d].tax", i), l.Tax)
	}
	for i, ac := range d.AllowanceCharges {
		if ac.Tax != nil {
			checkRate(fmt.Sprintf("allowance_charges[%d].tax", i), *ac.Tax)
		}
	}
	sellerTaxID := d.Seller.VATID != ""
	for _, c := range []TaxCategory{TaxStandard, TaxZeroRated, TaxExempt, TaxReverseCharge, TaxIntraEU, TaxExport, TaxCanary, TaxCeutaMelilla} {
		if used[c] && !sellerTaxID {
			v.Add("seller.vat_id", "is required for category %s", c)
			break
		}
	}
	if used[TaxReverseCharge] && d.Buyer.VATID == "" && d.Buyer.LegalID == "" {
		v.Add("buyer.vat_id", "is required for reverse charge (AE): the buyer accounts for the tax (BR-AE-02)")
	}
	if used[TaxIntraEU] && d.Buyer.VATID == "" {
		v.Add("buyer.vat_id", "is required for an intra-community supply (BR-IC-02)")
	}
	if used[TaxNotSubject] {
		if len(used) > 1 {
			v.Add("tax_breakdown", "category O (not subject to VAT) cannot be mixed with other categories (BR-O-11..14)")
		}
		if d.Seller.VATID != "" || d.Buyer.VATID != "" {
			v.Add("seller.vat_id", "seller and buyer VAT identifiers must be empty for category O (BR-O-02..04)")
		}
	}
}
