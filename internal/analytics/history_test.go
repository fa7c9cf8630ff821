package analytics

import (
	"context"
	"crypto/rand"
	"log/slog"
	"sort"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/abacusbilling/abacus/internal/billing"
	"github.com/abacusbilling/abacus/internal/catalog"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
	"github.com/abacusbilling/abacus/internal/payments"
	"github.com/abacusbilling/abacus/internal/payments/paytest"
	"github.com/abacusbilling/abacus/internal/period"
	"github.com/abacusbilling/abacus/internal/pricing"
	"github.com/abacusbilling/abacus/internal/subscription"
)

// expectedDay is what the definitions say about one day of one currency,
// computed by the test from its own schedule of customers' MRR.
type expectedDay struct {
	mrr, newMRR, expansion, contraction, churn, reactivation decimal.Decimal
	customers, churned                                       int
}

// expected derives the daily figures from a schedule of (day, customer,
// currency, MRR from that day on), by docs/analytics.md, without the code
// under test: each customer's MRR at the end of each day, each day's
// change classified once.
func expected(sched []mrrAt, first, last time.Time) map[string]map[string]expectedDay {
	type ck struct{ cus, cur string }
	out := map[string]map[string]expectedDay{}
	mrrOf := map[ck]decimal.Decimal{}
	paidBefore := map[ck]bool{}
	byDay := map[string][]mrrAt{}
	for _, s := range sched {
		byDay[s.day] = append(byDay[s.day], s)
	}
	for t := first; !t.After(last); t = t.AddDate(0, 0, 1) {
		day := t.Format(dateLayout)
		start := map[ck]decimal.Decimal{}
		for k, v := range mrrOf {
			start[k] = v
		}
		for _, s := range byDay[day] {
			mrrOf[ck{s.cus, s.cur}] = d(s.mrr)
		}
		days := map[string]expectedDay{}
		for k, end := range mrrOf {
			e := days[k.cur]
			st := start[k]
			switch {
			case st.IsZero() && end.IsPositive() && paidBefore[k]:
				e.reactivation = e.reactivation.Add(end)
			case st.IsZero() && end.IsPositive():
				e.newMRR = e.newMRR.Add(end)
			case st.IsPositive() && end.IsZero():
				e.churn, e.churned = e.churn.Sub(st), e.churned+1
			case end.GreaterThan(st):
				e.expansion = e.expansion.Add(end.Sub(st))
			case end.LessThan(st):
				e.contraction = e.contraction.Add(end.Sub(st))
			}
			e.mrr = e.mrr.Add(end)
			if end.IsPositive() {
				e.customers++
				paidBefore[k] = true
			}
			days[k.cur] = e
		}
		out[day] = days
	}
	return out
}

type mrrAt struct {
	day, cus, cur, mrr string
}

