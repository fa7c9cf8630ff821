package analytics

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/shopspring/decimal"

	"github.com/abacusbilling/abacus/internal/db"
)

// journal appends facts whose event id is new and returns those, in
// order (a redelivered or re-published event is already there: skipped).
func journal(ctx context.Context, tx *db.Tx, facts []Fact) ([]Fact, error) {
	once := make([]Fact, 0, len(facts))
	inBatch := make(map[string]bool, len(facts))
	for _, f := range facts {
		if !inBatch[f.EventID] { // the same event twice in one batch
			inBatch[f.EventID] = true
			once = append(once, f)
		}
	}
	if len(once) == 0 {
		return nil, nil
	}
	if tx.Engine() == db.Postgres {
		return journalPostgres(ctx, tx, once)
	}
	// SQLite: one query finds the ids already journaled, one multi-row
	// insert adds the rest (both in-process: no round trips to save).
	seen := map[string]bool{}
	for start := 0; start < len(once); start += 500 {
		chunk := once[start:min(start+500, len(once))]
		args := make([]any, len(chunk))
		for i, f := range chunk {
			args[i] = f.EventID
		}
		rows, err := tx.QueryContext(ctx, `SELECT event_id FROM analytics_events WHERE event_id IN (`+db.Placeholders(1, len(args))+`)`, args...)
		if err != nil {
			return nil, fmt.Errorf("reading the analytics journal: %w", err)
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return nil, err
			}
			seen[id] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	var fresh []Fact
	var rows [][]any
	for _, f := range once {
		if seen[f.EventID] {
			continue
		}
		fresh = append(fresh, f)
		rows = append(rows, []any{f.Tenant, f.EventID, f.Type, db.TimeOf(f.At), f.Customer, f.Ref, f.Currency, f.Amount.String(),
			f.Amount2.String(), f.Amount3.String(), f.Status, f.Detail})
	}
	if err := tx.InsertRows(ctx, `INSERT INTO analytics_events (`+journalCols+`)`, "", rows); err != nil {
		return nil, fmt.Errorf("journaling %d events: %w", len(rows), err)
	}
	return fresh, nil
}

// journalCols are the columns journal writes, in the order of Fact.
const journalCols = `tenant_id, event_id, type, at, customer_id, ref_id, currency, amount, amount2, amount3, status, detail`

// eachFact reads tenant's journal in order ("" = every tenant's).
func eachFact(ctx context.Context, q db.Querier, tenant string, fn func(Fact) error) (int, error) {
	query := `SELECT seq, tenant_id, event_id, type, at, customer_id, ref_id, currency, amount, amount2, amount3, status, detail
		FROM analytics_events`
	var args []any
	if tenant != "" {
		query += ` WHERE tenant_id = $1`
		args = append(args, tenant)
	}
	rows, err := q.QueryContext(ctx, query+` ORDER BY seq`, args...)
	if err != nil {
		return 0, fmt.Errorf("reading the analytics journal: %w", err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var f Fact
		var at db.Time
		var a1, a2, a3 string
		if err := rows.Scan(&f.Seq, &f.Tenant, &f.EventID, &f.Type, &at, &f.Customer, &f.Ref, &f.Currency, &a1, &a2, &a3, &f.Status, &f.Detail); err != nil {
			return n, err
		}
		f.At = at.UTC()
		if f.Amount, err = decimal.NewFromString(a1); err != nil {
			return n, fmt.Errorf("journal seq %d: %w", f.Seq, err)
		}
		if f.Amount2, err = decimal.NewFromString(a2); err != nil {
			return n, fmt.Errorf("journal seq %d: %w", f.Seq, err)
		}
		if f.Amount3, err = decimal.NewFromString(a3); err != nil {
			return n, fmt.Errorf("journal seq %d: %w", f.Seq, err)
		}
		if err := fn(f); err != nil {
			return n, err
		}
		n++
	}
	return n, rows.Err()
}

// txLoader reads stored rows inside the batch's transaction.
type txLoader struct {
	ctx context.Context
	tx  *db.Tx
}

func dec(s string) (decimal.Decimal, error) {
	d, err := decimal.NewFromString(s)
	if err != nil {
		return d, fmt.Errorf("stored decimal %q: %w", s, err)
	}
	return d, nil
}

func decs(ss ...*string) ([]decimal.Decimal, error) {
	out := make([]decimal.Decimal, len(ss))
	for i, s := range ss {
		d, err := dec(*s)
		if err != nil {
			return nil, err
		}
		out[i] = d
	}
	return out, nil
}

func (l txLoader) sub(k subKey) (subRow, bool, error) {
	var id string
	r, err := scanSub(l.tx.QueryRowContext(l.ctx, `SELECT `+subCols+` FROM analytics_subscriptions
		WHERE tenant_id = $1 AND subscription_id = $2`, k.tenant, k.id).Scan, &id)
	if errors.Is(err, sql.ErrNoRows) {
		return r, false, nil
	}
	if err != nil {
		return r, false, fmt.Errorf("reading analytics of subscription %s: %w", k.id, err)
	}
	return r, true, nil
}

const subCols = `subscription_id, customer_id, currency, status, mrr, base_mrr, fee`

// scanSub reads the subCols of a row, the id into id.
func scanSub(scan func(...any) error, id *string) (subRow, error) {
	var r subRow
	var m, b, f string
	if err := scan(id, &r.customer, &r.currency, &r.status, &m, &b, &f); err != nil {
		return r, err
	}
	ds, err := decs(&m, &b, &f)
	if err != nil {
		return r, err
	}
	r.mrr, r.base, r.fee = ds[0], ds[1], ds[2]
	return r, nil
}

func (l txLoader) subsOf(k tcKey) (map[string]subRow, error) {
	rows, err := l.tx.QueryContext(l.ctx, `SELECT `+subCols+` FROM analytics_subscriptions WHERE tenant_id = $1 AND customer_id = $2`,
		k.tenant, k.customer)
	if err != nil {
		return nil, fmt.Errorf("reading analytics of the subscriptions of %s: %w", k.customer, err)
	}
	defer rows.Close()
	out := map[string]subRow{}
	for rows.Next() {
		var id string
		r, err := scanSub(rows.Scan, &id)
		if err != nil {
			return nil, err
		}
		out[id] = r
	}
	return out, rows.Err()
}

const redCols = `redemption_id, customer_id, subscription_id, currency, percent_off, amount_off, invoices_left`

// scanRed reads the redCols of a row, the id into id.
func scanRed(scan func(...any) error, id *string) (redRow, error) {
	var r redRow
	var pct, amt string
	if err := scan(id, &r.customer, &r.subscription, &r.currency, &pct, &amt, &r.left); err != nil {
		return r, err
	}
	ds, err := decs(&pct, &amt)
	if err != nil {
		return r, err
	}
	r.percent, r.amount = ds[0], ds[1]
	return r, nil
}

func (l txLoader) redemptions(k tcKey) (map[string]redRow, error) {
	rows, err := l.tx.QueryContext(l.ctx, `SELECT `+redCols+` FROM analytics_redemptions WHERE tenant_id = $1 AND customer_id = $2`,
		k.tenant, k.customer)
	if err != nil {
		return nil, fmt.Errorf("reading the redemptions of %s: %w", k.customer, err)
	}
	defer rows.Close()
	out := map[string]redRow{}
	for rows.Next() {
		var id string
		r, err := scanRed(rows.Scan, &id)
		if err != nil {
			return nil, err
		}
		out[id] = r
	}
	return out, rows.Err()
}

func (l txLoader) customer(k custKey) (custRow, bool, error) {
	var r custRow
	var mrr, start, col, ref string
	var ever int
	err := l.tx.QueryRowContext(l.ctx, `SELECT mrr, day, day_start_mrr, ever_paid, collected, refunded FROM analytics_customers
		WHERE tenant_id = $1 AND customer_id = $2 AND currency = $3`, k.tenant, k.customer, k.currency).Scan(&mrr, &r.day, &start, &ever, &col, &ref)
	if errors.Is(err, sql.ErrNoRows) {
		return r, false, nil
	}
	if err != nil {
		return r, false, fmt.Errorf("reading analytics of customer %s: %w", k.customer, err)
	}
	d, err := decs(&mrr, &start, &col, &ref)
	if err != nil {
		return r, false, err
	}
	r.mrr, r.dayStart, r.collected, r.refunded, r.ever = d[0], d[1], d[2], d[3], ever == 1
	return r, true, nil
}

const dayCols = `new_mrr, expansion, contraction, churn, reactivation, new_customers, reactivated_customers, churned_customers,
	trials_started, trials_converted, trials_lapsed, invoiced, collected, refunded, outstanding, usage_invoiced`

// scanDay reads the dayCols of a row.
func scanDay(scan func(...any) error, extra ...any) (dayRow, error) {
	var r dayRow
	var s [10]string
	dest := append(extra, &s[0], &s[1], &s[2], &s[3], &s[4], &r.newCustomers, &r.reactivated, &r.churned,
		&r.trialsStarted, &r.trialsConverted, &r.trialsLapsed, &s[5], &s[6], &s[7], &s[8], &s[9])
	if err := scan(dest...); err != nil {
		return r, err
	}
	d, err := decs(&s[0], &s[1], &s[2], &s[3], &s[4], &s[5], &s[6], &s[7], &s[8], &s[9])
	if err != nil {
		return r, err
	}
	r.newMRR, r.expansion, r.contraction, r.churn, r.reactivation = d[0], d[1], d[2], d[3], d[4]
	r.invoiced, r.collected, r.refunded, r.outstanding, r.usage = d[5], d[6], d[7], d[8], d[9]
	return r, nil
}

func (l txLoader) day(k dayKey) (dayRow, bool, error) {
	r, err := scanDay(l.tx.QueryRowContext(l.ctx, `SELECT `+dayCols+` FROM analytics_daily WHERE tenant_id = $1 AND currency = $2 AND day = $3`,
		k.tenant, k.currency, k.day).Scan)
	if errors.Is(err, sql.ErrNoRows) {
		return dayRow{}, false, nil
	}
	if err != nil {
		return r, false, fmt.Errorf("reading analytics of day %d: %w", k.day, err)
	}
	return r, true, nil
}

func (l txLoader) doc(k docKey) (docRow, bool, error) {
	var r docRow
	var amt string
	err := l.tx.QueryRowContext(l.ctx, `SELECT currency, amount FROM analytics_documents WHERE tenant_id = $1 AND id = $2`,
		k.tenant, k.id).Scan(&r.currency, &amt)
	if errors.Is(err, sql.ErrNoRows) {
		return r, false, nil
	}
	if err != nil {
		return r, false, fmt.Errorf("reading analytics of %s: %w", k.id, err)
	}
	r.amount, err = dec(amt)
	return r, err == nil, err
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// write stores every row p touched: upserts, and deletes for documents
// that no longer count.
func (p *projection) write(ctx context.Context, tx *db.Tx) error {
	var rows [][]any
	for k, s := range p.subs {
		rows = append(rows, []any{k.tenant, k.id, s.customer, s.currency, s.status, s.mrr.String(), s.base.String(), s.fee.String()})
	}
	if err := tx.InsertRows(ctx, `INSERT INTO analytics_subscriptions (tenant_id, `+subCols+`)`,
		` ON CONFLICT (tenant_id, subscription_id) DO UPDATE SET customer_id = excluded.customer_id, currency = excluded.currency,
		status = excluded.status, mrr = excluded.mrr, base_mrr = excluded.base_mrr, fee = excluded.fee`, rows); err != nil {
		return fmt.Errorf("writing analytics_subscriptions: %w", err)
	}
	if err := p.writeRedemptions(ctx, tx); err != nil {
		return err
	}
	rows = rows[:0]
	for k, c := range p.custs {
		rows = append(rows, []any{k.tenant, k.customer, k.currency, c.mrr.String(), c.day, c.dayStart.String(), b2i(c.ever),
			c.collected.String(), c.refunded.String()})
	}
	if err := tx.InsertRows(ctx, `INSERT INTO analytics_customers (tenant_id, customer_id, currency, mrr, day, day_start_mrr, ever_paid, collected, refunded)`,
		` ON CONFLICT (tenant_id, customer_id, currency) DO UPDATE SET mrr = excluded.mrr, day = excluded.day,
		day_start_mrr = excluded.day_start_mrr, ever_paid = excluded.ever_paid, collected = excluded.collected, refunded = excluded.refunded`, rows); err != nil {
		return fmt.Errorf("writing analytics_customers: %w", err)
	}
	rows = rows[:0]
	for k, m := range p.custDays {
		rows = append(rows, []any{k.tenant, k.currency, k.customer, k.day, m.String()})
	}
	if err := tx.InsertRows(ctx, `INSERT INTO analytics_customer_days (tenant_id, currency, customer_id, day, mrr)`,
		` ON CONFLICT (tenant_id, currency, customer_id, day) DO UPDATE SET mrr = excluded.mrr`, rows); err != nil {
		return fmt.Errorf("writing analytics_customer_days: %w", err)
	}
	rows = rows[:0]
	for k, d := range p.days {
		rows = append(rows, []any{k.tenant, k.currency, k.day, d.newMRR.String(), d.expansion.String(), d.contraction.String(),
			d.churn.String(), d.reactivation.String(), d.newCustomers, d.reactivated, d.churned, d.trialsStarted, d.trialsConverted,
			d.trialsLapsed, d.invoiced.String(), d.collected.String(), d.refunded.String(), d.outstanding.String(), d.usage.String()})
	}
	if err := tx.InsertRows(ctx, `INSERT INTO analytics_daily (tenant_id, currency, day, `+dayCols+`)`,
		` ON CONFLICT (tenant_id, currency, day) DO UPDATE SET new_mrr = excluded.new_mrr, expansion = excluded.expansion,
		contraction = excluded.contraction, churn = excluded.churn, reactivation = excluded.reactivation,
		new_customers = excluded.new_customers, reactivated_customers = excluded.reactivated_customers,
		churned_customers = excluded.churned_customers, trials_started = excluded.trials_started,
		trials_converted = excluded.trials_converted, trials_lapsed = excluded.trials_lapsed, invoiced = excluded.invoiced,
		collected = excluded.collected, refunded = excluded.refunded, outstanding = excluded.outstanding,
		usage_invoiced = excluded.usage_invoiced`, rows); err != nil {
		return fmt.Errorf("writing analytics_daily: %w", err)
	}
	if err := p.writeRunning(ctx, tx); err != nil {
		return err
	}
	rows = rows[:0]
	gone := map[string][]string{}
	for k, d := range p.docs {
		if d == nil {
			// Deleted only if stored: an invoice finalized and paid in
			// the same batch (most of a period close) never was.
			if p.docsStored[k] {
				gone[k.tenant] = append(gone[k.tenant], k.id)
			}
			continue
		}
		rows = append(rows, []any{k.tenant, k.id, d.currency, d.amount.String()})
	}
	if err := deleteKeys(ctx, tx, "analytics_documents", "id", gone); err != nil {
		return err
	}
	if err := tx.InsertRows(ctx, `INSERT INTO analytics_documents (tenant_id, id, currency, amount)`,
		` ON CONFLICT (tenant_id, id) DO UPDATE SET currency = excluded.currency, amount = excluded.amount`, rows); err != nil {
		return fmt.Errorf("writing analytics_documents: %w", err)
	}
	return nil
}

// derivedTables are the tables Rebuild empties and refills.
var derivedTables = []string{"analytics_subscriptions", "analytics_customers", "analytics_customer_days", "analytics_daily", "analytics_documents",
	"analytics_redemptions", "analytics_running"}

// writeRedemptions upserts the live redemptions p holds and deletes the
// ended ones.
func (p *projection) writeRedemptions(ctx context.Context, tx *db.Tx) error {
	var rows [][]any
	gone := map[string][]string{}
	for k, r := range p.reds {
		if r == nil {
			if !p.empty {
				gone[k.tenant] = append(gone[k.tenant], k.id)
			}
			continue
		}
		rows = append(rows, []any{k.tenant, k.id, r.customer, r.subscription, r.currency, r.percent.String(), r.amount.String(), r.left})
	}
	if err := deleteKeys(ctx, tx, "analytics_redemptions", "redemption_id", gone); err != nil {
		return err
	}
	if err := tx.InsertRows(ctx, `INSERT INTO analytics_redemptions (tenant_id, `+redCols+`)`,
		` ON CONFLICT (tenant_id, redemption_id) DO UPDATE SET invoices_left = excluded.invoices_left`, rows); err != nil {
		return fmt.Errorf("writing analytics_redemptions: %w", err)
	}
	return nil
}

func clearDerived(ctx context.Context, tx *db.Tx, tenant string) error {
	for _, t := range derivedTables {
		q := `DELETE FROM ` + t
		var args []any
		if tenant != "" {
			q += ` WHERE tenant_id = $1`
			args = append(args, tenant)
		}
		if _, err := tx.ExecContext(ctx, q, args...); err != nil {
			return fmt.Errorf("emptying %s: %w", t, err)
		}
	}
	return nil
}

// lookup reads the cols of tenant's rows of table whose key is one of ids.
func lookup(ctx context.Context, tx *db.Tx, table, key, cols, tenant string, ids []string) (*sql.Rows, error) {
	if tx.Engine() == db.Postgres {
		return lookupPostgres(ctx, tx, table, key, cols, tenant, ids)
	}
	args := make([]any, 0, 1+len(ids))
	args = append(args, tenant)
	for _, id := range ids {
		args = append(args, id)
	}
	return tx.QueryContext(ctx, `SELECT `+cols+` FROM `+table+` WHERE tenant_id = $1 AND `+key+` IN (`+db.Placeholders(2, len(ids))+`)`, args...)
}

// deleteKeys deletes the rows of table whose (tenant_id, key) is one of
// keys: on PostgreSQL one statement per tenant, on SQLite one prepared
// statement per row (in-process, nothing to batch).
func deleteKeys(ctx context.Context, tx *db.Tx, table, key string, keys map[string][]string) error {
	for tenant, ids := range keys {
		if tx.Engine() == db.Postgres {
			if err := deletePostgres(ctx, tx, table, key, tenant, ids); err != nil {
				return fmt.Errorf("writing %s: %w", table, err)
			}
			continue
		}
		for _, id := range ids {
			if _, err := tx.ExecPrepared(ctx, `DELETE FROM `+table+` WHERE tenant_id = $1 AND `+key+` = $2`, tenant, id); err != nil {
				return fmt.Errorf("writing %s: %w", table, err)
			}
		}
	}
	return nil
}

// batchLoader answers the rows a batch's facts name from a few IN queries
// made up front; a key it did not fetch is read one by one.
type batchLoader struct {
	txLoader
	subs  map[subKey]*subRow // fetched keys; nil: none stored
	custs map[custKey]*custRow
	docs  map[docKey]*docRow
	reds  map[tcKey]map[string]redRow // fetched customers' live redemptions
}

// prefetch reads the stored rows facts will ask for.
func prefetch(ctx context.Context, tx *db.Tx, facts []Fact) (*batchLoader, error) {
	l := &batchLoader{txLoader: txLoader{ctx, tx}, subs: map[subKey]*subRow{}, custs: map[custKey]*custRow{}, docs: map[docKey]*docRow{},
		reds: map[tcKey]map[string]redRow{}}
	redIDs := map[string][]string{}
	subIDs, cusIDs, docIDs := map[string][]string{}, map[string][]string{}, map[string][]string{}
	for _, f := range facts {
		switch {
		case strings.HasPrefix(f.Type, "subscription."):
			if _, ok := l.subs[subKey{f.Tenant, f.Ref}]; !ok {
				l.subs[subKey{f.Tenant, f.Ref}] = nil
				subIDs[f.Tenant] = append(subIDs[f.Tenant], f.Ref)
			}
		case strings.HasPrefix(f.Type, "invoice."):
			if _, ok := l.docs[docKey{f.Tenant, f.Ref}]; !ok {
				l.docs[docKey{f.Tenant, f.Ref}] = nil
				docIDs[f.Tenant] = append(docIDs[f.Tenant], f.Ref)
			}
		default:
			for _, id := range []string{f.Ref, f.Detail} {
				if _, ok := l.docs[docKey{f.Tenant, id}]; !ok && id != "" {
					l.docs[docKey{f.Tenant, id}] = nil
					docIDs[f.Tenant] = append(docIDs[f.Tenant], id)
				}
			}
		}
		if _, ok := l.reds[tcKey{f.Tenant, f.Customer}]; !ok {
			l.reds[tcKey{f.Tenant, f.Customer}] = map[string]redRow{}
			redIDs[f.Tenant] = append(redIDs[f.Tenant], f.Customer)
		}
		if _, ok := l.custs[custKey{f.Tenant, f.Customer, f.Currency}]; !ok {
			l.custs[custKey{f.Tenant, f.Customer, f.Currency}] = nil
			cusIDs[f.Tenant] = append(cusIDs[f.Tenant], f.Customer)
		}
	}
	each := func(ids map[string][]string, table, key, cols string, scan func(tenant string, rows *sql.Rows) error) error {
		for tenant, all := range ids {
			for start := 0; start < len(all); start += 500 {
				rows, err := lookup(ctx, tx, table, key, cols, tenant, all[start:min(start+500, len(all))])
				if err != nil {
					return err
				}
				for rows.Next() {
					if err := scan(tenant, rows); err != nil {
						rows.Close()
						return err
					}
				}
				rows.Close()
				if err := rows.Err(); err != nil {
					return err
				}
			}
		}
		return nil
	}
	err := each(subIDs, "analytics_subscriptions", "subscription_id", subCols, func(tenant string, rows *sql.Rows) error {
		var id string
		r, err := scanSub(rows.Scan, &id)
		l.subs[subKey{tenant, id}] = &r
		return err
	})
	if err == nil {
		err = each(redIDs, "analytics_redemptions", "customer_id", redCols, func(tenant string, rows *sql.Rows) error {
			var id string
			r, err := scanRed(rows.Scan, &id)
			l.reds[tcKey{tenant, r.customer}][id] = r
			return err
		})
	}
	if err == nil {
		err = each(docIDs, "analytics_documents", "id", "id, currency, amount", func(tenant string, rows *sql.Rows) error {
			var id, a string
			var r docRow
			if err := rows.Scan(&id, &r.currency, &a); err != nil {
				return err
			}
			var err error
			r.amount, err = dec(a)
			l.docs[docKey{tenant, id}] = &r
			return err
		})
	}
	if err == nil {
		err = each(cusIDs, "analytics_customers", "customer_id", "customer_id, currency, mrr, day, day_start_mrr, ever_paid, collected, refunded", func(tenant string, rows *sql.Rows) error {
			var id, cur, m, st, col, ref string
			var r custRow
			var ever int
			if err := rows.Scan(&id, &cur, &m, &r.day, &st, &ever, &col, &ref); err != nil {
				return err
			}
			ds, err := decs(&m, &st, &col, &ref)
			if err != nil {
				return err
			}
			r.mrr, r.dayStart, r.collected, r.refunded, r.ever = ds[0], ds[1], ds[2], ds[3], ever == 1
			l.custs[custKey{tenant, id, cur}] = &r
			return nil
		})
	}
	if err != nil {
		return nil, fmt.Errorf("reading the analytics rows of a batch: %w", err)
	}
	return l, nil
}

func (l *batchLoader) sub(k subKey) (subRow, bool, error) {
	if r, ok := l.subs[k]; ok {
		if r == nil {
			return subRow{}, false, nil
		}
		return *r, true, nil
	}
	return l.txLoader.sub(k)
}

func (l *batchLoader) customer(k custKey) (custRow, bool, error) {
	if r, ok := l.custs[k]; ok {
		if r == nil {
			return custRow{}, false, nil
		}
		return *r, true, nil
	}
	return l.txLoader.customer(k)
}

func (l *batchLoader) doc(k docKey) (docRow, bool, error) {
	if r, ok := l.docs[k]; ok {
		if r == nil {
			return docRow{}, false, nil
		}
		return *r, true, nil
	}
	return l.txLoader.doc(k)
}

func (l *batchLoader) redemptions(k tcKey) (map[string]redRow, error) {
	if r, ok := l.reds[k]; ok {
		return r, nil
	}
	return l.txLoader.redemptions(k)
}
