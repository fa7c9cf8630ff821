package inbound

import (
	"bytes"
	"fmt"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/abacusbilling/abacus/internal/db/dbtest"
	"github.com/abacusbilling/abacus/internal/document"
)

// cpuTime is the CPU time (user + system) this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

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
		cpu := cpuTime()
		for b.Loop() {
			if _, rep, err := document.Parse(ubl); err != nil || !rep.Valid() {
				b.Fatal(err, rep)
			}
		}
		b.ReportMetric(float64(cpuTime()-cpu)/float64(time.Millisecond)/float64(b.N), "cpu-ms/doc")
	})
	for _, e := range dbtest.Engines {
		b.Run(string(e), func(b *testing.B) {
			d := dbtest.Open(b, e)
			s := NewService(d, benchDir(b), realClock{}, discard)
			ctx := tenantCtx("ten_bench")
			var n atomic.Int64
			b.SetParallelism(4) // 4 × GOMAXPROCS uploaders
			b.ResetTimer()
			cpu := cpuTime()
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
			// The process's CPU time per document (the database server's, for
			// PostgreSQL, is not in it): what a loaded machine cannot hide.
			b.ReportMetric(float64(cpuTime()-cpu)/float64(time.Millisecond)/float64(b.N), "cpu-ms/doc")
			var rows int
			_ = d.QueryRowContext(ctx, `SELECT count(*) FROM inbound_documents`).Scan(&rows)
			if rows != b.N {
				b.Fatalf("%d rows for %d documents", rows, b.N)
			}
		})
	}
}