// TestTwoYearHistory scripts two years of a tenant on a fake clock — new,
// upgrade and downgrade with proration, seats, an annual plan, a trial that
// converts and one that lapses, pause and resume, cancel now and at period
// end, reactivation, a refund, a customer in another currency — with the
// real catalog, subscription, billing and payments services, feeds their
// events to the projection and checks every daily MRR point, the
// movements, churn and retention against figures the test computes from
// its own schedule; then that a rebuild gives the same rows, and that the
// revenue and balances agree with the invoices and payments.
func TestTwoYearHistory(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, dd *db.DB) {
		start := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
		ten := paytest.NewTenant(t, dd, start)
		key := make([]byte, 32)
		_, _ = rand.Read(key)
		pays, err := payments.NewService(dd, ten.Clock, slog.New(slog.DiscardHandler), payments.Config{EncryptionKey: key}, ten.Billing)
		must(t, err)
		b := &bundle{t: t, d: dd, clock: ten.Clock, ctx: ten.Ctx, tenant: ten.ID, cat: ten.Catalog, subs: ten.Subs}
		b.svc = NewService(dd, ten.Catalog, ten.Clock, slog.New(slog.DiscardHandler), Ports{Balances: pays, Aging: pays})
		customer := func(name, cur string) string {
			c, err := b.cat.CreateCustomer(b.ctx, catalog.CustomerInput{Name: name, Currency: cur, Email: "x@example.com",
				Address: catalog.Address{Country: "US"}})
			must(t, err)
			return c.ID
		}
		pro := b.plan("pro", "USD", "50", period.Monthly, 0)
		proTrial := b.plan("pro-trial", "USD", "50", period.Monthly, 14)
		business := b.plan("business", "USD", "100", period.Monthly, 0)
		annual := b.plan("annual", "USD", "1200", period.Yearly, 0)
		proEUR := b.plan("pro-eur", "EUR", "40", period.Monthly, 0)
		// L pays 10.00 a month and 0.01 per API call, billed in arrears:
		// usage revenue, never MRR.
		ten.Usage.AddMeter(ten.ID, "api")
		metered, err := b.cat.CreatePlan(b.ctx, catalog.PlanInput{Key: "metered", Name: "Metered"})
		must(t, err)
		_, err = b.cat.CreateVersion(b.ctx, metered.ID, catalog.VersionSpec{BillingInterval: period.Monthly, Currency: "USD",
			Charges: []pricing.Charge{{Key: "base", Kind: pricing.ChargeFee, Fee: &pricing.Fee{Amount: d("10")}},
				{Key: "api", Kind: pricing.ChargeUsage, Meter: "api", Price: &pricing.Price{Model: pricing.PerUnit, UnitAmount: d("0.01")}}}})
		must(t, err)
		_, err = b.cat.PublishVersion(b.ctx, metered.ID, 1)
		must(t, err)
		ids := map[string]string{}
		for _, n := range []string{"A", "B", "C", "D", "E", "F", "H", "I", "J", "K"} {
			ids[n] = customer(n, "USD")
		}
		ids["G"] = customer("G", "EUR")
		lc, err := b.cat.CreateCustomer(b.ctx, catalog.CustomerInput{Name: "L", Currency: "USD", Email: "x@example.com",
			Address: catalog.Address{Country: "US"}, Subjects: []string{"l-app"}})
		must(t, err)
		ids["L"] = lc.ID
		subs := map[string]string{}
		create := func(name, cus, plan string, qty int64, skipTrial bool) {
			q := decimal.NewFromInt(qty)
			s, err := b.subs.Create(b.ctx, subscription.CreateInput{CustomerID: ids[cus], PlanID: plan, Quantity: &q, SkipTrial: skipTrial})
			must(t, err)
			subs[name] = s.ID
		}
		coupon := func(code string, in billing.CouponInput, cus, sub string) string {
			in.Code = code
			_, err := ten.Billing.CreateCoupon(b.ctx, in)
			must(t, err)
			r, err := ten.Billing.Redeem(b.ctx, code, billing.RedeemInput{CustomerID: ids[cus], SubscriptionID: sub})
			must(t, err)
			return r.ID
		}
		pct20, pct50, off30 := d("20"), d("50"), d("30")
		var redI, redK string
		// The script: what happens on which day (at noon).
		script := map[string]func(){
			"2025-04-20": func() { create("I", "I", pro, 1, true) },
			"2025-05-06": func() { // 20 % off I's next two invoices
				redI = coupon("TWOMONTHS", billing.CouponInput{PercentOff: &pct20, Duration: billing.Repeating, DurationPeriods: 2}, "I", subs["I"])
			},
			"2025-06-01": func() { create("J", "J", pro, 2, true) },
			"2025-06-10": func() { // 30.00 off every invoice of J, forever
				coupon("THIRTY", billing.CouponInput{AmountOff: &off30, Currency: "USD", Duration: billing.Forever}, "J", "")
			},
			"2025-08-02": func() { create("K", "K", pro, 1, true) },
			"2025-08-04": func() { // half off K's next invoice, once
				redK = coupon("HALFONCE", billing.CouponInput{PercentOff: &pct50, Duration: billing.Once}, "K", "")
			},
			"2025-01-01": func() { create("A", "A", pro, 1, true); create("H", "H", pro, 1, true) },
			"2025-01-15": func() { create("E", "E", pro, 1, true) },
			"2025-02-01": func() { create("B", "B", annual, 1, true); create("F", "F", pro, 1, true) },
			"2025-03-01": func() { create("G", "G", proEUR, 1, true) },
			"2025-03-10": func() { // upgrade, prorated
				_, err := b.subs.ChangePlan(b.ctx, subs["A"], subscription.ChangePlanInput{PlanID: business, When: subscription.Now})
				must(t, err)
			},
			"2025-04-01": func() { create("C", "C", proTrial, 1, false) }, // converts on 04-15
			"2025-05-01": func() { create("D", "D", proTrial, 1, false) },
			"2025-05-05": func() { // the trial lapses
				_, err := b.subs.Cancel(b.ctx, subs["D"], subscription.CancelInput{When: subscription.Now})
				must(t, err)
			},
			"2025-06-15": func() { // seats 1 → 3
				_, err := b.subs.ChangeQuantity(b.ctx, subs["A"], decimal.NewFromInt(3))
				must(t, err)
			},
			"2025-07-01": func() {
				_, err := b.subs.Pause(b.ctx, subs["E"])
				must(t, err)
			},
			"2025-08-01": func() {
				_, err := b.subs.Resume(b.ctx, subs["E"])
				must(t, err)
			},
			"2025-09-01": func() { // downgrade, prorated, keeps 3 seats
				_, err := b.subs.ChangePlan(b.ctx, subs["A"], subscription.ChangePlanInput{PlanID: pro, When: subscription.Now})
				must(t, err)
			},
			"2025-10-10": func() {
				_, err := b.subs.Cancel(b.ctx, subs["F"], subscription.CancelInput{When: subscription.Now})
				must(t, err)
			},
			"2026-02-10": func() { // ends at the period end, 2026-03-01
				_, err := b.subs.Cancel(b.ctx, subs["H"], subscription.CancelInput{When: subscription.PeriodEnd})
				must(t, err)
			},
			"2026-03-01": func() { create("F2", "F", pro, 1, true) }, // F comes back
			"2026-01-01": func() { create("L", "L", metered.ID, 1, true) },
		}
		// The customers' MRR by the definitions, from the test's own reading
		// of the script.
		sched := []mrrAt{
			{"2025-01-01", "A", "USD", "50"}, {"2025-01-01", "H", "USD", "50"},
			{"2025-01-15", "E", "USD", "50"},
			{"2025-02-01", "B", "USD", "100"}, {"2025-02-01", "F", "USD", "50"},
			{"2025-03-01", "G", "EUR", "40"},
			{"2025-03-10", "A", "USD", "100"},
			{"2025-04-15", "C", "USD", "50"},
			{"2025-06-15", "A", "USD", "300"},
			{"2025-07-01", "E", "USD", "0"},
			{"2025-08-01", "E", "USD", "50"},
			{"2025-09-01", "A", "USD", "150"},
			{"2025-10-10", "F", "USD", "0"},
			{"2026-03-01", "H", "USD", "0"}, {"2026-03-01", "F", "USD", "50"},
			{"2026-01-01", "L", "USD", "10"}, // the fee only: its usage is not MRR
		}
		last := time.Date(2026, 12, 31, 12, 0, 0, 0, time.UTC)
		refunded := false
		for day := start; !day.After(last); day = day.AddDate(0, 0, 1) {
			b.at(day)
			if f := script[day.Format(dateLayout)]; f != nil {
				f()
			}
			if day.Year() == 2026 && day.Day()%9 == 4 { // L's calls: 4th, 13th, 22nd, 31st
				ten.Usage.Record(ten.ID, "api", "l-app", day, decimal.NewFromInt(int64(100*day.YearDay())))
			}
			st, err := ten.Billing.RunOnce(context.Background(), day)
			must(t, err)
			if st.Finalized == 0 && day.Day() != 1 {
				continue // nothing new to pay (a refunded invoice waits for the next payday)
			}
			// Pay what is open, except G's invoices from October 2026 (left
			// outstanding); refund part of the first payment in May 2025.
			open, err := ten.Billing.ListInvoices(b.ctx, billing.ListFilter{Status: billing.Open, Limit: 100})
			must(t, err)
			for _, inv := range open.Data {
				if inv.CustomerID == ids["G"] && !day.Before(time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)) {
					continue
				}
				p, err := pays.RecordManual(b.ctx, payments.ManualPaymentInput{InvoiceID: inv.ID, Amount: inv.AmountDue})
				must(t, err)
				if !refunded && day.Format("2006-01") == "2025-05" {
					amt := d("20")
					_, err := pays.Refund(b.ctx, p.ID, payments.RefundInput{Amount: &amt})
					must(t, err)
					refunded = true
				}
			}
			if day.Day() == 1 {
				b.feed(50) // as the consumer would: in batches, each delivered twice
			}
		}
		b.feed(50)
		if !refunded {
			t.Fatal("the script refunded nothing")
		}

		// Coupons, by the definitions: MRR after the discount from the
		// redemption until the first invoice that no longer carries it is
		// finalized (billing's invoices say when).
		sched = append(sched,
			mrrAt{"2025-04-20", "I", "USD", "50"}, mrrAt{"2025-05-06", "I", "USD", "40"}, mrrAt{discountEnd(t, ten.Billing, b, ids["I"], redI), "I", "USD", "50"},
			mrrAt{"2025-06-01", "J", "USD", "100"}, mrrAt{"2025-06-10", "J", "USD", "70"}, // 100 × 30 / 100 off
			mrrAt{"2025-08-02", "K", "USD", "50"}, mrrAt{"2025-08-04", "K", "USD", "25"}, mrrAt{discountEnd(t, ten.Billing, b, ids["K"], redK), "K", "USD", "50"})
		sort.SliceStable(sched, func(i, j int) bool { return sched[i].day < sched[j].day })
		want := expected(sched, start, last)
		for _, cur := range []string{"USD", "EUR"} {
			pts, err := b.svc.MRR(b.ctx, Query{From: "2025-01-01", To: "2026-12-31", Interval: "day", Currency: cur})
			must(t, err)
			if len(pts) != len(want) {
				t.Fatalf("%s: %d daily points, want %d", cur, len(pts), len(want))
			}
			for _, p := range pts {
				e := want[p.Date][cur]
				got := []string{p.MRR, p.New, p.Expansion, p.Contraction, p.Churn, p.Reactivation}
				exp := []string{mrrString(e.mrr), mrrString(e.newMRR), mrrString(e.expansion), mrrString(e.contraction), mrrString(e.churn), mrrString(e.reactivation)}
				for i := range got {
					if got[i] != exp[i] || p.Customers != e.customers {
						t.Errorf("%s %s: got mrr/new/expansion/contraction/churn/reactivation %v customers %d, want %v customers %d",
							cur, p.Date, got, p.Customers, exp, e.customers)
						break
					}
				}
			}
		}
		// Monthly churn and customers from the same schedule.
		churn, err := b.svc.Churn(b.ctx, Query{From: "2025-01-01", To: "2026-12-31", Currency: "USD"})
		must(t, err)
		if len(churn) != 24 {
			t.Fatalf("%d monthly churn points, want 24", len(churn))
		}
		for _, p := range churn {
			end, _ := time.Parse(dateLayout, p.Date)
			first := time.Date(end.Year(), end.Month(), 1, 12, 0, 0, 0, time.UTC)
			startMRR, startCus := decimal.Zero, 0
			if prev, ok := want[first.AddDate(0, 0, -1).Format(dateLayout)]; ok {
				startMRR, startCus = prev["USD"].mrr, prev["USD"].customers
			}
			var lost, net decimal.Decimal
			churned := 0
			for t := first; !t.After(end.Add(12 * time.Hour)); t = t.AddDate(0, 0, 1) {
				e := want[t.Format(dateLayout)]["USD"]
				lost = lost.Sub(e.churn).Sub(e.contraction)
				net = net.Sub(e.churn).Sub(e.contraction).Sub(e.expansion).Sub(e.reactivation)
				churned += e.churned
			}
			wantLogo, wantGross, wantNet := "0.0000", "0.0000", "0.0000"
			if startCus > 0 {
				wantLogo = decimal.NewFromInt(int64(churned)).DivRound(decimal.NewFromInt(int64(startCus)), 8).StringFixed(4)
			}
			if startMRR.IsPositive() {
				wantGross, wantNet = lost.DivRound(startMRR, 8).StringFixed(4), net.DivRound(startMRR, 8).StringFixed(4)
			}
			if p.StartMRR != mrrString(startMRR) || p.StartCustomers != startCus || p.ChurnedCustomers != churned ||
				p.LogoChurnRate != wantLogo || p.GrossRevenueChurnRate != wantGross || p.NetRevenueChurnRate != wantNet {
				t.Errorf("churn %s: got %+v; want start %s/%d churned %d logo %s gross %s net %s", p.Date, p, mrrString(startMRR), startCus,
					churned, wantLogo, wantGross, wantNet)
			}
		}
		// Retention at the end of 2026 over the cohort paying at the end of
		// 2025: A 150→150, B 100→100, C 50→50, E 50→50, H 50→0 (F churned
		// in October 2025, not in the cohort).
		ret, err := b.svc.Retention(b.ctx, Query{From: "2026-12-01", To: "2026-12-31", Currency: "USD"})
		must(t, err)
		cohort := want["2025-12-31"]
		base, nowSum, gross, n := decimal.Zero, decimal.Zero, decimal.Zero, 0
		endOf := func(cus string, day string) decimal.Decimal {
			v := decimal.Zero
			for _, s := range sched {
				if s.cus == cus && s.day <= day {
					v = d(s.mrr)
				}
			}
			return v
		}
		for _, cus := range []string{"A", "B", "C", "D", "E", "F", "H", "I", "J", "K"} {
			then := endOf(cus, "2025-12-31")
			if !then.IsPositive() {
				continue
			}
			now := endOf(cus, "2026-12-31")
			n, base, nowSum, gross = n+1, base.Add(then), nowSum.Add(now), gross.Add(decimal.Min(then, now))
		}
		if !base.Equal(cohort["USD"].mrr) {
			t.Fatalf("the test's cohort base %s is not the MRR of 2025-12-31 %s", base, cohort["USD"].mrr)
		}
		if len(ret) != 1 || ret[0].CohortCustomers != n || ret[0].BaseMRR != mrrString(base) || ret[0].RetainedMRR != mrrString(nowSum) ||
			ret[0].NetRevenueRetention != nowSum.DivRound(base, 8).StringFixed(4) || ret[0].GrossRevenueRetention != gross.DivRound(base, 8).StringFixed(4) {
			t.Errorf("retention: got %+v; want cohort %d base %s now %s gross %s", ret, n, base, nowSum, gross)
		}
		// Trials: one converted in April 2025, one lapsed in May 2025.
		cs, err := b.svc.Customers(b.ctx, Query{From: "2025-04-01", To: "2025-05-31", Currency: "USD"})
		must(t, err)
		if len(cs) != 2 || cs[0].TrialsStarted != 1 || cs[0].TrialsConverted != 1 || cs[0].TrialConversionRate != "1.0000" ||
			cs[1].TrialsStarted != 1 || cs[1].TrialsLapsed != 1 || cs[1].TrialConversionRate != "0.0000" {
			t.Errorf("trials: %+v", cs)
		}

		// Revenue and balances agree with the invoices and payments.
		checkMoney(t, b, ten.Billing, pays, ids)
		checkUsageRevenue(t, b, ten.Billing)

		before := b.dump()
		if _, err := b.svc.Rebuild(b.ctx, b.tenant); err != nil {
			t.Fatal(err)
		}
		if after := b.dump(); after != before {
			t.Errorf("rebuilt rows differ from the incremental ones")
		}
	})
}

