package payments

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
)

type scanner interface{ Scan(dest ...any) error }

// collect scans every row with scan.
func collect[T any](rows *sql.Rows, err error, what string, scan func(scanner) (T, error)) ([]T, error) {
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// --- payments ----------------------------------------------------------------

const paymentCols = `id, invoice_id, customer_id, provider, provider_reference, attempt, idempotency_key, status, amount, currency,
	amount_refunded, decline_code, decline_kind, failure_message, note, paid_at, created_at, updated_at`

func scanPayment(r scanner) (Payment, error) {
	var p Payment
	var status, amount, refunded, kind string
	var paid db.NullTime
	var created, updated db.Time
	if err := r.Scan(&p.ID, &p.InvoiceID, &p.CustomerID, &p.Provider, &p.ProviderReference, &p.Attempt, &p.key, &status, &amount,
		&p.Currency, &refunded, &p.DeclineCode, &kind, &p.FailureMessage, &p.Note, &paid, &created, &updated); err != nil {
		return p, err
	}
	p.Status, p.Amount, p.AmountRefunded, p.DeclineKind = Status(status), dec(amount), dec(refunded), DeclineKind(kind)
	p.PaidAt, p.CreatedAt, p.UpdatedAt = paid.Ptr(), created.Time, updated.Time
	return p, nil
}

func insertPayment(ctx context.Context, tx *db.Tx, tenant string, p Payment) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO payments (`+paymentCols+`, rank, tenant_id)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)`,
		p.ID, p.InvoiceID, p.CustomerID, p.Provider, p.ProviderReference, p.Attempt, p.key, string(p.Status), p.Amount.String(),
		p.Currency, p.AmountRefunded.String(), p.DeclineCode, string(p.DeclineKind), p.FailureMessage, p.Note,
		db.NullTimeOf(p.PaidAt), db.TimeOf(p.CreatedAt), db.TimeOf(p.UpdatedAt), p.Status.rank(), tenant)
	if err != nil {
		return fmt.Errorf("recording payment: %w", err)
	}
	return nil
}

func updatePayment(ctx context.Context, tx *db.Tx, tenant string, p Payment) error {
	_, err := tx.ExecContext(ctx, `UPDATE payments SET provider_reference = $3, status = $4, rank = $5, amount = $6, currency = $7,
		amount_refunded = $8, decline_code = $9, decline_kind = $10, failure_message = $11, paid_at = $12, updated_at = $13
		WHERE tenant_id = $1 AND id = $2`,
		tenant, p.ID, p.ProviderReference, string(p.Status), p.Status.rank(), p.Amount.String(), p.Currency, p.AmountRefunded.String(),
		p.DeclineCode, string(p.DeclineKind), p.FailureMessage, db.NullTimeOf(p.PaidAt), db.TimeOf(p.UpdatedAt))
	if err != nil {
		return fmt.Errorf("updating payment %s: %w", p.ID, err)
	}
	return nil
}

func findPayment(ctx context.Context, q db.Querier, lock, tenant, where string, args ...any) (Payment, bool, error) {
	p, err := scanPayment(q.QueryRowContext(ctx, `SELECT `+paymentCols+` FROM payments WHERE tenant_id = $1 AND `+where+lock,
		append([]any{tenant}, args...)...))
	if errors.Is(err, sql.ErrNoRows) {
		return p, false, nil
	}
	if err != nil {
		return p, false, fmt.Errorf("reading payment: %w", err)
	}
	return p, true, nil
}

// lockPaymentByReference runs on every gateway callback: its statement
// stays prepared (db.Tx.QueryPrepared).
func lockPaymentByReference(ctx context.Context, tx *db.Tx, tenant, provider, ref string) (Payment, bool, error) {
	rows, err := tx.QueryPrepared(ctx, `SELECT `+paymentCols+` FROM payments WHERE tenant_id = $1 AND provider = $2 AND provider_reference = $3`+
		tx.LockClause(" FOR UPDATE"), tenant, provider, ref)
	ps, err := collect(rows, err, "reading payment", scanPayment)
	if err != nil || len(ps) == 0 {
		return Payment{}, false, err
	}
	return ps[0], true, nil
}

func lockPaymentByAttempt(ctx context.Context, tx *db.Tx, tenant, invoice string, attempt int) (Payment, bool, error) {
	return findPayment(ctx, tx, tx.LockClause(" FOR UPDATE"), tenant, `invoice_id = $2 AND attempt = $3`, invoice, attempt)
}

func loadPayment(ctx context.Context, q db.Querier, tenant, id string) (Payment, error) {
	p, ok, err := findPayment(ctx, q, "", tenant, `id = $2`, id)
	if err == nil && !ok {
		err = abacus.NotFound("payment", id)
	}
	return p, err
}

func invoicePayments(ctx context.Context, q db.Querier, tenant, invoice string) ([]Payment, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+paymentCols+` FROM payments WHERE tenant_id = $1 AND invoice_id = $2 ORDER BY id`, tenant, invoice)
	return collect(rows, err, "reading an invoice's payments", scanPayment)
}

// PaymentFilter narrows ListPayments.
type PaymentFilter struct {
	InvoiceID  string
	CustomerID string
	Status     Status
	Provider   string
	Limit      int
	Cursor     string
}

func listPayments(ctx context.Context, q db.Querier, tenant string, f PaymentFilter) ([]Payment, error) {
	query := `SELECT ` + paymentCols + ` FROM payments WHERE tenant_id = $1 AND id > $2`
	args := []any{tenant, f.Cursor}
	for _, c := range []struct{ col, v string }{{"invoice_id", f.InvoiceID}, {"customer_id", f.CustomerID},
		{"status", string(f.Status)}, {"provider", f.Provider}} {
		if c.v != "" {
			args = append(args, c.v)
			query += fmt.Sprintf(" AND %s = $%d", c.col, len(args))
		}
	}
	args = append(args, f.Limit+1)
	rows, err := q.QueryContext(ctx, query+fmt.Sprintf(" ORDER BY id LIMIT $%d", len(args)), args...)
	return collect(rows, err, "listing payments", scanPayment)
}

// pendingPayments are attempts recorded before their gateway call whose
// outcome was never recorded (a crash in between), oldest first.
func pendingPayments(ctx context.Context, q db.Querier, before time.Time, limit int) ([]struct {
	tenant string
	p      Payment
}, error) {
	rows, err := q.QueryContext(ctx, `SELECT tenant_id, `+paymentCols+` FROM payments WHERE status = 'pending' AND attempt > 0
		AND created_at < $1 ORDER BY created_at LIMIT $2`, db.TimeOf(before), limit)
	type row = struct {
		tenant string
		p      Payment
	}
	return collect(rows, err, "reading pending payments", func(r scanner) (row, error) {
		var out row
		var err error
		out.p, err = scanPayment(scanFunc(func(dest ...any) error { return r.Scan(append([]any{&out.tenant}, dest...)...) }))
		return out, err
	})
}

type scanFunc func(dest ...any) error

func (f scanFunc) Scan(dest ...any) error { return f(dest...) }

// --- disputes ----------------------------------------------------------------

const disputeCols = `id, payment_id, invoice_id, provider, provider_reference, kind, status, rank, outcome, amount, currency, reason,
	created_at, updated_at, customer_id, closed_at`

func scanDispute(r scanner) (Dispute, error) {
	var d Dispute
	var kind, amount string
	var created, updated db.Time
	var closed db.NullTime
	if err := r.Scan(&d.ID, &d.PaymentID, &d.InvoiceID, &d.Provider, &d.ProviderReference, &kind, &d.Status, &d.rank, &d.Outcome,
		&amount, &d.Currency, &d.Reason, &created, &updated, &d.CustomerID, &closed); err != nil {
		return d, err
	}
	d.Kind, d.Amount, d.CreatedAt, d.UpdatedAt, d.ClosedAt = DisputeKind(kind), dec(amount), created.Time, updated.Time, closed.Ptr()
	return d, nil
}

func lockDispute(ctx context.Context, tx *db.Tx, tenant, provider, ref string) (Dispute, bool, error) {
	d, err := scanDispute(tx.QueryRowContext(ctx, `SELECT `+disputeCols+` FROM payment_disputes WHERE tenant_id = $1 AND provider = $2
		AND provider_reference = $3`+tx.LockClause(" FOR UPDATE"), tenant, provider, ref))
	if errors.Is(err, sql.ErrNoRows) {
		return d, false, nil
	}
	if err != nil {
		return d, false, fmt.Errorf("reading dispute: %w", err)
	}
	return d, true, nil
}

func saveDispute(ctx context.Context, tx *db.Tx, tenant string, d Dispute, fresh bool) error {
	var err error
	if fresh {
		_, err = tx.ExecContext(ctx, `INSERT INTO payment_disputes (`+disputeCols+`, tenant_id)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)`,
			d.ID, d.PaymentID, d.InvoiceID, d.Provider, d.ProviderReference, string(d.Kind), d.Status, d.rank, d.Outcome,
			d.Amount.String(), d.Currency, d.Reason, db.TimeOf(d.CreatedAt), db.TimeOf(d.UpdatedAt), d.CustomerID,
			db.NullTimeOf(d.ClosedAt), tenant)
	} else {
		_, err = tx.ExecContext(ctx, `UPDATE payment_disputes SET status = $3, rank = $4, outcome = $5, amount = $6, reason = $7,
			updated_at = $8, closed_at = $9 WHERE tenant_id = $1 AND id = $2`,
			tenant, d.ID, d.Status, d.rank, d.Outcome, d.Amount.String(), d.Reason, db.TimeOf(d.UpdatedAt), db.NullTimeOf(d.ClosedAt))
	}
	if err != nil {
		return fmt.Errorf("saving dispute %s: %w", d.ProviderReference, err)
	}
	return nil
}

// DisputeFilter narrows ListDisputes.
type DisputeFilter struct {
	Status     string
	CustomerID string
	InvoiceID  string
	Limit      int
	Cursor     string
}

func listDisputes(ctx context.Context, q db.Querier, tenant string, f DisputeFilter) ([]Dispute, error) {
	query := `SELECT ` + disputeCols + ` FROM payment_disputes WHERE tenant_id = $1 AND id > $2`
	args := []any{tenant, f.Cursor}
	for _, c := range []struct{ col, v string }{{"status", f.Status}, {"customer_id", f.CustomerID}, {"invoice_id", f.InvoiceID}} {
		if c.v != "" {
			args = append(args, c.v)
			query += fmt.Sprintf(" AND %s = $%d", c.col, len(args))
		}
	}
	args = append(args, f.Limit+1)
	rows, err := q.QueryContext(ctx, query+fmt.Sprintf(" ORDER BY id LIMIT $%d", len(args)), args...)
	return collect(rows, err, "listing disputes", scanDispute)
}

func loadDispute(ctx context.Context, q db.Querier, tenant, id string) (Dispute, error) {
	d, err := scanDispute(q.QueryRowContext(ctx, `SELECT `+disputeCols+` FROM payment_disputes WHERE tenant_id = $1 AND id = $2`, tenant, id))
	if errors.Is(err, sql.ErrNoRows) {
		return d, abacus.NotFound("dispute", id)
	}
	if err != nil {
		return d, fmt.Errorf("reading dispute %s: %w", id, err)
	}
	return d, nil
}

func invoiceDisputes(ctx context.Context, q db.Querier, tenant, invoice string) ([]Dispute, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+disputeCols+` FROM payment_disputes WHERE tenant_id = $1 AND invoice_id = $2 ORDER BY id`,
		tenant, invoice)
	return collect(rows, err, "reading an invoice's disputes", scanDispute)
}

// --- gateway events ----------------------------------------------------------

// gatewayLanes is how many batches of gateway events may be in flight at
// once: PostgreSQL overlaps their commits (each waits for its WAL flush);
// SQLite has one writer, where a second batch would only wait.
func gatewayLanes(d *db.DB) int {
	if d.Engine() == db.Postgres {
		return maxLanes
	}
	return 1
}

// claimGatewayEvent records gateway event id as handled; fresh is false
// when it was handled before (a redelivery), and then nothing is done.
func claimGatewayEvent(ctx context.Context, tx *db.Tx, tenant, provider, id, typ string, at time.Time) (bool, error) {
	res, err := tx.ExecPrepared(ctx, `INSERT INTO payment_gateway_events (tenant_id, provider, id, type, received_at)
		VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`, tenant, provider, id, typ, db.TimeOf(at))
	if err != nil {
		return false, fmt.Errorf("recording gateway event %s: %w", id, err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// claimGatewayEvents records a batch of gateway events as handled in one
// statement; fresh[i] is false for an event handled before (a
// redelivery) and for a repeat of an earlier event of the same batch.
func claimGatewayEvents(ctx context.Context, tx *db.Tx, batch []*gwRequest, at time.Time) ([]bool, error) {
	type key struct{ tenant, provider, id string }
	first := make(map[key]int, len(batch))
	var b strings.Builder
	b.WriteString(`INSERT INTO payment_gateway_events (tenant_id, provider, id, type, received_at) VALUES `)
	args := make([]any, 0, 5*len(batch))
	for i, r := range batch {
		k := key{r.tenant, r.provider, r.ev.ID}
		if _, dup := first[k]; dup {
			continue
		}
		first[k] = i
		if len(args) > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(" + db.Placeholders(len(args)+1, 5) + ")")
		args = append(args, r.tenant, r.provider, r.ev.ID, r.ev.Type, db.TimeOf(at))
	}
	b.WriteString(` ON CONFLICT DO NOTHING RETURNING tenant_id, provider, id`)
	rows, err := tx.QueryContext(ctx, b.String(), args...)
	if err != nil {
		return nil, fmt.Errorf("recording %d gateway events: %w", len(first), err)
	}
	defer rows.Close()
	fresh := make([]bool, len(batch))
	for rows.Next() {
		var k key
		if err := rows.Scan(&k.tenant, &k.provider, &k.id); err != nil {
			return nil, fmt.Errorf("recording gateway events: %w", err)
		}
		if i, ok := first[k]; ok {
			fresh[i] = true
		}
	}
	return fresh, rows.Err()
}

// --- providers ---------------------------------------------------------------

type providerRow struct {
	secretKey, webhookSecret string // sealed
	keyHint, apiBase         string
	updatedAt                time.Time
}

func loadProviderRow(ctx context.Context, q db.Querier, tenant, provider string) (providerRow, bool, error) {
	var r providerRow
	var at db.Time
	err := q.QueryRowContext(ctx, `SELECT secret_key, webhook_secret, key_hint, api_base, updated_at FROM payment_providers
		WHERE tenant_id = $1 AND provider = $2`, tenant, provider).Scan(&r.secretKey, &r.webhookSecret, &r.keyHint, &r.apiBase, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return r, false, nil
	}
	if err != nil {
		return r, false, fmt.Errorf("reading payment provider %s: %w", provider, err)
	}
	r.updatedAt = at.Time
	return r, true, nil
}

func putProviderRow(ctx context.Context, tx *db.Tx, tenant, provider string, r providerRow) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO payment_providers (tenant_id, provider, secret_key, webhook_secret, key_hint, api_base, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (tenant_id, provider) DO UPDATE SET secret_key = excluded.secret_key,
		webhook_secret = excluded.webhook_secret, key_hint = excluded.key_hint, api_base = excluded.api_base, updated_at = excluded.updated_at`,
		tenant, provider, r.secretKey, r.webhookSecret, r.keyHint, r.apiBase, db.TimeOf(r.updatedAt))
	if err != nil {
		return fmt.Errorf("saving payment provider %s: %w", provider, err)
	}
	return nil
}

