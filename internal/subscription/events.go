package subscription

import (
	"fmt"
	"time"

	"github.com/shopspring/decimal"

	"github.com/abacusbilling/abacus/internal/outbox"
)

// Event is the payload of every subscription.* event: the subscription
// after the change and the history entry that records it.
type Event struct {
	Subscription Subscription `json:"subscription"`
	Change       Change       `json:"change"`
}

// ThresholdReached is the payload of entitlement.threshold_reached.
type ThresholdReached struct {
	CustomerID     string          `json:"customer_id"`
	SubscriptionID string          `json:"subscription_id"`
	Feature        string          `json:"feature" doc:"the feature's key"`
	Threshold      int64           `json:"threshold" doc:"percent of the limit"`
	Limit          decimal.Decimal `json:"limit"`
	Used           decimal.Decimal `json:"used"`
	PeriodStart    time.Time       `json:"period_start"`
	PeriodEnd      time.Time       `json:"period_end"`
}

// EntitlementThresholdReached is recorded once per subscription, feature,
// period and threshold.
var EntitlementThresholdReached = outbox.Define[ThresholdReached]("entitlement.threshold_reached", 1, "subscription",
	"A customer's usage of a limited feature crossed a threshold (a percentage of its limit) in the current period.")

// changeEvents are the subscription.<change> events, one per history entry
// type.
var changeEvents = map[string]outbox.Kind[Event]{}

func init() {
	for typ, summary := range map[string]string{
		"created":               "A subscription was created.",
		"trial_started":         "A subscription started its trial.",
		"activated":             "A subscription became active (started, trial ended, or paid after past_due).",
		"past_due":              "A subscription became past due: a payment of its invoice failed.",
		"suspended":             "A subscription was suspended: its payment is overdue past dunning, or disputed; suspendable features answer has_access false.",
		"reactivated":           "A suspended subscription got its access back: the overdue invoice was paid, or the dispute won.",
		"paused":                "A subscription was paused.",
		"resumed":               "A paused subscription was resumed.",
		"canceled":              "A subscription was canceled, now or at period end.",
		"ended":                 "A subscription ended.",
		"plan_change_scheduled": "A plan change was scheduled for a later date.",
		"plan_changed":          "A subscription moved to another plan version.",
		"quantity_changed":      "A subscription's quantity (seats) changed.",
	} {
		changeEvents[typ] = outbox.Define[Event]("subscription."+typ, 1, "subscription", summary)
	}
}

// changeKind returns the event of history entry type typ.
func changeKind(typ string) (outbox.Kind[Event], error) {
	k, ok := changeEvents[typ]
	if !ok {
		return k, fmt.Errorf("subscription: no event is defined for change %q", typ)
	}
	return k, nil
}
