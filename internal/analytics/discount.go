package analytics

import (
	"sort"
	"strings"

	"github.com/shopspring/decimal"
)

// Coupons in MRR (docs/analytics.md, "Discounts"): a redemption lowers the
// MRR of the subscriptions it applies to from the moment it is redeemed
// until the first invoice it no longer discounts is finalized. Billing
// names the redemptions an invoice carries (InvoiceEvent.RedemptionIDs),
// so the fold counts them down as billing does: an invoice that carries
// one uses up one of its invoices; a finalized invoice of a subscription
// it applies to that does not carry it, once none is left, ends it; a
// voided invoice that carried it gives one back.

var hundred = decimal.NewFromInt(100)

// indexSub records that subscription k belongs to s.customer.
func (p *projection) indexSub(k subKey, s *subRow) {
	c := tcKey{k.tenant, s.customer}
	if p.subIDs[c] == nil {
		p.subIDs[c] = map[string]bool{}
	}
	p.subIDs[c][k.id] = true
}

// subsOfCustomer returns the ids of every subscription of customer c,
// stored or folded.
func (p *projection) subsOfCustomer(c tcKey) ([]string, error) {
	if !p.subsLoaded[c] {
		stored, err := p.load.subsOf(c)
		if err != nil {
			return nil, err
		}
		for id, r := range stored {
			k := subKey{c.tenant, id}
			if _, ok := p.subs[k]; !ok {
				r := r
				p.subs[k] = &r
			}
			if p.subs[k].customer == c.customer {
				p.indexSub(k, p.subs[k])
			}
		}
		p.subsLoaded[c] = true
	}
	ids := make([]string, 0, len(p.subIDs[c]))
	for id := range p.subIDs[c] {
		if p.subs[subKey{c.tenant, id}].customer == c.customer {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids) // the same order on both paths, for the same rounding
	return ids, nil
}

// redemptionsOf returns the ids of customer c's live redemptions, loading
// the stored ones on first use.
func (p *projection) redemptionsOf(c tcKey) ([]string, error) {
	if p.redsOf[c] == nil {
		stored, err := p.load.redemptions(c)
		if err != nil {
			return nil, err
		}
		p.redsOf[c] = map[string]bool{}
		for id, r := range stored {
			k := redKey{c.tenant, id}
			if _, ok := p.reds[k]; !ok {
				r := r
				p.reds[k] = &r
			}
			if p.reds[k] != nil {
				p.redsOf[c][id] = true
			}
		}
	}
	ids := make([]string, 0, len(p.redsOf[c]))
	for id := range p.redsOf[c] {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids, nil
}

// appliesTo tells whether r discounts subscription id of currency cur.
func (r *redRow) appliesTo(id, cur string) bool {
	return (r.subscription == "" || r.subscription == id) && (r.currency == "" || r.currency == cur)
}

// discounted is subscription k's MRR after its customer's redemptions:
// each percentage takes that share of the base, each amount off the share
// of the fixed fee it covers (at most all of it); each discount is rounded
// to 4 places, and the result is never below 0.
func (p *projection) discounted(k subKey, s *subRow) (decimal.Decimal, error) {
	if !s.base.IsPositive() {
		return s.base, nil
	}
	ids, err := p.redemptionsOf(tcKey{k.tenant, s.customer})
	if err != nil {
		return decimal.Zero, err
	}
	mrr := s.base
	for _, id := range ids {
		r := p.reds[redKey{k.tenant, id}]
		if !r.appliesTo(k.id, s.currency) {
			continue
		}
		off := decimal.Zero
		switch {
		case r.percent.IsPositive():
			off = s.base.Mul(r.percent).Div(hundred)
		case r.amount.IsPositive() && s.fee.IsPositive():
			off = s.base.Mul(decimal.Min(r.amount, s.fee)).Div(s.fee)
		}
		mrr = mrr.Sub(off.Round(mrrPlaces))
	}
	return decimal.Max(mrr, decimal.Zero), nil
}

// refresh recomputes the MRR of customer c's subscriptions after its
// redemptions changed on day.
func (p *projection) refresh(c tcKey, day int) error {
	ids, err := p.subsOfCustomer(c)
	if err != nil {
		return err
	}
	for _, id := range ids {
		k := subKey{c.tenant, id}
		s := p.subs[k]
		mrr, err := p.discounted(k, s)
		if err != nil {
			return err
		}
		if delta := mrr.Sub(s.mrr); !delta.IsZero() {
			s.mrr = mrr
			if err := p.addCustomerMRR(c.tenant, c.customer, s.currency, day, delta); err != nil {
				return err
			}
		}
	}
	return nil
}

// redeemed folds coupon.redeemed.
func (p *projection) redeemed(f Fact) error {
	c := tcKey{f.Tenant, f.Customer}
	if _, err := p.redemptionsOf(c); err != nil {
		return err
	}
	p.reds[redKey{f.Tenant, f.Ref}] = &redRow{customer: f.Customer, subscription: f.Detail, currency: f.Currency,
		percent: f.Amount, amount: f.Amount2, left: int(f.Amount3.IntPart())}
	p.redsOf[c][f.Ref] = true
	return p.refresh(c, dayOf(f.At))
}

// countDiscounts counts a finalized or voided invoice against the
// customer's redemptions (see the top of this file).
func (p *projection) countDiscounts(f Fact) error {
	c := tcKey{f.Tenant, f.Customer}
	ids, err := p.redemptionsOf(c)
	if err != nil || len(ids) == 0 {
		return err
	}
	sub, carried, _ := strings.Cut(f.Detail, "|")
	ended := false
	for _, id := range ids {
		r := p.reds[redKey{f.Tenant, id}]
		has := carried != "" && strings.Contains(","+carried+",", ","+id+",")
		switch {
		case f.Type == "invoice.voided":
			if has && r.left >= 0 {
				r.left++
			}
		case has:
			if r.left > 0 {
				r.left--
			}
		case r.left == 0 && r.appliesTo(sub, f.Currency):
			p.reds[redKey{f.Tenant, id}] = nil
			delete(p.redsOf[c], id)
			ended = true
		}
	}
	if !ended {
		return nil
	}
	return p.refresh(c, dayOf(f.At))
}
