package money

import (
	"math"
	"math/big"
	"strings"

	"github.com/abacusbilling/abacus"
	"github.com/shopspring/decimal"
)

// FormatAmount returns amount for display: the currency code, the sign,
// thousands grouped with commas and exactly the currency's digits after
// the point, e.g. "EUR 1,234.50", "JPY -1,235", "KWD 0.125". It is locale
// neutral (invoices localise elsewhere) and rounds half_up; round with the
// plan's mode first when that matters.
func FormatAmount(amount decimal.Decimal, c Currency) string {
	s := amount.StringFixed(c.Exponent)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	intPart, frac, _ := strings.Cut(s, ".")
	var b strings.Builder
	b.WriteString(c.Code)
	b.WriteByte(' ')
	if neg && strings.Trim(s, "0.") != "" {
		b.WriteByte('-')
	}
	for i, d := range intPart {
		if i > 0 && (len(intPart)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(d)
	}
	if frac != "" {
		b.WriteByte('.')
		b.WriteString(frac)
	}
	return b.String()
}

// ToMinor returns amount in c's minor unit as an integer (12.34 EUR →
// 1234), as payment gateways want it. It returns a KindInvalid
// *abacus.Error with code "amount_not_representable" when amount has more
// digits than the currency allows (round it first) or does not fit in an
// int64.
func ToMinor(amount decimal.Decimal, c Currency) (int64, error) {
	m := amount.Shift(c.Exponent)
	if !m.IsInteger() {
		return 0, abacus.Invalid("amount_not_representable",
			"amount %s has more than %d decimal places for %s; round it first", amount, c.Exponent, c.Code)
	}
	bi := m.BigInt()
	if bi.Cmp(big.NewInt(math.MaxInt64)) > 0 || bi.Cmp(big.NewInt(math.MinInt64)) < 0 {
		return 0, abacus.Invalid("amount_not_representable",
			"amount %s %s is too large to express in minor units", amount, c.Code)
	}
	return bi.Int64(), nil
}

// FromMinor returns the amount for minor units of c (1234 EUR cents →
// 12.34).
func FromMinor(minor int64, c Currency) decimal.Decimal {
	return decimal.New(minor, -c.Exponent)
}
