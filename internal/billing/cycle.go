package billing

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/shopspring/decimal"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/catalog"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/money"
	"github.com/abacusbilling/abacus/internal/period"
	"github.com/abacusbilling/abacus/internal/pricing"
)

// boundary returns the k-th cycle boundary of sub: its bill-from time for
// k = 0, then the starts of its schedule's periods.
func boundary(sub *SubInfo, k int) time.Time {
	if k == 0 {
		return sub.BillFrom
	}
	return sub.Schedule.Start(sub.Schedule.Index(sub.BillFrom) + k)
}

// window is a span of a phase priced together.
type window struct {
	phase    *PhaseInfo
	from, to time.Time
}

// group is a run of arrears windows on one plan version with the same
// usage prices, split only by seat changes and pauses. Fees are priced
// per window (by its quantity); usage is priced once over the group, so
// tiers, minimum, maximum and commitment apply once per period.
type group struct {
	windows []window
	served  []period.Period // the windows, adjacent ones merged: usage is read per span
	paused  []period.Period // the gaps between served spans
}

// add appends w to g, continuing the last served span when w follows it.
func (g *group) add(w window) {
	g.windows = append(g.windows, w)
	if n := len(g.served); n > 0 {
		if last := &g.served[n-1]; last.End.Equal(w.from) {
			last.End = w.to
			return
		}
		g.paused = append(g.paused, period.Period{Start: g.served[n-1].End, End: w.from})
	}
	g.served = append(g.served, period.Period{Start: w.from, End: w.to})
}

// sameUsage reports whether phases a and b price usage alike: the same
// plan version and, overrides applied, the same usage prices.
func sameUsage(a, b *PhaseInfo) bool {
	return a.VersionID == b.VersionID && usageTerms(a.Pricing) == usageTerms(b.Pricing)
}

func usageTerms(pp pricing.PlanPricing) string {
	var prices []*pricing.Price
	for _, ch := range pp.Charges {
		if ch.Kind == pricing.ChargeUsage {
			prices = append(prices, ch.Price)
		}
	}
	b, _ := json.Marshal(prices) // plain data: cannot fail
	return string(b)
}

// cycle is the plan of one invoice: which windows of which phases are
// priced for what, and where the cursor goes next.
type cycle struct {
	sub   *SubInfo
	cus   catalog.Customer
	k     int
	at    time.Time // the boundary (or the end of the subscription)
	final bool
	full  period.Period // the full period the arrears windows belong to
	arr   []group
	adv   *window
	advP  period.Period
	next  time.Time
	usage map[usageKey]pricing.Usage
}

type usageKey struct {
	meter    string
	from, to int64
	since    bool // from is where billing starts: counted from that instant exactly
}

// keyOf is the usage key of meter over span sp of the cycle.
func (c *cycle) keyOf(meter string, sp period.Period) usageKey {
	return usageKey{meter, sp.Start.UnixMicro(), sp.End.UnixMicro(), sp.Start.Equal(c.sub.BillFrom)}
}

// planCycle plans cycle k of sub, ending usage windows at upTo when it is
// before the boundary (the upcoming-invoice preview).
func planCycle(sub *SubInfo, cus catalog.Customer, k int, upTo *time.Time) *cycle {
	c := &cycle{sub: sub, cus: cus, k: k, at: boundary(sub, k)}
	if sub.EndAt != nil && !sub.EndAt.After(c.at) {
		c.at, c.final = *sub.EndAt, true
	}
	if k > 0 {
		from := boundary(sub, k-1)
		to := c.at
		if upTo != nil && upTo.Before(to) {
			to = *upTo
		}
		c.full = sub.Schedule.Containing(from)
		var g *group // the group a window on the same terms continues
		for i := range sub.Phases {
			ph := &sub.Phases[i]
			end := to
			if ph.End != nil && ph.End.Before(end) {
				end = *ph.End
			}
			start := from
			if ph.Start.After(start) {
				start = ph.Start
			}
			if !start.Before(end) {
				continue
			}
			if g != nil && !sameUsage(g.windows[0].phase, ph) {
				g = nil
			}
			if ph.Paused { // not billed; the usage after it continues the group
				continue
			}
			if g == nil {
				c.arr = append(c.arr, group{})
				g = &c.arr[len(c.arr)-1]
			}
			g.add(window{phase: ph, from: start, to: end})
		}
	}
	if !c.final {
		c.advP = sub.Schedule.Containing(c.at)
		for i := range sub.Phases {
			ph := &sub.Phases[i]
			if !ph.Start.After(c.at) && (ph.End == nil || ph.End.After(c.at)) && !ph.Paused {
				c.adv = &window{phase: ph, from: c.at, to: c.advP.End}
			}
		}
		c.next = boundary(sub, k+1)
		if sub.EndAt != nil && sub.EndAt.Before(c.next) {
			c.next = *sub.EndAt
		}
	}
	return c
}