// --- customers ---------------------------------------------------------------

type customerRow struct {
	collection, providerCustomer, defaultMethod string
	updatedAt                                   time.Time
}

func loadCustomerRow(ctx context.Context, q db.Querier, tenant, customer string) (customerRow, bool, error) {
	var r customerRow
	var at db.Time
	err := q.QueryRowContext(ctx, `SELECT collection_method, provider_customer, default_method_id, updated_at FROM payment_customers
		WHERE tenant_id = $1 AND customer_id = $2`, tenant, customer).Scan(&r.collection, &r.providerCustomer, &r.defaultMethod, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return r, false, nil
	}
	if err != nil {
		return r, false, fmt.Errorf("reading customer billing %s: %w", customer, err)
	}
	r.updatedAt = at.Time
	return r, true, nil
}

func putCustomerRow(ctx context.Context, tx *db.Tx, tenant, customer string, r customerRow) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO payment_customers (tenant_id, customer_id, collection_method, provider_customer,
		default_method_id, updated_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant_id, customer_id) DO UPDATE SET
		collection_method = excluded.collection_method, provider_customer = excluded.provider_customer,
		default_method_id = excluded.default_method_id, updated_at = excluded.updated_at`,
		tenant, customer, r.collection, r.providerCustomer, r.defaultMethod, db.TimeOf(r.updatedAt))
	if err != nil {
		return fmt.Errorf("saving customer billing %s: %w", customer, err)
	}
	return nil
}

// --- payment methods ---------------------------------------------------------

const methodCols = `id, customer_id, provider, provider_reference, brand, last4, exp_month, exp_year, status, created_at, updated_at`

func scanMethod(r scanner) (PaymentMethod, error) {
	var m PaymentMethod
	var created, updated db.Time
	err := r.Scan(&m.ID, &m.CustomerID, &m.Provider, &m.ProviderReference, &m.Brand, &m.Last4, &m.ExpMonth, &m.ExpYear, &m.Status,
		&created, &updated)
	m.CreatedAt, m.UpdatedAt = created.Time, updated.Time
	return m, err
}

func lockMethodByReference(ctx context.Context, tx *db.Tx, tenant, provider, ref string) (PaymentMethod, bool, error) {
	m, err := scanMethod(tx.QueryRowContext(ctx, `SELECT `+methodCols+` FROM payment_methods WHERE tenant_id = $1 AND provider = $2
		AND provider_reference = $3`+tx.LockClause(" FOR UPDATE"), tenant, provider, ref))
	if errors.Is(err, sql.ErrNoRows) {
		return m, false, nil
	}
	if err != nil {
		return m, false, fmt.Errorf("reading payment method: %w", err)
	}
	return m, true, nil
}

func loadMethod(ctx context.Context, q db.Querier, tenant, id string) (PaymentMethod, bool, error) {
	m, err := scanMethod(q.QueryRowContext(ctx, `SELECT `+methodCols+` FROM payment_methods WHERE tenant_id = $1 AND id = $2`, tenant, id))
	if errors.Is(err, sql.ErrNoRows) {
		return m, false, nil
	}
	if err != nil {
		return m, false, fmt.Errorf("reading payment method %s: %w", id, err)
	}
	return m, true, nil
}

func saveMethod(ctx context.Context, tx *db.Tx, tenant string, m PaymentMethod, fresh bool) error {
	var err error
	if fresh {
		_, err = tx.ExecContext(ctx, `INSERT INTO payment_methods (`+methodCols+`, tenant_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
			m.ID, m.CustomerID, m.Provider, m.ProviderReference, m.Brand, m.Last4, m.ExpMonth, m.ExpYear, m.Status,
			db.TimeOf(m.CreatedAt), db.TimeOf(m.UpdatedAt), tenant)
	} else {
		// A new expiry (the card was renewed) is notified again when it
		// nears: once per card and expiry.
		_, err = tx.ExecContext(ctx, `UPDATE payment_methods SET brand = $3, last4 = $4, status = $7, updated_at = $8,
			expiry_notified_at = CASE WHEN exp_month = $5 AND exp_year = $6 THEN expiry_notified_at END, exp_month = $5, exp_year = $6
			WHERE tenant_id = $1 AND id = $2`, tenant, m.ID, m.Brand, m.Last4, m.ExpMonth, m.ExpYear, m.Status, db.TimeOf(m.UpdatedAt))
	}
	if err != nil {
		return fmt.Errorf("saving payment method: %w", err)
	}
	return nil
}

