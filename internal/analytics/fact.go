package analytics

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/billing"
	"github.com/abacusbilling/abacus/internal/catalog"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/outbox"
	"github.com/abacusbilling/abacus/internal/payments"
	"github.com/abacusbilling/abacus/internal/period"
	"github.com/abacusbilling/abacus/internal/pricing"
	"github.com/abacusbilling/abacus/internal/subscription"
)

// Fact is what the journal keeps of one domain event: the facts the fold
// needs, in columns, so a rebuild reads no JSON and asks no other module.
// The meaning of the fields depends on the type:
//
//	type            Ref           Amount        Amount2           Amount3             Status          Detail
//	subscription.*  subscription  MRR before    fixed fee per     —                   its status      previous status
//	                              discounts     interval × qty
//	invoice.*       invoice       total         amount due        usage subtotal      invoice status  subscription|redemption,…
//	payment.*       payment       amount        amount refunded   invoice amount due  invoice status  invoice id
//	coupon.redeemed redemption    percent off   amount off        invoices (−1 ever)  duration        subscription ("" all)
type Fact struct {
	Seq      int64
	Tenant   string
	EventID  string
	Type     string
	At       time.Time // effective time
	Customer string
	Ref      string
	Currency string
	Amount   decimal.Decimal
	Amount2  decimal.Decimal
	Amount3  decimal.Decimal
	Status   string
	Detail   string
}

// Versions reads plan versions (catalog.Service); analytics prices a
// subscription's MRR from its version's fixed fees.
type Versions interface {
	LoadVersion(ctx context.Context, q db.Querier, tenant, id string) (catalog.Version, error)
}

// factOf turns a domain event into its fact. ok is false for an event the
// projection does not use (it is not journaled). MRR is computed here,
// once, from the plan version the subscription names.
func factOf(ctx context.Context, q db.Querier, versions Versions, e outbox.Event) (f Fact, ok bool, err error) {
	f = Fact{Tenant: e.TenantID, EventID: e.ID, Type: e.Type, At: e.CreatedAt.UTC()}
	switch {
	case strings.HasPrefix(e.Type, "subscription."):
		if e.Type == "subscription.plan_change_scheduled" {
			return f, false, nil
		}
		var ev subscription.Event // the payload of every subscription.<change> event
		if err := json.Unmarshal(e.Payload, &ev); err != nil {
			return f, false, fmt.Errorf("decoding %s %s: %w", e.Type, e.ID, errors.Join(errUnreadable, err))
		}
		s := ev.Subscription
		v, err := versions.LoadVersion(ctx, q, e.TenantID, s.VersionID)
		if abacus.ErrorKind(err) == abacus.KindNotFound {
			err = errors.Join(errUnreadable, err)
		}
		if err != nil {
			return f, false, fmt.Errorf("reading version %s of subscription %s: %w", s.VersionID, s.ID, err)
		}
		pp := subscription.Pricing(v, s.Overrides)
		f.Customer, f.Ref, f.Currency, f.Status = s.CustomerID, s.ID, pp.Currency, string(s.Status)
		f.Detail = string(ev.Change.FromStatus)
		if !ev.Change.EffectiveAt.IsZero() {
			f.At = ev.Change.EffectiveAt.UTC()
		}
		f.Amount, f.Amount2 = SubscriptionMRR(s, pp), fixedFee(pp).Mul(s.Quantity)
		return f, true, nil
	case e.Type == billing.CouponRedeemed.Type().Name:
		ev, err := billing.CouponRedeemed.Decode(e.Payload)
		if err != nil {
			return f, false, errors.Join(errUnreadable, err)
		}
		return redemptionFact(f, ev), true, nil
	case strings.HasPrefix(e.Type, "invoice."):
		if e.Type == billing.InvoiceCreated.Type().Name {
			return f, false, nil
		}
		ev, err := billing.InvoiceFinalized.Decode(e.Payload) // every invoice.* event has this payload
		if err != nil {
			return f, false, errors.Join(errUnreadable, err)
		}
		f.Customer, f.Ref, f.Currency, f.Status = ev.CustomerID, ev.ID, ev.Currency, string(ev.Status)
		f.Amount, f.Amount2 = ev.Total, ev.AmountDue
		if ev.UsageSubtotal != nil { // absent on events recorded before billing added it: 0
			f.Amount3 = *ev.UsageSubtotal
		}
		if ev.SubscriptionID != "" || len(ev.RedemptionIDs) > 0 {
			f.Detail = ev.SubscriptionID + "|" + strings.Join(ev.RedemptionIDs, ",")
		}
		return f, true, nil
	case strings.HasPrefix(e.Type, "payment."):
		if e.Type != payments.PaymentSucceeded.Type().Name && e.Type != payments.PaymentRefunded.Type().Name {
			return f, false, nil
		}
		ev, err := payments.PaymentSucceeded.Decode(e.Payload) // every payment.* event has this payload
		if err != nil {
			return f, false, errors.Join(errUnreadable, err)
		}
		f.Customer, f.Ref, f.Currency, f.Status, f.Detail = ev.CustomerID, ev.PaymentID, ev.Currency, ev.InvoiceStatus, ev.InvoiceID
		f.Amount, f.Amount2, f.Amount3 = ev.Amount, ev.AmountRefunded, ev.InvoiceAmountDue
		return f, true, nil
	}
	return f, false, nil
}

