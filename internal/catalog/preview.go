package catalog

import (
	"github.com/shopspring/decimal"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/money"
	"github.com/abacusbilling/abacus/internal/pricing"
)

// PricePreviewInput asks what a usage price would charge for a quantity
// (and, for percentage prices with a per-event fee, a number of events)
// in one period. Nothing is stored: the dashboard's price editor calls it
// as the price is typed.
type PricePreviewInput struct {
	Currency string          `json:"currency" doc:"ISO 4217 code the amount is rounded to" example:"EUR"`
	Rounding money.Rounding  `json:"rounding,omitempty" enum:"half_up,half_even,up,down" doc:"half_up when omitted"`
	Price    pricing.Price   `json:"price"`
	Quantity decimal.Decimal `json:"quantity" doc:"the meter's value in the period, a decimal string"`
	Events   int64           `json:"events,omitempty" minimum:"0" doc:"events in the period, for fixed_amount_per_event"`
}

// PricePreview is the rated amount of a PricePreviewInput: pricing.Rate's
// result (components per tier, subtotal, the minimum's or maximum's
// adjustment, amount rounded to the currency) and the currency.
type PricePreview struct {
	Currency string `json:"currency"`
	pricing.Result
}

// PreviewPrice rates in with the pricing engine, exactly as an invoice
// would for a period with that usage. It returns a KindInvalid
// *abacus.Error: "invalid_price" naming every bad field under "price"
// (e.g. "price.tiers[1].up_to"), "unknown_currency" (field "currency"),
// "invalid_rounding" or "invalid_usage" (field "quantity").
func PreviewPrice(in PricePreviewInput) (PricePreview, error) {
	c, err := money.LookupCurrency(in.Currency)
	if err != nil {
		e, _ := abacus.AsError(err)
		return PricePreview{}, e.WithField("currency", "must be an ISO 4217 code such as EUR or USD")
	}
	if err := in.Rounding.Validate("rounding"); err != nil {
		return PricePreview{}, err
	}
	if in.Quantity.IsNegative() {
		return PricePreview{}, abacus.Invalid("invalid_usage", "quantity: must not be negative").
			WithField("quantity", "must not be negative")
	}
	res, err := pricing.Rate(in.Price, pricing.Usage{Quantity: in.Quantity, Events: in.Events}, c, in.Rounding.OrDefault())
	if err != nil {
		return PricePreview{}, err
	}
	return PricePreview{Currency: c.Code, Result: res}, nil
}
