package nearby

import (
	"context"
	"log/slog"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
)

// BenchmarkRadiusQuery1M stores 1,000,000 located end users (uniform over
// a 1,000 × 1,000 km area around Central Europe, about one per km²) and
// measures "who is within 5 km", nearest first, first page of 20, from
// random points in the area; it reports p50 and p99 latency.
//
//	go test ./internal/nearby -run '^$' -bench RadiusQuery1M -benchtime 500x -timeout 30m
func BenchmarkRadiusQuery1M(b *testing.B) {
	for _, engine := range dbtest.Engines {
		b.Run(string(engine), func(b *testing.B) {
			d := dbtest.Open(b, engine)
			clock := abacus.NewFakeClock(time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC))
			s := New(d, clock, slog.New(slog.DiscardHandler), Config{QueriesPerMinute: math.MaxInt32}, nil)
			rng := rand.New(rand.NewPCG(1, 2))
			const n = 1_000_000
			const lat0, lon0 = 46.0, 5.0 // south-west corner
			point := func() (float64, float64) {
				return lat0 + rng.Float64()*9.0, lon0 + rng.Float64()*13.0 // ≈ 1,000 × 1,000 km
			}
			start := time.Now()
			exp := clock.Now().Add(time.Hour)
			ctx := context.Background()
			for done := 0; done < n; {
				batch := min(20_000, n-done)
				rows := make([][]any, 0, batch)
				for i := range batch {
					lat, lon, cell := s.grid.snap(point())
					rows = append(rows, []any{"ten_bench", TypeEndUser, "eu_" + itoa(done+i), TypeEndUser, "", "[]", cell, lat, lon,
						db.TimeOf(clock.Now()), db.NullTimeOf(&exp)})
				}
				if err := d.InTx(ctx, func(tx *db.Tx) error {
					return tx.InsertRows(ctx, `INSERT INTO nearby_locations (tenant_id, subject_type, subject_id, kind, name, tags, cell, lat, lon, updated_at, expires_at)`, "", rows)
				}); err != nil {
					b.Fatal(err)
				}
				done += batch
			}
			if engine == db.Postgres {
				if _, err := d.ExecContext(ctx, `ANALYZE nearby_locations`); err != nil {
					b.Fatal(err)
				}
			}
			b.Logf("%s: stored %d locations in %s", engine, n, time.Since(start).Round(time.Second))
			qctx := abacus.WithPrincipal(ctx, &abacus.Principal{TenantID: "ten_bench", Kind: "api_key", ID: "key"})
			lat, lon := point()
			if l, err := s.Search(qctx, Query{Lat: &lat, Lon: &lon, RadiusKm: 5}); err != nil || len(l.Data) == 0 {
				b.Fatalf("warm-up query: %d hits, %v", len(l.Data), err)
			}
			lat2, lon2 := point()
			if l, err := s.Search(qctx, Query{Lat: &lat2, Lon: &lon2, RadiusKm: 5}); err != nil || len(l.Data) == 0 {
				b.Fatalf("warm-up query: %d hits, %v", len(l.Data), err)
			}
			hits := 0
			lats := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for range b.N {
				lat, lon := point()
				t0 := time.Now()
				l, err := s.Search(qctx, Query{Lat: &lat, Lon: &lon, RadiusKm: 5})
				lats = append(lats, time.Since(t0))
				if err != nil {
					b.Fatal(err)
				}
				hits += len(l.Data)
			}
			b.StopTimer()
			slices.Sort(lats)
			b.ReportMetric(float64(lats[len(lats)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lats[len(lats)*99/100].Microseconds())/1000, "p99-ms")
			b.ReportMetric(float64(hits)/float64(b.N), "hits/query")
		})
	}
}
