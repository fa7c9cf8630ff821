package subscription

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/shopspring/decimal"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/period"
	"github.com/abacusbilling/abacus/internal/pricing"
)

const subCols = `id, tenant_id, customer_id, plan_id, version_id, status, quantity, overrides, timezone, interval_unit, interval_count,
	anchor, started_at, trial_end, ends_at, canceled_at, ended_at, paused_at, pending_version_id, pending_at, created_at, updated_at,
	suspended_at, access_until, suspend_reason`

func scanSub(r interface{ Scan(...any) error }) (Subscription, error) {
	var s Subscription
	var status, qty, overrides, unit string
	var pending, suspendReason sql.NullString
	var anchor, started, created, updated db.Time
	var trialEnd, endsAt, canceled, ended, paused, pendingAt, suspended, accessUntil db.NullTime
	if err := r.Scan(&s.ID, &s.tenant, &s.CustomerID, &s.PlanID, &s.VersionID, &status, &qty, &overrides, &s.Timezone, &unit,
		&s.BillingInterval.Count, &anchor, &started, &trialEnd, &endsAt, &canceled, &ended, &paused, &pending, &pendingAt,
		&created, &updated, &suspended, &accessUntil, &suspendReason); err != nil {
		return s, err
	}
	s.Status, s.BillingInterval.Unit = Status(status), period.Unit(unit)
	s.BillingAnchor, s.StartedAt, s.CreatedAt, s.UpdatedAt = anchor.Time, started.Time, created.Time, updated.Time
	s.TrialEnd, s.EndsAt, s.CanceledAt, s.EndedAt, s.PausedAt, s.PendingAt = trialEnd.Ptr(), endsAt.Ptr(), canceled.Ptr(), ended.Ptr(), paused.Ptr(), pendingAt.Ptr()
	s.PendingVersionID = pending.String
	s.SuspendedAt, s.AccessUntil, s.SuspendReason = suspended.Ptr(), accessUntil.Ptr(), suspendReason.String
	var err error
	if s.Quantity, err = decimal.NewFromString(qty); err != nil {
		return s, fmt.Errorf("decoding quantity of %s: %w", s.ID, err)
	}
	if err := json.Unmarshal([]byte(overrides), &s.Overrides); err != nil {
		return s, fmt.Errorf("decoding overrides of %s: %w", s.ID, err)
	}
	return s, nil
}

// load reads subscription id; lock takes a row lock on PostgreSQL (SQLite
// transactions already hold the write lock).
func load(ctx context.Context, q db.Querier, tenant, id string, lock bool) (Subscription, error) {
	query := `SELECT ` + subCols + ` FROM subscriptions WHERE tenant_id = $1 AND id = $2`
	if e, ok := q.(interface{ Engine() db.Engine }); ok && lock && e.Engine() == db.Postgres {
		query += ` FOR UPDATE`
	}
	s, err := scanSub(q.QueryRowContext(ctx, query, tenant, id))
	if errors.Is(err, sql.ErrNoRows) {
		return s, abacus.NotFound("subscription", id)
	}
	if err != nil {
		return s, fmt.Errorf("reading subscription %s: %w", id, err)
	}
	return s, nil
}

// nextAction is the earliest time Advance has work for s, or nil.
func nextAction(s Subscription) *time.Time {
	var next *time.Time
	consider := func(t *time.Time) {
		if t != nil && (next == nil || t.Before(*next)) {
			next = t
		}
	}
	if s.Status == Trialing {
		consider(s.TrialEnd)
	}
	if s.PendingVersionID != "" && s.Status != Ended {
		consider(s.PendingAt)
	}
	if s.Status == Canceled {
		consider(s.EndsAt)
	}
	return next
}

