package analytics

import (
	"time"

	"github.com/shopspring/decimal"
)

// The fold: facts in journal order → the derived rows. The consumer runs it
// over each batch with the stored rows loaded on demand; Rebuild runs it
// over the whole journal from empty rows. Nothing here reads the clock or
// the database, so the same facts always give the same rows.

type subKey struct{ tenant, id string }

// subRow is a subscription's MRR after discounts (mrr), before them
// (base) and its fixed fee per interval (the share an amount off takes).
type subRow struct {
	customer, currency, status string
	mrr, base, fee             decimal.Decimal
}

// tcKey names a customer across currencies.
type tcKey struct{ tenant, customer string }

type redKey struct{ tenant, id string }

// redRow is a coupon redemption that lowers MRR: percent or amount off
// (currency) of one subscription ("" every one of the customer's), for
// left more invoices (−1 forever).
type redRow struct {
	customer, subscription, currency string
	percent, amount                  decimal.Decimal
	left                             int
}

type custKey struct{ tenant, customer, currency string }

// custRow is a customer's MRR in one currency: now, at the start of the
// last day booked (day), and whether it ended an earlier day with MRR > 0.
type custRow struct {
	mrr, dayStart       decimal.Decimal
	day                 int
	ever                bool
	collected, refunded decimal.Decimal
}

type dayKey struct {
	tenant, currency string
	day              int
}

// dayRow is one day's movements and flows of a tenant in a currency.
type dayRow struct {
	newMRR, expansion, contraction, churn, reactivation decimal.Decimal
	newCustomers, reactivated, churned                  int
	trialsStarted, trialsConverted, trialsLapsed        int
	invoiced, collected, refunded, outstanding          decimal.Decimal
	usage                                               decimal.Decimal // usage lines of the invoices finalized
}

type custDayKey struct {
	tenant, currency, customer string
	day                        int
}

type docKey struct{ tenant, id string }

// docRow is what the last event said of an invoice (amount due while
// open) or a payment (amount refunded).
type docRow struct {
	currency string
	amount   decimal.Decimal
}

// loader reads a stored row the fold has not seen yet (found false when
// there is none).
type loader interface {
	sub(k subKey) (subRow, bool, error)
	customer(k custKey) (custRow, bool, error)
	day(k dayKey) (dayRow, bool, error)
	doc(k docKey) (docRow, bool, error)
	// redemptions are the stored live redemptions of a customer.
	redemptions(k tcKey) (map[string]redRow, error)
	// subsOf are the stored subscriptions of a customer.
	subsOf(k tcKey) (map[string]subRow, error)
}

// noRows is the loader of a rebuild: nothing is stored.
type noRows struct{}

func (noRows) sub(subKey) (subRow, bool, error)             { return subRow{}, false, nil }
func (noRows) customer(custKey) (custRow, bool, error)      { return custRow{}, false, nil }
func (noRows) day(dayKey) (dayRow, bool, error)             { return dayRow{}, false, nil }
func (noRows) doc(docKey) (docRow, bool, error)             { return docRow{}, false, nil }
func (noRows) redemptions(tcKey) (map[string]redRow, error) { return nil, nil }
func (noRows) subsOf(tcKey) (map[string]subRow, error)      { return nil, nil }

// projection holds the rows a fold touched; every map entry is written
// back (a doc with a nil entry is deleted).
type projection struct {
	load     loader
	subs     map[subKey]*subRow
	custs    map[custKey]*custRow
	days     map[dayKey]*dayRow
	custDays map[custDayKey]decimal.Decimal
	docs     map[docKey]*docRow
	// docsStored are the docs loaded from a stored row (the ones a nil
	// entry must delete).
	docsStored map[docKey]bool
	// reds holds the redemptions touched (nil: ended, deleted); redsOf
	// and subIDs index a customer's, once loaded.
	reds       map[redKey]*redRow
	redsOf     map[tcKey]map[string]bool
	subIDs     map[tcKey]map[string]bool
	subsLoaded map[tcKey]bool
	// empty: nothing is stored (a rebuild), so a nil doc needs no delete.
	empty bool
}

func newProjection(l loader) *projection {
	return &projection{load: l, subs: map[subKey]*subRow{}, custs: map[custKey]*custRow{}, days: map[dayKey]*dayRow{},
		custDays: map[custDayKey]decimal.Decimal{}, docs: map[docKey]*docRow{}, docsStored: map[docKey]bool{}, reds: map[redKey]*redRow{},
		redsOf: map[tcKey]map[string]bool{}, subIDs: map[tcKey]map[string]bool{}, subsLoaded: map[tcKey]bool{}}
}

func newRebuild() *projection {
	p := newProjection(noRows{})
	p.empty = true
	return p
}