// usageNeeds lists the (meter, window) usage the cycle prices.
func (c *cycle) usageNeeds() []usageKey {
	var out []usageKey
	for _, g := range c.arr {
		for _, ch := range g.windows[0].phase.Pricing.Charges {
			if ch.Kind == pricing.ChargeUsage {
				for _, sp := range g.served {
					out = append(out, c.keyOf(ch.Meter, sp))
				}
			}
		}
	}
	return out
}

// usageOf returns group g's usage by meter: the sum of quantities and
// events over its served spans (exact for sums and counts; a pause is the
// only gap between spans).
func (c *cycle) usageOf(g group) map[string]pricing.Usage {
	usage := map[string]pricing.Usage{}
	for _, ch := range g.windows[0].phase.Pricing.Charges {
		if ch.Kind != pricing.ChargeUsage {
			continue
		}
		u := pricing.Usage{Quantity: decimal.Zero}
		for _, sp := range g.served {
			u = u.Add(c.usage[c.keyOf(ch.Meter, sp)])
		}
		usage[ch.Meter] = u
	}
	return usage
}

// fetchUsage fills the usage of every cycle, asking src once per tenant,
// meter and window when it supports BulkUsage.
func fetchUsage(ctx context.Context, src UsageSource, tenant string, cycles []*cycle) error {
	type req struct {
		key      usageKey
		subjects []string
		cycles   []*cycle
	}
	reqs := map[usageKey]*req{}
	var order []usageKey
	for _, c := range cycles {
		c.usage = map[usageKey]pricing.Usage{}
		for _, k := range c.usageNeeds() {
			r := reqs[k]
			if r == nil {
				r = &req{key: k}
				reqs[k] = r
				order = append(order, k)
			}
			r.subjects = append(r.subjects, c.cus.Subjects...)
			r.cycles = append(r.cycles, c)
		}
	}
	bulk, isBulk := src.(BulkUsage)
	since, isSince := src.(SinceUsage)
	for _, k := range order {
		r := reqs[k]
		from, to := time.UnixMicro(k.from).UTC(), time.UnixMicro(k.to).UTC()
		if isBulk {
			read := bulk.UsageBySubject
			if k.since && isSince {
				read = since.UsageBySubjectSince
			}
			by, err := read(ctx, tenant, k.meter, r.subjects, from, to)
			if err != nil {
				return fmt.Errorf("reading usage of %s: %w", k.meter, err)
			}
			for _, c := range r.cycles {
				sum := pricing.Usage{Quantity: decimal.Zero}
				for _, s := range c.cus.Subjects {
					sum = sum.Add(by[s])
				}
				c.usage[k] = sum
			}
			continue
		}
		for _, c := range r.cycles {
			if _, done := c.usage[k]; done {
				continue
			}
			u := pricing.Usage{Quantity: decimal.Zero}
			if len(c.cus.Subjects) > 0 {
				var err error
				if u, err = src.UsageWithEvents(ctx, tenant, k.meter, c.cus.Subjects, from, to); err != nil {
					return fmt.Errorf("reading usage of %s: %w", k.meter, err)
				}
			}
			c.usage[k] = u
		}
	}
	return nil
}

