package dunning

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/shopspring/decimal"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/catalog"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/outbox"
	"github.com/abacusbilling/abacus/internal/subscription"
)

// Invoice is what dunning needs to know of an invoice.
type Invoice struct {
	ID, Number, CustomerID, SubscriptionID, Currency string
	AmountDue                                        decimal.Decimal
	Status                                           string     // open, paid, void, uncollectible (draft)
	DueAt                                            *time.Time // when a finalized invoice is due
}

// Billing is what dunning asks the billing module (the app adapts
// billing.Service), so it never reads billing's tables.
type Billing interface {
	Invoice(ctx context.Context, tenant, id string) (Invoice, error)
	// PaidThrough is the end of the latest period of subscription sub an
	// invoice paid for, or nil.
	PaidThrough(ctx context.Context, tenant, sub string) (*time.Time, error)
	MarkUncollectible(ctx context.Context, tenant, id string) error
}

// Outcome of one charge attempt.
type Outcome string

const (
	Succeeded Outcome = "succeeded"
	Failed    Outcome = "failed"
	Pending   Outcome = "pending" // the gateway answers later (an event)
)

// Attempt is what a charge attempt gave.
type Attempt struct {
	Outcome     Outcome
	DeclineCode string
	Hard        bool // do not retry: ask for another payment method
}

// CollectFunc charges invoice id of tenant again (attempt counts from 1,
// the first included; the payments core keys its gateway idempotency on
// it, so a runner that crashed and retries the same attempt never charges
// twice).
type CollectFunc func(ctx context.Context, tenant, invoice string, attempt int) (Attempt, error)

// Service runs dunning for every tenant: it starts a run when a payment of
// an invoice fails, advances the due steps (Pass), and restores access
// when the invoice is paid.
type Service struct {
	db      *db.DB
	clock   abacus.Clock
	log     *slog.Logger
	billing Billing
	subs    *subscription.Service
	collect CollectFunc
	method  MethodFunc    // how a customer pays (nil: every invoice is charged)
	payLink PayLinkFunc   // the hosted pay page of an invoice (nil: reminders without a link)
	owner   string        // this runner's lease owner
	lease   time.Duration // how long a claimed run is this runner's
	batch   int
	// failures counts steps that failed (RegisterMetrics exports it).
	failures prometheus.Counter
}

// New returns the dunning service. Without UseCollector retries only
// record that they are due (nothing is charged).
func New(d *db.DB, clock abacus.Clock, log *slog.Logger, b Billing, subs *subscription.Service) *Service {
	if log == nil {
		log = slog.Default()
	}
	return &Service{db: d, clock: clock, log: log.With("module", "dunning"), billing: b, subs: subs,
		owner: abacus.NewID("dun"), lease: 5 * time.Minute, batch: 500,
		failures: prometheus.NewCounter(prometheus.CounterOpts{Name: "abacus_dunning_step_failures_total",
			Help: "Dunning steps that failed and wait for their lease to end."})}
}

// UseCollector sets how retries charge. Call it before Pass runs.
func (s *Service) UseCollector(f CollectFunc) { s.collect = f }

func (s *Service) now() time.Time { return s.clock.Now().UTC().Truncate(time.Microsecond) }

func tenantCtx(ctx context.Context, tenant string) context.Context {
	return abacus.WithPrincipal(ctx, &abacus.Principal{TenantID: tenant, Kind: "system", ID: "dunning",
		Scopes: []abacus.Scope{abacus.ScopeWrite}})
}

// --- settings

func (s *Service) loadSettings(ctx context.Context, q db.Querier, tenant, plan string, into any) (bool, error) {
	var body string
	err := q.QueryRowContext(ctx, `SELECT settings FROM dunning_settings WHERE tenant_id = $1 AND plan_id = $2`, tenant, plan).Scan(&body)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("reading dunning settings: %w", err)
	}
	return true, json.Unmarshal([]byte(body), into)
}

