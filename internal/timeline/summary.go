package timeline

import (
	"strings"

	"github.com/shopspring/decimal"

	"github.com/abacusbilling/abacus/internal/money"
)

// subscriptionVerbs finish "Subscription to <plan> …" per change.
var subscriptionVerbs = map[string]string{
	"created":               "created",
	"trial_started":         "started its trial",
	"activated":             "became active",
	"past_due":              "became past due",
	"suspended":             "suspended",
	"reactivated":           "got its access back",
	"paused":                "paused",
	"resumed":               "resumed",
	"canceled":              "canceled",
	"ended":                 "ended",
	"plan_change_scheduled": "has a plan change scheduled",
	"plan_changed":          "moved to another plan version",
	"quantity_changed":      "changed quantity",
}

// summary words an entry as one short sentence from its type and facts.
// It is made when read, not stored, so better wording reaches old entries
// too. planNames names plans by id (catalog.PlanNames).
func summary(typ string, d map[string]string, planNames map[string]string) string {
	family, action, _ := strings.Cut(typ, ".")
	invoice := "Invoice"
	if n := d["number"]; n != "" {
		invoice = "Invoice " + n
	}
	switch family {
	case "customer":
		switch action {
		case "created":
			return "Customer created."
		case "updated":
			return "Customer details changed."
		case "archived":
			return "Customer archived."
		case "chargeback_lost":
			return "Chargeback of " + amount(d["amount"], d["currency"]) + " lost; the invoice is " + d["invoice_action"] + "."
		}
	case "subscription":
		plan := planNames[d["plan_id"]]
		if plan == "" {
			plan = "a plan"
		}
		s := "Subscription to " + plan + " " + or(subscriptionVerbs[action], strings.ReplaceAll(action, "_", " "))
		switch action {
		case "quantity_changed":
			s += " to " + d["quantity"]
		case "suspended":
			if r := d["suspend_reason"]; r != "" {
				s += " (" + strings.ReplaceAll(r, "_", " ") + ")"
			}
		}
		return s + "."
	case "risk":
		if action == "usage_anomaly" {
			if r := d["ratio"]; r != "" && r != "0" {
				return "Usage of " + d["meter"] + " was " + r + "× its baseline on " + d["day"] + "."
			}
			// The ratio is 0 when the baseline's median is 0.
			return "Usage of " + d["meter"] + " rose to " + d["value"] + " on " + d["day"] + ", from a baseline of 0."
		}
	case "entitlement":
		return "Usage of " + d["feature"] + " reached " + d["threshold"] + "% of its limit (" + d["used"] + " of " + d["limit"] + ")."
	case "invoice":
		switch action {
		case "created":
			return "Draft invoice created: " + amount(d["total"], d["currency"]) + "."
		case "finalized":
			return invoice + " finalized: " + amount(d["amount_due"], d["currency"]) + " due."
		case "paid":
			return invoice + " paid."
		case "voided":
			return invoice + " voided."
		case "marked_uncollectible":
			return invoice + " marked uncollectible."
		case "reopened":
			return invoice + " is due again: " + amount(d["amount_due"], d["currency"]) + "."
		}
	case "credit_note":
		return "Credit note " + d["number"] + " issued: " + amount(d["total"], d["currency"]) + "."
	case "coupon":
		off := amount(d["amount_off"], d["currency"])
		if p := d["percent_off"]; p != "" {
			off = p + "%"
		}
		return "Coupon " + d["coupon_code"] + " redeemed: " + off + " off, " + d["duration"] + "."
	case "payment":
		a := amount(d["amount"], d["currency"])
		switch action {
		case "succeeded":
			return "Payment of " + a + " succeeded."
		case "failed":
			why := or(d["decline_code"], d["failure_message"])
			if why != "" {
				return "Payment of " + a + " failed (" + why + ")."
			}
			return "Payment of " + a + " failed."
		case "canceled":
			return "Payment of " + a + " canceled."
		case "refunded":
			return amount(d["amount_refunded"], d["currency"]) + " refunded of a payment of " + a + "."
		}
	case "dispute":
		kind := "Dispute"
		if k := d["kind"]; k != "" && k != "dispute" {
			kind = strings.ToUpper(k[:1]) + strings.ReplaceAll(k[1:], "_", " ")
		}
		switch action {
		case "created":
			s := kind + " opened on a payment of " + amount(d["amount"], d["currency"])
			if r := d["reason"]; r != "" {
				s += " (" + strings.ReplaceAll(r, "_", " ") + ")"
			}
			return s + "."
		case "updated":
			return kind + " now " + strings.ReplaceAll(d["status"], "_", " ") + "."
		case "closed":
			return kind + " closed: " + or(d["outcome"], strings.ReplaceAll(d["status"], "_", " ")) + "."
		}
	case "payment_method":
		card := or(d["brand"], "Card") + " ···· " + d["last4"]
		switch action {
		case "attached":
			return card + " saved as the payment method."
		case "detached":
			return card + " removed."
		case "expiring":
			return card + " expires at the end of next month."
		}
	case "dunning":
		switch action {
		case "started":
			return "Dunning started for " + lowerFirst(invoice) + " (" + amount(d["amount"], d["currency"]) + ")."
		case "reminder":
			return "Payment reminder sent for " + lowerFirst(invoice) + "."
		case "retry_failed":
			return "A retry of " + lowerFirst(invoice) + " failed."
		case "payment_method_required":
			return "A new payment method is needed for " + lowerFirst(invoice) + "."
		case "recovered":
			return invoice + " recovered: dunning ended."
		case "exhausted":
			return "Dunning of " + lowerFirst(invoice) + " ran out: " + strings.ReplaceAll(d["final_action"], "_", " ") + "."
		case "closed":
			return "Dunning of " + lowerFirst(invoice) + " stopped."
		}
	case "organization":
		switch action {
		case "member_added":
			return "An end user joined the organization as " + roleName(d["role"]) + via(d["reason"]) + "."
		case "member_removed":
			if d["reason"] == "left" {
				return "An end user left the organization."
			}
			return "An end user was removed from the organization."
		case "member_role_changed":
			return "A member's role changed from " + roleName(d["previous_role"]) + " to " + roleName(d["role"]) + "."
		case "invitation_sent":
			return "An invitation to join as " + roleName(d["role"]) + " was sent."
		case "invitation_accepted":
			return "An invitation to join as " + roleName(d["role"]) + " was accepted."
		case "ownership_transferred":
			return "Ownership of the organization passed to another member."
		}
		kind := "Organization"
		if d["personal"] == "true" {
			kind = "Personal organization"
		}
		return kind + " " + action + "."
	}
	return strings.ReplaceAll(typ, "_", " ") + "."
}

// amount formats a decimal amount with its currency's digits ("EUR
// 1,234.50"); the value stays exact, it is never a float.
func amount(value, currency string) string {
	d, err := decimal.NewFromString(value)
	if err != nil {
		return strings.TrimSpace(currency + " " + value)
	}
	c, err := money.LookupCurrency(currency)
	if err != nil {
		return strings.TrimSpace(currency + " " + d.String())
	}
	return money.FormatAmount(d, c)
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func lowerFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToLower(s[:1]) + s[1:]
}

func roleName(r string) string { return strings.ReplaceAll(or(r, "member"), "_", " ") }

// via says how a member came: by invitation, by their e-mail's domain…
func via(reason string) string {
	switch reason {
	case "invitation":
		return " by invitation"
	case "domain":
		return " through the organization's domain"
	case "staff":
		return ", added by staff"
	}
	return ""
}
