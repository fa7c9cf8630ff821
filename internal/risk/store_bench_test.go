package risk

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
)

// BenchmarkStoreDecided is the group commit's write alone on SQLite: rows
// the size of the bench's (event 545 B, basis 373 B, record 457 B of
// JSON); ns/op is per event. batch=N: transactions of N events of one
// customer, so the sizes show what a commit costs beside what a row
// costs. customers=250000: transactions of 200 events of customers drawn
// from 250,000, over 250,000 stored, as varied traffic writes them (each
// event lands on its own page of the customer index).
func BenchmarkStoreDecided(b *testing.B) {
	for _, size := range []int{1, 4, 16, 64} {
		b.Run(fmt.Sprint("batch=", size), func(b *testing.B) {
			benchStore(b, size, 1, 0)
		})
	}
	b.Run("customers=250000", func(b *testing.B) {
		benchStore(b, 200, 250_000, 250_000)
	})
}

// benchStore stores b.N events in transactions of size, of customers
// drawn from customers, after stored events of the same kind.
func benchStore(b *testing.B, size, customers, stored int) {
	d := dbtest.Open(b, db.SQLite)
	ctx := context.Background()
	evJSON, fJSON, dJSON := bytes.Repeat([]byte("e"), 545), bytes.Repeat([]byte("f"), 373), bytes.Repeat([]byte("d"), 457)
	rng := rand.New(rand.NewPCG(18, 18))
	batch := make([]*pending, size)
	write := func() {
		now := time.Now()
		for i := range batch {
			id := abacus.NewID("rev")
			c := fmt.Sprint("g-", rng.IntN(customers))
			batch[i] = &pending{tenant: "ten_bench", customer: c, evJSON: evJSON, fJSON: fJSON, dJSON: dJSON, received: now,
				ev: &Event{ID: id, Type: "order", Time: now, CustomerID: c},
				d:  &Decision{ID: decisionIDOf(id), Decision: Allow}}
		}
		if err := d.InTx(ctx, func(tx *db.Tx) error { return insertDecided(ctx, tx, batch) }); err != nil {
			b.Fatal(err)
		}
	}
	for done := 0; done < stored; done += size {
		write()
	}
	b.ResetTimer()
	for done := 0; done < b.N; done += size {
		write()
	}
}
