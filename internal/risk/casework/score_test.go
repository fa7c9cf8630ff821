package casework

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"testing"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
	"github.com/abacusbilling/abacus/internal/risk"
	"github.com/abacusbilling/abacus/internal/risk/score"
)

// TestScoreAsksOnlyTheModelsFeatures: a decision's score reads the few
// features its model names, with the values featureVector (what training
// sees) gives them, a list named block included.
func TestScoreAsksOnlyTheModelsFeatures(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		clock := abacus.NewFakeClock(time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC))
		s := New(d, clock, slog.New(slog.DiscardHandler), prefixHash{}, Config{})
		ctx := abacus.WithPrincipal(context.Background(), &abacus.Principal{TenantID: "ten_a", Kind: "api_key", ID: "k"})
		for _, l := range []ListInput{{Name: "block", Action: "watch"}, {Name: "bad_cards", Action: "block"}, {Name: "vip", Action: "allow"}} {
			if _, err := s.CreateList(ctx, l); err != nil {
				t.Fatal(err)
			}
		}
		ev := &risk.Event{Type: risk.TypeOrder, CustomerID: "c1", Amount: "249.50"}
		f := &risk.Features{Counters: map[string]float64{"cards_1d": 4, "ips_1h": 0, "amount_7d": 999.5},
			Lists: map[string]bool{"block": true, "bad_cards": true, "vip": false}, Graph: risk.GraphValues{LinkedAccounts: 2, ComponentSize: 7}}
		names := []string{"counters.cards_1d", "counters.ips_1h", "counters.absent", "lists.block", "lists.bad_cards", "lists.vip",
			"lists.absent", "event.amount", "graph.linked_accounts", "graph.linked_labelled_fraud", "graph.component_size", "other"}
		m := score.Model{Kind: "logistic", Features: names, Bias: -3}
		for range names {
			m.Mean, m.Scale, m.Weights = append(m.Mean, 0.5), append(m.Scale, 2), append(m.Weights, 0.3)
		}
		vector := s.featureVector(ctx, "ten_a", ev, f)
		if vector["lists.block"] != 1 || vector["counters.cards_1d"] != 4 || vector["event.amount"] != 249.5 {
			t.Fatalf("feature vector %v", vector)
		}
		want, wantReasons := m.Score(vector)
		got, gotReasons := m.ScoreOf(func(name string) (float64, bool) { return s.feature(ctx, "ten_a", ev, f, name) })
		if got != want || len(gotReasons) != len(wantReasons) {
			t.Fatalf("score %d %v, from the vector %d %v", got, gotReasons, want, wantReasons)
		}
		for i := range gotReasons {
			if gotReasons[i] != wantReasons[i] {
				t.Fatalf("reason %d: %+v, from the vector %+v", i, gotReasons[i], wantReasons[i])
			}
		}
	})
}

// TestHeuristicScoreAllocations: the score asks for its four features
// instead of building the vector of every feature (a map and a name per
// counter and list before). Most of what is left is the two reasons.
func TestHeuristicScoreAllocations(t *testing.T) {
	s := New(dbtest.Open(t, db.SQLite), abacus.SystemClock{}, slog.New(slog.DiscardHandler), prefixHash{}, Config{})
	ctx := context.Background()
	ev := &risk.Event{Type: risk.TypeOrder, CustomerID: "c1", Amount: "249.50"}
	f := &risk.Features{Counters: map[string]float64{"cards_1d": 4, "ips_1h": 0, "amount_7d": 999.5},
		Lists: map[string]bool{"a": true, "b": false, "c": false}, Graph: risk.GraphValues{LinkedAccounts: 2, ComponentSize: 7}}
	p := scorePort{s}
	if _, _, err := p.Score(ctx, "ten_a", ev, f); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(100, func() {
		if _, _, err := p.Score(ctx, "ten_a", ev, f); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 25 {
		t.Errorf("scoring allocates %.0f times, want at most 25", allocs)
	}
}

// TestScoreReasonReadsAsSprintf: the hand-built description matches the
// format it replaces, signs, exponents and non-numbers included.
func TestScoreReasonReadsAsSprintf(t *testing.T) {
	values := []float64{0, 6, 249, -3.5, 1e21, 1.5e-7, 0.1, math.Inf(1), math.NaN(), math.Copysign(0, -1)}
	weights := []float64{0.3, -0.3, 0, -0.001, 0.004, 12.345, math.Inf(-1), math.Inf(1), math.NaN(), math.Copysign(0, -1)}
	for _, v := range values {
		for _, w := range weights {
			got := scoreReason("graph.component_size", v, "heuristic", w)
			want := fmt.Sprintf("%s = %g raised the score (%s model, %+.2f log-odds)", "graph.component_size", v, "heuristic", w)
			if got != want {
				t.Errorf("scoreReason(%v, %v) = %q, want %q", v, w, got, want)
			}
		}
	}
}
