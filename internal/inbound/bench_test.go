package inbound

import (
	"bytes"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/abacusbilling/abacus/internal/db/dbtest"
	"github.com/abacusbilling/abacus/internal/document"
)

// BenchmarkReceive measures inbound processing (hash, detect, parse,
// validate in Go, store the original with fsync, metadata row + event in
// one transaction) per engine, with eight concurrent uploaders, beside a
// baseline in the same run: parse and validate alone (document.Parse).
// Each document is distinct (its number differs), so none is a dedup hit.
//
//	go test ./internal/inbound -run '^$' -bench Receive -benchtime 400x
func BenchmarkReceive(b *testing.B) {
	ubl, err := document.UBL(benchDoc(b))
	if err != nil {
		b.Fatal(err)
	}
	variant := func(i int64) []byte {
		return bytes.Replace(ubl, []byte("<cbc:ID>INV-BENCH</cbc:ID>"), fmt.Appendf(nil, "<cbc:ID>INV-BENCH-%d</cbc:ID>", i), 1)
	}
	b.Run("baseline_parse_validate", func(b *testing.B) {
		for b.Loop() {
			if _, rep, err := document.Parse(ubl); err != nil || !rep.Valid() {
				b.Fatal(err, rep)
			}
		}
	})
	for _, e := range dbtest.Engines {
		b.Run(string(e), func(b *testing.B) {
			d := dbtest.Open(b, e)
			s := NewService(d, benchDir(b), realClock{}, discard)
			ctx := tenantCtx("ten_bench")
			var n atomic.Int64
			b.SetParallelism(4) // 4 × GOMAXPROCS uploaders
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, _, err := s.Receive(ctx, variant(n.Add(1)), SourceAPI); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "docs/s")
			var rows int
			_ = d.QueryRowContext(ctx, `SELECT count(*) FROM inbound_documents`).Scan(&rows)
			if rows != b.N {
				b.Fatalf("%d rows for %d documents", rows, b.N)
			}
		})
	}
}
