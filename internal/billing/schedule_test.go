package billing

import (
	"database/sql"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/abacusbilling/abacus/internal/catalog"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
	"github.com/abacusbilling/abacus/internal/pricing"
	"github.com/abacusbilling/abacus/internal/subscription"
)

// cycleRow is a subscription's billing cycle as stored.
type cycleRow struct {
	found          bool
	billFrom, next time.Time
	hold           *time.Time
}

func (b *bundle) cycleOf(sub string) cycleRow {
	b.t.Helper()
	var from, next db.Time
	var hold db.NullTime
	err := b.d.QueryRowContext(b.ctx, `SELECT bill_from, next_at, hold_at FROM billing_cycles WHERE subscription_id = $1`, sub).
		Scan(&from, &next, &hold)
	if errors.Is(err, sql.ErrNoRows) {
		return cycleRow{}
	}
	must(b.t, err)
	return cycleRow{found: true, billFrom: from.Time, next: next.Time, hold: hold.Ptr()}
}

// trialSub subscribes a new customer to a 10 EUR plan with a 14-day trial
// from t0 through subs.
func (b *bundle) trialSub(subs *subscription.Service) (id string, trialEnd time.Time) {
	b.t.Helper()
	plan := b.plan("trial", catalog.VersionSpec{Currency: "EUR", Charges: []pricing.Charge{feeCharge("base", "10")}})
	c := b.customer(catalog.CustomerInput{Name: "C", Currency: "EUR", Address: catalog.Address{Country: "DE"}})
	days, start := 14, t0
	s, err := subs.Create(b.ctx, subscription.CreateInput{CustomerID: c.ID, PlanID: plan, TrialDays: &days, StartAt: &start})
	must(b.t, err)
	return s.ID, *s.TrialEnd
}

// A subscription's billing cycle exists from its creation, billed from
// its trial end and held until the trial-end transition is applied; the
// billing round applies it, then bills the cycle.
func TestCycleFollowsTheSubscriptionSchedule(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		b := newBundle(t, d, t0, Config{Grace: 1})
		sub, trialEnd := b.trialSub(b.subs)
		c := b.cycleOf(sub)
		if !c.found || !c.billFrom.Equal(trialEnd) || !c.next.Equal(trialEnd) || c.hold == nil || !c.hold.Equal(trialEnd) {
			t.Fatalf("cycle after create: %+v, want billed from, next and held at the trial end %s", c, trialEnd)
		}
		if st := b.run(trialEnd); st.Invoices != 1 {
			t.Fatalf("run at the trial end: %+v, want 1 invoice", st)
		}
		if c := b.cycleOf(sub); c.hold != nil {
			t.Fatalf("cycle after the trial ended: held at %s, want not held", c.hold)
		}
	})
}

// Migration 0406 gives the subscriptions that exist their cycles (which
// the billing round used to discover) and their hold times.
func TestMigrationFillsCyclesOfExistingSubscriptions(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		b := newBundle(t, d, t0, Config{Grace: 1})
		// Created by a service without the save hook, as before 0406.
		sub, trialEnd := b.trialSub(subscription.NewService(b.cat, b.clock, nil))
		if c := b.cycleOf(sub); c.found {
			t.Fatalf("cycle without the hook: %+v", c)
		}
		all, err := db.Migrations(d.Engine())
		must(t, err)
		for _, m := range all {
			if !strings.HasPrefix(m.Name, "0406_") {
				continue
			}
			for _, stmt := range strings.Split(m.SQL, ";\n") {
				if strings.TrimSpace(stmt) == "" || strings.Contains(stmt, "ALTER TABLE") { // the column is there
					continue
				}
				_, err := d.ExecContext(b.ctx, stmt)
				must(t, err)
			}
		}
		c := b.cycleOf(sub)
		if !c.found || !c.billFrom.Equal(trialEnd) || !c.next.Equal(trialEnd) || c.hold == nil || !c.hold.Equal(trialEnd) {
			t.Fatalf("cycle after 0406: %+v, want billed from, next and held at the trial end %s", c, trialEnd)
		}
		if st := b.run(trialEnd); st.Invoices != 1 {
			t.Fatalf("run at the trial end: %+v, want 1 invoice", st)
		}
	})
}
