// Package score is the risk module's per-tenant score: a logistic
// regression over an event's numeric features (counters.*, graph.*,
// lists.*, event amounts…), trained on the tenant's labelled customers, and
// a documented heuristic until there are enough labels.
//
// Training is deterministic: features are standardised (mean 0, scale 1 over
// the training set), and the L2-regularised log-likelihood is maximised by
// Newton's method (iteratively reweighted least squares) to a tolerance of
// 1e-9 on the weights, so the same examples in the same order give the same
// model on any machine. A model is versioned by its owner; its JSON form is
// what is stored.
//
// A score is 0–100: round(100 · sigmoid(bias + Σ wᵢ·zᵢ)), zᵢ the standardised
// feature. The reasons are the features whose terms wᵢ·zᵢ pushed the score
// up most (at most three, positive terms only).
package score

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"time"
)

// Example is one labelled customer's features.
type Example struct {
	Features map[string]float64
	Fraud    bool
}

// Reason is one feature's push on a score.
type Reason struct {
	Feature string  `json:"feature"`
	Value   float64 `json:"value"`
	// Weight is the feature's term in the log-odds (positive pushes up).
	Weight float64 `json:"weight"`
}

// Model scores features. The zero Model is not usable; use Heuristic or
// Train.
type Model struct {
	Version   int       `json:"version"`
	Kind      string    `json:"kind"` // "heuristic" or "logistic"
	TrainedAt time.Time `json:"trained_at,omitzero"`
	Examples  int       `json:"examples"`
	Positives int       `json:"positives"`
	Features  []string  `json:"features"`
	Mean      []float64 `json:"mean"`
	Scale     []float64 `json:"scale"`
	Weights   []float64 `json:"weights"`
	Bias      float64   `json:"bias"`
	Caps      []float64 `json:"caps,omitempty"` // heuristic: values above are capped
	// Iterations is how many Newton steps training took.
	Iterations int `json:"iterations,omitempty"`
}

// Heuristic is the score before a tenant has enough labels: log-odds
// -4 + 2·min(graph.linked_labelled_fraud, 3) + 0.25·min(graph.linked_accounts, 8)
// + 0.05·min(graph.component_size, 20) + 3·min(lists.block, 1)
// (a customer alone scores 2; sharing a device with one fraudster, 17:
// -4 + 2 + 0.25 + 0.05·3 = -1.6).
func Heuristic() Model {
	return Model{
		Kind:     "heuristic",
		Features: []string{"graph.component_size", "graph.linked_accounts", "graph.linked_labelled_fraud", "lists.block"},
		Mean:     []float64{0, 0, 0, 0},
		Scale:    []float64{1, 1, 1, 1},
		Weights:  []float64{0.05, 0.25, 2, 3},
		Caps:     []float64{20, 8, 3, 1},
		Bias:     -4,
	}
}

// Options tune training.
type Options struct {
	// MinExamples and MinEachClass: fewer labels than this and Train
	// returns ErrTooFewLabels (defaults 20 and 5).
	MinExamples, MinEachClass int
	// L2 is the ridge penalty on standardised weights (default 1).
	L2 float64
	// MaxIterations bounds Newton's steps (default 50).
	MaxIterations int
}

func (o Options) withDefaults() Options {
	if o.MinExamples <= 0 {
		o.MinExamples = 20
	}
	if o.MinEachClass <= 0 {
		o.MinEachClass = 5
	}
	if o.L2 <= 0 {
		o.L2 = 1
	}
	if o.MaxIterations <= 0 {
		o.MaxIterations = 50
	}
	return o
}

// ErrTooFewLabels is returned by Train when the labels are too few to fit
// a model; the heuristic stays in use.
var ErrTooFewLabels = errors.New("too few labels to train a model")

