package billing

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/catalog"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/money"
)

// Duration says for how many invoices a redeemed coupon applies.
type Duration string

const (
	Once      Duration = "once"
	Repeating Duration = "repeating" // DurationPeriods invoices
	Forever   Duration = "forever"
)

// Coupon is a discount: PercentOff % of the invoice's net amount, or
// AmountOff in Currency. MaxRedemptions 0 means unlimited; RedeemBy is
// the last moment it can be redeemed.
type Coupon struct {
	ID              string           `json:"id"`
	Code            string           `json:"code"`
	Name            string           `json:"name"`
	PercentOff      *decimal.Decimal `json:"percent_off,omitempty"`
	AmountOff       *decimal.Decimal `json:"amount_off,omitempty"`
	Currency        string           `json:"currency,omitempty"`
	Duration        Duration         `json:"duration"`
	DurationPeriods int              `json:"duration_periods,omitempty"`
	MaxRedemptions  int              `json:"max_redemptions,omitempty"`
	RedeemBy        *time.Time       `json:"redeem_by,omitempty"`
	Redemptions     int              `json:"redemptions"`
	CreatedAt       time.Time        `json:"created_at"`
}

// CouponInput creates a coupon.
type CouponInput struct {
	Code            string           `json:"code"`
	Name            string           `json:"name,omitempty"`
	PercentOff      *decimal.Decimal `json:"percent_off,omitempty"`
	AmountOff       *decimal.Decimal `json:"amount_off,omitempty"`
	Currency        string           `json:"currency,omitempty" doc:"required with amount_off"`
	Duration        Duration         `json:"duration" enum:"once,repeating,forever"`
	DurationPeriods int              `json:"duration_periods,omitempty" doc:"invoices a repeating coupon applies to"`
	MaxRedemptions  int              `json:"max_redemptions,omitempty"`
	RedeemBy        *time.Time       `json:"redeem_by,omitempty"`
}

// Redemption is a coupon redeemed on a customer (every subscription) or
// on one subscription.
type Redemption struct {
	ID             string    `json:"id"`
	CouponID       string    `json:"coupon_id"`
	CustomerID     string    `json:"customer_id"`
	SubscriptionID string    `json:"subscription_id,omitempty"`
	CreatedAt      time.Time `json:"created_at"`
}

var couponCodeRe = regexp.MustCompile(`^[A-Z0-9][A-Z0-9_\-]{0,39}$`)

// CreateCoupon creates a coupon. It returns "invalid_coupon" naming every
// bad field, or the conflict "coupon_code_taken".
func (s *Service) CreateCoupon(ctx context.Context, in CouponInput) (Coupon, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return Coupon{}, err
	}
	in.Code = strings.ToUpper(strings.TrimSpace(in.Code))
	in.Currency = strings.ToUpper(strings.TrimSpace(in.Currency))
	var v abacus.Validation
	if !couponCodeRe.MatchString(in.Code) {
		v.Add("code", "must be 1–40 letters, digits, dashes or underscores, e.g. WELCOME10")
	}
	switch {
	case (in.PercentOff == nil) == (in.AmountOff == nil):
		v.Add("percent_off", "give exactly one of percent_off and amount_off")
	case in.PercentOff != nil && (!in.PercentOff.IsPositive() || in.PercentOff.GreaterThan(hundred)):
		v.Add("percent_off", "must be above 0 and at most 100")
	case in.AmountOff != nil:
		c, err := money.LookupCurrency(in.Currency)
		switch {
		case err != nil:
			v.Add("currency", "is required with amount_off: an ISO 4217 code such as EUR")
		case !in.AmountOff.IsPositive():
			v.Add("amount_off", "must be above 0")
		case !in.AmountOff.Equal(in.AmountOff.Round(c.Exponent)):
			v.Add("amount_off", "has more decimals than %s allows (%d)", c.Code, c.Exponent)
		}
	}
	switch in.Duration {
	case Once, Forever:
		if in.DurationPeriods != 0 {
			v.Add("duration_periods", "applies only to repeating coupons")
		}
	case Repeating:
		if in.DurationPeriods < 1 || in.DurationPeriods > 1200 {
			v.Add("duration_periods", "must be between 1 and 1200 for a repeating coupon")
		}
	default:
		v.Add("duration", "must be once, repeating or forever")
	}
	if in.MaxRedemptions < 0 {
		v.Add("max_redemptions", "must not be negative (0 = unlimited)")
	}
	if err := v.Err("invalid_coupon"); err != nil {
		return Coupon{}, err
	}
	c := Coupon{ID: abacus.NewID("cpn"), Code: in.Code, Name: in.Name, PercentOff: in.PercentOff, AmountOff: in.AmountOff, Currency: in.Currency,
		Duration: in.Duration, DurationPeriods: in.DurationPeriods, MaxRedemptions: in.MaxRedemptions, RedeemBy: in.RedeemBy, CreatedAt: s.now()}
	if c.Name == "" {
		c.Name = c.Code
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO coupons (id, tenant_id, code, name, percent_off, amount_off, currency, duration, duration_periods,
		max_redemptions, redeem_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
		c.ID, tenant, c.Code, c.Name, decPtr(c.PercentOff), decPtr(c.AmountOff), c.Currency, string(c.Duration), c.DurationPeriods,
		c.MaxRedemptions, db.NullTimeOf(c.RedeemBy), db.TimeOf(c.CreatedAt))
	if db.IsUniqueViolation(err) {
		return Coupon{}, abacus.Conflict("coupon_code_taken", "a coupon with code %s exists; pick another code", c.Code).WithField("code", "is taken")
	}
	if err != nil {
		return Coupon{}, fmt.Errorf("creating coupon: %w", err)
	}
	return c, nil
}

