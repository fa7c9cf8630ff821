package metering

import (
	"math/rand/v2"
	"testing"

	"github.com/shopspring/decimal"
)

// TestMergeAssociative folds random values into random partitions, merges
// the partial states in random groupings and orders, and checks every
// result equals folding all values into one state.
func TestMergeAssociative(t *testing.T) {
	t.Parallel()
	for _, agg := range []Aggregation{AggCount, AggSum, AggMin, AggMax, AggAvg, AggUniqueCount, AggLatest} {
		t.Run(string(agg), func(t *testing.T) {
			t.Parallel()
			rng := rand.New(rand.NewPCG(1, uint64(len(agg))))
			for round := range 200 {
				n := 1 + rng.IntN(30)
				evs := make([]Event, n)
				vals := make([]decimal.Decimal, n)
				for i := range evs {
					vals[i] = decimal.New(rng.Int64N(2000)-1000, -int32(rng.IntN(4)))
					// Few distinct times and sources so LATEST ties are exercised.
					evs[i] = Event{Time: testNow.Add(timeMinutes(rng.IntN(3))), Source: string(rune('a' + rng.IntN(2))), ID: itoa(i)}
				}
				whole := NewState(agg)
				for i := range evs {
					whole.observe(vals[i], []byte(vals[i].String()), &evs[i])
				}
				// Partition into random chunks.
				var parts []State
				for i := 0; i < n; {
					j := i + 1 + rng.IntN(n-i)
					p := NewState(agg)
					for k := i; k < j; k++ {
						p.observe(vals[k], []byte(vals[k].String()), &evs[k])
					}
					parts = append(parts, p)
					i = j
				}
				// Merge pairwise at random positions until one remains.
				for len(parts) > 1 {
					i := rng.IntN(len(parts) - 1)
					if rng.IntN(2) == 0 {
						parts[i], parts[i+1] = parts[i+1], parts[i]
					}
					if err := parts[i].Merge(&parts[i+1]); err != nil {
						t.Fatal(err)
					}
					parts = append(parts[:i+1], parts[i+2:]...)
				}
				got := parts[0]
				if !got.Value().Equal(whole.Value()) || got.Count != whole.Count {
					t.Fatalf("round %d: merged %s (count %d), whole %s (count %d)", round, got.Value(), got.Count, whole.Value(), whole.Count)
				}
				if agg == AggLatest && (got.LatestSource != whole.LatestSource || got.LatestID != whole.LatestID) {
					t.Fatalf("round %d: latest picked %s/%s, want %s/%s", round, got.LatestSource, got.LatestID, whole.LatestSource, whole.LatestID)
				}
			}
		})
	}
}
