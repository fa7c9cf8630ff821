package billing

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/catalog"
	"github.com/abacusbilling/abacus/internal/country"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/document"
	"github.com/abacusbilling/abacus/internal/money"
)

// TaxRate is a tenant's tax rate. Percentage is 19 for 19 %; it must be 0
// for every category but S (standard). Inclusive rates mean prices already
// contain the tax.
type TaxRate struct {
	ID              string               `json:"id"`
	Name            string               `json:"name"`
	Percentage      decimal.Decimal      `json:"percentage"`
	Category        document.TaxCategory `json:"category" doc:"UNCL 5305: S standard, Z zero-rated, E exempt, AE reverse charge, K, G, O"`
	Inclusive       bool                 `json:"inclusive"`
	Country         string               `json:"country,omitempty"`
	ExemptionReason string               `json:"exemption_reason,omitempty" doc:"required for E, AE, K, G, O"`
	CreatedAt       time.Time            `json:"created_at"`
}

// TaxRateInput creates a tax rate.
type TaxRateInput struct {
	Name            string               `json:"name"`
	Percentage      decimal.Decimal      `json:"percentage"`
	Category        document.TaxCategory `json:"category,omitempty" doc:"S when omitted"`
	Inclusive       bool                 `json:"inclusive,omitempty"`
	Country         string               `json:"country,omitempty"`
	ExemptionReason string               `json:"exemption_reason,omitempty"`
}

// CreateTaxRate creates a tax rate. It returns "invalid_tax_rate" naming
// every bad field.
func (s *Service) CreateTaxRate(ctx context.Context, in TaxRateInput) (TaxRate, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return TaxRate{}, err
	}
	if in.Category == "" {
		in.Category = document.TaxStandard
	}
	in.Country = strings.ToUpper(strings.TrimSpace(in.Country))
	var v abacus.Validation
	if strings.TrimSpace(in.Name) == "" {
		v.Add("name", "is required")
	}
	switch {
	case !in.Category.Valid():
		v.Add("category", "unknown category %q; use S, Z, E, AE, K, G or O", in.Category)
	case in.Category == document.TaxStandard && !in.Percentage.IsPositive():
		v.Add("percentage", "must be above 0 for the standard category S")
	case in.Category != document.TaxStandard && !in.Percentage.IsZero():
		v.Add("percentage", "must be 0 for category %s", in.Category)
	}
	if in.Percentage.GreaterThan(decimal.NewFromInt(100)) || in.Percentage.IsNegative() {
		v.Add("percentage", "must be between 0 and 100")
	}
	switch in.Category {
	case document.TaxExempt, document.TaxReverseCharge, document.TaxIntraEU, document.TaxExport, document.TaxNotSubject:
		if in.Category == document.TaxExempt && strings.TrimSpace(in.ExemptionReason) == "" {
			v.Add("exemption_reason", "is required for exempt rates (E): name the exemption, e.g. \"Exempt financial service\"")
		}
	default:
		if in.ExemptionReason != "" {
			v.Add("exemption_reason", "is only allowed for categories E, AE, K, G and O")
		}
	}
	if in.Country != "" && len(in.Country) != 2 {
		v.Add("country", "must be an ISO 3166-1 alpha-2 code such as DE")
	}
	if err := v.Err("invalid_tax_rate"); err != nil {
		return TaxRate{}, err
	}
	r := TaxRate{ID: abacus.NewID("txr"), Name: strings.TrimSpace(in.Name), Percentage: in.Percentage, Category: in.Category,
		Inclusive: in.Inclusive, Country: in.Country, ExemptionReason: in.ExemptionReason, CreatedAt: s.now()}
	_, err = s.db.ExecContext(ctx, `INSERT INTO tax_rates (id, tenant_id, name, percentage, category, inclusive, country, exemption_reason, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`, r.ID, tenant, r.Name, r.Percentage.String(), string(r.Category), boolInt(r.Inclusive),
		r.Country, r.ExemptionReason, db.TimeOf(r.CreatedAt))
	if err != nil {
		return TaxRate{}, fmt.Errorf("creating tax rate: %w", err)
	}
	return r, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

const taxRateCols = `id, name, percentage, category, inclusive, country, exemption_reason, created_at`

func scanTaxRate(r interface{ Scan(...any) error }) (TaxRate, error) {
	var t TaxRate
	var pct, cat string
	var inc int
	var ca db.Time
	if err := r.Scan(&t.ID, &t.Name, &pct, &cat, &inc, &t.Country, &t.ExemptionReason, &ca); err != nil {
		return t, err
	}
	t.Percentage, _ = decimal.NewFromString(pct)
	t.Category, t.Inclusive, t.CreatedAt = document.TaxCategory(cat), inc == 1, ca.Time
	return t, nil
}