// discountEnd is the day the first invoice of customer cus finalized
// after one that carried redemption red, not carrying it itself, was
// finalized: the day the discount stops lowering MRR.
func discountEnd(t *testing.T, bill *billing.Service, b *bundle, cus, red string) string {
	t.Helper()
	page, err := bill.ListInvoices(b.ctx, billing.ListFilter{CustomerID: cus, Limit: 100})
	must(t, err)
	var invs []billing.Invoice
	for _, inv := range page.Data {
		if inv.FinalizedAt != nil {
			full, err := bill.GetInvoice(b.ctx, inv.ID)
			must(t, err)
			invs = append(invs, full)
		}
	}
	sort.Slice(invs, func(i, j int) bool { return invs[i].FinalizedAt.Before(*invs[j].FinalizedAt) })
	carried := 0
	for _, inv := range invs {
		has := false
		for _, l := range inv.Lines {
			has = has || l.RedemptionID == red
		}
		switch {
		case has:
			carried++
		case carried > 0:
			return inv.FinalizedAt.UTC().Format(dateLayout)
		}
	}
	t.Fatalf("redemption %s: %d invoices carried it and none followed", red, carried)
	return ""
}

// checkMoney compares the revenue series and each customer's figures with
// what billing's invoices and payments' ledger say.
func checkMoney(t *testing.T, b *bundle, bill *billing.Service, pays *payments.Service, ids map[string]string) {
	t.Helper()
	invoiced, due := map[string]decimal.Decimal{}, map[string]decimal.Decimal{}
	cursor := ""
	for {
		page, err := bill.ListInvoices(b.ctx, billing.ListFilter{Limit: 100, Cursor: cursor})
		must(t, err)
		for _, inv := range page.Data {
			if inv.Status == billing.Draft || inv.Status == billing.Void {
				continue
			}
			invoiced[inv.Currency] = invoiced[inv.Currency].Add(inv.Total)
			if inv.Status == billing.Open {
				due[inv.Currency] = due[inv.Currency].Add(inv.AmountDue)
			}
		}
		if cursor = page.NextCursor; cursor == "" {
			break
		}
	}
	collected, refunded := map[string]decimal.Decimal{}, map[string]decimal.Decimal{}
	byCustomer := map[string]decimal.Decimal{}
	cursor = ""
	for {
		page, err := pays.ListPayments(b.ctx, payments.PaymentFilter{Limit: 100, Cursor: cursor})
		must(t, err)
		for _, p := range page.Data {
			if p.Status != payments.StatusSucceeded {
				continue
			}
			collected[p.Currency] = collected[p.Currency].Add(p.Amount)
			refunded[p.Currency] = refunded[p.Currency].Add(p.AmountRefunded)
			byCustomer[p.CustomerID] = byCustomer[p.CustomerID].Add(p.Amount).Sub(p.AmountRefunded)
		}
		if cursor = page.NextCursor; cursor == "" {
			break
		}
	}
	if !due["EUR"].IsPositive() || !refunded["USD"].Equal(d("20")) {
		t.Fatalf("the script should leave EUR outstanding and 20 USD refunded: due %v refunded %v", due, refunded)
	}
	for _, cur := range []string{"USD", "EUR"} {
		rev, err := b.svc.Revenue(b.ctx, Query{From: "2025-01-01", To: "2026-12-31", Currency: cur})
		must(t, err)
		var inv, col, ref decimal.Decimal
		for _, p := range rev {
			inv, col, ref = inv.Add(d(p.Invoiced)), col.Add(d(p.Collected)), ref.Add(d(p.Refunded))
		}
		out := d(rev[len(rev)-1].Outstanding)
		if !inv.Equal(invoiced[cur]) || !col.Equal(collected[cur]) || !ref.Equal(refunded[cur]) || !out.Equal(due[cur]) {
			t.Errorf("%s revenue: invoiced %s collected %s refunded %s outstanding %s; invoices and payments say %s %s %s %s",
				cur, inv, col, ref, out, invoiced[cur], collected[cur], refunded[cur], due[cur])
		}
	}
	names := make([]string, 0, len(ids))
	for n := range ids {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		id := ids[n]
		fig, err := b.svc.Customer(b.ctx, id)
		must(t, err)
		ltv := decimal.Zero
		for _, c := range fig.Currencies {
			ltv = ltv.Add(d(c.LifetimeValue))
		}
		if !ltv.Equal(byCustomer[id]) {
			t.Errorf("customer %s: lifetime value %s, payments say %s", n, ltv, byCustomer[id])
		}
		// The balance is what the customer's open invoices still owe.
		page, err := bill.ListInvoices(b.ctx, billing.ListFilter{CustomerID: id, Status: billing.Open, Limit: 100})
		must(t, err)
		owed := decimal.Zero
		for _, inv := range page.Data {
			owed = owed.Add(inv.AmountDue)
		}
		if fig.Balance == nil || !fig.Balance.Due.Equal(owed) || !fig.Balance.Net.Equal(owed.Sub(fig.Balance.Credits)) {
			t.Errorf("customer %s: balance %+v, open invoices owe %s", n, fig.Balance, owed)
		}
	}
}