func (s *Service) saveSettings(ctx context.Context, tenant, plan string, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return s.db.InTx(ctx, func(tx *db.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO dunning_settings (tenant_id, plan_id, settings, updated_at) VALUES ($1, $2, $3, $4)
			ON CONFLICT (tenant_id, plan_id) DO UPDATE SET settings = excluded.settings, updated_at = excluded.updated_at`,
			tenant, plan, string(body), db.TimeOf(s.now()))
		return err
	})
}

func (s *Service) settingsOf(ctx context.Context, tenant string) (DunningSettings, error) {
	st := Defaults()
	_, err := s.loadSettings(ctx, s.db, tenant, "", &st)
	return st, err
}

// Settings returns the caller's tenant's settings (the defaults until it
// saves its own).
func (s *Service) Settings(ctx context.Context) (DunningSettings, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return DunningSettings{}, err
	}
	return s.settingsOf(ctx, tenant)
}

// SaveSettings replaces the tenant's settings. Runs already started keep
// their schedule. Errors: "invalid_dunning_settings" naming each field.
func (s *Service) SaveSettings(ctx context.Context, st DunningSettings) (DunningSettings, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return DunningSettings{}, err
	}
	if st.SuspendableFeatures == nil {
		st.SuspendableFeatures = []string{"*"}
	}
	if st.RetryDays == nil {
		st.RetryDays = []int{}
	}
	if err := st.Validate(); err != nil {
		return DunningSettings{}, err
	}
	return st, s.saveSettings(ctx, tenant, "", st)
}

// PlanOverride returns plan's override of the policy (zero when none).
func (s *Service) PlanOverride(ctx context.Context, plan string) (PlanOverride, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return PlanOverride{}, err
	}
	if plan, err = s.planID(ctx, tenant, plan); err != nil {
		return PlanOverride{}, err
	}
	var o PlanOverride
	_, err = s.loadSettings(ctx, s.db, tenant, plan, &o)
	return o, err
}

// planID returns the id of the plan ref names (id or key). Errors:
// "plan_not_found".
func (s *Service) planID(ctx context.Context, tenant, ref string) (string, error) {
	p, err := catalog.LoadPlan(ctx, s.db, tenant, ref)
	if err != nil {
		return "", err
	}
	return p.ID, nil
}

// SavePlanOverride sets plan's override; the policy it gives with the
// tenant's settings must be valid. Errors: "invalid_dunning_settings".
func (s *Service) SavePlanOverride(ctx context.Context, plan string, o PlanOverride) (PlanOverride, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return PlanOverride{}, err
	}
	if plan, err = s.planID(ctx, tenant, plan); err != nil {
		return PlanOverride{}, err
	}
	st, err := s.settingsOf(ctx, tenant)
	if err != nil {
		return PlanOverride{}, err
	}
	if err := o.Validate(st.RetryPolicy); err != nil {
		return PlanOverride{}, err
	}
	return o, s.saveSettings(ctx, tenant, plan, o)
}

// policyFor returns the tenant's settings and the policy for plan.
func (s *Service) policyFor(ctx context.Context, tenant, plan string) (DunningSettings, RetryPolicy, error) {
	st, err := s.settingsOf(ctx, tenant)
	if err != nil || plan == "" {
		return st, st.RetryPolicy, err
	}
	var o PlanOverride
	found, err := s.loadSettings(ctx, s.db, tenant, plan, &o)
	if err != nil || !found {
		return st, st.RetryPolicy, err
	}
	return st, o.apply(st.RetryPolicy), nil
}

// Suspendable is the tenant's choice of features a suspension closes, for
// subscription.Service.UseSuspendable.
func (s *Service) Suspendable(ctx context.Context, tenant string) (subscription.Suspendable, error) {
	st, err := s.settingsOf(ctx, tenant)
	if err != nil {
		return subscription.Suspendable{}, err
	}
	if slices.Contains(st.SuspendableFeatures, "*") {
		return subscription.Suspendable{All: true}, nil
	}
	p := subscription.Suspendable{Features: map[string]bool{}}
	for _, f := range st.SuspendableFeatures {
		p.Features[f] = true
	}
	return p, nil
}

// --- runs

// FailedPayment is a failed charge of an invoice (payment.failed).
type FailedPayment struct {
	TenantID, InvoiceID string
	Attempt             int // 1 = the first; 0 when the payments core did not count it
	DeclineCode         string
	Hard                bool
}

func (r Run) event(now time.Time) RunEvent {
	e := RunEvent{RunID: r.ID, InvoiceID: r.InvoiceID, InvoiceNumber: r.InvoiceNumber, CustomerID: r.CustomerID,
		SubscriptionID: r.SubscriptionID, Amount: r.Amount, Currency: r.Currency, Status: r.Status, Attempts: r.Attempts,
		CollectionMethod: r.CollectionMethod,
		FinalAction:      string(r.Policy.FinalAction), HardDecline: r.HardDeclined, DeclineCode: r.DeclineCode}
	if r.FinalAction != "" {
		e.FinalAction = r.FinalAction
	}
	steps := r.plan()
	for _, st := range steps[min(r.StepIndex, len(steps)-1):] {
		if st.Kind == StepRetry && e.RetryAt == nil && !r.HardDeclined {
			at := st.At
			e.RetryAt = &at
		}
		if st.Kind == StepFinal {
			at := st.At
			e.FinalActionAt = &at
		}
	}
	return e
}

// plan is r's steps: retries (and reminders before them) for a charged
// invoice, reminders for a send_invoice one.
func (r Run) plan() []step {
	if r.CollectionMethod == SendInvoice {
		return r.Policy.reminders(r.FirstFailedAt)
	}
	return r.Policy.steps(r.FirstFailedAt)
}

// schedule points r at its step i (the final action when past the end).
func (r *Run) schedule(i int) {
	steps := r.plan()
	if i >= len(steps) {
		i = len(steps) - 1
	}
	r.StepIndex, r.NextStep = i, steps[i].Kind
	at := steps[i].At
	r.NextAt = &at
}

// end closes r with status.
func (r *Run) end(status string, now time.Time) {
	r.Status, r.NextStep, r.NextAt, r.EndedAt, r.UpdatedAt = status, "", nil, &now, now
}

// PaymentFailed starts dunning the invoice of a failed payment: its
// subscription becomes past_due, retries and reminders are scheduled on
// the policy of its plan (dunning.started; a hard decline also
// dunning.payment_method_required). A failure of an invoice in dunning
// already only counts the attempt. Calling it twice changes nothing.
func (s *Service) PaymentFailed(ctx context.Context, f FailedPayment) error {
	now := s.now()
	if r, err := runOf(ctx, s.db, f.TenantID, f.InvoiceID); err != nil || r != nil {
		if err != nil || r.Status != StatusActive || f.Attempt <= r.Attempts {
			return err
		}
		return s.db.InTx(ctx, func(tx *db.Tx) error {
			// Only the attempt's own columns, and only while no runner
			// holds the run: a retry a pass is taking is recorded by that
			// pass (this event is its own charge's echo), and writing the
			// whole row here would undo its step and lease.
			wasHard := r.HardDeclined
			res, err := tx.ExecContext(ctx, `UPDATE dunning_runs SET attempts = $3, hard_declined = $4, decline_code = $5, updated_at = $6
				WHERE tenant_id = $1 AND id = $2 AND status = 'active' AND attempts < $3 AND (lease_until IS NULL OR lease_until < $6)`,
				f.TenantID, r.ID, f.Attempt, boolInt(f.Hard), f.DeclineCode, db.TimeOf(now))
			if err != nil {
				return fmt.Errorf("counting a failed attempt of %s: %w", r.InvoiceID, err)
			}
			if n, err := res.RowsAffected(); err != nil || n == 0 {
				return err
			}
			r.Attempts, r.HardDeclined, r.DeclineCode, r.UpdatedAt = f.Attempt, f.Hard, f.DeclineCode, now
			if f.Hard && !wasHard {
				_, err := PaymentMethodRequired.Record(ctx, tx, f.TenantID, r.ID, now, r.event(now))
				return err
			}
			return nil
		})
	}
	tctx := tenantCtx(ctx, f.TenantID)
	inv, err := s.billing.Invoice(tctx, f.TenantID, f.InvoiceID)
	if abacus.ErrorKind(err) == abacus.KindNotFound {
		s.log.Warn("a payment failed for an invoice billing does not know; not dunned", "tenant_id", f.TenantID, "invoice_id", f.InvoiceID)
		return nil
	}
	if err != nil {
		return err
	}
	if inv.Status != "open" {
		return nil // paid, voided or written off meanwhile
	}
	plan, err := s.markPastDue(tctx, inv.SubscriptionID)
	if err != nil {
		return err
	}
	_, pol, err := s.policyFor(ctx, f.TenantID, plan)
	if err != nil {
		return err
	}
	r := Run{ID: abacus.NewID("dun"), tenant: f.TenantID, InvoiceID: inv.ID, InvoiceNumber: inv.Number, CustomerID: inv.CustomerID,
		SubscriptionID: inv.SubscriptionID, Amount: inv.AmountDue, Currency: inv.Currency, Status: StatusActive, Policy: pol,
		CollectionMethod: ChargeAutomatically, FirstFailedAt: now, Attempts: max(f.Attempt, 1), HardDeclined: f.Hard,
		DeclineCode: f.DeclineCode, CreatedAt: now, UpdatedAt: now}
	r.schedule(0)
	return s.db.InTx(ctx, func(tx *db.Tx) error {
		ok, err := insertRun(ctx, tx, r)
		if err != nil || !ok {
			return err
		}
		evs := []outbox.Event{RunStarted.New(f.TenantID, r.ID, now, r.event(now))}
		if f.Hard {
			evs = append(evs, PaymentMethodRequired.New(f.TenantID, r.ID, now, r.event(now)))
		}
		_, err = outbox.RecordBatch(ctx, tx, evs)
		return err
	})
}

// markPastDue moves subscription sub (if any) to past_due and returns its
// plan, whose policy the run follows.
func (s *Service) markPastDue(tctx context.Context, sub string) (string, error) {
	if sub == "" {
		return "", nil
	}
	got, err := s.subs.MarkPastDue(tctx, sub)
	switch {
	case err == nil:
		return got.PlanID, nil
	case abacus.ErrorKind(err) == abacus.KindConflict || abacus.ErrorKind(err) == abacus.KindNotFound:
		// trialing, paused, canceled or ended: its invoice is still dunned
		if got, err := s.subs.Get(tctx, sub); err == nil {
			return got.PlanID, nil
		}
		return "", nil
	}
	return "", err
}

// InvoicePaid ends the dunning of a paid invoice (dunning.recovered) and
// restores its subscription unless another invoice keeps it past due or
// suspended. Calling it again (or for an invoice never dunned) restores
// what is still to restore and records nothing.
func (s *Service) InvoicePaid(ctx context.Context, tenant, invoice string) error {
	return s.settle(ctx, tenant, invoice, StatusRecovered, "paid")
}

// InvoiceClosed stops the dunning of an invoice voided or marked
// uncollectible (dunning.closed) and restores its subscription as
// InvoicePaid does: the invoice is no longer owed.
func (s *Service) InvoiceClosed(ctx context.Context, tenant, invoice, reason string) error {
	return s.settle(ctx, tenant, invoice, StatusClosed, reason)
}

func (s *Service) settle(ctx context.Context, tenant, invoice, status, reason string) error {
	now := s.now()
	var sub string
	err := s.db.InTx(ctx, func(tx *db.Tx) error {
		r, err := runOf(ctx, tx, tenant, invoice)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE dunning_disputes SET status = 'settled', updated_at = $3
			WHERE tenant_id = $1 AND invoice_id = $2 AND status IN ('suspended', 'lost')`, tenant, invoice, db.TimeOf(now)); err != nil {
			return fmt.Errorf("settling disputes of %s: %w", invoice, err)
		}
		if r == nil {
			return nil
		}
		if r.leased(now) {
			// A pass is taking a step of it (a charge, a suspension): settled
			// after it, when this event comes again, so the step cannot undo it.
			return abacus.Errorf(abacus.KindUnavailable, "dunning_run_busy", "dunning run %s is being advanced; settled later", r.ID)
		}
		sub = r.SubscriptionID
		if r.Status == StatusScheduled { // settled before it was due: it never started
			return deleteRun(ctx, tx, tenant, r.ID)
		}
		if r.Status != StatusActive && r.Status != StatusExhausted ||
			status == StatusClosed && r.FinalAction == string(MarkUncollectible) { // its own final action
			return nil
		}
		r.end(status, now)
		if _, err := saveRun(ctx, tx, *r, ""); err != nil {
			return err
		}
		kind := RunRecovered
		if status == StatusClosed {
			kind = RunClosed
		}
		e := r.event(now)
		e.Reason = reason
		_, err = kind.Record(ctx, tx, tenant, r.ID, now, e)
		return err
	})
	if err != nil {
		return err
	}
	if sub == "" {
		if sub, err = s.disputedSubscription(ctx, tenant, invoice); err != nil || sub == "" {
			return err
		}
	}
	return s.restore(ctx, tenant, sub, reason)
}

