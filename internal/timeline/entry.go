package timeline

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/shopspring/decimal"

	"github.com/abacusbilling/abacus/internal/billing"
	"github.com/abacusbilling/abacus/internal/catalog"
	"github.com/abacusbilling/abacus/internal/enduser/org"
	"github.com/abacusbilling/abacus/internal/outbox"
	"github.com/abacusbilling/abacus/internal/payments"
	"github.com/abacusbilling/abacus/internal/payments/dunning"
	"github.com/abacusbilling/abacus/internal/risk/casework"
	"github.com/abacusbilling/abacus/internal/subscription"
)

// TimelineEntry is one event of a customer's timeline.
type TimelineEntry struct {
	EventID    string         `json:"event_id" doc:"the domain event's id (Abacus-Event-Id); also the cursor of the page that ends with it"`
	Type       string         `json:"type" doc:"the domain event's type (GET /api/v1/domain-event-types)"`
	OccurredAt time.Time      `json:"occurred_at" doc:"when the change took effect, as the event says"`
	Summary    string         `json:"summary" doc:"a short English sentence saying what happened"`
	Object     TimelineObject `json:"object" doc:"what the entry is about, as something a client can open"`
	// Data are the facts the sentence is made of, copied from the event's
	// payload when it was indexed: a client can word its own sentence.
	Data map[string]string `json:"data" doc:"facts from the event: number, amount, currency, status, plan_id… (depends on the type)"`
}

// TimelineObject names what an entry is about: an invoice (invoice, credit note,
// dunning and lost-chargeback events), a subscription (subscription and
// threshold events), a payment, a dispute, a payment method, a coupon
// redemption, an organization, one of its members (end_user), a meter
// (usage spikes; the id is its slug) or the customer itself.
type TimelineObject struct {
	Type string `json:"type" enum:"customer,subscription,invoice,payment,dispute,payment_method,redemption,organization,end_user,meter"`
	ID   string `json:"id"`
}

// indexed is what an event contributes to the index: the customer it
// names (or the organization whose customer it is, for the events of its
// members), what it is about and the facts of its sentence.
type indexed struct {
	customer     string
	organization string // resolved to its customer when indexed (orgCustomer)
	object       TimelineObject
	data         map[string]string
}

// extract reads one version of one event type's payload.
type extract func(payload []byte) (indexed, error)

type typeKey struct {
	name    string
	version int
}

var (
	extractorsOnce sync.Once
	extractors     map[typeKey]extract
)

// on registers how to read k's payload: through its Go type, never by
// field names guessed from JSON.
func on[P any](k outbox.Kind[P], f func(P) indexed) {
	t := k.Type()
	extractors[typeKey{t.Name, t.Version}] = func(payload []byte) (indexed, error) {
		p, err := k.Decode(payload)
		if err != nil {
			return indexed{}, err
		}
		return f(p), nil
	}
}

// onType is on for an event whose Kind the producer does not export (the
// subscription.<change> events share subscription.Event): the payload is
// still decoded into the producer's Go type.
func onType[P any](name string, version int, f func(P) indexed) {
	extractors[typeKey{name, version}] = func(payload []byte) (indexed, error) {
		var p P
		if err := json.Unmarshal(payload, &p); err != nil {
			return indexed{}, fmt.Errorf("decoding %s v%d: %w", name, version, err)
		}
		return f(p), nil
	}
}

