package dunning

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/abacusbilling/abacus/internal/db"
)

// Run statuses.
const (
	StatusScheduled = "scheduled" // a send_invoice invoice not due yet: it becomes active when its due date passes unpaid
	StatusActive    = "active"    // retries and reminders are scheduled
	StatusRecovered = "recovered" // the invoice was paid
	StatusExhausted = "exhausted" // the final action was taken; paying still restores access
	StatusClosed    = "closed"    // the invoice was voided or marked uncollectible by other means
)

// Run is the dunning of one overdue invoice.
type Run struct {
	ID             string          `json:"id"`
	InvoiceID      string          `json:"invoice_id"`
	InvoiceNumber  string          `json:"invoice_number"`
	CustomerID     string          `json:"customer_id"`
	SubscriptionID string          `json:"subscription_id"`
	Amount         decimal.Decimal `json:"amount"`
	Currency       string          `json:"currency"`
	Status         string          `json:"status" enum:"scheduled,active,recovered,exhausted,closed"`
	// CollectionMethod is how the invoice is paid: charge_automatically
	// runs retry the charge; send_invoice runs remind with the pay link.
	CollectionMethod string      `json:"collection_method" enum:"charge_automatically,send_invoice"`
	Policy           RetryPolicy `json:"policy" doc:"the schedule the run follows (the settings when it started)"`
	FirstFailedAt    time.Time   `json:"first_failed_at" doc:"when the invoice became overdue: the first failed charge, or the due date of a send_invoice invoice"`
	Attempts         int         `json:"attempts"`
	StepIndex        int         `json:"-"`
	NextStep         string      `json:"next_step,omitempty" enum:"reminder,retry,retry_now,final_action"`
	NextAt           *time.Time  `json:"next_at,omitempty"`
	HardDeclined     bool        `json:"hard_declined"`
	DeclineCode      string      `json:"decline_code,omitempty"`
	FinalAction      string      `json:"final_action_taken,omitempty"`
	leaseUntil       *time.Time
	CreatedAt        time.Time  `json:"created_at"`
	UpdatedAt        time.Time  `json:"updated_at"`
	EndedAt          *time.Time `json:"ended_at,omitempty"`

	tenant string
}

// leased reports whether a runner holds r at now.
func (r Run) leased(now time.Time) bool { return r.leaseUntil != nil && !r.leaseUntil.Before(now) }

const runCols = `id, tenant_id, invoice_id, invoice_number, customer_id, subscription_id, amount, currency, status, policy,
	first_failed_at, attempts, step_index, next_step, next_at, hard_declined, decline_code, final_action, created_at, updated_at, ended_at,
	collection_method, lease_until`