func (s *Service) disputedSubscription(ctx context.Context, tenant, invoice string) (string, error) {
	var sub string
	err := s.db.QueryRowContext(ctx, `SELECT subscription_id FROM dunning_disputes WHERE tenant_id = $1 AND invoice_id = $2 LIMIT 1`,
		tenant, invoice).Scan(&sub)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return sub, err
}

// restore reactivates subscription sub unless an invoice still keeps it
// past due or suspended.
func (s *Service) restore(ctx context.Context, tenant, sub, reason string) error {
	if sub == "" {
		return nil
	}
	if b, err := blocking(ctx, s.db, tenant, sub); err != nil || b {
		return err
	}
	_, err := s.subs.Reactivate(tenantCtx(ctx, tenant), sub, reason)
	if abacus.ErrorKind(err) == abacus.KindNotFound {
		return nil
	}
	return err
}

// PaymentMethodAttached retries at once the runs of customer that wait
// for a new payment method after a hard decline.
func (s *Service) PaymentMethodAttached(ctx context.Context, tenant, customer string) error {
	now := s.now()
	return s.db.InTx(ctx, func(tx *db.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE dunning_runs SET hard_declined = 0, next_step = $3, next_at = $4, updated_at = $4
			WHERE tenant_id = $1 AND customer_id = $2 AND status = 'active' AND hard_declined = 1`,
			tenant, customer, StepRetryNow, db.TimeOf(now))
		return err
	})
}

// --- disputes

// DisputeOpened records a chargeback of invoice's payment; when the
// tenant chose dispute_suspends, the subscription is suspended meanwhile
// (reason payment_disputed). Inquiries and early fraud warnings are not
// handled here (they withdraw nothing).
func (s *Service) DisputeOpened(ctx context.Context, tenant, dispute, invoice string) error {
	st, err := s.settingsOf(ctx, tenant)
	if err != nil {
		return err
	}
	tctx := tenantCtx(ctx, tenant)
	inv, err := s.billing.Invoice(tctx, tenant, invoice)
	if abacus.ErrorKind(err) == abacus.KindNotFound {
		return nil
	}
	if err != nil {
		return err
	}
	status := "open"
	if st.DisputeSuspends && inv.SubscriptionID != "" {
		status = "suspended"
	}
	now := s.now()
	var inserted bool
	err = s.db.InTx(ctx, func(tx *db.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO dunning_disputes (tenant_id, dispute_id, invoice_id, subscription_id, status, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $6) ON CONFLICT DO NOTHING`, tenant, dispute, invoice, inv.SubscriptionID, status, db.TimeOf(now))
		if err != nil {
			return fmt.Errorf("recording dispute %s: %w", dispute, err)
		}
		n, _ := res.RowsAffected()
		inserted = n == 1
		return nil
	})
	if err != nil || status != "suspended" {
		return err
	}
	_ = inserted // suspending again is a no-op: a crash before it is repaired by the redelivery
	_, err = s.subs.Suspend(tctx, inv.SubscriptionID, subscription.SuspendInput{Reason: subscription.ReasonPaymentDisputed, Invoice: invoice})
	if k := abacus.ErrorKind(err); k == abacus.KindConflict || k == abacus.KindNotFound {
		return nil // paused, canceled, ended: nothing to suspend
	}
	return err
}