// price turns the cycle into invoice lines (without discounts).
func (c *cycle) price(tax LineTax) ([]Line, string, error) {
	var lines []Line
	currency := ""
	add := func(pp pricing.PlanPricing, ls []pricing.Line) {
		cur, _ := money.LookupCurrency(pp.Currency)
		currency = cur.Code
		for _, l := range ls {
			lines = append(lines, fromPricing(l, tax, cur))
		}
	}
	if c.adv != nil {
		w := c.adv
		ls, err := pricing.Quote(w.phase.Pricing, pricing.QuoteInput{Period: c.advP, From: w.from, To: w.to,
			Quantities: w.phase.Quantities, Parts: pricing.PartInAdvanceFees})
		if err != nil {
			return nil, "", fmt.Errorf("pricing in-advance fees: %w", err)
		}
		add(w.phase.Pricing, ls)
	}
	const usageParts = pricing.PartUsage | pricing.PartCommitment
	for _, g := range c.arr {
		usage := c.usageOf(g)
		if len(g.windows) == 1 { // the usual case: one quote for all of it
			w := g.windows[0]
			ls, err := pricing.Quote(w.phase.Pricing, pricing.QuoteInput{Period: c.full, From: w.from, To: w.to, Quantities: w.phase.Quantities,
				Usage: usage, Parts: pricing.PartInArrearsFees | usageParts})
			if err != nil {
				return nil, "", fmt.Errorf("pricing usage: %w", err)
			}
			add(w.phase.Pricing, ls)
			continue
		}
		for _, w := range g.windows {
			ls, err := pricing.Quote(w.phase.Pricing, pricing.QuoteInput{Period: c.full, From: w.from, To: w.to, Quantities: w.phase.Quantities,
				Parts: pricing.PartInArrearsFees})
			if err != nil {
				return nil, "", fmt.Errorf("pricing in-arrears fees: %w", err)
			}
			add(w.phase.Pricing, ls)
		}
		pp, last := g.windows[0].phase.Pricing, g.windows[len(g.windows)-1]
		ls, err := pricing.Quote(pp, pricing.QuoteInput{Period: c.full, From: g.windows[0].from, To: last.to, Paused: g.paused,
			Usage: usage, Parts: usageParts})
		if err != nil {
			return nil, "", fmt.Errorf("pricing usage: %w", err)
		}
		add(pp, ls)
	}
	if currency == "" && len(c.sub.Phases) > 0 {
		currency = c.sub.Phases[len(c.sub.Phases)-1].Pricing.Currency
	}
	return lines, currency, nil
}

func fromPricing(l pricing.Line, tax LineTax, cur money.Currency) Line {
	out := Line{Kind: LineKind(l.Kind), Description: l.Description, ChargeKey: l.ChargeKey, Meter: l.Meter, Quantity: l.Quantity,
		UnitAmount: l.UnitAmount, Amount: l.Amount, PeriodStart: l.Period.Start, PeriodEnd: l.Period.End, Tax: tax, Usage: l.Usage}
	out.NetAmount = netOf(l.Amount, tax, cur)
	return out
}

// tenantBatch is what one tenant's part of a batch shares.
type tenantBatch struct {
	settings Settings
	taxes    *taxBook
	plans    map[string]string // plan names by id, printed on documents
}

func (s *Service) loadTenant(ctx context.Context, q db.Querier, tenant string) (*tenantBatch, error) {
	st, err := loadSettings(ctx, q, tenant, s.defaultSettings())
	if err != nil {
		return nil, err
	}
	tb, err := loadTaxBook(ctx, q, tenant, st.Seller.CountryCode)
	if err != nil {
		return nil, err
	}
	plans, err := catalog.PlanNames(ctx, q, tenant)
	return &tenantBatch{settings: st, taxes: tb, plans: plans}, err
}

