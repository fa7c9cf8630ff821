package outbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
)

func TestRecordRefusesAnUndefinedEventType(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		err := d.InTx(ctx, func(tx *db.Tx) error {
			_, err := Record(ctx, tx, Event{TenantID: "t", AggregateType: "thing", AggregateID: "1", Type: "thing.vanished"}, 1)
			return err
		})
		if err == nil {
			t.Fatal("an event type no Define registered was recorded")
		}
		if n, _ := Pending(ctx, d); n != 0 {
			t.Fatalf("%d events pending after a refused record", n)
		}
	})
}

// RecordBatch spans several INSERTs (db.Tx.InsertRows takes 1,000 rows of
// 8 values in one) and keeps commit order,
// so the relay publishes the batch exactly once and in order.
func TestRecordBatchIsPublishedOnceInOrder(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		const n = 2*1000 + 7
		events := make([]Event, n)
		at := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
		for i := range events {
			events[i] = thingChangedEvent.New("ten_1", fmt.Sprintf("thing_%d", i%5), at, thingChanged{N: i})
		}
		var got []Event
		err := d.InTx(ctx, func(tx *db.Tx) error {
			var err error
			got, err = RecordBatch(ctx, tx, events)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != n || got[0].ID == "" || got[0].Version != 1 || string(got[n-1].Payload) != fmt.Sprintf(`{"n":%d}`, n-1) {
			t.Fatalf("recorded %d events, first %+v", len(got), got[0])
		}
		b := openBus(t, t.TempDir())
		defer b.Close()
		drain(t, NewRelay(d, b, RelayConfig{BatchSize: 300}, slog.New(slog.DiscardHandler), nil))
		assertExactlyOnceInOrder(t, b, n)
	})
}

func TestRecordBatchRollsBackWhole(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		abort := errors.New("abort")
		err := d.InTx(ctx, func(tx *db.Tx) error {
			if _, err := RecordBatch(ctx, tx, []Event{thingChangedEvent.New("t", "1", time.Time{}, thingChanged{N: 1})}); err != nil {
				return err
			}
			return abort
		})
		if !errors.Is(err, abort) {
			t.Fatal(err)
		}
		if n, _ := Pending(ctx, d); n != 0 {
			t.Fatalf("rolled-back batch is pending (%d)", n)
		}
	})
}
