package payments

import (
	"fmt"

	"github.com/shopspring/decimal"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/money"
)

// ToMinor converts amount in currency to the gateway's minor units
// exactly: 12.34 EUR → 1234, 1234 JPY → 1234, 1.234 KWD → 1234. An
// amount with more decimals than the currency has is refused, never
// rounded: what is charged is what the invoice says.
func ToMinor(amount decimal.Decimal, currency string) (int64, error) {
	c, err := money.LookupCurrency(currency)
	if err != nil {
		return 0, abacus.Invalid("invalid_currency", "%q is not an ISO 4217 currency", currency)
	}
	minor := amount.Shift(int32(c.Exponent))
	if !minor.Equal(minor.Truncate(0)) {
		return 0, abacus.Invalid("invalid_amount", "%s %s has more than %d decimals", amount, c.Code, c.Exponent)
	}
	if !minor.IsInteger() || minor.Abs().GreaterThan(decimal.New(1, 15)) {
		return 0, fmt.Errorf("payments: %s %s is out of range", amount, c.Code)
	}
	return minor.IntPart(), nil
}

// FromMinor converts minor units of currency to a decimal amount: 1234
// EUR → 12.34, 1234 JPY → 1234, 1234 KWD → 1.234.
func FromMinor(minor int64, currency string) (decimal.Decimal, error) {
	c, err := money.LookupCurrency(currency)
	if err != nil {
		return decimal.Zero, abacus.Invalid("invalid_currency", "%q is not an ISO 4217 currency", currency)
	}
	return decimal.New(minor, -int32(c.Exponent)), nil
}
