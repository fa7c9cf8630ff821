package billing

import (
	"context"
	"fmt"
	"hash/fnv"
	"runtime"
	"sync"
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
		WHERE tenant_id = $1 AND customer_id IN (`+db.Placeholders(2, len(ids))+`) ORDER BY id`, args...)
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
		db.Placeholders(2, len(ids))+`) ORDER BY id`, args...)
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
// this file) in four steps: load what the cycles need, price them into
// draft invoices, number those due for finalization, and write.
func (s *Service) billTenant(ctx context.Context, tx *db.Tx, tenant string, due []cursorRow, now time.Time) (created, finalized int, err error) {
	ld, err := s.loadBatch(ctx, tx, tenant, due)
	if err != nil || len(ld.cycles) == 0 {
		return 0, 0, err
	}
	out, err := priceBatch(ld, now)
	if err != nil {
		return 0, 0, err
	}
	w := &batchWrite{tx: tx, subs: s.subs, tenant: tenant, now: now, ld: ld, out: out, events: batchEvents{tenant: tenant, now: now}}
	// What does not depend on numbers is written before the counter row is
	// locked (PostgreSQL holds that lock until commit and every worker
	// waits for it): the cursors and the invoice.created events.
	if err := w.cursorsAndCreated(ctx); err != nil {
		return 0, 0, err
	}
	numbers, err := numberBatch(ctx, tx, tenant, ld.tb.settings, out, now)
	if err != nil {
		return 0, 0, err
	}
	if created, finalized, err = w.invoices(ctx, numbers); err != nil {
		return 0, 0, err
	}
	if s.hookCreated != nil {
		for range created {
			s.hookCreated()
		}
	}
	return created, finalized, nil
}

// batchLoad is what a tenant's due cycles are billed from, read with one
// query per kind whatever the batch size.
type batchLoad struct {
	tb         *tenantBatch
	cycles     []*cycle
	lanes      int      // the cycles are built and finalized in lanes
	laneOf     []int    // by cycle: a customer's cycles share a lane
	customers  []string // ids, each once
	prorations map[string][]Proration
	reds       map[string][]*batchRedemption
	ledgers    map[string][]CreditEntry
}

// loadBatch reads the due cycles' subscriptions, customers, usage,
// prorations, redemptions and credit ledgers. A cycle whose subscription
// is gone is closed here.
func (s *Service) loadBatch(ctx context.Context, tx *db.Tx, tenant string, due []cursorRow) (*batchLoad, error) {
	tb, err := s.loadTenant(ctx, tx, tenant)
	if err != nil {
		return nil, err
	}
	ld := &batchLoad{tb: tb}
	ids := make([]string, len(due))
	for i, r := range due {
		ids[i] = r.sub
	}
	if err := s.planBatch(ctx, tx, tenant, due, ids, ld); err != nil || len(ld.cycles) == 0 {
		return ld, err
	}
	if err := fetchUsage(ctx, s.usage, tenant, ld.cycles); err != nil {
		return nil, err
	}
	if ld.prorations, err = s.batchProrations(ctx, tx, tenant, ids, ld.cycles); err != nil {
		return nil, err
	}
	if ld.reds, err = redemptionsOf(ctx, tx, tenant, ld.customers); err != nil {
		return nil, err
	}
	if ld.ledgers, err = entriesOf(ctx, tx, tenant, ld.customers); err != nil {
		return nil, err
	}
	return ld, nil
}

// planBatch reads the subscriptions with ids and their customers and
// plans the due cycles into ld.
func (s *Service) planBatch(ctx context.Context, tx *db.Tx, tenant string, due []cursorRow, ids []string, ld *batchLoad) error {
	subs, err := s.subs.Load(ctx, tx, tenant, ids)
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, sub := range subs {
		if !seen[sub.CustomerID] {
			seen[sub.CustomerID] = true
			ld.customers = append(ld.customers, sub.CustomerID)
		}
	}
	customers, err := catalog.LoadCustomers(ctx, tx, tenant, ld.customers)
	if err != nil {
		return err
	}
	for _, r := range due {
		sub := subs[r.sub]
		if sub == nil {
			if _, err := tx.ExecContext(ctx, `UPDATE billing_cycles SET done = 1 WHERE subscription_id = $1`, r.sub); err != nil {
				return err
			}
			continue
		}
		cus, ok := customers[sub.CustomerID]
		if !ok {
			return fmt.Errorf("loading customer of %s: %w", sub.ID, abacus.NotFound("customer", sub.CustomerID))
		}
		ld.cycles = append(ld.cycles, planCycle(sub, cus, r.k, nil))
	}
	ld.lanes = laneCount(len(ld.cycles))
	ld.laneOf = make([]int, len(ld.cycles))
	for i, c := range ld.cycles {
		ld.laneOf[i] = laneFor(c.cus.ID, ld.lanes)
	}
	return nil
}

// batchProrations reads the pending prorations of the batch: with one
// query when the seam can (lanes never touch tx), else one per cycle.
func (s *Service) batchProrations(ctx context.Context, tx *db.Tx, tenant string, ids []string, cycles []*cycle) (map[string][]Proration, error) {
	if bp, ok := s.subs.(BulkProrations); ok {
		return bp.PendingProrationsOf(ctx, tx, tenant, ids)
	}
	out := map[string][]Proration{}
	for _, c := range cycles {
		if c.k > 0 || c.final {
			prs, err := s.subs.PendingProrations(ctx, tx, tenant, c.sub.ID, c.at)
			if err != nil {
				return nil, err
			}
			out[c.sub.ID] = prs
		}
	}
	return out, nil
}

// built is one cycle of a batch as priced, then as finalized.
type built struct {
	inv        *Invoice
	cus        catalog.Customer
	prorations []string
	createdEvt []byte
	err        error
	// set by finalization
	row     []any
	lines   [][]any
	entries [][]any
	events  []pendingEvent
}

// priceBatch builds the draft invoice of every cycle (nil where there is
// nothing to bill). Building is pure CPU work done in lanes, one
// goroutine per core; a customer's cycles stay in one lane and in order,
// because coupon uses carry over from one of its invoices to the next.
func priceBatch(ld *batchLoad, now time.Time) ([]built, error) {
	out := make([]built, len(ld.cycles))
	inLanes(ld.lanes, func(lane int) {
		batchUsed := map[string]int{}
		for i, c := range ld.cycles {
			if ld.laneOf[i] != lane || (c.k == 0 && c.final) { // ended before billing started: nothing to bill
				continue
			}
			if out[i] = priceCycle(ld, c, batchUsed, now); out[i].err != nil {
				return
			}
		}
	})
	for i := range out {
		if out[i].err != nil {
			return nil, out[i].err
		}
	}
	return out, nil
}

// priceCycle builds cycle c's draft invoice with the prorations due by
// its end and the redemptions still usable (batchUsed counts the uses
// by the lane's earlier invoices).
func priceCycle(ld *batchLoad, c *cycle, batchUsed map[string]int, now time.Time) built {
	var prs []Proration
	if c.k > 0 || c.final {
		for _, p := range ld.prorations[c.sub.ID] {
			if !p.EffectiveAt.After(c.at) {
				prs = append(prs, p)
			}
		}
	}
	var active []activeRedemption
	for _, r := range ld.reds[c.cus.ID] {
		if r.SubscriptionID != "" && r.SubscriptionID != c.sub.ID {
			continue
		}
		if r.limit > 0 && r.used+batchUsed[r.ID] >= r.limit {
			continue
		}
		active = append(active, r.activeRedemption)
	}
	inv, prIDs, err := buildFrom(ld.tb, c, "", prs, active)
	if err != nil {
		return built{err: fmt.Errorf("building invoice of %s cycle %d: %w", c.sub.ID, c.k, err)}
	}
	if inv == nil {
		return built{prorations: prIDs} // settled by the cycle's own period
	}
	usedHere := map[string]bool{}
	for _, l := range inv.Lines {
		if l.RedemptionID != "" && !usedHere[l.RedemptionID] {
			usedHere[l.RedemptionID] = true
			batchUsed[l.RedemptionID]++
		}
	}
	inv.CreatedAt, inv.UpdatedAt, inv.refreshedAt = now, now, now
	evt, err := marshalFrozen(invoiceEvent(inv))
	if err != nil {
		return built{err: fmt.Errorf("marshalling invoice.created payload: %w", err)}
	}
	return built{inv: inv, cus: c.cus, prorations: prIDs, createdEvt: evt}
}

// finalizing reports whether b's invoice is finalized in this batch: its
// grace has passed.
func (b *built) finalizing(now time.Time) bool { return b.inv != nil && b.inv.finalizesAt(now) }

// numberBatch takes the numbers of every invoice the batch finalizes, in
// batch order, with one counter update ("" for the others).
func numberBatch(ctx context.Context, tx *db.Tx, tenant string, st Settings, out []built, now time.Time) ([]string, error) {
	n := 0
	for i := range out {
		if out[i].finalizing(now) {
			n++
		}
	}
	numbers := make([]string, len(out))
	if n == 0 {
		return numbers, nil
	}
	first, err := takeNumbers(ctx, tx, tenant, st.InvoicePrefix, n)
	if err != nil {
		return nil, err
	}
	for i := range out {
		if out[i].finalizing(now) {
			numbers[i] = formatNumber(st.InvoicePrefix, now, first)
			first++
		}
	}
	return numbers, nil
}

// batchWrite writes a priced batch inside tx.
type batchWrite struct {
	tx     *db.Tx
	subs   Subscriptions
	tenant string
	now    time.Time
	ld     *batchLoad
	out    []built
	events batchEvents
}

// cursorsAndCreated moves every cycle's cursor and writes the
// invoice.created events.
func (w *batchWrite) cursorsAndCreated(ctx context.Context) error {
	cursors := make([][]any, 0, len(w.ld.cycles))
	for i, c := range w.ld.cycles {
		next, done := c.next, 0
		if c.final {
			next, done = c.at, 1
		}
		cursors = append(cursors, []any{c.sub.ID, w.tenant, db.TimeOf(c.sub.BillFrom), c.k + 1, db.TimeOf(next), done})
		if inv := w.out[i].inv; inv != nil {
			if err := w.events.add(inv.ID, "invoice.created", w.out[i].createdEvt); err != nil {
				return err
			}
		}
	}
	if err := w.events.flush(ctx, w.tx); err != nil {
		return err
	}
	if err := insertRows(ctx, w.tx, `INSERT INTO billing_cycles (subscription_id, tenant_id, bill_from, next_index, next_at, done)`,
		` ON CONFLICT (subscription_id) DO UPDATE SET next_index = excluded.next_index, next_at = excluded.next_at, done = excluded.done, failures = 0, last_error = NULL`,
		cursors); err != nil {
		return fmt.Errorf("writing billing cycles: %w", err)
	}
	return nil
}

// invoices finalizes the invoices under numbers and writes them with
// their lines, credit entries and events, and marks the prorations they
// settle invoiced. The lanes finalize chunk by chunk while this goroutine
// writes the chunks already finished, so the inserts overlap the
// documents.
func (w *batchWrite) invoices(ctx context.Context, numbers []string) (created, finalized int, err error) {
	const chunk = 250
	out := w.out
	chunks := (len(out) + chunk - 1) / chunk
	ready := make([]sync.WaitGroup, chunks)
	for i := range ready {
		ready[i].Add(min(chunk, len(out)-i*chunk))
	}
	lanesDone := w.finalize(numbers, func(i int) { ready[i/chunk].Done() })
	// On an early return the lanes still finish their (bounded) work
	// before the batch's memory goes.
	defer lanesDone.Wait()
	var entryRows [][]any
	var prIDs []string
	for c := 0; c < chunks; c++ {
		ready[c].Wait()
		var invRows, lineRows [][]any
		for i := c * chunk; i < min((c+1)*chunk, len(out)); i++ {
			b := &out[i]
			if b.err != nil {
				return 0, 0, b.err
			}
			prIDs = append(prIDs, b.prorations...)
			if b.inv == nil {
				continue
			}
			for _, e := range b.events {
				if err := w.events.add(b.inv.ID, e.typ, e.payload); err != nil {
					return 0, 0, err
				}
			}
			if numbers[i] != "" {
				finalized++
			}
			invRows = append(invRows, b.row)
			lineRows = append(lineRows, b.lines...)
			entryRows = append(entryRows, b.entries...)
			created++
		}
		if err := writeInvoiceRows(ctx, w.tx, invRows, lineRows); err != nil {
			return 0, 0, err
		}
	}
	if err := insertRows(ctx, w.tx, `INSERT INTO credit_entries (id, tenant_id, customer_id, currency, kind, amount, grant_id, expires_at,
		invoice_id, credit_note_id, description, created_at)`, "", entryRows); err != nil {
		return 0, 0, fmt.Errorf("writing credit entries: %w", err)
	}
	if err := w.events.flush(ctx, w.tx); err != nil {
		return 0, 0, err
	}
	if len(prIDs) > 0 {
		if err := w.subs.MarkProrationsInvoiced(ctx, w.tx, w.tenant, prIDs, w.now); err != nil {
			return 0, 0, err
		}
	}
	return created, finalized, nil
}

// finalize finalizes the batch's invoices under numbers in lanes, in the
// background, calling done(i) when cycle i is finished; the WaitGroup
// returned is done when every lane is.
func (w *batchWrite) finalize(numbers []string, done func(i int)) *sync.WaitGroup {
	var lanesDone sync.WaitGroup
	lanesDone.Add(1)
	go func() {
		defer lanesDone.Done()
		inLanes(w.ld.lanes, func(lane int) {
			ledger := map[string][]CreditEntry{} // this lane's customers' ledgers as they grow
			for i := range w.out {
				if w.ld.laneOf[i] != lane {
					continue
				}
				if b := &w.out[i]; b.inv != nil {
					b.err = finishInvoice(b.inv, b.cus, w.ld.tb.settings, w.tenant, numbers[i], ledger, w.ld.ledgers, w.now, &b.row, &b.lines, &b.entries, &b.events)
				}
				done(i)
			}
		})
	}()
	return &lanesDone
}

// writeInvoiceRows writes invoices and their lines.
func writeInvoiceRows(ctx context.Context, tx *db.Tx, invRows, lineRows [][]any) error {
	if err := insertRows(ctx, tx, `INSERT INTO invoices (`+invoiceCols+`, tenant_id)`, "", invRows); err != nil {
		return fmt.Errorf("writing invoices: %w", err)
	}
	if err := insertRows(ctx, tx, `INSERT INTO invoice_lines (id, tenant_id, invoice_id, position, kind, description, charge_key, meter,
		quantity, unit_amount, amount, net_amount, period_start, period_end, tax, redemption_id, details)`, "", lineRows); err != nil {
		return fmt.Errorf("writing invoice lines: %w", err)
	}
	return nil
}

// batchEvents are a batch's outbox events in the order they happen (per
// invoice: created, finalized, paid): their ids are taken in that order,
// so the outbox keeps it.
type batchEvents struct {
	tenant  string
	now     time.Time
	events  []outbox.Event
	written int
}

// add queues the invoice event typ with its payload, already serialised
// by the lane that finalized the invoice.
func (e *batchEvents) add(id, typ string, payload []byte) error {
	k, err := invoiceKind(typ)
	if err != nil {
		return err
	}
	ev := k.New(e.tenant, id, e.now, InvoiceEvent{})
	ev.ID = abacus.NewID("evt")
	ev.Payload = payload
	e.events = append(e.events, ev)
	return nil
}

// flush records the events not yet written.
func (e *batchEvents) flush(ctx context.Context, tx *db.Tx) error {
	if _, err := outbox.RecordBatch(ctx, tx, e.events[e.written:]); err != nil {
		return fmt.Errorf("writing invoice events: %w", err)
	}
	e.written = len(e.events)
	return nil
}

// pendingEvent is an outbox event of a batch before it gets its id.
type pendingEvent struct {
	typ     string
	payload []byte
}

// finishInvoice finalizes inv under number (a draft stays a draft when
// number is empty) and renders its rows: the invoice, its lines, the
// credit entries it draws and its events after invoice.created. ledger
// holds the ledgers grown in this lane, shared the batch's ledgers as read.
func finishInvoice(inv *Invoice, cus catalog.Customer, st Settings, tenant, number string, ledger, read map[string][]CreditEntry,
	now time.Time, row *[]any, lines, entries *[][]any, events *[]pendingEvent) error {
	if number != "" {
		k := inv.CustomerID + "|" + inv.Currency
		have, ok := ledger[k]
		if !ok {
			have = read[k]
		}
		used, types, err := finalizeInvoice(inv, cus, st, number, have, now)
		if err != nil {
			return err
		}
		if len(used) > 0 {
			ledger[k] = append(append([]CreditEntry(nil), have...), used...)
		}
		for _, e := range used {
			*entries = append(*entries, []any{e.ID, tenant, e.CustomerID, e.Currency, string(e.Kind), e.Amount.String(), e.GrantID,
				db.NullTimeOf(e.ExpiresAt), nullStr(e.InvoiceID), nullStr(e.CreditNoteID), e.Description, db.TimeOf(e.CreatedAt)})
		}
		if len(types) > 0 {
			payload, err := marshalFrozen(invoiceEvent(inv))
			if err != nil {
				return fmt.Errorf("marshalling %s payload: %w", types[0], err)
			}
			for _, typ := range types {
				*events = append(*events, pendingEvent{typ: typ, payload: payload})
			}
		}
	}
	*row = invoiceRow(tenant, inv)
	*lines = invoiceLineRows(tenant, inv)
	return nil
}

// laneCount is how many lanes a batch of n cycles is built in: one per
// core, one for small batches (a goroutine costs more than a few
// invoices).
func laneCount(n int) int {
	if n < 64 {
		return 1
	}
	return max(1, runtime.GOMAXPROCS(0))
}

// laneFor puts a customer in a lane by a hash of its id.
func laneFor(customerID string, lanes int) int {
	if lanes == 1 {
		return 0
	}
	h := fnv.New32a()
	h.Write([]byte(customerID))
	return int(h.Sum32() % uint32(lanes))
}

// inLanes runs fn for lanes 0…lanes-1 concurrently and waits for all.
func inLanes(lanes int, fn func(lane int)) {
	if lanes == 1 {
		fn(0)
		return
	}
	var wg sync.WaitGroup
	for l := range lanes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(l)
		}()
	}
	wg.Wait()
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
		tax, _ := marshalFrozen(l.Tax)
		details := "{}"
		if l.Usage != nil {
			u, _ := marshalFrozen(l.Usage)
			details = string(u)
		}
		out = append(out, []any{l.ID, tenant, inv.ID, i, string(l.Kind), l.Description, l.ChargeKey, l.Meter, l.Quantity.String(), unit,
			l.Amount.String(), l.NetAmount.String(), db.TimeOf(l.PeriodStart), db.TimeOf(l.PeriodEnd), string(tax), nullStr(l.RedemptionID), details})
	}
	return out
}