func nullStr(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func insertSub(ctx context.Context, tx *db.Tx, s Subscription) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO subscriptions (id, tenant_id, customer_id, plan_id, version_id, status, quantity, overrides,
		timezone, interval_unit, interval_count, anchor, started_at, trial_end, ends_at, canceled_at, ended_at, paused_at,
		pending_version_id, pending_at, next_action_at, created_at, updated_at, suspended_at, access_until, suspend_reason)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26)`,
		s.ID, s.tenant, s.CustomerID, s.PlanID, s.VersionID, string(s.Status), s.Quantity.String(), mustJSON(s.Overrides),
		s.Timezone, string(s.BillingInterval.Unit), s.BillingInterval.Count, db.TimeOf(s.BillingAnchor), db.TimeOf(s.StartedAt),
		db.NullTimeOf(s.TrialEnd), db.NullTimeOf(s.EndsAt), db.NullTimeOf(s.CanceledAt), db.NullTimeOf(s.EndedAt),
		db.NullTimeOf(s.PausedAt), nullStr(s.PendingVersionID), db.NullTimeOf(s.PendingAt), db.NullTimeOf(nextAction(s)),
		db.TimeOf(s.CreatedAt), db.TimeOf(s.UpdatedAt), db.NullTimeOf(s.SuspendedAt), db.NullTimeOf(s.AccessUntil), nullStr(s.SuspendReason))
	if err != nil {
		return fmt.Errorf("inserting subscription: %w", err)
	}
	return nil
}

func saveSub(ctx context.Context, tx *db.Tx, s Subscription) error {
	_, err := tx.ExecContext(ctx, `UPDATE subscriptions SET version_id = $3, status = $4, quantity = $5, overrides = $6,
		interval_unit = $7, interval_count = $8, anchor = $9, trial_end = $10, ends_at = $11, canceled_at = $12, ended_at = $13,
		paused_at = $14, pending_version_id = $15, pending_at = $16, next_action_at = $17, updated_at = $18,
		suspended_at = $19, access_until = $20, suspend_reason = $21
		WHERE tenant_id = $1 AND id = $2`,
		s.tenant, s.ID, s.VersionID, string(s.Status), s.Quantity.String(), mustJSON(s.Overrides),
		string(s.BillingInterval.Unit), s.BillingInterval.Count, db.TimeOf(s.BillingAnchor), db.NullTimeOf(s.TrialEnd),
		db.NullTimeOf(s.EndsAt), db.NullTimeOf(s.CanceledAt), db.NullTimeOf(s.EndedAt), db.NullTimeOf(s.PausedAt),
		nullStr(s.PendingVersionID), db.NullTimeOf(s.PendingAt), db.NullTimeOf(nextAction(s)), db.TimeOf(s.UpdatedAt),
		db.NullTimeOf(s.SuspendedAt), db.NullTimeOf(s.AccessUntil), nullStr(s.SuspendReason))
	if err != nil {
		return fmt.Errorf("saving subscription %s: %w", s.ID, err)
	}
	return nil
}

// Phase is a span of a subscription on one plan version and quantity.
// End is nil for the open phase. Paused phases are not billed.
type Phase struct {
	ID        string          `json:"id"`
	VersionID string          `json:"version_id"`
	Quantity  decimal.Decimal `json:"quantity"`
	Overrides []Override      `json:"price_overrides"`
	Paused    bool            `json:"paused"`
	Start     time.Time       `json:"start"`
	End       *time.Time      `json:"end,omitempty"`
}

func openPhase(ctx context.Context, tx *db.Tx, s Subscription, at time.Time, paused bool) error {
	p := 0
	if paused {
		p = 1
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO subscription_phases (id, tenant_id, subscription_id, version_id, quantity, overrides,
		paused, starts_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		abacus.NewID("sph"), s.tenant, s.ID, s.VersionID, s.Quantity.String(), mustJSON(s.Overrides), p, db.TimeOf(at))
	if err != nil {
		return fmt.Errorf("opening phase: %w", err)
	}
	return nil
}

// closePhase ends the open phase at at. A phase that would be empty (it
// started at at) is removed instead, so phases never have zero length.
func closePhase(ctx context.Context, tx *db.Tx, s Subscription, at time.Time) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM subscription_phases WHERE tenant_id = $1 AND subscription_id = $2 AND ends_at IS NULL AND starts_at >= $3`,
		s.tenant, s.ID, db.TimeOf(at)); err != nil {
		return fmt.Errorf("closing phase: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE subscription_phases SET ends_at = $3 WHERE tenant_id = $1 AND subscription_id = $2 AND ends_at IS NULL`,
		s.tenant, s.ID, db.TimeOf(at)); err != nil {
		return fmt.Errorf("closing phase: %w", err)
	}
	return nil
}

// splitPhase closes the open phase at at and opens one with s's current
// version, quantity and overrides.
func splitPhase(ctx context.Context, tx *db.Tx, s Subscription, at time.Time, paused bool) error {
	if err := closePhase(ctx, tx, s, at); err != nil {
		return err
	}
	return openPhase(ctx, tx, s, at, paused)
}