// ListTaxRates returns the tenant's tax rates.
func (s *Service) ListTaxRates(ctx context.Context) ([]TaxRate, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+taxRateCols+` FROM tax_rates WHERE tenant_id = $1 ORDER BY id`, tenant)
	if err != nil {
		return nil, fmt.Errorf("listing tax rates: %w", err)
	}
	defer rows.Close()
	out := []TaxRate{}
	for rows.Next() {
		t, err := scanTaxRate(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// AssignTaxRate makes rate id apply to a customer or a plan (targetType
// "customer" or "plan"); a customer's rate wins over its plan's. An empty
// id removes the assignment. It returns "tax_rate_not_found" or
// "invalid_tax_assignment".
func (s *Service) AssignTaxRate(ctx context.Context, targetType, targetID, rateID string) error {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return err
	}
	if targetType != "customer" && targetType != "plan" {
		return abacus.Invalid("invalid_tax_assignment", "target must be customer or plan, got %q", targetType).WithField("target_type", "use customer or plan")
	}
	return s.db.InTx(ctx, func(tx *db.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM tax_assignments WHERE tenant_id = $1 AND target_type = $2 AND target_id = $3`,
			tenant, targetType, targetID); err != nil {
			return fmt.Errorf("removing tax assignment: %w", err)
		}
		if rateID == "" {
			return nil
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM tax_rates WHERE tenant_id = $1 AND id = $2`, tenant, rateID).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return abacus.NotFound("tax_rate", rateID).WithField("tax_rate_id", "no such tax rate")
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO tax_assignments (tenant_id, target_type, target_id, tax_rate_id) VALUES ($1, $2, $3, $4)`,
			tenant, targetType, targetID, rateID)
		return err
	})
}

// taxBook holds a tenant's rates and assignments for one billing batch.
type taxBook struct {
	rates     map[string]TaxRate
	assign    map[string]string  // "customer/id" or "plan/id" → rate id
	byCountry map[string]TaxRate // the first standard rate created per country
	seller    string             // seller country
}

// newTaxBook indexes a tenant's rates (in creation order) and assignments.
func newTaxBook(sellerCountry string, rates []TaxRate, assign map[string]string) *taxBook {
	b := &taxBook{rates: map[string]TaxRate{}, assign: assign, byCountry: map[string]TaxRate{}, seller: strings.ToUpper(sellerCountry)}
	for _, r := range rates {
		b.rates[r.ID] = r
		if _, seen := b.byCountry[r.Country]; r.Country != "" && r.Category == document.TaxStandard && !seen {
			b.byCountry[r.Country] = r
		}
	}
	return b
}

func loadTaxBook(ctx context.Context, q db.Querier, tenant, sellerCountry string) (*taxBook, error) {
	// Rate ids are time-ordered, so id order is creation order.
	rows, err := q.QueryContext(ctx, `SELECT `+taxRateCols+` FROM tax_rates WHERE tenant_id = $1 ORDER BY id`, tenant)
	if err != nil {
		return nil, fmt.Errorf("reading tax rates: %w", err)
	}
	var rates []TaxRate
	for rows.Next() {
		t, err := scanTaxRate(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		rates = append(rates, t)
	}
	rows.Close()
	rows, err = q.QueryContext(ctx, `SELECT target_type, target_id, tax_rate_id FROM tax_assignments WHERE tenant_id = $1`, tenant)
	if err != nil {
		return nil, fmt.Errorf("reading tax assignments: %w", err)
	}
	defer rows.Close()
	assign := map[string]string{}
	for rows.Next() {
		var tt, id, r string
		if err := rows.Scan(&tt, &id, &r); err != nil {
			return nil, err
		}
		assign[tt+"/"+id] = r
	}
	return newTaxBook(sellerCountry, rates, assign), rows.Err()
}

var euCountries = map[string]bool{}

func init() {
	for _, c := range strings.Fields("AT BE BG HR CY CZ DK EE FI FR DE GR EL HU IE IT LV LT LU MT NL PL PT RO SK SI ES SE") {
		euCountries[c] = true
	}
}

// ReverseChargeNote is the exemption reason of reverse-charged lines.
const ReverseChargeNote = "Reverse charge: VAT to be accounted for by the recipient (Art. 196 Directive 2006/112/EC)"

// ExportNote is the exemption reason of lines supplied outside the EU.
const ExportNote = "Export outside the EU: not subject to EU VAT"

// InvoiceProblem is why a draft invoice cannot be finalized yet. The draft waits
// (and is tried again at every refresh) until the cause is fixed.
type InvoiceProblem struct {
	Code    string `json:"code" doc:"tax_rate_missing, buyer_country_missing or seller_country_missing"`
	Message string `json:"message"`
}

// resolve returns the tax of a customer's lines on plan planID, the first
// rule that applies (docs/billing.md):
//
//  1. customer tax status exempt → E, reverse_charge → AE;
//  2. the rate assigned to the customer;
//  3. an EU business (a valid-looking VAT id of its country) in another
//     EU country than the seller → AE (reverse charge);
//  4. the rate assigned to the plan;
//  5. determined by country (see determine).
func (b *taxBook) resolve(cus catalog.Customer, planID string) LineTax {
	own, hasOwn := b.rates[b.assign["customer/"+cus.ID]]
	plan, hasPlan := b.rates[b.assign["plan/"+planID]]
	buyer := strings.ToUpper(cus.Address.Country)
	business := validLookingVATID(cus.TaxID, buyer)
	switch {
	case cus.TaxStatus == catalog.TaxExempt:
		reason, rate := "Exempt from VAT", own
		if !hasOwn {
			rate = plan
		}
		if rate.Category == document.TaxExempt {
			reason = rate.ExemptionReason
		}
		return LineTax{Tax: document.Tax{Category: document.TaxExempt, ExemptionReason: reason}, RateID: rate.ID}
	case cus.TaxStatus == catalog.TaxReverseCharge:
		return reverseCharge()
	case hasOwn:
		return fromRate(own)
	case business && euCountries[buyer] && euCountries[b.seller] && buyer != b.seller:
		return reverseCharge()
	case hasPlan:
		return fromRate(plan)
	}
	return b.determine(cus.ID, buyer, business)
}

// determine taxes a sale to a buyer in country buyer (business: it has a
// valid-looking VAT id) by the place of supply of electronic services:
// domestic → the seller country's rate; an EU business abroad → reverse
// charge; an EU consumer abroad → the buyer country's rate (OSS);
// outside the EU → export (G). A tenant without any tax rate charges no
// tax (Z); one with rates gets a problem, not 0 %, when the rate it needs
// is missing or a country is unknown.
func (b *taxBook) determine(customerID, buyer string, business bool) LineTax {
	switch {
	case len(b.rates) == 0:
		return LineTax{Tax: document.Tax{Category: document.TaxZeroRated}}
	case b.seller == "":
		return undetermined("seller_country_missing", "the seller has no country: set seller.country_code in the billing settings so tax can be determined")
	case buyer == "":
		return undetermined("buyer_country_missing", fmt.Sprintf("customer %s has no address country: set its address.country, or assign a tax rate to the customer", customerID))
	case buyer != b.seller && !euCountries[buyer]:
		return LineTax{Tax: document.Tax{Category: document.TaxExport, ExemptionReason: ExportNote, ExemptionReasonCode: "VATEX-EU-G"}}
	case buyer != b.seller && business:
		return reverseCharge()
	}
	r, ok := b.byCountry[buyer]
	if !ok {
		return undetermined("tax_rate_missing", fmt.Sprintf("no tax rate for %s (%s): create a standard (S) tax rate with country %s, or assign a rate to the customer or its plan",
			buyer, country.Name(buyer), buyer))
	}
	return fromRate(r)
}

func reverseCharge() LineTax {
	return LineTax{Tax: document.Tax{Category: document.TaxReverseCharge, ExemptionReason: ReverseChargeNote, ExemptionReasonCode: "VATEX-EU-AE"}}
}

func fromRate(r TaxRate) LineTax {
	return LineTax{Tax: document.Tax{Category: r.Category, Rate: r.Percentage, ExemptionReason: r.ExemptionReason}, RateID: r.ID,
		Inclusive: r.Inclusive && r.Category == document.TaxStandard}
}

// undetermined is the tax of a line whose tax cannot be determined: a
// standard rate of 0 % that holds the invoice as a draft (see InvoiceProblem).
func undetermined(code, message string) LineTax {
	return LineTax{Tax: document.Tax{Category: document.TaxStandard}, Problem: &InvoiceProblem{Code: code, Message: message}}
}

// lineProblems lists the distinct problems of lines.
func lineProblems(lines []Line) []InvoiceProblem {
	var out []InvoiceProblem
	for _, l := range lines {
		if p := l.Tax.Problem; p != nil && !slices.Contains(out, *p) {
			out = append(out, *p)
		}
	}
	return out
}

// netOf returns the net amount of a priced amount: itself for exclusive
// taxes, amount / (1 + rate/100) rounded to the currency for inclusive ones.
func netOf(amount decimal.Decimal, t LineTax, c money.Currency) decimal.Decimal {
	if !t.Inclusive || t.Rate.IsZero() {
		return amount
	}
	return amount.Mul(hundred).Div(hundred.Add(t.Rate)).Round(c.Exponent)
}

var hundred = decimal.NewFromInt(100)
