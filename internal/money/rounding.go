package money

import (
	"strings"

	"github.com/abacusbilling/abacus"
	"github.com/shopspring/decimal"
)

// Rounding is how an amount is brought to a currency's exponent. The zero
// value means RoundHalfUp. It marshals as its snake_case name.
//
// Every mode is symmetric around zero, so a credit rounds to the same
// magnitude as the matching charge:
//
//	half_up   nearest; a tie goes away from zero (commercial): 0.125 → 0.13, -0.125 → -0.13
//	half_even nearest; a tie goes to the even digit (banker's): 0.125 → 0.12, 0.135 → 0.14
//	up        away from zero: 0.121 → 0.13
//	down      toward zero (truncate): 0.129 → 0.12
type Rounding string

const (
	RoundHalfUp   Rounding = "half_up"
	RoundHalfEven Rounding = "half_even"
	RoundUp       Rounding = "up"
	RoundDown     Rounding = "down"
)

// Roundings lists every rounding mode, default first.
var Roundings = []Rounding{RoundHalfUp, RoundHalfEven, RoundUp, RoundDown}

// OrDefault returns r, or RoundHalfUp when r is empty.
func (r Rounding) OrDefault() Rounding {
	if r == "" {
		return RoundHalfUp
	}
	return r
}

// Validate returns nil for a known mode or the empty default, else a
// KindInvalid *abacus.Error with code "invalid_rounding" naming field.
func (r Rounding) Validate(field string) error {
	if r.valid() {
		return nil
	}
	return abacus.Invalid("invalid_rounding", "%s: unknown rounding %q; use one of %s", field, string(r), roundingNames()).
		WithField(field, "must be one of "+roundingNames())
}

func (r Rounding) valid() bool {
	if r == "" {
		return true
	}
	for _, v := range Roundings {
		if v == r {
			return true
		}
	}
	return false
}

func roundingNames() string {
	s := make([]string, len(Roundings))
	for i, v := range Roundings {
		s[i] = string(v)
	}
	return strings.Join(s, ", ")
}

// MarshalText encodes the mode's name; the empty default encodes as "half_up".
func (r Rounding) MarshalText() ([]byte, error) { return []byte(r.OrDefault()), nil }

// UnmarshalText decodes a mode name; an empty string is the default. An
// unknown name gives the "invalid_rounding" error of Validate.
func (r *Rounding) UnmarshalText(b []byte) error {
	v := Rounding(b)
	if err := v.Validate("rounding"); err != nil {
		return err
	}
	*r = v.OrDefault()
	return nil
}

// Round returns amount rounded to c's exponent with mode r (the empty mode
// is half_up). An unknown mode also rounds half_up: modes are validated
// where they enter the system, and a bill must not fail at this point.
func Round(amount decimal.Decimal, c Currency, r Rounding) decimal.Decimal {
	return RoundTo(amount, c.Exponent, r)
}

// RoundTo returns amount rounded to places digits after the point with
// mode r, as Round does.
func RoundTo(amount decimal.Decimal, places int32, r Rounding) decimal.Decimal {
	switch r {
	case RoundHalfEven:
		return amount.RoundBank(places)
	case RoundUp:
		return amount.RoundUp(places)
	case RoundDown:
		return amount.RoundDown(places)
	default:
		return amount.Round(places)
	}
}
