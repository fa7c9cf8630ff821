package billing

import (
	"context"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/abacusbilling/abacus/internal/catalog"
	"github.com/abacusbilling/abacus/internal/catalog/catalogtest"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
	"github.com/abacusbilling/abacus/internal/document"
	"github.com/abacusbilling/abacus/internal/pricing"
	"github.com/abacusbilling/abacus/internal/subscription"
)

// A percentage of a summed value with a fixed fee per event bills the
// percentage of the sum plus events × fee, the events counted across the
// customer's subjects. A pause adds the events of the spans around it; a
// plan change bills the events up to the change at the old version's fee
// and the rest at the new one's.
func TestPercentageWithFeePerEvent(t *testing.T) {
	t.Parallel()
	payments := func(fee string) pricing.Charge {
		return pricing.Charge{Key: "payments", Description: "Payments", Kind: pricing.ChargeUsage, Meter: "payments",
			Price: &pricing.Price{Model: pricing.Percentage, Percentage: dec("2.9"), FixedAmountPerEvent: dec(fee)}}
	}
	type payment struct {
		day     int
		subject string
		amount  string
	}
	type line struct {
		quantity string
		events   int64
		fee      string // the event_fee component
		amount   string
	}
	tests := []struct {
		name     string
		payments []payment
		change   func(b *bundle, sub string) // during January
		want     []line                      // usage lines of the invoice of 1 February, in order
	}{
		// 2.9 % of 350.00 = 10.15, and 3 × 0.30.
		{name: "two-subjects", payments: []payment{{3, "eu", "100.00"}, {10, "eu", "50.00"}, {12, "us", "200.00"}, {14, "other", "999.00"}},
			want: []line{{"350", 3, "0.9", "11.05"}}},
		{name: "no-payments", want: []line{{"0", 0, "0", "0"}}},
		// Paused 11–21 January: the payment on the 15th is not billed.
		{name: "pause", payments: []payment{{3, "eu", "100.00"}, {15, "eu", "70.00"}, {25, "us", "200.00"}},
			change: func(b *bundle, sub string) {
				b.clock.Set(jan(11))
				_, err := b.subs.Pause(b.ctx, sub)
				must(b.t, err)
				b.clock.Set(jan(21))
				_, err = b.subs.Resume(b.ctx, sub)
				must(b.t, err)
			},
			want: []line{{"300", 2, "0.6", "9.3"}}},
		// To a version with 0.50 per payment on the 16th: 2.9 % of 150.00
		// + 2 × 0.30, then 2.9 % of 200.00 + 0.50.
		{name: "plan-change", payments: []payment{{3, "eu", "100.00"}, {10, "us", "50.00"}, {20, "eu", "200.00"}},
			change: func(b *bundle, sub string) {
				next := b.plan("plan-change-next", catalog.VersionSpec{Currency: "EUR", Charges: []pricing.Charge{payments("0.50")}})
				b.clock.Set(jan(16))
				_, err := b.subs.ChangePlan(b.ctx, sub, subscription.ChangePlanInput{PlanID: next})
				must(b.t, err)
			},
			want: []line{{"150", 2, "0.6", "4.95"}, {"200", 1, "0.5", "6.3"}}},
	}
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		for _, bulk := range []bool{false, true} {
			b := newBundle(t, d, t0, Config{})
			read := "one customer at a time"
			if bulk {
				b.svc = NewService(d, b.clock, slog.New(slog.DiscardHandler), Config{}, NewSubscriptionsAdvancing(b.cat, b.subs), bulkUsage{b.usage})
				read = "in bulk"
			}
			b.usage.AddMeter(b.tenant, "payments")
			subs := map[string]string{}
			for _, tt := range tests {
				plan := b.plan(tt.name, catalog.VersionSpec{Currency: "EUR", Charges: []pricing.Charge{payments("0.30")}})
				c := b.customer(catalog.CustomerInput{Name: tt.name, Currency: "EUR", Address: catalog.Address{City: "Berlin", PostalCode: "10115", Country: "DE"},
					Subjects: []string{tt.name + "-eu", tt.name + "-us"}, Metadata: map[string]string{"peppol_endpoint": "0088:4035811991021"}})
				subs[tt.name] = b.subscribe(c.ID, plan, "1", t0).ID
				for _, p := range tt.payments {
					b.usage.Record(b.tenant, "payments", tt.name+"-"+p.subject, jan(p.day).Add(time.Hour), dec(p.amount))
				}
			}
			b.run(t0)
			for _, tt := range tests {
				if tt.change != nil {
					tt.change(b, subs[tt.name])
				}
			}
			b.run(month(1))
			for _, tt := range tests {
				inv := b.invoiceAt(subs[tt.name], month(1))
				var got []line
				for _, l := range inv.Lines {
					if l.Kind != LineUsage {
						continue
					}
					g := line{quantity: l.Quantity.String(), amount: l.Amount.String()}
					if l.Usage != nil {
						g.events = l.Usage.Events
						for _, c := range l.Usage.Components {
							if c.Kind == pricing.ComponentEventFee {
								g.fee = c.Amount.String()
							}
						}
					}
					got = append(got, g)
				}
				if !slices.Equal(got, tt.want) {
					t.Errorf("%s, usage read %s: usage lines\n%+v, want\n%+v", tt.name, read, got, tt.want)
				}
			}
			if bulk {
				continue
			}
			// The document's line says what the amount is made of, and its
			// UBL passes the Peppol validator.
			b.run(month(1).Add(2 * time.Hour)) // past the grace period: finalized
			doc, err := b.svc.InvoiceDocument(b.ctx, b.invoiceAt(subs["two-subjects"], month(1)).ID)
			must(t, err)
			if want := "2.9 % of 350 = 10.15; 3 events × 0.3 = 0.9"; len(doc.Lines) != 1 || doc.Lines[0].Note != want {
				t.Errorf("document lines %+v; want one whose note is %q", doc.Lines, want)
			}
			if d.Engine() == db.SQLite { // the same document on either engine; the validator takes seconds
				x, err := Render(doc, document.FormatUBL)
				must(t, err)
				validateUBL(t, "fee-per-event", x)
			}
		}
	})
}

// bulkUsage reads a MemoryUsage in bulk, by subject, as billing reads
// metering.
type bulkUsage struct{ *catalogtest.MemoryUsage }

func (u bulkUsage) UsageBySubject(ctx context.Context, tenant, meter string, subjects []string, from, to time.Time) (map[string]pricing.Usage, error) {
	out := make(map[string]pricing.Usage, len(subjects))
	for _, s := range subjects {
		v, err := u.UsageWithEvents(ctx, tenant, meter, []string{s}, from, to)
		if err != nil {
			return nil, err
		}
		out[s] = v
	}
	return out, nil
}
