package billing

import (
	"fmt"
	"time"

	"github.com/shopspring/decimal"

	"github.com/abacusbilling/abacus/internal/outbox"
)

// InvoiceEvent is the payload of every invoice.* event: the invoice's
// identity and amounts, not its lines. Fields are in alphabetical order so
// the JSON is byte for byte what the map it replaced encoded.
type InvoiceEvent struct {
	AmountDue      decimal.Decimal `json:"amount_due"`
	Currency       string          `json:"currency"`
	CustomerID     string          `json:"customer_id"`
	ID             string          `json:"id"`
	Number         string          `json:"number" doc:"empty while the invoice is a draft"`
	PeriodStart    time.Time       `json:"period_start"`
	RedemptionIDs  []string        `json:"redemption_ids,omitempty" doc:"the coupon redemptions this invoice carries a discount line of (coupon.redeemed)"`
	Status         Status          `json:"status" enum:"draft,open,paid,void,uncollectible"`
	SubscriptionID string          `json:"subscription_id"`
	Total          decimal.Decimal `json:"total"`
	// UsageSubtotal was added to version 1 (an addition is compatible):
	// events recorded before it lack it, which is not the same as 0.
	UsageSubtotal *decimal.Decimal `json:"usage_subtotal,omitempty" doc:"the net amount (before tax and before document-level discounts) of the invoice's usage lines; absent on events recorded before it was added"`
}

// RedemptionEvent is the payload of coupon.redeemed: the redemption and
// the discount it gives (exactly one of PercentOff and AmountOff), for how
// many invoices (Duration, DurationPeriods) and to which subscription
// ("" = every subscription of the customer). The invoices that carry it
// name it in InvoiceEvent.RedemptionIDs.
type RedemptionEvent struct {
	AmountOff       *decimal.Decimal `json:"amount_off,omitempty" doc:"off each invoice, in currency"`
	CouponCode      string           `json:"coupon_code"`
	CouponID        string           `json:"coupon_id"`
	Currency        string           `json:"currency,omitempty" doc:"the currency of amount_off"`
	CustomerID      string           `json:"customer_id"`
	Duration        Duration         `json:"duration" enum:"once,repeating,forever"`
	DurationPeriods int              `json:"duration_periods,omitempty" doc:"invoices a repeating coupon applies to"`
	ID              string           `json:"id" doc:"the redemption's id"`
	PercentOff      *decimal.Decimal `json:"percent_off,omitempty"`
	RedeemedAt      time.Time        `json:"redeemed_at"`
	SubscriptionID  string           `json:"subscription_id,omitempty" doc:"empty: every subscription of the customer"`
}

// Billing's domain events (see outbox.Define).
var (
	InvoiceCreated             = outbox.Define[InvoiceEvent]("invoice.created", 1, "invoice", "A draft invoice was created for a billing cycle.")
	InvoiceFinalized           = outbox.Define[InvoiceEvent]("invoice.finalized", 1, "invoice", "An invoice was finalized: numbered, immutable and due.")
	InvoicePaid                = outbox.Define[InvoiceEvent]("invoice.paid", 1, "invoice", "An invoice was paid (or finalized with nothing due).")
	InvoiceVoided              = outbox.Define[InvoiceEvent]("invoice.voided", 1, "invoice", "An open invoice was voided.")
	InvoiceMarkedUncollectible = outbox.Define[InvoiceEvent]("invoice.marked_uncollectible", 1, "invoice", "An open invoice was marked uncollectible.")
	InvoiceReopened            = outbox.Define[InvoiceEvent]("invoice.reopened", 1, "invoice", "A paid invoice is due again: a payment was refunded or withdrawn by a dispute.")
	CreditNoteCreated          = outbox.Define[CreditNote]("credit_note.created", 1, "credit_note", "A credit note was issued against an invoice.")
	CouponRedeemed             = outbox.Define[RedemptionEvent]("coupon.redeemed", 1, "redemption",
		"A coupon was redeemed on a customer (every subscription) or one subscription; it discounts their next invoices for its duration.")
)

var invoiceEvents = map[string]outbox.Kind[InvoiceEvent]{}

func init() {
	for _, k := range []outbox.Kind[InvoiceEvent]{InvoiceCreated, InvoiceFinalized, InvoicePaid, InvoiceVoided, InvoiceMarkedUncollectible, InvoiceReopened} {
		invoiceEvents[k.Type().Name] = k
	}
}

// invoiceKind returns the defined invoice event named typ.
func invoiceKind(typ string) (outbox.Kind[InvoiceEvent], error) {
	k, ok := invoiceEvents[typ]
	if !ok {
		return k, fmt.Errorf("billing: %s is not an invoice event", typ)
	}
	return k, nil
}