func register() {
	extractors = map[typeKey]extract{}
	// Names and e-mail addresses are not copied: a personal organization
	// and its customer are named after the end user, and erasing an end
	// user must not leave their name behind in this index.
	customer := func(c catalog.Customer) indexed {
		return indexed{customer: c.ID, object: TimelineObject{"customer", c.ID}, data: facts()}
	}
	for _, k := range []outbox.Kind[catalog.Customer]{catalog.CustomerCreated, catalog.CustomerUpdated, catalog.CustomerArchived} {
		on(k, customer)
	}
	for _, t := range outbox.Types() {
		if strings.HasPrefix(t.Name, "subscription.") && t.Version == 1 {
			onType(t.Name, 1, func(e subscription.Event) indexed {
				s := e.Subscription
				return indexed{customer: s.CustomerID, object: TimelineObject{"subscription", s.ID},
					data: facts("plan_id", s.PlanID, "version_id", s.VersionID, "status", string(s.Status), "quantity", s.Quantity.String(),
						"from_status", string(e.Change.FromStatus), "suspend_reason", s.SuspendReason)}
			})
		}
	}
	on(subscription.EntitlementThresholdReached, func(t subscription.ThresholdReached) indexed {
		return indexed{customer: t.CustomerID, object: TimelineObject{"subscription", t.SubscriptionID},
			data: facts("feature", t.Feature, "threshold", fmt.Sprint(t.Threshold), "used", t.Used.String(), "limit", t.Limit.String())}
	})
	invoice := func(i billing.InvoiceEvent) indexed {
		return indexed{customer: i.CustomerID, object: TimelineObject{"invoice", i.ID},
			data: facts("number", i.Number, "currency", i.Currency, "total", i.Total.String(), "amount_due", i.AmountDue.String(),
				"status", string(i.Status), "subscription_id", i.SubscriptionID)}
	}
	for _, k := range []outbox.Kind[billing.InvoiceEvent]{billing.InvoiceCreated, billing.InvoiceFinalized, billing.InvoicePaid,
		billing.InvoiceVoided, billing.InvoiceMarkedUncollectible, billing.InvoiceReopened} {
		on(k, invoice)
	}
	on(billing.CreditNoteCreated, func(c billing.CreditNote) indexed {
		return indexed{customer: c.CustomerID, object: TimelineObject{"invoice", c.InvoiceID},
			data: facts("credit_note_id", c.ID, "number", c.Number, "currency", c.Currency, "total", c.Total.String())}
	})
	on(billing.CouponRedeemed, func(r billing.RedemptionEvent) indexed {
		return indexed{customer: r.CustomerID, object: TimelineObject{"redemption", r.ID},
			data: facts("coupon_code", r.CouponCode, "coupon_id", r.CouponID, "percent_off", decimalOrEmpty(r.PercentOff),
				"amount_off", decimalOrEmpty(r.AmountOff), "currency", r.Currency, "duration", string(r.Duration),
				"subscription_id", r.SubscriptionID)}
	})
	payment := func(p payments.PaymentEvent) indexed {
		return indexed{customer: p.CustomerID, object: TimelineObject{"payment", p.PaymentID},
			data: facts("amount", p.Amount.String(), "amount_refunded", p.AmountRefunded.String(), "currency", p.Currency,
				"provider", p.Provider, "invoice_id", p.InvoiceID, "invoice_number", p.InvoiceNumber,
				"decline_code", p.DeclineCode, "failure_message", p.FailureMessage)}
	}
	for _, k := range []outbox.Kind[payments.PaymentEvent]{payments.PaymentSucceeded, payments.PaymentFailed,
		payments.PaymentCanceled, payments.PaymentRefunded} {
		on(k, payment)
	}
	dispute := func(d payments.DisputeEvent) indexed {
		return indexed{customer: d.CustomerID, object: TimelineObject{"dispute", d.DisputeID},
			data: facts("amount", d.Amount.String(), "currency", d.Currency, "kind", string(d.Kind), "status", d.Status,
				"outcome", d.Outcome, "reason", d.Reason, "invoice_id", d.InvoiceID)}
	}
	for _, k := range []outbox.Kind[payments.DisputeEvent]{payments.DisputeCreated, payments.DisputeUpdated, payments.DisputeClosed} {
		on(k, dispute)
	}
	method := func(m payments.PaymentMethodEvent) indexed {
		return indexed{customer: m.CustomerID, object: TimelineObject{"payment_method", m.PaymentMethodID},
			data: facts("brand", m.Brand, "last4", m.Last4, "exp_month", fmt.Sprint(m.ExpMonth), "exp_year", fmt.Sprint(m.ExpYear))}
	}
	for _, k := range []outbox.Kind[payments.PaymentMethodEvent]{payments.PaymentMethodAttached, payments.PaymentMethodDetached,
		payments.PaymentMethodExpiring} {
		on(k, method)
	}
	run := func(r dunning.RunEvent) indexed {
		return indexed{customer: r.CustomerID, object: TimelineObject{"invoice", r.InvoiceID},
			data: facts("run_id", r.RunID, "number", r.InvoiceNumber, "amount", r.Amount.String(), "currency", r.Currency,
				"final_action", r.FinalAction, "attempts", fmt.Sprint(r.Attempts))}
	}
	for _, k := range []outbox.Kind[dunning.RunEvent]{dunning.RunStarted, dunning.RunReminder, dunning.RunRetryFailed,
		dunning.PaymentMethodRequired, dunning.RunRecovered, dunning.RunExhausted, dunning.RunClosed} {
		on(k, run)
	}
	on(dunning.CustomerChargebackLost, func(c dunning.ChargebackLost) indexed {
		return indexed{customer: c.CustomerID, object: TimelineObject{"invoice", c.InvoiceID},
			data: facts("amount", c.Amount.String(), "currency", c.Currency, "dispute_id", c.DisputeID, "invoice_action", c.InvoiceAction)}
	})
	organization := func(o org.Organization) indexed {
		return indexed{customer: o.CustomerID, object: TimelineObject{"organization", o.ID}, data: facts("personal", fmt.Sprint(o.Personal))}
	}
	for _, k := range []outbox.Kind[org.Organization]{org.OrganizationCreated, org.OrganizationUpdated, org.OrganizationDeleted} {
		on(k, organization)
	}
	// Members' events name their organization only; its customer is found
	// when they are indexed. The invitee's e-mail is not copied.
	member := func(m org.MemberEvent) indexed {
		return indexed{organization: m.OrganizationID, object: TimelineObject{"end_user", m.UserID},
			data: facts("organization_id", m.OrganizationID, "role", m.Role, "previous_role", m.PreviousRole, "reason", m.Reason)}
	}
	for _, k := range []outbox.Kind[org.MemberEvent]{org.MemberAdded, org.MemberRemoved, org.MemberRoleChanged} {
		on(k, member)
	}
	invitation := func(i org.InvitationEvent) indexed {
		return indexed{organization: i.OrganizationID, object: TimelineObject{"organization", i.OrganizationID},
			data: facts("organization_id", i.OrganizationID, "role", i.Role, "accepted_by", i.AcceptedBy)}
	}
	for _, k := range []outbox.Kind[org.InvitationEvent]{org.InvitationSent, org.InvitationAccepted} {
		on(k, invitation)
	}
	// A usage spike names the customer owning the metered subject from v2
	// on; v1 named only the subject and is not indexed, nor is a v2 spike
	// of a subject no customer owns. The subject is not copied: it is the
	// tenant's own usage key, which may be an e-mail address.
	on(casework.UsageAnomaly, func(u casework.UsageAnomalyEventV2) indexed {
		return indexed{customer: u.CustomerID, object: TimelineObject{"meter", u.Meter},
			data: facts("meter", u.Meter, "day", u.Day.UTC().Format(time.DateOnly), "value", number(u.Value),
				"baseline_median", number(u.Median), "baseline_days", fmt.Sprint(u.Days), "ratio", number(u.Ratio))}
	})
	on(org.OwnershipTransferred, func(o org.OwnershipEvent) indexed {
		return indexed{organization: o.OrganizationID, object: TimelineObject{"end_user", o.ToUserID},
			data: facts("organization_id", o.OrganizationID, "from_user_id", o.FromUserID, "from_role", o.FromRole)}
	})
}

