package usage_test

import (
	"context"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/metering"
	"github.com/abacusbilling/abacus/internal/metering/usage"
)

// loadEvent is event i of a load: value (i mod 7 + 1)/10, subject s(i mod
// subjects), time from + i·step (step may be negative: newest first).
func loadEvent(run string, subjects int, from time.Time, step time.Duration) func(i int64, e *metering.Event) {
	return func(i int64, e *metering.Event) {
		*e = metering.Event{ID: run + strconv.FormatInt(i, 10), Source: "load", SpecVersion: "1.0", Type: "load",
			Subject: "s" + strconv.FormatInt(i%int64(subjects), 10), Time: from.Add(time.Duration(i) * step),
			Data: []byte(`{"value":` + decimal.New(i%7+1, -1).String() + `,"model":"m` + strconv.FormatInt(i%3, 10) + `"}`)}
	}
}

// TestLoadCountsEveryEventOnce loads events spread over days through the
// meter role's store code, then loads more into the same minutes (older
// times, a fresh loader: rollup rows must be read back and merged, not
// overwritten) and the first load again (all duplicates), and checks the
// daily sums and counts of one subject and the totals against the events.
func TestLoadCountsEveryEventOnce(t *testing.T) {
	t.Parallel()
	runBoth(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		log := slog.New(slog.DiscardHandler)
		svc := usage.NewService(d, abacus.NewFakeClock(testNow), log, metering.Limits{})
		pctx := abacus.WithPrincipal(ctx, &abacus.Principal{TenantID: "ten_load", Scopes: []abacus.Scope{abacus.ScopeAdmin}})
		for _, m := range []metering.Meter{
			{Slug: "sum", EventType: "load", Aggregation: metering.AggSum, ValueProperty: "$.value", GroupBy: map[string]string{"model": "$.model"}},
			{Slug: "count", EventType: "load", Aggregation: metering.AggCount},
			{Slug: "max", EventType: "load", Aggregation: metering.AggMax, ValueProperty: "$.value"},
		} {
			if _, err := svc.CreateMeter(pctx, m); err != nil {
				t.Fatal(err)
			}
		}
		const subjects = 5
		start := testNow.Add(-72 * time.Hour)
		type want struct {
			sum   decimal.Decimal
			count int64
		}
		days := map[time.Time]*want{} // subject s1, by UTC day
		var total want
		add := func(gen func(int64, *metering.Event), n int64) {
			for i := int64(0); i < n; i++ {
				var e metering.Event
				gen(i, &e)
				v := decimal.New(i%7+1, -1)
				total.sum, total.count = total.sum.Add(v), total.count+1
				if e.Subject == "s1" {
					day := e.Time.UTC().Truncate(24 * time.Hour)
					if days[day] == nil {
						days[day] = &want{}
					}
					days[day].sum, days[day].count = days[day].sum.Add(v), days[day].count+1
				}
			}
		}
		load := func(gen func(int64, *metering.Event), n, wantNew int64) {
			t.Helper()
			got, err := usage.Load(ctx, d, "ten_load", usage.LoadConfig{Events: n, Event: gen, RoundEvents: 700}, log)
			if wantNew == 0 {
				if err == nil {
					t.Fatalf("reloading: stored %d, want an error saying none was new", got)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if got != wantNew {
				t.Fatalf("stored %d new events, want %d", got, wantNew)
			}
		}
		// 3 days of events, one every 26 s, oldest first.
		first := loadEvent("a", subjects, start, 26*time.Second)
		load(first, 10_000, 10_000)
		add(first, 10_000)
		// Other events into the same minutes, newest first, then all again.
		second := loadEvent("b", subjects, start.Add(10_000*26*time.Second), -13*time.Second)
		load(second, 3_000, 3_000)
		add(second, 3_000)
		load(first, 10_000, 0)

		from, to := start.Truncate(24*time.Hour), testNow.Add(24*time.Hour).Truncate(24*time.Hour)
		res, _, err := svc.Query(pctx, "sum", usage.QueryParams{From: &from, To: &to, WindowSize: metering.WindowDay, Subject: []string{"s1"}})
		if err != nil {
			t.Fatal(err)
		}
		cres, _, err := svc.Query(pctx, "count", usage.QueryParams{From: &from, To: &to, WindowSize: metering.WindowDay, Subject: []string{"s1"}})
		if err != nil {
			t.Fatal(err)
		}
		gotSum, gotCount := map[time.Time]decimal.Decimal{}, map[time.Time]int64{}
		for _, w := range res.Data {
			gotSum[w.WindowStart] = gotSum[w.WindowStart].Add(w.Value)
		}
		for _, w := range cres.Data {
			gotCount[w.WindowStart] += w.Value.IntPart()
		}
		if len(days) < 4 {
			t.Fatalf("the events span %d days, want at least 4", len(days))
		}
		for day, w := range days {
			if !gotSum[day].Equal(w.sum) || gotCount[day] != w.count {
				t.Errorf("day %s: sum %s count %d, want %s and %d", day.Format(time.DateOnly), gotSum[day], gotCount[day], w.sum, w.count)
			}
		}
		tres, _, err := svc.Query(pctx, "sum", usage.QueryParams{From: &from, To: &to})
		if err != nil {
			t.Fatal(err)
		}
		var sum decimal.Decimal
		for _, w := range tres.Data {
			sum = sum.Add(w.Value)
		}
		if !sum.Equal(total.sum) {
			t.Fatalf("total sum %s, want %s", sum, total.sum)
		}
		mres, _, err := svc.Query(pctx, "max", usage.QueryParams{From: &from, To: &to})
		if err != nil {
			t.Fatal(err)
		}
		if len(mres.Data) != 1 || !mres.Data[0].Value.Equal(decimal.RequireFromString("0.7")) {
			t.Fatalf("max: %+v, want 0.7", mres.Data)
		}
	})
}
