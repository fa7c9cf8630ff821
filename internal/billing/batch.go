package billing

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/catalog"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/outbox"
)

// The cycle worker bills a batch of cycles with a fixed number of
// statements whatever the batch size: it reads the batch's subscriptions,
// customers, prorations, redemptions and credit ledgers with one query
// each, prices and finalizes in memory, takes the invoice numbers of the
// whole batch with one counter update, and writes invoices, lines, credit
// entries, events and cursors as multi-row inserts. Per-invoice statements
// (about twelve) were most of the cost on both engines: statement parsing
// on SQLite, round trips and the numbering row lock on PostgreSQL.

// maxParams bounds the parameters of one multi-row statement (SQLite's
// limit is 32766; smaller statements also parse faster).
const maxParams = 8000

// insertRows writes rows (each with the same number of values) into the
// table and columns of head ("INSERT INTO t (a, b)") with one statement
// per chunk, followed by tail (e.g. an ON CONFLICT clause). SQLite gets
// plain ? placeholders: modernc binds numbered ?N slowly in big statements.
func insertRows(ctx context.Context, tx *db.Tx, head, tail string, rows [][]any) error {
	if len(rows) == 0 {
		return nil
	}
	cols := len(rows[0])
	per := max(1, maxParams/cols)
	for start := 0; start < len(rows); start += per {
		chunk := rows[start:min(start+per, len(rows))]
		var b strings.Builder
		b.Grow(len(head) + len(chunk)*cols*5)
		b.WriteString(head)
		b.WriteString(" VALUES ")
		args := make([]any, 0, len(chunk)*cols)
		n := 0
		for i, r := range chunk {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteByte('(')
			for j := range r {
				if j > 0 {
					b.WriteString(", ")
				}
				if tx.Engine() == db.SQLite {
					b.WriteByte('?')
				} else {
					n++
					b.WriteByte('$')
					b.WriteString(strconv.Itoa(n))
				}
			}
			b.WriteByte(')')
			args = append(args, r...)
		}
		b.WriteString(tail)
		if _, err := tx.ExecContext(ctx, b.String(), args...); err != nil {
			return err
		}
	}
	return nil
}

// batchRedemption is a redemption read for a batch with its uses so far.
type batchRedemption struct {
	activeRedemption
	used, limit int // limit 0: forever
}

