package risk

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
)

// BenchmarkStoreDecided is the group commit's write alone on SQLite: rows
// the size of the bench's (event 529 B, basis 369 B, record 456 B of
// JSON) in transactions of 1 to 64 events; ns/op is per event, so the
// sizes show what a commit costs beside what a row costs.
func BenchmarkStoreDecided(b *testing.B) {
	for _, size := range []int{1, 4, 16, 64} {
		b.Run(fmt.Sprint("batch=", size), func(b *testing.B) {
			d := dbtest.Open(b, db.SQLite)
			ctx := context.Background()
			evJSON, fJSON, dJSON := bytes.Repeat([]byte("e"), 529), bytes.Repeat([]byte("f"), 369), bytes.Repeat([]byte("d"), 456)
			batch := make([]*pending, size)
			b.ResetTimer()
			for done := 0; done < b.N; done += size {
				now := time.Now()
				for i := range batch {
					id := abacus.NewID("rev")
					batch[i] = &pending{tenant: "ten_bench", customer: "crm-4711", evJSON: evJSON, fJSON: fJSON, dJSON: dJSON, received: now,
						ev: &Event{ID: id, Type: "order", Time: now, CustomerID: "crm-4711"},
						d:  &Decision{ID: decisionIDOf(id), Decision: Allow}}
				}
				if err := d.InTx(ctx, func(tx *db.Tx) error { return insertDecided(ctx, tx, batch) }); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