// buildInvoice prices cycle c into a draft invoice (nil when there is
// nothing to bill) and returns the prorations it includes.
// Lines in keep (prorations of a refreshed draft) are added as they are.
func (s *Service) buildInvoice(ctx context.Context, q db.Querier, tb *tenantBatch, c *cycle, existingID string, keep ...Line) (*Invoice, []string, error) {
	tenant := c.sub.TenantID
	var prs []Proration
	if c.k > 0 || c.final {
		var err error
		if prs, err = s.subs.PendingProrations(ctx, q, tenant, c.sub.ID, c.at); err != nil {
			return nil, nil, err
		}
	}
	reds, err := redemptionsFor(ctx, q, tenant, c.cus.ID, c.sub.ID, existingID)
	if err != nil {
		return nil, nil, err
	}
	return buildFrom(tb, c, existingID, prs, reds, keep...)
}

// buildFrom is buildInvoice over prorations prs (already filtered to
// those effective up to the cycle) and redemptions reds read beforehand.
// It returns the prorations it settles, also when nothing is left to
// invoice.
func buildFrom(tb *tenantBatch, c *cycle, existingID string, prs []Proration, reds []activeRedemption, keep ...Line) (*Invoice, []string, error) {
	tax := tb.taxes.resolve(c.cus, c.sub.PlanID)
	lines, currency, err := c.price(tax)
	if err != nil {
		return nil, nil, err
	}
	cur, err := money.LookupCurrency(currency)
	if err != nil {
		return nil, nil, fmt.Errorf("invoice currency: %w", err)
	}
	var prorationIDs []string
	if c.k > 0 || c.final {
		for _, p := range prs {
			prorationIDs = append(prorationIDs, p.ID)
			if c.k > 0 && p.EffectiveAt.Equal(boundary(c.sub, c.k)) {
				// A change at the instant this cycle's period starts:
				// the cycle prices that period from the phases in force
				// then, so the proration would bill it a second time.
				continue
			}
			for _, l := range p.Lines {
				lines = append(lines, fromPricing(l, tax, cur))
			}
		}
	}
	lines = append(lines, keep...)
	if len(lines) == 0 {
		return nil, prorationIDs, nil
	}
	lines = append(lines, discountLines(lines, reds, cur, c.at)...)
	inv := &Invoice{ID: existingID, CustomerID: c.cus.ID, SubscriptionID: c.sub.ID, Status: Draft, Currency: cur.Code, PeriodStart: c.at,
		CycleIndex: c.k, Lines: lines, FinalizeAt: c.at.Add(tb.settings.grace()), planName: tb.plans[c.sub.PlanID]}
	if inv.ID == "" {
		inv.ID = abacus.NewID("inv")
	}
	var first, last time.Time
	for _, l := range lines {
		if l.Kind == LineDiscount {
			continue
		}
		if first.IsZero() || l.PeriodStart.Before(first) {
			first = l.PeriodStart
		}
		if l.PeriodEnd.After(last) {
			last = l.PeriodEnd
		}
	}
	if !first.IsZero() {
		inv.ServiceStart, inv.ServiceEnd = &first, &last
	}
	inv.computeTotals()
	return inv, prorationIDs, nil
}

// RunStats counts what RunOnce did.
type RunStats struct {
	Invoices  int `json:"invoices"`
	Finalized int `json:"finalized"`
	Refreshed int `json:"refreshed"`
	Expired   int `json:"expired_grants"`
}