func decPtr(d *decimal.Decimal) any {
	if d == nil {
		return nil
	}
	return d.String()
}

const couponCols = `id, code, name, percent_off, amount_off, currency, duration, duration_periods, max_redemptions, redeem_by, created_at,
	(SELECT COUNT(*) FROM coupon_redemptions r WHERE r.coupon_id = coupons.id)`

func scanCoupon(r interface{ Scan(...any) error }) (Coupon, error) {
	var c Coupon
	var pct, amt sql.NullString
	var dur string
	var rb db.NullTime
	var ca db.Time
	if err := r.Scan(&c.ID, &c.Code, &c.Name, &pct, &amt, &c.Currency, &dur, &c.DurationPeriods, &c.MaxRedemptions, &rb, &ca, &c.Redemptions); err != nil {
		return c, err
	}
	if pct.Valid {
		d, _ := decimal.NewFromString(pct.String)
		c.PercentOff = &d
	}
	if amt.Valid {
		d, _ := decimal.NewFromString(amt.String)
		c.AmountOff = &d
	}
	c.Duration, c.RedeemBy, c.CreatedAt = Duration(dur), rb.Ptr(), ca.Time
	return c, nil
}

func loadCoupon(ctx context.Context, q db.Querier, tenant, idOrCode string) (Coupon, error) {
	c, err := scanCoupon(q.QueryRowContext(ctx, `SELECT `+couponCols+` FROM coupons WHERE tenant_id = $1 AND (id = $2 OR code = $3)`,
		tenant, idOrCode, strings.ToUpper(idOrCode)))
	if errors.Is(err, sql.ErrNoRows) {
		return c, abacus.NotFound("coupon", idOrCode)
	}
	if err != nil {
		return c, fmt.Errorf("reading coupon: %w", err)
	}
	return c, nil
}

// GetCoupon returns a coupon by id or code, or "coupon_not_found".
func (s *Service) GetCoupon(ctx context.Context, idOrCode string) (Coupon, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return Coupon{}, err
	}
	return loadCoupon(ctx, s.db, tenant, idOrCode)
}