// ClosedDispute is a dispute's end (dispute.closed).
type ClosedDispute struct {
	TenantID, DisputeID, InvoiceID, CustomerID string
	Won                                        bool
	Amount                                     decimal.Decimal
	Currency                                   string
}

// DisputeClosed ends a chargeback: won restores what it suspended; lost
// leaves the invoice unpaid or marks it uncollectible (dispute_lost) and
// records customer.chargeback_lost once, which risk uses to label the
// customer. A subscription it suspended stays suspended until the invoice
// is paid.
func (s *Service) DisputeClosed(ctx context.Context, d ClosedDispute) error {
	now := s.now()
	st, err := s.settingsOf(ctx, d.TenantID)
	if err != nil {
		return err
	}
	tctx := tenantCtx(ctx, d.TenantID)
	inv, err := s.billing.Invoice(tctx, d.TenantID, d.InvoiceID)
	if err != nil && abacus.ErrorKind(err) != abacus.KindNotFound {
		return err
	}
	status := "won"
	if !d.Won {
		status = "lost"
		if st.DisputeLost == "uncollectible" && inv.Status == "open" {
			if err := s.billing.MarkUncollectible(tctx, d.TenantID, d.InvoiceID); err != nil && abacus.ErrorKind(err) != abacus.KindConflict {
				return err
			}
		}
	}
	var sub string
	err = s.db.InTx(ctx, func(tx *db.Tx) error {
		var prev string
		err := tx.QueryRowContext(ctx, `SELECT status, subscription_id FROM dunning_disputes WHERE tenant_id = $1 AND dispute_id = $2`,
			d.TenantID, d.DisputeID).Scan(&prev, &sub)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			prev, sub = "", inv.SubscriptionID
			if status == "lost" {
				status = "closed_lost" // it suspended nothing: nothing to keep
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO dunning_disputes (tenant_id, dispute_id, invoice_id, subscription_id, status, created_at, updated_at)
				VALUES ($1, $2, $3, $4, $5, $6, $6)`, d.TenantID, d.DisputeID, d.InvoiceID, sub, status, db.TimeOf(now)); err != nil {
				return err
			}
		case err != nil:
			return err
		case prev == "won" || prev == "lost" || prev == "settled":
			return nil // closed before
		default:
			next := status
			if status == "lost" && prev == "open" {
				next = "closed_lost" // it suspended nothing: nothing to keep
			}
			if _, err := tx.ExecContext(ctx, `UPDATE dunning_disputes SET status = $3, updated_at = $4 WHERE tenant_id = $1 AND dispute_id = $2`,
				d.TenantID, d.DisputeID, next, db.TimeOf(now)); err != nil {
				return err
			}
		}
		if d.Won {
			return nil
		}
		action := "unpaid"
		if st.DisputeLost == "uncollectible" {
			action = "uncollectible"
		}
		_, err = CustomerChargebackLost.Record(ctx, tx, d.TenantID, d.CustomerID, now, ChargebackLost{CustomerID: d.CustomerID,
			InvoiceID: d.InvoiceID, DisputeID: d.DisputeID, SubscriptionID: sub, Amount: d.Amount, Currency: d.Currency, InvoiceAction: action})
		return err
	})
	if err != nil || !d.Won {
		return err
	}
	return s.restore(ctx, d.TenantID, sub, "dispute_won")
}

// ListRuns returns a page of the tenant's dunning runs by id. Errors:
// "invalid_status" (query.status).
func (s *Service) ListRuns(ctx context.Context, f RunFilter) (abacus.List[Run], error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return abacus.List[Run]{}, err
	}
	switch f.Status {
	case "", StatusScheduled, StatusActive, StatusRecovered, StatusExhausted, StatusClosed:
	default:
		return abacus.List[Run]{}, abacus.Invalid("invalid_status", "status %q is not one of scheduled, active, recovered, exhausted, closed", f.Status).
			WithField("query.status", "must be scheduled, active, recovered, exhausted or closed")
	}
	limit := f.Limit
	if limit <= 0 || limit > 100 {
		limit = 20
	}
	q := `SELECT ` + runCols + ` FROM dunning_runs WHERE tenant_id = $1 AND id > $2`
	args := []any{tenant, f.Cursor}
	for _, c := range []struct{ col, v string }{{"invoice_id", f.InvoiceID}, {"customer_id", f.CustomerID}, {"status", f.Status}} {
		if c.v != "" {
			args = append(args, c.v)
			q += fmt.Sprintf(` AND %s = $%d`, c.col, len(args))
		}
	}
	q += fmt.Sprintf(` ORDER BY id LIMIT %d`, limit+1)
	runs, err := queryRuns(ctx, s.db, q, args...)
	if err != nil {
		return abacus.List[Run]{}, err
	}
	next := ""
	if len(runs) > limit {
		runs, next = runs[:limit], runs[limit-1].ID
	}
	return abacus.ListOf(runs, next), nil
}