func customerMethods(ctx context.Context, q db.Querier, tenant, customer string) ([]PaymentMethod, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+methodCols+` FROM payment_methods WHERE tenant_id = $1 AND customer_id = $2 ORDER BY id`,
		tenant, customer)
	return collect(rows, err, "reading payment methods", scanMethod)
}

// expiringMethods are active methods expiring in (year, month) that no
// expiry notice was recorded for, with their tenants.
func expiringMethods(ctx context.Context, q db.Querier, year, month, limit int) ([]struct {
	tenant string
	m      PaymentMethod
}, error) {
	type row = struct {
		tenant string
		m      PaymentMethod
	}
	rows, err := q.QueryContext(ctx, `SELECT tenant_id, `+methodCols+` FROM payment_methods WHERE status = 'active' AND exp_year = $1
		AND exp_month = $2 AND expiry_notified_at IS NULL ORDER BY id LIMIT $3`, year, month, limit)
	return collect(rows, err, "reading expiring payment methods", func(r scanner) (row, error) {
		var out row
		var err error
		out.m, err = scanMethod(scanFunc(func(dest ...any) error { return r.Scan(append([]any{&out.tenant}, dest...)...) }))
		return out, err
	})
}

func markExpiryNotified(ctx context.Context, tx *db.Tx, tenant, id string, at time.Time) error {
	_, err := tx.ExecContext(ctx, `UPDATE payment_methods SET expiry_notified_at = $3 WHERE tenant_id = $1 AND id = $2`, tenant, id, db.TimeOf(at))
	return err
}