// checkUsageRevenue compares usage revenue with billing's usage lines: each
// monthly MRR point's usage_revenue is what the invoices finalized in its
// calendar month charged for usage (net of tax), so is one mid-month day's
// (the month up to it), and the revenue series' usage sums to every usage
// line; MRR itself was checked without it.
func checkUsageRevenue(t *testing.T, b *bundle, bill *billing.Service) {
	t.Helper()
	type finalized struct {
		day   string
		usage decimal.Decimal
	}
	var invs []finalized
	total := decimal.Zero
	cursor := ""
	for {
		page, err := bill.ListInvoices(b.ctx, billing.ListFilter{Limit: 100, Cursor: cursor})
		must(t, err)
		for _, inv := range page.Data {
			if inv.Status == billing.Draft || inv.Status == billing.Void || inv.Currency != "USD" {
				continue
			}
			full, err := bill.GetInvoice(b.ctx, inv.ID)
			must(t, err)
			u := decimal.Zero
			for _, l := range full.Lines {
				if l.Kind == billing.LineUsage {
					u = u.Add(l.NetAmount)
				}
			}
			invs = append(invs, finalized{full.FinalizedAt.UTC().Format(dateLayout), u})
			total = total.Add(u)
		}
		if cursor = page.NextCursor; cursor == "" {
			break
		}
	}
	if !total.IsPositive() {
		t.Fatal("the script invoiced no usage")
	}
	between := func(after, upTo string) decimal.Decimal { // invoices finalized in (after, upTo]
		sum := decimal.Zero
		for _, inv := range invs {
			if inv.day > after && inv.day <= upTo {
				sum = sum.Add(inv.usage)
			}
		}
		return sum
	}
	pts, err := b.svc.MRR(b.ctx, Query{From: "2026-01-01", To: "2026-12-31", Interval: "month", Currency: "USD"})
	must(t, err)
	for _, p := range pts {
		end, _ := time.Parse(dateLayout, p.Date)
		before := time.Date(end.Year(), end.Month(), 0, 0, 0, 0, 0, time.UTC).Format(dateLayout) // last day of the month before
		if want := between(before, p.Date); p.UsageRevenue != want.StringFixed(2) {
			t.Errorf("usage revenue of %s: %s, the invoices finalized that month charged %s for usage", p.Date, p.UsageRevenue, want.StringFixed(2))
		}
	}
	day, err := b.svc.MRR(b.ctx, Query{From: "2026-03-15", To: "2026-03-15", Interval: "day", Currency: "USD"})
	must(t, err)
	if want := between("2026-02-15", "2026-03-15"); len(day) != 1 || day[0].UsageRevenue != want.StringFixed(2) {
		t.Errorf("usage revenue of 2026-03-15: %+v, want %s (16 February to 15 March)", day, want.StringFixed(2))
	}
	rev, err := b.svc.Revenue(b.ctx, Query{From: "2025-01-01", To: "2026-12-31", Currency: "USD"})
	must(t, err)
	sum := decimal.Zero
	for _, p := range rev {
		sum = sum.Add(d(p.Usage))
	}
	if !sum.Equal(total) {
		t.Errorf("revenue series usage sums to %s; the usage lines to %s", sum, total)
	}
}
