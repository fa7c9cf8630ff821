package analytics

import (
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
	"github.com/abacusbilling/abacus/internal/period"
	"github.com/abacusbilling/abacus/internal/subscription"
)

func TestMonthly(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		amount string
		iv     period.Interval
		want   string
	}{
		{"49", period.Monthly, "49"},
		{"1200", period.Yearly, "100"},
		{"100", period.Quarterly, "33.3333"},
		{"200", period.Quarterly, "66.6667"},
		{"10", period.Weekly, "43.3333"},
		{"10", period.Interval{Unit: period.Week, Count: 2}, "21.6667"},
		{"300", period.Interval{Unit: period.Month, Count: 6}, "50"},
		{"2400", period.Interval{Unit: period.Year, Count: 2}, "100"},
	} {
		if got := Monthly(d(c.amount), c.iv); !got.Equal(d(c.want)) {
			t.Errorf("Monthly(%s, %s) = %s, want %s", c.amount, c.iv, got, c.want)
		}
	}
}

// TestMRRMovementsAndRebuild follows two customers through a month and
// checks the MRR series, each movement, and that a rebuild from the
// journal gives exactly the rows the incremental path wrote.
func TestMRRMovementsAndRebuild(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, dd *db.DB) {
		day := func(n int) time.Time { return time.Date(2026, 3, n, 10, 0, 0, 0, time.UTC) }
		b := newBundle(t, dd, day(1))
		pro := b.plan("pro", "EUR", "49", period.Monthly, 0)
		a, c := b.customer("A", "EUR"), b.customer("C", "EUR")
		one := decimal.NewFromInt(1)
		sa, err := b.subs.Create(b.ctx, subscription.CreateInput{CustomerID: a, PlanID: pro, Quantity: &one})
		must(t, err)
		b.at(day(5))
		_, err = b.subs.ChangeQuantity(b.ctx, sa.ID, decimal.NewFromInt(3))
		must(t, err)
		sc, err := b.subs.Create(b.ctx, subscription.CreateInput{CustomerID: c, PlanID: pro, Quantity: &one})
		must(t, err)
		b.at(day(12))
		_, err = b.subs.ChangeQuantity(b.ctx, sa.ID, decimal.NewFromInt(1))
		must(t, err)
		// Same day up and back down: no movement.
		_, err = b.subs.ChangeQuantity(b.ctx, sc.ID, decimal.NewFromInt(2))
		must(t, err)
		_, err = b.subs.ChangeQuantity(b.ctx, sc.ID, decimal.NewFromInt(1))
		must(t, err)
		b.at(day(20))
		_, err = b.subs.Cancel(b.ctx, sa.ID, subscription.CancelInput{When: subscription.Now})
		must(t, err)
		b.at(day(25))
		b.feed(3)

		pts, err := b.svc.MRR(b.ctx, Query{From: "2026-03-01", To: "2026-03-25", Interval: "day", Currency: "EUR"})
		must(t, err)
		if len(pts) != 25 {
			t.Fatalf("%d points, want 25", len(pts))
		}
		want := map[string]MRRPoint{
			"2026-03-01": {MRR: "49.0000", New: "49.0000", Customers: 1},
			"2026-03-05": {MRR: "196.0000", New: "49.0000", Expansion: "98.0000", Customers: 2},
			"2026-03-12": {MRR: "98.0000", Contraction: "-98.0000", Customers: 2},
			"2026-03-20": {MRR: "49.0000", Churn: "-49.0000", Customers: 1},
			"2026-03-25": {MRR: "49.0000", Customers: 1},
		}
		for _, p := range pts {
			w, ok := want[p.Date]
			if !ok {
				continue
			}
			zero := func(s string) string {
				if s == "" {
					return "0.0000"
				}
				return s
			}
			if p.MRR != w.MRR || p.New != zero(w.New) || p.Expansion != zero(w.Expansion) || p.Contraction != zero(w.Contraction) ||
				p.Churn != zero(w.Churn) || p.Reactivation != "0.0000" || p.Customers != w.Customers {
				t.Errorf("%s: got %+v, want %+v", p.Date, p, w)
			}
		}
		month, err := b.svc.MRR(b.ctx, Query{From: "2026-03-01", To: "2026-03-25", Currency: "EUR"})
		must(t, err)
		if len(month) != 1 || month[0].Date != "2026-03-25" || month[0].MRR != "49.0000" || month[0].New != "98.0000" ||
			month[0].Expansion != "98.0000" || month[0].Contraction != "-98.0000" || month[0].Churn != "-49.0000" || month[0].ARR != "588.0000" {
			t.Errorf("month: %+v", month)
		}

		before := b.dump()
		if _, err := b.svc.Rebuild(b.ctx, b.tenant); err != nil {
			t.Fatal(err)
		}
		if after := b.dump(); after != before {
			t.Errorf("rebuilt rows differ from the incremental ones:\nincremental:\n%s\nrebuilt:\n%s", before, after)
		}
	})
}