// Train fits a logistic regression to the examples. Features that are
// constant over the examples are left out. It returns ErrTooFewLabels
// below Options' minimums.
func Train(examples []Example, opts Options) (Model, error) {
	opts = opts.withDefaults()
	pos := 0
	names := map[string]bool{}
	for _, e := range examples {
		if e.Fraud {
			pos++
		}
		for n, v := range e.Features {
			if !math.IsNaN(v) && !math.IsInf(v, 0) {
				names[n] = true
			}
		}
	}
	if len(examples) < opts.MinExamples || pos < opts.MinEachClass || len(examples)-pos < opts.MinEachClass {
		return Model{}, fmt.Errorf("%w: %d labelled (%d fraud), need %d with %d of each", ErrTooFewLabels, len(examples), pos, opts.MinExamples, opts.MinEachClass)
	}
	all := make([]string, 0, len(names))
	for n := range names {
		all = append(all, n)
	}
	sort.Strings(all)

	m := Model{Kind: "logistic", Examples: len(examples), Positives: pos}
	n := float64(len(examples))
	for _, f := range all {
		var sum, sq float64
		for _, e := range examples {
			v := clean(e.Features[f])
			sum += v
		}
		mean := sum / n
		for _, e := range examples {
			d := clean(e.Features[f]) - mean
			sq += d * d
		}
		sd := math.Sqrt(sq / n)
		if sd < 1e-12 {
			continue
		}
		m.Features = append(m.Features, f)
		m.Mean = append(m.Mean, mean)
		m.Scale = append(m.Scale, sd)
	}
	d := len(m.Features) + 1 // last column: bias
	x := make([][]float64, len(examples))
	y := make([]float64, len(examples))
	for i, e := range examples {
		row := make([]float64, d)
		for j, f := range m.Features {
			row[j] = (clean(e.Features[f]) - m.Mean[j]) / m.Scale[j]
		}
		row[d-1] = 1
		x[i] = row
		if e.Fraud {
			y[i] = 1
		}
	}
	w := make([]float64, d)
	for it := 1; it <= opts.MaxIterations; it++ {
		m.Iterations = it
		grad := make([]float64, d)
		hess := make([][]float64, d)
		for j := range hess {
			hess[j] = make([]float64, d)
		}
		for i, row := range x {
			p := sigmoid(dot(w, row))
			r := p * (1 - p)
			for j := range d {
				grad[j] += (y[i] - p) * row[j]
				for k := 0; k <= j; k++ {
					hess[j][k] += r * row[j] * row[k]
				}
			}
		}
		for j := range d - 1 { // no penalty on the bias
			grad[j] -= opts.L2 * w[j]
			hess[j][j] += opts.L2
		}
		hess[d-1][d-1] += 1e-9
		for j := range d {
			for k := j + 1; k < d; k++ {
				hess[j][k] = hess[k][j]
			}
		}
		step, err := solve(hess, grad)
		if err != nil {
			return Model{}, fmt.Errorf("training: %w", err)
		}
		var size float64
		for j := range w {
			w[j] += step[j]
			size = max(size, math.Abs(step[j]))
		}
		if size < 1e-9 {
			break
		}
	}
	m.Weights = w[:d-1]
	m.Bias = w[d-1]
	return m, nil
}

// Score scores features (absent ones are the training mean, i.e. neutral)
// and names the features that pushed it up most.
func (m Model) Score(features map[string]float64) (int, []Reason) {
	return m.ScoreOf(func(name string) (float64, bool) {
		v, ok := features[name]
		return v, ok
	})
}

// ScoreOf is Score with each of the model's features asked of feature
// (ok=false for one the decision lacks), so that a caller need not build
// a map of every feature for the few a model reads.
func (m Model) ScoreOf(feature func(name string) (float64, bool)) (int, []Reason) {
	z := m.Bias
	reasons := make([]Reason, 0, len(m.Features))
	for j, f := range m.Features {
		v, ok := feature(f)
		if !ok {
			v = m.Mean[j]
		}
		v = clean(v)
		if j < len(m.Caps) && v > m.Caps[j] {
			v = m.Caps[j]
		}
		t := m.Weights[j] * (v - m.Mean[j]) / m.Scale[j]
		z += t
		if t > 1e-9 {
			reasons = append(reasons, Reason{Feature: f, Value: v, Weight: round(t)})
		}
	}
	slices.SortStableFunc(reasons, func(a, b Reason) int {
		switch {
		case a.Weight > b.Weight:
			return -1
		case a.Weight < b.Weight:
			return 1
		}
		return 0
	})
	if len(reasons) > 3 {
		reasons = reasons[:3]
	}
	return int(math.Round(100 * sigmoid(z))), reasons
}

func clean(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	return v
}

func round(v float64) float64 { return math.Round(v*1000) / 1000 }

func sigmoid(z float64) float64 { return 1 / (1 + math.Exp(-z)) }

func dot(a, b []float64) float64 {
	var s float64
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

// solve solves a·x = b for a symmetric positive definite a (Cholesky).
func solve(a [][]float64, b []float64) ([]float64, error) {
	n := len(b)
	l := make([][]float64, n)
	for i := range l {
		l[i] = make([]float64, n)
	}
	for i := range n {
		for j := 0; j <= i; j++ {
			s := a[i][j]
			for k := range j {
				s -= l[i][k] * l[j][k]
			}
			if i == j {
				if s <= 0 {
					return nil, errors.New("matrix not positive definite")
				}
				l[i][i] = math.Sqrt(s)
			} else {
				l[i][j] = s / l[j][j]
			}
		}
	}
	y := make([]float64, n)
	for i := range n {
		s := b[i]
		for k := range i {
			s -= l[i][k] * y[k]
		}
		y[i] = s / l[i][i]
	}
	x := make([]float64, n)
	for i := n - 1; i >= 0; i-- {
		s := y[i]
		for k := i + 1; k < n; k++ {
			s -= l[k][i] * x[k]
		}
		x[i] = s / l[i][i]
	}
	return x, nil
}
