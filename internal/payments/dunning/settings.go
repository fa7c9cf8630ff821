package dunning

import (
	"fmt"
	"slices"
	"time"

	"github.com/abacusbilling/abacus"
)

// FinalAction is what dunning does when an invoice is still unpaid after
// its last retry and the grace period.
type FinalAction string

const (
	Suspend           FinalAction = "suspend"            // the subscription is suspended (access follows payment)
	Cancel            FinalAction = "cancel"             // the subscription is canceled now
	MarkUncollectible FinalAction = "mark_uncollectible" // the invoice is written off; the subscription becomes active again
)

// RetryPolicy is a dunning schedule: the days after the first failed payment on
// which it is retried, how many charge attempts there are at most (the
// first included), how many days before each retry the customer is
// reminded (the reminder before the last one says so), the grace period
// after the last retry, and the final action.
type RetryPolicy struct {
	RetryDays          []int       `json:"retry_days" maxItems:"10" doc:"days after the first failed payment, ascending (e.g. [3,5,7])"`
	MaxAttempts        int         `json:"max_attempts" minimum:"1" maximum:"11" doc:"charge attempts at most, the first included: retries beyond max_attempts-1 are dropped"`
	ReminderDaysBefore int         `json:"reminder_days_before" minimum:"0" maximum:"30" doc:"a reminder this many days before each retry (0: none); the one before the last retry is the final notice"`
	GraceDays          int         `json:"grace_days" minimum:"0" maximum:"60" doc:"days after the last retry before the final action"`
	FinalAction        FinalAction `json:"final_action" enum:"suspend,cancel,mark_uncollectible"`
}

// DunningSettings are a tenant's dunning and access settings. Plans can override
// the RetryPolicy (PlanOverride); the rest is per tenant.
type DunningSettings struct {
	RetryPolicy
	// SuspendableFeatures are the feature keys a suspension closes; ["*"]
	// (the default) closes every feature.
	SuspendableFeatures []string `json:"suspendable_features" maxItems:"500" doc:"feature keys a suspension closes; [\"*\"] (default) for every feature"`
	KeepPrepaidAccess   bool     `json:"keep_prepaid_access" doc:"default true: a prepaid period that was paid keeps its access until it ends, even when a later invoice is overdue"`
	DisputeSuspends     bool     `json:"dispute_suspends" doc:"suspend the subscription while a payment of its invoice is disputed (default false)"`
	DisputeLost         string   `json:"dispute_lost" enum:"unpaid,uncollectible" doc:"a lost dispute leaves the invoice unpaid (default; dunning does not retry it) or marks it uncollectible"`
}

// PlanOverride replaces parts of the tenant's RetryPolicy for the subscriptions
// of one plan; a field left out (null) keeps the tenant's.
type PlanOverride struct {
	RetryDays          []int        `json:"retry_days,omitempty" maxItems:"10"`
	MaxAttempts        *int         `json:"max_attempts,omitempty"`
	ReminderDaysBefore *int         `json:"reminder_days_before,omitempty"`
	GraceDays          *int         `json:"grace_days,omitempty"`
	FinalAction        *FinalAction `json:"final_action,omitempty" enum:"suspend,cancel,mark_uncollectible"`
}

// Defaults are a tenant's settings until it saves its own.
func Defaults() DunningSettings {
	return DunningSettings{
		RetryPolicy:         RetryPolicy{RetryDays: []int{3, 5, 7}, MaxAttempts: 4, ReminderDaysBefore: 1, GraceDays: 3, FinalAction: Suspend},
		SuspendableFeatures: []string{"*"}, KeepPrepaidAccess: true, DisputeLost: "unpaid",
	}
}

// apply returns p with o's fields set.
func (o PlanOverride) apply(p RetryPolicy) RetryPolicy {
	if o.RetryDays != nil {
		p.RetryDays = slices.Clone(o.RetryDays)
	}
	if o.MaxAttempts != nil {
		p.MaxAttempts = *o.MaxAttempts
	}
	if o.ReminderDaysBefore != nil {
		p.ReminderDaysBefore = *o.ReminderDaysBefore
	}
	if o.GraceDays != nil {
		p.GraceDays = *o.GraceDays
	}
	if o.FinalAction != nil {
		p.FinalAction = *o.FinalAction
	}
	return p
}