// RunOnce does the billing work due at now, for every tenant: it bills
// every cycle boundary at or before now (catching up on backdated ones;
// a subscription's cycle exists from its creation, see CycleSaves),
// re-prices drafts whose refresh is due, finalizes drafts whose grace has
// passed, and expires credit grants. It is
// idempotent and safe to run from several workers at once.
func (s *Service) RunOnce(ctx context.Context, now time.Time) (RunStats, error) {
	now = now.UTC().Truncate(time.Microsecond)
	var st RunStats
	guard, _ := s.subs.(transitionGuard)
	if guard != nil {
		if err := guard.advanceDue(ctx, s.db, now); err != nil {
			return st, err
		}
	}
	workers := s.cycleWorkers()
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				n, f, claimed, err := s.billBatch(ctx, now, "")
				if err != nil && len(claimed) > 0 && ctx.Err() == nil {
					// One bad cycle must not hold up every other one
					// (the next run would claim the same batch): bill the
					// batch's cycles one at a time, deferring those that
					// fail alone.
					s.log.Warn("billing batch failed; billing its cycles one by one", "cycles", len(claimed), "err", err)
					n, f, err = oneByOne(ctx, claimed, func(sub string) (int, int, error) {
						n, f, _, err := s.billBatch(ctx, now, sub)
						return n, f, err
					}, func(sub string, cause error) error { return s.deferCycle(ctx, now, sub, cause) })
				}
				advanced := len(claimed)
				mu.Lock()
				st.Invoices += n
				st.Finalized += f
				if err != nil && firstErr == nil {
					firstErr = err
				}
				stop := firstErr != nil
				mu.Unlock()
				if stop || advanced == 0 {
					return
				}
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return st, firstErr
	}
	for _, due := range []bool{true, false} {
		for {
			r, f, taken, err := s.draftBatch(ctx, now, due, "")
			if err != nil && len(taken) > 0 && ctx.Err() == nil {
				s.log.Warn("draft invoice batch failed; taking its drafts one by one", "drafts", len(taken), "err", err)
				r, f, err = oneByOne(ctx, taken, func(id string) (int, int, error) {
					r, f, _, err := s.draftBatch(ctx, now, due, id)
					return r, f, err
				}, func(id string, cause error) error { return s.deferDraft(ctx, now, id, cause) })
			}
			st.Refreshed += r
			st.Finalized += f
			if err != nil {
				return st, err
			}
			if r == 0 && f == 0 {
				break
			}
		}
	}
	n, err := s.expireCredits(ctx, now)
	st.Expired = n
	return st, err
}

// CycleEnds brings the billing cycle of subscription sub forward to at,
// inside tx, the transaction that ends the subscription there (a
// subscription.EndHook). A cycle waits for the boundary of the period it
// bills; a subscription canceled now ends before it, and its final
// invoice, with the credit for the rest of the period, is due at the end,
// in the next billing round.
func CycleEnds(ctx context.Context, tx *db.Tx, tenant, sub string, at time.Time) error {
	if _, err := tx.ExecContext(ctx, `UPDATE billing_cycles SET next_at = $3 WHERE tenant_id = $1 AND subscription_id = $2 AND done = 0
		AND next_at > $3`, tenant, sub, db.TimeOf(at)); err != nil {
		return fmt.Errorf("moving the billing cycle of %s to its end: %w", sub, err)
	}
	return nil
}

type cursorRow struct {
	sub, tenant string
	k           int
}

