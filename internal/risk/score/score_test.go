package score

import (
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"testing"
)

func TestHeuristic(t *testing.T) {
	h := Heuristic()
	for _, c := range []struct {
		f    map[string]float64
		want int
	}{
		{map[string]float64{}, 2},
		{map[string]float64{"graph.linked_labelled_fraud": 1}, 12},
		{map[string]float64{"graph.linked_labelled_fraud": 2}, 50},
		{map[string]float64{"graph.linked_labelled_fraud": 40}, 88}, // capped at 3
		{map[string]float64{"lists.block": 1, "graph.linked_accounts": 4}, 50},
	} {
		if got, _ := h.Score(c.f); got != c.want {
			t.Errorf("heuristic(%v) = %d, want %d", c.f, got, c.want)
		}
	}
	_, reasons := h.Score(map[string]float64{"graph.linked_labelled_fraud": 1, "graph.linked_accounts": 2, "graph.component_size": 5})
	if len(reasons) != 3 || reasons[0].Feature != "graph.linked_labelled_fraud" || reasons[1].Feature != "graph.linked_accounts" {
		t.Fatalf("reasons %+v", reasons)
	}
}

// synthetic draws n customers whose fraud follows a known logistic law:
// log-odds = -2 + 1.5·a - 0.8·b (c is noise, d constant).
func synthetic(n int, seed uint64) []Example {
	rng := rand.New(rand.NewPCG(seed, 1))
	out := make([]Example, n)
	for i := range out {
		a, b, c := rng.NormFloat64()*2+1, rng.NormFloat64()*3, rng.NormFloat64()
		p := 1 / (1 + math.Exp(-(-2 + 1.5*a - 0.8*b)))
		out[i] = Example{Features: map[string]float64{"a": a, "b": b, "c": c, "d": 7}, Fraud: rng.Float64() < p}
	}
	return out
}

func TestTrainRecoversAKnownModel(t *testing.T) {
	ex := synthetic(5000, 1)
	m, err := Train(ex, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Features) != 3 || m.Features[0] != "a" || m.Features[2] != "c" {
		t.Fatalf("features %v (the constant d must be left out)", m.Features)
	}
	// back to original units
	coef := map[string]float64{}
	intercept := m.Bias
	for j, f := range m.Features {
		coef[f] = m.Weights[j] / m.Scale[j]
		intercept -= coef[f] * m.Mean[j]
	}
	if math.Abs(coef["a"]-1.5) > 0.15 || math.Abs(coef["b"]+0.8) > 0.08 || math.Abs(coef["c"]) > 0.1 || math.Abs(intercept+2) > 0.2 {
		t.Fatalf("coefficients %v intercept %.3f, want a=1.5 b=-0.8 c=0 intercept=-2", coef, intercept)
	}
	// At the optimum, the penalised log-likelihood's gradient is zero.
	grad := make([]float64, len(m.Features)+1)
	for _, e := range ex {
		z := m.Bias
		row := make([]float64, len(m.Features))
		for j, f := range m.Features {
			row[j] = (e.Features[f] - m.Mean[j]) / m.Scale[j]
			z += m.Weights[j] * row[j]
		}
		y := 0.0
		if e.Fraud {
			y = 1
		}
		r := y - 1/(1+math.Exp(-z))
		for j := range row {
			grad[j] += r * row[j]
		}
		grad[len(row)] += r
	}
	for j := range m.Weights {
		grad[j] -= m.Weights[j]
	}
	for j, g := range grad {
		if math.Abs(g) > 1e-6 {
			t.Fatalf("gradient[%d] = %g at the trained weights", j, g)
		}
	}
	// Reasons: a high a pushes most; a high b pulls down and is no reason.
	_, reasons := m.Score(map[string]float64{"a": 5, "b": 4, "c": 0})
	if len(reasons) == 0 || reasons[0].Feature != "a" {
		t.Fatalf("reasons %+v", reasons)
	}
	for _, r := range reasons {
		if r.Feature == "b" {
			t.Fatalf("b pulled the score down but is a reason: %+v", reasons)
		}
	}
	lo, _ := m.Score(map[string]float64{"a": -2, "b": 5})
	hi, _ := m.Score(map[string]float64{"a": 5, "b": -5})
	if lo > 5 || hi < 95 {
		t.Fatalf("scores lo %d hi %d", lo, hi)
	}
}

func TestTrainIsDeterministic(t *testing.T) {
	a, err := Train(synthetic(800, 2), Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Train(synthetic(800, 2), Options{})
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	if string(ja) != string(jb) {
		t.Fatalf("two trainings differ:\n%s\n%s", ja, jb)
	}
	var back Model
	if err := json.Unmarshal(ja, &back); err != nil {
		t.Fatal(err)
	}
	f := map[string]float64{"a": 1, "b": 2, "c": 3}
	if s1, _ := a.Score(f); func() int { s2, _ := back.Score(f); return s2 }() != s1 {
		t.Fatal("a stored model scores differently")
	}
}

func TestTooFewLabels(t *testing.T) {
	ex := synthetic(100, 3)
	for i := range ex {
		ex[i].Fraud = i < 4
	}
	if _, err := Train(ex, Options{}); !errors.Is(err, ErrTooFewLabels) {
		t.Fatalf("4 fraud labels: %v", err)
	}
	if _, err := Train(synthetic(19, 3), Options{}); !errors.Is(err, ErrTooFewLabels) {
		t.Fatalf("19 labels: %v", err)
	}
	// Perfectly separable data still trains (the ridge keeps weights finite).
	for i := range ex {
		ex[i].Fraud = ex[i].Features["a"] > 1
	}
	m, err := Train(ex, Options{})
	if err != nil || math.IsNaN(m.Bias) {
		t.Fatalf("separable: %v %+v", err, m)
	}
}