// redemptionsOf reads the redemptions of customers ids (with their coupons
// and uses on non-void invoices) by customer, oldest first.
func redemptionsOf(ctx context.Context, q db.Querier, tenant string, ids []string) (map[string][]*batchRedemption, error) {
	out := map[string][]*batchRedemption{}
	args := []any{tenant}
	for _, id := range ids {
		args = append(args, id)
	}
	rows, err := q.QueryContext(ctx, `SELECT id, coupon_id, customer_id, subscription_id, created_at FROM coupon_redemptions
		WHERE tenant_id = $1 AND customer_id IN (`+placeholders(2, len(ids))+`) ORDER BY id`, args...)
	if err != nil {
		return nil, fmt.Errorf("reading redemptions: %w", err)
	}
	var all []*batchRedemption
	for rows.Next() {
		r := &batchRedemption{}
		var ca db.Time
		if err := rows.Scan(&r.ID, &r.CouponID, &r.CustomerID, &r.SubscriptionID, &ca); err != nil {
			rows.Close()
			return nil, err
		}
		r.CreatedAt = ca.Time
		all = append(all, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for _, r := range all {
		c, err := loadCoupon(ctx, q, tenant, r.CouponID)
		if err != nil {
			return nil, err
		}
		r.Coupon = c
		if c.Duration != Forever {
			if err := q.QueryRowContext(ctx, `SELECT COUNT(DISTINCT l.invoice_id) FROM invoice_lines l JOIN invoices i ON i.id = l.invoice_id
				WHERE l.redemption_id = $1 AND i.status <> 'void'`, r.ID).Scan(&r.used); err != nil {
				return nil, fmt.Errorf("counting coupon use: %w", err)
			}
			r.limit = 1
			if c.Duration == Repeating {
				r.limit = c.DurationPeriods
			}
		}
		out[r.CustomerID] = append(out[r.CustomerID], r)
	}
	return out, nil
}

// entriesOf reads the credit ledgers of customers ids by customer and
// currency ("cus|EUR"), oldest first.
func entriesOf(ctx context.Context, q db.Querier, tenant string, ids []string) (map[string][]CreditEntry, error) {
	args := []any{tenant}
	for _, id := range ids {
		args = append(args, id)
	}
	rows, err := q.QueryContext(ctx, `SELECT id, customer_id, currency, kind, amount, grant_id, expires_at, COALESCE(invoice_id, ''),
		COALESCE(credit_note_id, ''), description, created_at FROM credit_entries WHERE tenant_id = $1 AND customer_id IN (`+
		placeholders(2, len(ids))+`) ORDER BY id`, args...)
	if err != nil {
		return nil, fmt.Errorf("reading credit ledgers: %w", err)
	}
	defer rows.Close()
	out := map[string][]CreditEntry{}
	for rows.Next() {
		e, err := scanEntry(rows)
		if err != nil {
			return nil, err
		}
		k := e.CustomerID + "|" + e.Currency
		out[k] = append(out[k], e)
	}
	return out, rows.Err()
}

// billTenant bills the due cycles of one tenant inside tx (see the top of
// this file).
func (s *Service) billTenant(ctx context.Context, tx *db.Tx, tenant string, due []cursorRow, now time.Time) (created, finalized int, err error) {
	tb, err := s.loadTenant(ctx, tx, tenant)
	if err != nil {
		return 0, 0, err
	}
	ids := make([]string, len(due))
	for i, r := range due {
		ids[i] = r.sub
	}
	subs, err := s.subs.Load(ctx, tx, tenant, ids)
	if err != nil {
		return 0, 0, err
	}
	var cusIDs []string
	seen := map[string]bool{}
	for _, sub := range subs {
		if !seen[sub.CustomerID] {
			seen[sub.CustomerID] = true
			cusIDs = append(cusIDs, sub.CustomerID)
		}
	}
	customers, err := loadCustomers(ctx, tx, tenant, cusIDs)
	if err != nil {
		return 0, 0, err
	}
	var cycles []*cycle
	var cursors [][]any
	for _, r := range due {
		sub := subs[r.sub]
		if sub == nil {
			if _, err := tx.ExecContext(ctx, `UPDATE billing_cycles SET done = 1 WHERE subscription_id = $1`, r.sub); err != nil {
				return 0, 0, err
			}
			continue
		}
		cus, ok := customers[sub.CustomerID]
		if !ok {
			return 0, 0, fmt.Errorf("loading customer of %s: %w", sub.ID, abacus.NotFound("customer", sub.CustomerID))
		}
		cycles = append(cycles, planCycle(sub, cus, r.k, nil))
	}
	if len(cycles) == 0 {
		return 0, 0, nil
	}
	if err := fetchUsage(ctx, s.usage, tenant, cycles); err != nil {
		return 0, 0, err
	}
	var prorations map[string][]Proration
	if bp, ok := s.subs.(BulkProrations); ok {
		if prorations, err = bp.PendingProrationsOf(ctx, tx, tenant, ids); err != nil {
			return 0, 0, err
		}
	}
	reds, err := redemptionsOf(ctx, tx, tenant, cusIDs)
	if err != nil {
		return 0, 0, err
	}
	ledgers, err := entriesOf(ctx, tx, tenant, cusIDs)
	if err != nil {
		return 0, 0, err
	}

	type built struct {
		inv        *Invoice
		cus        catalog.Customer
		prorations []string
		createdEvt map[string]any
	}
	var invs []built
	batchUsed := map[string]int{}
	nFinal := 0
	for _, c := range cycles {
		next := c.next
		done := 0
		if c.final {
			next, done = c.at, 1
		}
		cursors = append(cursors, []any{c.sub.ID, tenant, db.TimeOf(c.sub.BillFrom), c.k + 1, db.TimeOf(next), done})
		if c.k == 0 && c.final { // ended before billing started: nothing to bill
			continue
		}
		var prs []Proration
		if c.k > 0 || c.final {
			if prorations == nil {
				if prs, err = s.subs.PendingProrations(ctx, tx, tenant, c.sub.ID, c.at); err != nil {
					return 0, 0, err
				}
			}
			for _, p := range prorations[c.sub.ID] {
				if p.EffectiveAt.Before(c.at) {
					prs = append(prs, p)
				}
			}
		}
		var active []activeRedemption
		for _, r := range reds[c.cus.ID] {
			if r.SubscriptionID != "" && r.SubscriptionID != c.sub.ID {
				continue
			}
			if r.limit > 0 && r.used+batchUsed[r.ID] >= r.limit {
				continue
			}
			active = append(active, r.activeRedemption)
		}
		inv, prIDs, err := buildFrom(tb, c, "", prs, active)
		if err != nil {
			return 0, 0, fmt.Errorf("building invoice of %s cycle %d: %w", c.sub.ID, c.k, err)
		}
		if inv == nil {
			continue
		}
		usedHere := map[string]bool{}
		for _, l := range inv.Lines {
			if l.RedemptionID != "" && !usedHere[l.RedemptionID] {
				usedHere[l.RedemptionID] = true
				batchUsed[l.RedemptionID]++
			}
		}
		inv.CreatedAt, inv.UpdatedAt, inv.refreshedAt = now, now, now
		if !now.Before(inv.FinalizeAt) {
			nFinal++
		}
		invs = append(invs, built{inv: inv, cus: c.cus, prorations: prIDs, createdEvt: invoiceEvent(inv)})
	}

	// One counter update numbers every invoice this batch finalizes.
	var first int64
	if nFinal > 0 {
		if first, err = takeNumbers(ctx, tx, tenant, tb.settings.InvoicePrefix, nFinal); err != nil {
			return 0, 0, err
		}
	}
	var invRows, lineRows, entryRows, eventRows [][]any
	var prIDs []string
	event := func(id, typ string, payload map[string]any) error {
		b, err := json.Marshal(payload)
		if err != nil {
			return fmt.Errorf("marshalling %s payload: %w", typ, err)
		}
		eventRows = append(eventRows, []any{abacus.NewID("evt"), tenant, "invoice", id, typ, string(b), db.TimeOf(now)})
		return nil
	}
	for _, b := range invs {
		inv := b.inv
		if err := event(inv.ID, "invoice.created", b.createdEvt); err != nil {
			return 0, 0, err
		}
		if !now.Before(inv.FinalizeAt) {
			number := formatNumber(tb.settings.InvoicePrefix, now, first)
			first++
			k := inv.CustomerID + "|" + inv.Currency
			used, events, err := finalizeInvoice(inv, b.cus, tb.settings, number, ledgers[k], now)
			if err != nil {
				return 0, 0, err
			}
			ledgers[k] = append(ledgers[k], used...)
			for _, e := range used {
				entryRows = append(entryRows, []any{e.ID, tenant, e.CustomerID, e.Currency, string(e.Kind), e.Amount.String(), e.GrantID,
					db.NullTimeOf(e.ExpiresAt), nullStr(e.InvoiceID), nullStr(e.CreditNoteID), e.Description, db.TimeOf(e.CreatedAt)})
			}
			for _, typ := range events {
				if err := event(inv.ID, typ, invoiceEvent(inv)); err != nil {
					return 0, 0, err
				}
			}
			finalized++
		}
		invRows = append(invRows, invoiceRow(tenant, inv))
		lineRows = append(lineRows, invoiceLineRows(tenant, inv)...)
		prIDs = append(prIDs, b.prorations...)
	}
	for _, w := range []struct {
		what, head, tail string
		rows             [][]any
	}{
		{"invoices", `INSERT INTO invoices (` + invoiceCols + `, tenant_id)`, "", invRows},
		{"invoice lines", `INSERT INTO invoice_lines (id, tenant_id, invoice_id, position, kind, description, charge_key, meter, quantity,
			unit_amount, amount, net_amount, period_start, period_end, tax, redemption_id, details)`, "", lineRows},
		{"credit entries", `INSERT INTO credit_entries (id, tenant_id, customer_id, currency, kind, amount, grant_id, expires_at,
			invoice_id, credit_note_id, description, created_at)`, "", entryRows},
		// The outbox has no batch API yet: its row shape is written here
		// directly, and the last event goes through outbox.Record so the
		// relay is woken after commit.
		{"invoice events", `INSERT INTO outbox_events (id, tenant_id, aggregate_type, aggregate_id, type, payload, created_at)`, "",
			eventRows[:max(0, len(eventRows)-1)]},
		{"billing cycles", `INSERT INTO billing_cycles (subscription_id, tenant_id, bill_from, next_index, next_at, done)`,
			` ON CONFLICT (subscription_id) DO UPDATE SET next_index = excluded.next_index, next_at = excluded.next_at, done = excluded.done`,
			cursors},
	} {
		if err := insertRows(ctx, tx, w.head, w.tail, w.rows); err != nil {
			return 0, 0, fmt.Errorf("writing %s: %w", w.what, err)
		}
	}
	if n := len(eventRows); n > 0 {
		last := eventRows[n-1]
		if _, err := outbox.Record(ctx, tx, outbox.Event{ID: last[0].(string), TenantID: tenant, AggregateType: "invoice",
			AggregateID: last[3].(string), Type: last[4].(string), Payload: json.RawMessage(last[5].(string)), CreatedAt: now}, nil); err != nil {
			return 0, 0, err
		}
	}
	if len(prIDs) > 0 {
		if err := s.subs.MarkProrationsInvoiced(ctx, tx, tenant, prIDs, now); err != nil {
			return 0, 0, err
		}
	}
	for range invs {
		created++
		if s.hookCreated != nil {
			s.hookCreated()
		}
	}
	return created, finalized, nil
}

// invoiceRow is inv's values in the order of invoiceCols, then tenant_id.
func invoiceRow(tenant string, inv *Invoice) []any {
	var doc any
	if len(inv.doc) > 0 {
		doc = string(inv.doc)
	}
	return []any{inv.ID, inv.CustomerID, inv.SubscriptionID, db.TimeOf(inv.PeriodStart), inv.CycleIndex, db.NullTimeOf(inv.ServiceStart),
		db.NullTimeOf(inv.ServiceEnd), string(inv.Status), nullStr(inv.Number), inv.Currency, inv.Subtotal.String(), inv.DiscountTotal.String(),
		inv.TaxTotal.String(), inv.Total.String(), inv.CreditsApplied.String(), inv.AmountDue.String(), db.TimeOf(inv.FinalizeAt),
		db.TimeOf(inv.refreshedAt), db.NullTimeOf(inv.FinalizedAt), db.NullTimeOf(inv.DueAt), db.NullTimeOf(inv.PaidAt),
		db.NullTimeOf(inv.VoidedAt), db.NullTimeOf(inv.UncollectibleAt), doc, db.TimeOf(inv.CreatedAt), db.TimeOf(inv.UpdatedAt), tenant}
}

// invoiceLineRows is the invoice_lines rows of inv, giving lines their ids.
func invoiceLineRows(tenant string, inv *Invoice) [][]any {
	out := make([][]any, 0, len(inv.Lines))
	for i := range inv.Lines {
		l := &inv.Lines[i]
		if l.ID == "" {
			l.ID = abacus.NewID("il")
		}
		var unit any
		if l.UnitAmount != nil {
			unit = l.UnitAmount.String()
		}
		tax, _ := json.Marshal(l.Tax)
		details := "{}"
		if l.Usage != nil {
			u, _ := json.Marshal(l.Usage)
			details = string(u)
		}
		out = append(out, []any{l.ID, tenant, inv.ID, i, string(l.Kind), l.Description, l.ChargeKey, l.Meter, l.Quantity.String(), unit,
			l.Amount.String(), l.NetAmount.String(), db.TimeOf(l.PeriodStart), db.TimeOf(l.PeriodEnd), string(tax), nullStr(l.RedemptionID), details})
	}
	return out
}