// --- parked events -----------------------------------------------------------

func parkEvent(ctx context.Context, tx *db.Tx, tenant, provider, id, ref, body string, at time.Time) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO payment_parked_events (tenant_id, provider, event_id, payment_reference, body, received_at)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING`, tenant, provider, id, ref, body, db.TimeOf(at))
	if err != nil {
		return fmt.Errorf("parking gateway event %s: %w", id, err)
	}
	return nil
}

// takeParked returns and deletes the events parked for payment ref,
// oldest first.
func takeParked(ctx context.Context, tx *db.Tx, tenant, provider, ref string) ([]string, error) {
	rows, err := tx.QueryContext(ctx, `SELECT body FROM payment_parked_events WHERE tenant_id = $1 AND provider = $2 AND payment_reference = $3
		ORDER BY received_at, event_id`, tenant, provider, ref)
	bodies, err := collect(rows, err, "reading parked gateway events", func(r scanner) (string, error) {
		var b string
		return b, r.Scan(&b)
	})
	if err != nil || len(bodies) == 0 {
		return nil, err
	}
	_, err = tx.ExecContext(ctx, `DELETE FROM payment_parked_events WHERE tenant_id = $1 AND provider = $2 AND payment_reference = $3`,
		tenant, provider, ref)
	return bodies, err
}