// indexedOf reads what e contributes to the index; ok is false for an
// event that names no customer (a plan, a meter, an end user's sign-in).
func indexedOf(e outbox.Event) (ix indexed, ok bool, err error) {
	extractorsOnce.Do(register)
	f := extractors[typeKey{e.Type, e.Version}]
	if f == nil {
		return indexed{}, false, nil
	}
	ix, err = f(e.Payload)
	if err != nil {
		return indexed{}, false, err
	}
	return ix, ix.customer != "" || ix.organization != "", nil
}

// Types are the event types the timeline indexes, sorted (the type
// filter accepts these, and their families as "invoice.*").
func Types() []string {
	extractorsOnce.Do(register)
	var names []string
	for k := range extractors {
		if !slices.Contains(names, k.name) {
			names = append(names, k.name)
		}
	}
	slices.Sort(names)
	return names
}

// facts makes the data map from name, value pairs, leaving out empty
// values so an entry carries only what its event said.
func facts(kv ...string) map[string]string {
	m := make(map[string]string, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			m[kv[i]] = kv[i+1]
		}
	}
	return m
}

// number writes a usage figure (a float64 in risk's payload) as short as
// it reads back the same: 1200, 12.35.
func number(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

func decimalOrEmpty(d *decimal.Decimal) string {
	if d == nil {
		return ""
	}
	return d.String()
}