// dayOf is t's UTC day: days since 1970-01-01.
func dayOf(t time.Time) int {
	s := t.Unix()
	d := s / 86400
	if s < 0 && s%86400 != 0 {
		d--
	}
	return int(d)
}

// dateOf is the midnight (UTC) starting day d.
func dateOf(d int) time.Time { return time.Unix(int64(d)*86400, 0).UTC() }

// row returns the row of k the fold holds, loading it on first use; a
// row that is not stored starts as orMissing(k).
func row[K comparable, V any](m map[K]*V, k K, load func(K) (V, bool, error), orMissing func() *V) (*V, error) {
	if r, ok := m[k]; ok {
		return r, nil
	}
	v, found, err := load(k)
	if err != nil {
		return nil, err
	}
	r := &v
	if !found {
		r = orMissing()
	}
	m[k] = r
	return r, nil
}

func (p *projection) sub(k subKey) (*subRow, error) {
	return row(p.subs, k, p.load.sub, func() *subRow { return &subRow{} })
}

func (p *projection) customer(k custKey, day int) (*custRow, error) {
	return row(p.custs, k, p.load.customer, func() *custRow { return &custRow{day: day} })
}

func (p *projection) day(k dayKey) (*dayRow, error) {
	return row(p.days, k, p.load.day, func() *dayRow { return &dayRow{} })
}

// doc returns nil for a document nothing is stored of. A rebuild stores
// nothing: only what its fold put in the map exists, and absent documents
// are not added (2.4 M settled invoices would otherwise stay as nil
// entries).
func (p *projection) doc(k docKey) (*docRow, error) {
	if p.empty {
		return p.docs[k], nil
	}
	if r, ok := p.docs[k]; ok {
		return r, nil
	}
	v, found, err := p.load.doc(k)
	if err != nil || !found {
		p.docs[k] = nil
		return nil, err
	}
	p.docs[k], p.docsStored[k] = &v, true
	return &v, nil
}

// apply folds one fact.
func (p *projection) apply(f Fact) error {
	switch {
	case len(f.Type) > 13 && f.Type[:13] == "subscription.":
		return p.subscription(f)
	case len(f.Type) > 8 && f.Type[:8] == "invoice.":
		return p.invoice(f)
	case f.Type == "payment.succeeded" || f.Type == "payment.refunded":
		return p.payment(f)
	case f.Type == "coupon.redeemed":
		return p.redeemed(f)
	}
	return nil
}

func (p *projection) subscription(f Fact) error {
	s, err := p.sub(subKey{f.Tenant, f.Ref})
	if err != nil {
		return err
	}
	oldCustomer, oldCurrency, oldMRR := s.customer, s.currency, s.mrr
	s.customer, s.currency, s.status, s.base, s.fee = f.Customer, f.Currency, f.Status, f.Amount, f.Amount2
	p.indexSub(subKey{f.Tenant, f.Ref}, s)
	if s.mrr, err = p.discounted(subKey{f.Tenant, f.Ref}, s); err != nil {
		return err
	}
	day := dayOf(f.At)
	if oldCurrency != "" && (oldCurrency != f.Currency || oldCustomer != f.Customer) && !oldMRR.IsZero() {
		if err := p.addCustomerMRR(f.Tenant, oldCustomer, oldCurrency, day, oldMRR.Neg()); err != nil {
			return err
		}
		oldMRR = decimal.Zero
	}
	if err := p.addCustomerMRR(f.Tenant, f.Customer, f.Currency, day, s.mrr.Sub(oldMRR)); err != nil {
		return err
	}
	// Trials: begun; converted (trialing → active); lapsed (trialing →
	// canceled or ended).
	var started, converted, lapsed int
	switch {
	case f.Type == "subscription.trial_started":
		started = 1
	case f.Detail == "trialing" && f.Status == "active":
		converted = 1
	case f.Detail == "trialing" && (f.Status == "canceled" || f.Status == "ended"):
		lapsed = 1
	}
	if started+converted+lapsed > 0 {
		d, err := p.day(dayKey{f.Tenant, f.Currency, day})
		if err != nil {
			return err
		}
		d.trialsStarted += started
		d.trialsConverted += converted
		d.trialsLapsed += lapsed
	}
	return nil
}

// movement classifies a customer's day: from start to end MRR, ever
// telling whether it ended an earlier day with MRR > 0.
type movement struct {
	kind   int // 0 none, else one of the constants below
	amount decimal.Decimal
}

const (
	mvNew = iota + 1
	mvExpansion
	mvContraction
	mvChurn
	mvReactivation
)