// mrrPlaces is the precision MRR is kept to (docs/analytics.md).
const mrrPlaces = 4

// SubscriptionMRR returns a subscription's MRR under pricing pp (its
// version with its overrides): the fixed fees × quantity, normalised to a
// month by its billing interval and rounded half up to 4 places; 0 unless
// it is live and billed (trialing, paused, canceled while paused and ended
// count 0).
func SubscriptionMRR(s subscription.Subscription, pp pricing.PlanPricing) decimal.Decimal {
	switch s.Status {
	case subscription.Active, subscription.PastDue, subscription.Suspended:
	case subscription.Canceled:
		if s.PausedAt != nil {
			return decimal.Zero
		}
	default:
		return decimal.Zero
	}
	return Monthly(fixedFee(pp).Mul(s.Quantity), s.BillingInterval)
}

// fixedFee is the sum of pp's fixed fees per billing interval (one unit).
func fixedFee(pp pricing.PlanPricing) decimal.Decimal {
	sum := decimal.Zero
	for _, ch := range pp.Charges {
		if ch.Kind == pricing.ChargeFee && ch.Fee != nil {
			sum = sum.Add(ch.Fee.Amount)
		}
	}
	return sum
}

// redemptionFact is the fact of coupon.redeemed: what it takes off, for
// how many invoices (once 1, repeating n, forever −1) and of which
// subscription.
func redemptionFact(f Fact, ev billing.RedemptionEvent) Fact {
	f.Customer, f.Ref, f.Status, f.Detail = ev.CustomerID, ev.ID, string(ev.Duration), ev.SubscriptionID
	if ev.PercentOff != nil {
		f.Amount = *ev.PercentOff
	}
	if ev.AmountOff != nil {
		f.Amount2, f.Currency = *ev.AmountOff, ev.Currency
	}
	switch ev.Duration {
	case billing.Forever:
		f.Amount3 = decimal.NewFromInt(-1)
	case billing.Repeating:
		f.Amount3 = decimal.NewFromInt(int64(ev.DurationPeriods))
	default:
		f.Amount3 = decimal.NewFromInt(1)
	}
	return f
}

// Monthly normalises an amount billed every interval to a month: ÷ n
// months, ÷ 3n for quarters, ÷ 12n for years, × 52 ÷ 12 ÷ n for weeks,
// rounded half up to 4 places.
func Monthly(amount decimal.Decimal, iv period.Interval) decimal.Decimal {
	n := int64(iv.Count)
	if n <= 0 {
		n = 1
	}
	var out decimal.Decimal
	switch iv.Unit {
	case period.Week:
		out = amount.Mul(decimal.NewFromInt(52)).Div(decimal.NewFromInt(12 * n))
	case period.Quarter:
		out = amount.Div(decimal.NewFromInt(3 * n))
	case period.Year:
		out = amount.Div(decimal.NewFromInt(12 * n))
	default:
		out = amount.Div(decimal.NewFromInt(n))
	}
	return out.Round(mrrPlaces)
}

// tenantCtx is a system principal of tenant, for reads on its behalf.
func tenantCtx(ctx context.Context, tenant string) context.Context {
	return abacus.WithPrincipal(ctx, &abacus.Principal{TenantID: tenant, Kind: "system", Scopes: []abacus.Scope{abacus.ScopeAdmin}})
}
