package pricing

import (
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/money"
	"github.com/abacusbilling/abacus/internal/period"
	"github.com/shopspring/decimal"
)

// Billing says when a fixed fee is billed for its period.
type Billing string

const (
	// InAdvance bills the fee at the start of the period it pays for; a
	// change mid-period is settled at once with proration lines.
	InAdvance Billing = "in_advance"
	// InArrears bills the fee at the end of the period, for the time and
	// quantities actually served.
	InArrears Billing = "in_arrears"
)

// OrDefault returns b, or InAdvance when b is empty.
func (b Billing) OrDefault() Billing {
	if b == "" {
		return InAdvance
	}
	return b
}

// Fee is a fixed recurring fee: Amount per unit of quantity (seat) per
// full period, billed in advance (the default) or in arrears.
type Fee struct {
	Amount decimal.Decimal `json:"amount"`
	Billed Billing         `json:"billed,omitempty"`
}

// Validate returns nil or a KindInvalid *abacus.Error with code
// "invalid_fee" naming each bad field under field.
func (f Fee) Validate(field string) error {
	var v abacus.Validation
	f.ValidateInto(&v, field)
	return v.Err("invalid_fee")
}

// ValidateInto records the fee's problems in v under field: a negative
// amount or an unknown billing timing.
func (f Fee) ValidateInto(v *abacus.Validation, field string) {
	nonNegative(v, join(field, "amount"), f.Amount)
	switch f.Billed {
	case "", InAdvance, InArrears:
	default:
		v.Add(join(field, "billed"), "unknown billing %q; use in_advance or in_arrears", string(f.Billed))
	}
}

// FeeAmount returns the exact, unrounded amount of f at quantity qty for
// the part [from, to) of period p: Amount × qty × the share of p covered
// (see period.Prorate). The whole period gives Amount × qty.
func FeeAmount(f Fee, qty decimal.Decimal, p period.Period, from, to time.Time) decimal.Decimal {
	return period.Prorate(f.Amount.Mul(qty), p.Start, p.End, from, to)
}

// TrueUp returns what a customer who spent spent owes to meet a
// commitment: commitment (rounded to the currency first) minus spent, or
// zero when the commitment is met. Pass spent as the sum of the rounded
// line amounts the commitment covers, so the invoice adds up to exactly
// the commitment.
func TrueUp(spent, commitment decimal.Decimal, c money.Currency, r money.Rounding) decimal.Decimal {
	due := money.Round(commitment, c, r).Sub(spent)
	if due.IsPositive() {
		return due
	}
	return decimal.Zero
}