func classify(start, end decimal.Decimal, ever bool) movement {
	switch {
	case start.IsZero() && end.IsPositive():
		if ever {
			return movement{mvReactivation, end}
		}
		return movement{mvNew, end}
	case start.IsPositive() && end.IsZero():
		return movement{mvChurn, start.Neg()}
	case start.IsPositive() && end.GreaterThan(start):
		return movement{mvExpansion, end.Sub(start)}
	case start.IsPositive() && end.LessThan(start):
		return movement{mvContraction, end.Sub(start)}
	}
	return movement{}
}

func (d *dayRow) add(m movement, sign int) {
	a := m.amount
	if sign < 0 {
		a = a.Neg()
	}
	switch m.kind {
	case mvNew:
		d.newMRR = d.newMRR.Add(a)
		d.newCustomers += sign
	case mvExpansion:
		d.expansion = d.expansion.Add(a)
	case mvContraction:
		d.contraction = d.contraction.Add(a)
	case mvChurn:
		d.churn = d.churn.Add(a)
		d.churned += sign
	case mvReactivation:
		d.reactivation = d.reactivation.Add(a)
		d.reactivated += sign
	}
}

// addCustomerMRR changes a customer's MRR by delta on day (or on the last
// day already booked for it, when that is later) and re-classifies its
// day.
func (p *projection) addCustomerMRR(tenant, customer, currency string, day int, delta decimal.Decimal) error {
	k := custKey{tenant, customer, currency}
	c, err := p.customer(k, day)
	if err != nil {
		return err
	}
	if delta.IsZero() {
		return nil
	}
	if day < c.day {
		day = c.day
	}
	if day > c.day {
		c.ever = c.ever || c.mrr.IsPositive()
		c.dayStart, c.day = c.mrr, day
	}
	before := classify(c.dayStart, c.mrr, c.ever)
	c.mrr = c.mrr.Add(delta)
	after := classify(c.dayStart, c.mrr, c.ever)
	d, err := p.day(dayKey{tenant, currency, day})
	if err != nil {
		return err
	}
	d.add(before, -1)
	d.add(after, 1)
	p.custDays[custDayKey{tenant, currency, customer, day}] = c.mrr
	return nil
}

// setOutstanding records that invoice id owes due (0 unless open).
func (p *projection) setOutstanding(f Fact, id string, due decimal.Decimal, open bool) error {
	if !open {
		due = decimal.Zero
	}
	k := docKey{f.Tenant, id}
	old, err := p.doc(k)
	if err != nil {
		return err
	}
	prev := decimal.Zero
	if old != nil {
		prev = old.amount
	}
	if prev.Equal(due) {
		return nil
	}
	switch {
	case due.IsZero() && p.empty:
		delete(p.docs, k) // nothing stored to delete: keep a rebuild's map to the open invoices
	case due.IsZero():
		p.docs[k] = nil
	default:
		p.docs[k] = &docRow{currency: f.Currency, amount: due}
	}
	d, err := p.day(dayKey{f.Tenant, f.Currency, dayOf(f.At)})
	if err != nil {
		return err
	}
	d.outstanding = d.outstanding.Add(due.Sub(prev))
	return nil
}

func (p *projection) invoice(f Fact) error {
	if f.Type == "invoice.finalized" {
		d, err := p.day(dayKey{f.Tenant, f.Currency, dayOf(f.At)})
		if err != nil {
			return err
		}
		d.invoiced, d.usage = d.invoiced.Add(f.Amount), d.usage.Add(f.Amount3)
	}
	if f.Type == "invoice.finalized" || f.Type == "invoice.voided" {
		if err := p.countDiscounts(f); err != nil {
			return err
		}
	}
	return p.setOutstanding(f, f.Ref, f.Amount2, f.Status == "open")
}

func (p *projection) payment(f Fact) error {
	day := dayOf(f.At)
	d, err := p.day(dayKey{f.Tenant, f.Currency, day})
	if err != nil {
		return err
	}
	c, err := p.customer(custKey{f.Tenant, f.Customer, f.Currency}, day)
	if err != nil {
		return err
	}
	switch f.Type {
	case "payment.succeeded":
		d.collected = d.collected.Add(f.Amount)
		c.collected = c.collected.Add(f.Amount)
	case "payment.refunded":
		k := docKey{f.Tenant, f.Ref}
		old, err := p.doc(k)
		if err != nil {
			return err
		}
		prev := decimal.Zero
		if old != nil {
			prev = old.amount
		}
		if delta := f.Amount2.Sub(prev); delta.IsPositive() {
			d.refunded = d.refunded.Add(delta)
			c.refunded = c.refunded.Add(delta)
			p.docs[k] = &docRow{currency: f.Currency, amount: f.Amount2}
		}
	}
	if f.Detail != "" {
		return p.setOutstanding(f, f.Detail, f.Amount3, f.Status == "open")
	}
	return nil
}