func (p RetryPolicy) validateInto(v *abacus.Validation, prefix string) {
	for i, d := range p.RetryDays {
		if d < 1 || d > 90 {
			v.Add(fmt.Sprintf("%sretry_days[%d]", prefix, i), "must be between 1 and 90 days")
		} else if i > 0 && d <= p.RetryDays[i-1] {
			v.Add(fmt.Sprintf("%sretry_days[%d]", prefix, i), "must be later than the retry before it (%d)", p.RetryDays[i-1])
		}
	}
	if len(p.RetryDays) > 10 {
		v.Add(prefix+"retry_days", "at most 10 retries")
	}
	if p.MaxAttempts < 1 || p.MaxAttempts > 11 {
		v.Add(prefix+"max_attempts", "must be between 1 and 11")
	}
	if p.ReminderDaysBefore < 0 || p.ReminderDaysBefore > 30 {
		v.Add(prefix+"reminder_days_before", "must be between 0 and 30")
	}
	if p.GraceDays < 0 || p.GraceDays > 60 {
		v.Add(prefix+"grace_days", "must be between 0 and 60")
	}
	switch p.FinalAction {
	case Suspend, Cancel, MarkUncollectible:
	default:
		v.Add(prefix+"final_action", "must be suspend, cancel or mark_uncollectible")
	}
}

// Validate reports every bad field, with its path under body.
func (s DunningSettings) Validate() error {
	var v abacus.Validation
	s.RetryPolicy.validateInto(&v, "")
	for i, f := range s.SuspendableFeatures {
		if f == "" || len(f) > 200 {
			v.Add(fmt.Sprintf("suspendable_features[%d]", i), "must be a feature key or \"*\"")
		}
	}
	if s.DisputeLost != "unpaid" && s.DisputeLost != "uncollectible" {
		v.Add("dispute_lost", "must be unpaid or uncollectible")
	}
	return v.Err("invalid_dunning_settings")
}

// Validate reports every bad field of the override applied to base.
func (o PlanOverride) Validate(base RetryPolicy) error {
	var v abacus.Validation
	o.apply(base).validateInto(&v, "")
	return v.Err("invalid_dunning_settings")
}

// Step kinds of a run.
const (
	StepOverdue  = "overdue" // a send_invoice invoice's due date: still unpaid, the run starts
	StepReminder = "reminder"
	StepRetry    = "retry"
	StepRetryNow = "retry_now" // a new payment method after a hard decline: retried at once
	StepFinal    = "final_action"
)

// step is one planned step of a run.
type step struct {
	Kind  string
	At    time.Time
	Retry int  // the retry it belongs to (0-based)
	Last  bool // the last retry, or the reminder before it
}

// steps plans the steps of a run whose first payment failed at first: a
// reminder (when asked for) and a retry per retry day, then the final
// action after the grace period. A reminder never comes before first.
func (p RetryPolicy) steps(first time.Time) []step {
	days := p.RetryDays
	if n := max(p.MaxAttempts-1, 0); len(days) > n {
		days = days[:n]
	}
	day := func(d int) time.Time { return first.Add(time.Duration(d) * 24 * time.Hour) }
	var out []step
	for i, d := range days {
		at, last := day(d), i == len(days)-1
		if p.ReminderDaysBefore > 0 {
			out = append(out, step{Kind: StepReminder, At: maxTime(first, day(d-p.ReminderDaysBefore)), Retry: i, Last: last})
		}
		out = append(out, step{Kind: StepRetry, At: at, Retry: i, Last: last})
	}
	end := first
	if len(days) > 0 {
		end = day(days[len(days)-1])
	}
	return append(out, step{Kind: StepFinal, At: end.Add(time.Duration(p.GraceDays) * 24 * time.Hour)})
}

// reminders plans the steps of a send_invoice run, overdue since due:
// nothing is charged, so each retry day is a reminder with the pay link
// (the last one the final notice), then the final action after the grace
// period, as for a charged invoice.
func (p RetryPolicy) reminders(due time.Time) []step {
	steps := p.steps(due)
	out := make([]step, 0, len(steps))
	for _, st := range steps {
		switch st.Kind {
		case StepRetry:
			st.Kind = StepReminder
			out = append(out, st)
		case StepFinal:
			out = append(out, st)
		}
	}
	return out
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
