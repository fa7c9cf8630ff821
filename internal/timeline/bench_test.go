package timeline

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/billing"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
	"github.com/abacusbilling/abacus/internal/outbox"
	"github.com/abacusbilling/abacus/internal/payments"
)

// BenchmarkIndex is the consumer's cost per event: batches of
// consumeBatch invoice and payment events (200 customers, times going
// forward as the stream's do) decoded through their Go types and written
// in one transaction each ("index"), beside the same rows written without
// decoding ("insert_only", the database's share). Each run starts on an
// empty table. Reported as events/s. docs/benchmarks.md has the figures.
func BenchmarkIndex(b *testing.B) {
	for _, engine := range dbtest.Engines {
		var (
			d      *db.DB
			svc    *Service
			tenant = abacus.NewID("ten")
			at     = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
			seq    int
		)
		fresh := func(b *testing.B) {
			d = dbtest.Open(b, engine)
			svc = NewService(d, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
		}
		batch := func() []outbox.Event {
			events := make([]outbox.Event, consumeBatch)
			for i := range events {
				cus := fmt.Sprintf("cus_%026d", i%200)
				var e outbox.Event
				var payload any
				if i%2 == 0 {
					inv := billing.InvoiceEvent{ID: abacus.NewID("inv"), CustomerID: cus, Number: "INV-1", Currency: "EUR",
						Total: decimal.RequireFromString("119.00"), AmountDue: decimal.RequireFromString("119.00"), Status: "open"}
					e, payload = billing.InvoiceFinalized.New(tenant, inv.ID, at, inv), inv
				} else {
					p := payments.PaymentEvent{PaymentID: abacus.NewID("pay"), CustomerID: cus, InvoiceID: "inv_1", Currency: "EUR",
						Amount: decimal.RequireFromString("119.00"), Status: "succeeded", Provider: "stripe"}
					e, payload = payments.PaymentSucceeded.New(tenant, p.PaymentID, at, p), p
				}
				seq++
				e.ID, e.CreatedAt = abacus.NewID("evt"), at.Add(time.Duration(seq)*time.Second)
				e.Payload, _ = json.Marshal(payload)
				events[i] = e
			}
			return events
		}
		b.Run(string(engine)+"/index", func(b *testing.B) {
			fresh(b)
			for b.Loop() {
				b.StopTimer()
				events := batch()
				b.StartTimer()
				if _, err := svc.Index(context.Background(), events); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*consumeBatch)/b.Elapsed().Seconds(), "events/s")
		})
		b.Run(string(engine)+"/insert_only", func(b *testing.B) {
			fresh(b)
			for b.Loop() {
				b.StopTimer()
				events := batch()
				rows := make([]row, len(events))
				for i, e := range events {
					ix, _, _ := indexedOf(e)
					rows[i] = row{tenant: e.TenantID, eventID: e.ID, customer: ix.customer, typ: e.Type,
						at: db.TimeOf(e.CreatedAt), object: ix.object, data: ix.data}
				}
				b.StartTimer()
				if err := d.InTx(context.Background(), func(tx *db.Tx) error { return insertRows(context.Background(), tx, rows, false) }); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*consumeBatch)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