func loadPhases(ctx context.Context, q db.Querier, tenant, subID string) ([]Phase, error) {
	rows, err := q.QueryContext(ctx, `SELECT id, version_id, quantity, overrides, paused, starts_at, ends_at FROM subscription_phases
		WHERE tenant_id = $1 AND subscription_id = $2 ORDER BY starts_at, id`, tenant, subID)
	if err != nil {
		return nil, fmt.Errorf("reading phases: %w", err)
	}
	defer rows.Close()
	out := []Phase{}
	for rows.Next() {
		var p Phase
		var qty, ov string
		var paused int
		var start db.Time
		var end db.NullTime
		if err := rows.Scan(&p.ID, &p.VersionID, &qty, &ov, &paused, &start, &end); err != nil {
			return nil, err
		}
		p.Paused, p.Start, p.End = paused == 1, start.Time, end.Ptr()
		if p.Quantity, err = decimal.NewFromString(qty); err != nil {
			return nil, fmt.Errorf("decoding phase quantity: %w", err)
		}
		if err := json.Unmarshal([]byte(ov), &p.Overrides); err != nil {
			return nil, fmt.Errorf("decoding phase overrides: %w", err)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// Change is one entry of a subscription's history.
type Change struct {
	ID          string          `json:"id"`
	Type        string          `json:"type" doc:"created, trial_started, activated, plan_changed, quantity_changed, canceled, paused, resumed, ended, …"`
	FromStatus  Status          `json:"from_status"`
	ToStatus    Status          `json:"to_status"`
	EffectiveAt time.Time       `json:"effective_at"`
	Data        json.RawMessage `json:"data"`
	CreatedAt   time.Time       `json:"created_at"`
}

// record appends a history entry and emits "subscription.<typ>" through
// the outbox, both inside tx. It returns the change id.
func record(ctx context.Context, tx *db.Tx, s Subscription, typ string, from Status, at, now time.Time, data map[string]any) (string, error) {
	if data == nil {
		data = map[string]any{}
	}
	id := abacus.NewID("sch")
	body := mustJSON(data)
	if _, err := tx.ExecContext(ctx, `INSERT INTO subscription_changes (id, tenant_id, subscription_id, type, from_status, to_status,
		effective_at, data, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		id, s.tenant, s.ID, typ, string(from), string(s.Status), db.TimeOf(at), body, db.TimeOf(now)); err != nil {
		return "", fmt.Errorf("recording %s: %w", typ, err)
	}
	kind, err := changeKind(typ)
	if err != nil {
		return "", err
	}
	payload := Event{Subscription: s, Change: Change{ID: id, Type: typ, FromStatus: from, ToStatus: s.Status,
		EffectiveAt: at, Data: json.RawMessage(body), CreatedAt: now}}
	if _, err := kind.Record(ctx, tx, s.tenant, s.ID, now, payload); err != nil {
		return "", err
	}
	return id, nil
}

// Proration is a set of proration lines from one mid-period change,
// waiting for billing to put them on an invoice.
type Proration struct {
	ID          string         `json:"id"`
	ChangeID    string         `json:"change_id"`
	EffectiveAt time.Time      `json:"effective_at"`
	Lines       []pricing.Line `json:"lines"`
	InvoicedAt  *time.Time     `json:"invoiced_at,omitempty"`
}

func storeProration(ctx context.Context, tx *db.Tx, s Subscription, changeID string, at, now time.Time, lines []pricing.Line) error {
	if len(lines) == 0 {
		return nil
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO subscription_prorations (id, tenant_id, subscription_id, change_id, effective_at, lines, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, abacus.NewID("spr"), s.tenant, s.ID, changeID, db.TimeOf(at), mustJSON(lines), db.TimeOf(now))
	if err != nil {
		return fmt.Errorf("storing proration: %w", err)
	}
	return nil
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("subscription: marshalling %T: %v", v, err)) // only plain data types are marshalled
	}
	return string(b)
}

// currencyLocked refuses to change the currency of a customer with live
// subscriptions (a catalog.CurrencyGuard): they are billed in it.
func currencyLocked(ctx context.Context, tx *db.Tx, tenant, customerID, currency string) error {
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM subscriptions WHERE tenant_id = $1 AND customer_id = $2 AND status <> 'ended'`,
		tenant, customerID).Scan(&n); err != nil {
		return fmt.Errorf("counting subscriptions: %w", err)
	}
	if n > 0 {
		return abacus.Conflict("currency_locked", "the customer has %d live subscriptions in %s; end them before changing the currency", n, currency).
			WithField("currency", "cannot change while subscriptions are live")
	}
	return nil
}