// ListCoupons returns the tenant's coupons ordered by id.
func (s *Service) ListCoupons(ctx context.Context) ([]Coupon, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+couponCols+` FROM coupons WHERE tenant_id = $1 ORDER BY id`, tenant)
	if err != nil {
		return nil, fmt.Errorf("listing coupons: %w", err)
	}
	defer rows.Close()
	out := []Coupon{}
	for rows.Next() {
		c, err := scanCoupon(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// RedeemInput redeems a coupon on a customer, or on one of its
// subscriptions when SubscriptionID is set.
type RedeemInput struct {
	CustomerID     string `json:"customer_id"`
	SubscriptionID string `json:"subscription_id,omitempty"`
}

// Redeem redeems coupon idOrCode. Errors: "coupon_not_found",
// "customer_not_found", "subscription_not_found", conflicts
// "coupon_expired" (past redeem_by), "coupon_exhausted" (max_redemptions
// reached), "coupon_currency_mismatch". Nothing is written on error.
func (s *Service) Redeem(ctx context.Context, idOrCode string, in RedeemInput) (Redemption, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return Redemption{}, err
	}
	now := s.now()
	var r Redemption
	err = s.db.InTx(ctx, func(tx *db.Tx) error {
		// The row lock serialises redemptions of one coupon, so the limit holds.
		q := `SELECT id FROM coupons WHERE tenant_id = $1 AND (id = $2 OR code = $3)` + tx.LockClause(` FOR UPDATE`)
		var id string
		if err := tx.QueryRowContext(ctx, q, tenant, idOrCode, strings.ToUpper(idOrCode)).Scan(&id); errors.Is(err, sql.ErrNoRows) {
			return abacus.NotFound("coupon", idOrCode)
		} else if err != nil {
			return err
		}
		c, err := loadCoupon(ctx, tx, tenant, id)
		if err != nil {
			return err
		}
		if c.RedeemBy != nil && now.After(*c.RedeemBy) {
			return abacus.Conflict("coupon_expired", "coupon %s could be redeemed until %s", c.Code, c.RedeemBy.Format(time.RFC3339))
		}
		if c.MaxRedemptions > 0 && c.Redemptions >= c.MaxRedemptions {
			return abacus.Conflict("coupon_exhausted", "coupon %s has reached its limit of %d redemptions", c.Code, c.MaxRedemptions)
		}
		cus, err := catalog.LoadCustomer(ctx, tx, tenant, in.CustomerID)
		if err != nil {
			if e, ok := abacus.AsError(err); ok && e.Kind == abacus.KindNotFound {
				return e.WithField("customer_id", "no such customer")
			}
			return err
		}
		if c.AmountOff != nil && c.Currency != cus.Currency {
			return abacus.Conflict("coupon_currency_mismatch", "coupon %s is in %s but customer %s pays in %s", c.Code, c.Currency, cus.ID, cus.Currency).
				WithField("customer_id", "pays in "+cus.Currency)
		}
		if in.SubscriptionID != "" {
			subs, err := s.subs.Load(ctx, tx, tenant, []string{in.SubscriptionID})
			if err != nil {
				return err
			}
			if sub := subs[in.SubscriptionID]; sub == nil || sub.CustomerID != cus.ID {
				return abacus.NotFound("subscription", in.SubscriptionID).WithField("subscription_id", "no such subscription of this customer")
			}
		}
		r = Redemption{ID: abacus.NewID("red"), CouponID: c.ID, CustomerID: cus.ID, SubscriptionID: in.SubscriptionID, CreatedAt: now}
		_, err = tx.ExecContext(ctx, `INSERT INTO coupon_redemptions (id, tenant_id, coupon_id, customer_id, subscription_id, created_at)
			VALUES ($1, $2, $3, $4, $5, $6)`, r.ID, tenant, r.CouponID, r.CustomerID, r.SubscriptionID, db.TimeOf(now))
		if err != nil {
			return err
		}
		_, err = CouponRedeemed.Record(ctx, tx, tenant, r.ID, now, RedemptionEvent{ID: r.ID, CouponID: c.ID, CouponCode: c.Code,
			CustomerID: r.CustomerID, SubscriptionID: r.SubscriptionID, PercentOff: c.PercentOff, AmountOff: c.AmountOff,
			Currency: c.Currency, Duration: c.Duration, DurationPeriods: c.DurationPeriods, RedeemedAt: now})
		return err
	})
	if err != nil {
		return Redemption{}, wrap("redeeming coupon", err)
	}
	return r, nil
}

// activeRedemption is a redemption with its coupon, for invoice building.
type activeRedemption struct {
	Redemption
	Coupon Coupon
}

// redemptionsFor returns the redemptions that apply to the next invoice of
// subscription sub of customer cus: on the subscription or the customer,
// with periods left (counting the non-void invoices that carried them,
// other than exclude).
func redemptionsFor(ctx context.Context, q db.Querier, tenant, cus, sub, exclude string) ([]activeRedemption, error) {
	rows, err := q.QueryContext(ctx, `SELECT id, coupon_id, subscription_id, created_at FROM coupon_redemptions
		WHERE tenant_id = $1 AND customer_id = $2 AND (subscription_id = '' OR subscription_id = $3) ORDER BY id`, tenant, cus, sub)
	if err != nil {
		return nil, fmt.Errorf("reading redemptions: %w", err)
	}
	var reds []activeRedemption
	for rows.Next() {
		var r activeRedemption
		var ca db.Time
		if err := rows.Scan(&r.ID, &r.CouponID, &r.SubscriptionID, &ca); err != nil {
			rows.Close()
			return nil, err
		}
		r.CustomerID, r.CreatedAt = cus, ca.Time
		reds = append(reds, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	var out []activeRedemption
	for _, r := range reds {
		c, err := loadCoupon(ctx, q, tenant, r.CouponID)
		if err != nil {
			return nil, err
		}
		r.Coupon = c
		if c.Duration != Forever {
			var used int
			if err := q.QueryRowContext(ctx, `SELECT COUNT(DISTINCT l.invoice_id) FROM invoice_lines l JOIN invoices i ON i.id = l.invoice_id
				WHERE l.redemption_id = $1 AND i.status <> 'void' AND i.id <> $2`, r.ID, exclude).Scan(&used); err != nil {
				return nil, fmt.Errorf("counting coupon use: %w", err)
			}
			limit := 1
			if c.Duration == Repeating {
				limit = c.DurationPeriods
			}
			if used >= limit {
				continue
			}
		}
		out = append(out, r)
	}
	return out, nil
}

// discountLines returns the discount lines of redemptions on lines: one
// per coupon and tax group, against the group's net amount. Percentage
// discounts are rounded per group; a fixed amount is capped at the net
// total and shared pro rata, the last group taking the remainder.
func discountLines(lines []Line, reds []activeRedemption, cur money.Currency, at time.Time) []Line {
	type group struct {
		tax LineTax
		net decimal.Decimal
	}
	var groups []*group
	byKey := map[string]*group{}
	total := decimal.Zero
	for _, l := range lines {
		k := string(l.Tax.Category) + "|" + l.Tax.Rate.String()
		g := byKey[k]
		if g == nil {
			g = &group{tax: l.Tax}
			byKey[k] = g
			groups = append(groups, g)
		}
		g.net = g.net.Add(l.NetAmount)
		total = total.Add(l.NetAmount)
	}
	var out []Line
	for _, r := range reds {
		if !total.IsPositive() {
			break
		}
		c := r.Coupon
		var fixed decimal.Decimal
		if c.AmountOff != nil {
			if c.Currency != cur.Code {
				continue
			}
			fixed = decimal.Min(*c.AmountOff, total)
		}
		left := fixed
		for i, g := range groups {
			if !g.net.IsPositive() {
				continue
			}
			var amt decimal.Decimal
			switch {
			case c.PercentOff != nil:
				amt = g.net.Mul(*c.PercentOff).Div(hundred).Round(cur.Exponent)
			case i == len(groups)-1:
				amt = left
			default:
				amt = fixed.Mul(g.net).Div(total).Round(cur.Exponent)
				left = left.Sub(amt)
			}
			if !amt.IsPositive() {
				continue
			}
			tax := g.tax
			tax.Inclusive = false
			desc := "Coupon " + c.Code
			if c.PercentOff != nil {
				desc += " (" + c.PercentOff.String() + " % off)"
			}
			out = append(out, Line{Kind: LineDiscount, Description: desc, Quantity: decimal.NewFromInt(1), Amount: amt.Neg(), NetAmount: amt.Neg(),
				PeriodStart: at, PeriodEnd: at, Tax: tax, RedemptionID: r.ID})
		}
	}
	return out
}