func scanRun(r interface{ Scan(...any) error }) (Run, error) {
	var run Run
	var amount, policy string
	var hard int
	var first, created, updated db.Time
	var next, ended, lease db.NullTime
	if err := r.Scan(&run.ID, &run.tenant, &run.InvoiceID, &run.InvoiceNumber, &run.CustomerID, &run.SubscriptionID, &amount,
		&run.Currency, &run.Status, &policy, &first, &run.Attempts, &run.StepIndex, &run.NextStep, &next, &hard, &run.DeclineCode,
		&run.FinalAction, &created, &updated, &ended, &run.CollectionMethod, &lease); err != nil {
		return run, err
	}
	var err error
	if run.Amount, err = decimal.NewFromString(amount); err != nil {
		return run, fmt.Errorf("decoding the amount of %s: %w", run.ID, err)
	}
	if err := json.Unmarshal([]byte(policy), &run.Policy); err != nil {
		return run, fmt.Errorf("decoding the policy of %s: %w", run.ID, err)
	}
	run.FirstFailedAt, run.CreatedAt, run.UpdatedAt = first.Time, created.Time, updated.Time
	run.NextAt, run.EndedAt, run.HardDeclined, run.leaseUntil = next.Ptr(), ended.Ptr(), hard != 0, lease.Ptr()
	return run, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// insertRun inserts r unless the invoice has a run already; it reports
// whether it did.
func insertRun(ctx context.Context, tx *db.Tx, r Run) (bool, error) {
	policy, err := json.Marshal(r.Policy)
	if err != nil {
		return false, err
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO dunning_runs (`+runCols+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, NULL)
		ON CONFLICT (tenant_id, invoice_id) DO NOTHING`,
		r.ID, r.tenant, r.InvoiceID, r.InvoiceNumber, r.CustomerID, r.SubscriptionID, r.Amount.String(), r.Currency, r.Status,
		string(policy), db.TimeOf(r.FirstFailedAt), r.Attempts, r.StepIndex, r.NextStep, db.NullTimeOf(r.NextAt),
		boolInt(r.HardDeclined), r.DeclineCode, r.FinalAction, db.TimeOf(r.CreatedAt), db.TimeOf(r.UpdatedAt), db.NullTimeOf(r.EndedAt),
		r.CollectionMethod)
	if err != nil {
		return false, fmt.Errorf("inserting the dunning run of %s: %w", r.InvoiceID, err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// saveRun writes r's progress; with owner set only while r is leased to
// owner (the lease is released). It reports whether it wrote.
func saveRun(ctx context.Context, tx *db.Tx, r Run, owner string) (bool, error) {
	q := `UPDATE dunning_runs SET status = $3, attempts = $4, step_index = $5, next_step = $6, next_at = $7, hard_declined = $8,
		decline_code = $9, final_action = $10, updated_at = $11, ended_at = $12, lease_owner = NULL, lease_until = NULL
		WHERE tenant_id = $1 AND id = $2`
	args := []any{r.tenant, r.ID, r.Status, r.Attempts, r.StepIndex, r.NextStep, db.NullTimeOf(r.NextAt), boolInt(r.HardDeclined),
		r.DeclineCode, r.FinalAction, db.TimeOf(r.UpdatedAt), db.NullTimeOf(r.EndedAt)}
	exec := tx.ExecContext
	if owner != "" { // a pass: the same statement for every run, kept prepared
		q += ` AND lease_owner = $13`
		args = append(args, owner)
		exec = tx.ExecPrepared
	}
	res, err := exec(ctx, q, args...)
	if err != nil {
		return false, fmt.Errorf("saving dunning run %s: %w", r.ID, err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// runOf returns the run of invoice, or nil.
func runOf(ctx context.Context, q db.Querier, tenant, invoice string) (*Run, error) {
	r, err := scanRun(q.QueryRowContext(ctx, `SELECT `+runCols+` FROM dunning_runs WHERE tenant_id = $1 AND invoice_id = $2`, tenant, invoice))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the dunning run of %s: %w", invoice, err)
	}
	return &r, nil
}

// deleteRun removes a run that never started (scheduled).
func deleteRun(ctx context.Context, tx *db.Tx, tenant, id string) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM dunning_runs WHERE tenant_id = $1 AND id = $2 AND status = 'scheduled'`, tenant, id); err != nil {
		return fmt.Errorf("dropping dunning run %s: %w", id, err)
	}
	return nil
}

func queryRuns(ctx context.Context, q db.Querier, query string, args ...any) ([]Run, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("reading dunning runs: %w", err)
	}
	defer rows.Close()
	var out []Run
	for rows.Next() {
		r, err := scanRun(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// claim leases up to n runs due at now to owner until until, skipping runs
// another runner holds; concurrent claimers get disjoint runs.
func claim(ctx context.Context, d *db.DB, now, until time.Time, owner string, n int) ([]Run, error) {
	var out []Run
	err := d.InTx(ctx, func(tx *db.Tx) error {
		q := `SELECT ` + runCols + ` FROM dunning_runs WHERE next_at IS NOT NULL AND next_at <= $1
			AND (lease_until IS NULL OR lease_until < $1) ORDER BY next_at LIMIT ` + fmt.Sprint(n) + tx.LockClause(` FOR UPDATE SKIP LOCKED`)
		// ORDER BY next_at alone: the index dunning_runs_due gives the
		// first n in order; a tie-break on id made every claim read and
		// sort all the due runs (a pass over N runs was O(N²)).
		runs, err := queryRuns(ctx, tx, q, db.TimeOf(now))
		if err != nil || len(runs) == 0 {
			out = nil
			return err
		}
		args := []any{owner, db.TimeOf(until)}
		for _, r := range runs {
			args = append(args, r.ID)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE dunning_runs SET lease_owner = $1, lease_until = $2 WHERE id IN (`+
			db.Placeholders(3, len(runs))+`)`, args...); err != nil {
			return fmt.Errorf("leasing dunning runs: %w", err)
		}
		out = runs
		return nil
	})
	return out, err
}

// blocking reports whether subscription sub of tenant still has an
// invoice that keeps it from being restored: a run active or exhausted,
// or a dispute that suspended it and is not settled.
func blocking(ctx context.Context, q db.Querier, tenant, sub string) (bool, error) {
	var n int
	err := q.QueryRowContext(ctx, `SELECT
		(SELECT count(*) FROM dunning_runs WHERE tenant_id = $1 AND subscription_id = $2 AND status IN ('active', 'exhausted')) +
		(SELECT count(*) FROM dunning_disputes WHERE tenant_id = $1 AND subscription_id = $2 AND status IN ('suspended', 'lost'))`,
		tenant, sub).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("reading what keeps %s suspended: %w", sub, err)
	}
	return n > 0, nil
}

// RunFilter selects runs for ListRuns.
type RunFilter struct {
	InvoiceID, CustomerID, Status string
	Limit                         int
	Cursor                        string
}

// saveLeased writes the progress of runs leased to owner, as saveRun does
// for each, and reports which it wrote (a run whose lease ran out is
// another runner's now). On PostgreSQL it is one statement for the whole
// batch (jsonb_to_recordset), not a round trip per run; on SQLite, where
// a statement is a function call, the prepared per-run update is as fast.
func saveLeased(ctx context.Context, tx *db.Tx, runs []Run, owner string) (map[string]bool, error) {
	kept := make(map[string]bool, len(runs))
	if tx.Engine() != db.Postgres {
		for _, r := range runs {
			ok, err := saveRun(ctx, tx, r, owner)
			if err != nil {
				return nil, err
			}
			kept[r.ID] = ok
		}
		return kept, nil
	}
	for start := 0; start < len(runs); start += 1000 {
		chunk := runs[start:min(start+1000, len(runs))]
		var b strings.Builder
		b.WriteByte('[')
		for i, r := range chunk {
			if i > 0 {
				b.WriteByte(',')
			}
			next, ended := "null", "null"
			if r.NextAt != nil {
				next = strconv.FormatInt(r.NextAt.UnixMicro(), 10)
			}
			if r.EndedAt != nil {
				ended = strconv.FormatInt(r.EndedAt.UnixMicro(), 10)
			}
			fmt.Fprintf(&b, `{"tenant_id":%s,"id":%s,"status":%s,"attempts":%d,"step_index":%d,"next_step":%s,"next_at":%s,`+
				`"hard_declined":%d,"decline_code":%s,"final_action":%s,"updated_at":%d,"ended_at":%s}`,
				jsonString(r.tenant), jsonString(r.ID), jsonString(r.Status), r.Attempts, r.StepIndex, jsonString(r.NextStep), next,
				boolInt(r.HardDeclined), jsonString(r.DeclineCode), jsonString(r.FinalAction), r.UpdatedAt.UnixMicro(), ended)
		}
		b.WriteByte(']')
		rows, err := tx.QueryContext(ctx, `UPDATE dunning_runs AS r SET status = v.status, attempts = v.attempts, step_index = v.step_index,
			next_step = v.next_step, next_at = v.next_at, hard_declined = v.hard_declined, decline_code = v.decline_code,
			final_action = v.final_action, updated_at = v.updated_at, ended_at = v.ended_at, lease_owner = NULL, lease_until = NULL
			FROM jsonb_to_recordset($1::jsonb) AS v(tenant_id text, id text, status text, attempts int, step_index int, next_step text,
				next_at bigint, hard_declined int, decline_code text, final_action text, updated_at bigint, ended_at bigint)
			WHERE r.tenant_id = v.tenant_id AND r.id = v.id AND r.lease_owner = $2 RETURNING r.id`, b.String(), owner)
		if err != nil {
			return nil, fmt.Errorf("saving %d dunning runs: %w", len(chunk), err)
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return nil, err
			}
			kept[id] = true
		}
		if err := rows.Close(); err != nil {
			return nil, err
		}
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("saving %d dunning runs: %w", len(chunk), err)
		}
	}
	return kept, nil
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