// billBatch bills up to BatchSize due cycles in one transaction, or only
// the due cycle of subscription only when it is set. It returns how many
// invoices it created and finalized and the subscriptions whose cycles it
// claimed (none when nothing was due), also when it failed and nothing was
// written. A cycle with nothing to bill still advances.
func (s *Service) billBatch(ctx context.Context, now time.Time, only string) (created, finalized int, claimed []string, err error) {
	err = s.db.InTx(ctx, func(tx *db.Tx) error {
		cond := ""
		if g, ok := s.subs.(transitionGuard); ok {
			cond = ` AND NOT ` + g.heldSQL()
		}
		args := []any{db.TimeOf(now)}
		if only != "" {
			cond += ` AND subscription_id = $2`
			args = append(args, only)
		}
		q := `SELECT subscription_id, tenant_id, next_index FROM billing_cycles WHERE done = 0 AND next_at <= $1` + cond +
			` ORDER BY next_at, subscription_id LIMIT ` + fmt.Sprint(s.cfg.BatchSize)
		q += tx.LockClause(` FOR UPDATE SKIP LOCKED`)
		rows, err := tx.QueryContext(ctx, q, args...)
		if err != nil {
			return fmt.Errorf("claiming billing cycles: %w", err)
		}
		var due []cursorRow
		for rows.Next() {
			var r cursorRow
			if err := rows.Scan(&r.sub, &r.tenant, &r.k); err != nil {
				rows.Close()
				return err
			}
			due = append(due, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		claimed = claimed[:0]
		for _, r := range due {
			claimed = append(claimed, r.sub)
		}
		byTenant := map[string][]cursorRow{}
		var tenants []string
		for _, r := range due {
			if byTenant[r.tenant] == nil {
				tenants = append(tenants, r.tenant)
			}
			byTenant[r.tenant] = append(byTenant[r.tenant], r)
		}
		sort.Strings(tenants)
		for _, tenant := range tenants {
			c, f, err := s.billTenant(tenantCtx(ctx, tenant), tx, tenant, byTenant[tenant], now)
			created += c
			finalized += f
			if err != nil {
				return fmt.Errorf("billing tenant %s: %w", tenant, err)
			}
		}
		return nil
	})
	if err != nil {
		return 0, 0, claimed, err
	}
	return created, finalized, claimed, nil
}

// oneByOne runs do for each of ids (each in its own transaction), adding
// up the two counts do returns. An id that fails on its own is handed to
// putOff and the others go on; it returns an error only when putOff fails
// too (the database is gone) or ctx ends.
func oneByOne(ctx context.Context, ids []string, do func(id string) (int, int, error), putOff func(id string, cause error) error) (a, b int, err error) {
	for _, id := range ids {
		x, y, err := do(id)
		a += x
		b += y
		if err == nil {
			continue
		}
		if ctx.Err() != nil {
			return a, b, ctx.Err()
		}
		if perr := putOff(id, err); perr != nil {
			return a, b, fmt.Errorf("%w (and putting %s off failed: %v)", err, id, perr)
		}
	}
	return a, b, nil
}

// deferCycle records that the due cycle of subscription sub failed with
// cause and makes it due again later: a minute after the first failure,
// doubling with each further one up to an hour. The next success clears
// the record (see billTenant).
func (s *Service) deferCycle(ctx context.Context, now time.Time, sub string, cause error) error {
	return s.db.InTx(ctx, func(tx *db.Tx) error {
		var tenant string
		var failures int
		if err := tx.QueryRowContext(ctx, `SELECT tenant_id, failures FROM billing_cycles WHERE subscription_id = $1`, sub).Scan(&tenant, &failures); err != nil {
			return err
		}
		retry := now.Add(min(time.Minute<<min(failures, 6), time.Hour))
		if _, err := tx.ExecContext(ctx, `UPDATE billing_cycles SET failures = failures + 1, last_error = $2, next_at = $3 WHERE subscription_id = $1`,
			sub, cause.Error(), db.TimeOf(retry)); err != nil {
			return err
		}
		s.log.Error("billing cycle failed; retrying later", "tenant", tenant, "subscription", sub, "failures", failures+1, "retry_at", retry, "err", cause)
		return nil
	})
}

// invoiceEvent is the payload of invoice events: the invoice without lines.
func invoiceEvent(inv *Invoice) InvoiceEvent {
	usage := usageSubtotal(inv.Lines)
	return InvoiceEvent{ID: inv.ID, CustomerID: inv.CustomerID, SubscriptionID: inv.SubscriptionID, Status: inv.Status,
		Number: inv.Number, Currency: inv.Currency, Total: inv.Total, AmountDue: inv.AmountDue, PeriodStart: inv.PeriodStart,
		RedemptionIDs: redemptionIDs(inv.Lines), UsageSubtotal: &usage}
}

// usageSubtotal is the sum of the net amounts of the usage lines (what
// analytics reports as usage revenue, beside MRR).
func usageSubtotal(lines []Line) decimal.Decimal {
	sum := decimal.Zero
	for _, l := range lines {
		if l.Kind == LineUsage {
			sum = sum.Add(l.NetAmount)
		}
	}
	return sum
}

// redemptionIDs are the redemptions lines carry a discount of, each once,
// in line order (nil for none, so the field is left out).
func redemptionIDs(lines []Line) []string {
	var out []string
	for _, l := range lines {
		if l.RedemptionID != "" && !slices.Contains(out, l.RedemptionID) {
			out = append(out, l.RedemptionID)
		}
	}
	return out
}
