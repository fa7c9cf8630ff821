package risk

import (
	"bytes"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	gojson "github.com/goccy/go-json"
)

// TestAnswerEncoderMatchesMarshal: the reused encoder of answers writes
// what json.Marshal writes, byte for byte, one decision after another:
// strings with quotes, HTML and control characters, non-ASCII and invalid
// UTF-8; numbers tiny, huge, negative and -0 (NaN refused); values of
// every JSON kind; nil and empty lists and maps.
func TestAnswerEncoderMatchesMarshal(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(18, 2026))
	enc := answerEncoders.Get().(*answerEncoder)
	for i := range 3000 {
		d := randomDecision(rng, i)
		want, wantErr := gojson.Marshal(d)
		got, err := enc.encode(d)
		if (err != nil) != (wantErr != nil) {
			t.Fatalf("decision %d: error %v, json.Marshal's %v", i, err, wantErr)
		}
		if err == nil && !bytes.Equal(got, want) {
			t.Fatalf("decision %d:\n got %s\nwant %s", i, got, want)
		}
	}
}

func randomDecision(rng *rand.Rand, i int) *Decision {
	str := func() string {
		parts := []string{"", "a", "rdec_01J", "block", `"q"`, `back\slash`, "<b>&amp;", "tab\t", "\x00\x1f", "\x7f", "é", "日本",
			"\u2028", "\xff\xfe", "a&b", "x>y", "h1_AbC-_x", "counters.cards_per_device_10m", "ﬀ"}
		var s string
		for range rng.IntN(3) + 1 {
			s += parts[rng.IntN(len(parts))]
		}
		return s
	}
	num := func() float64 {
		nums := []float64{0, math.Copysign(0, -1), 1, -1, 2.5, 249, 1e-7, 1.5e-6, 1e-6, 123456789.125, 1e20, 1e21, 3e21, -4e-9, 100, 1.0 / 3,
			math.MaxFloat64, math.SmallestNonzeroFloat64}
		if i%500 == 499 && rng.IntN(2) == 0 {
			return math.NaN()
		}
		return nums[rng.IntN(len(nums))]
	}
	value := func() any {
		switch rng.IntN(8) {
		case 0:
			return nil
		case 1:
			return str()
		case 2:
			return rng.IntN(2) == 0
		case 3:
			return map[string]any{str(): num(), "items": 3.0, "nested": map[string]any{"z": str(), "a": []any{1.0, "x", nil}}}
		case 4:
			return []any{str(), num(), true}
		case 5:
			return int64(rng.IntN(1000))
		}
		return num()
	}
	reasons := func() []Reason {
		if rng.IntN(5) == 0 {
			return nil
		}
		rs := []Reason{}
		for range rng.IntN(3) {
			r := Reason{Rule: str(), Version: rng.IntN(3), Name: str(), Action: []string{"", Block, Review, Allow}[rng.IntN(4)], Description: str()}
			if rng.IntN(6) > 0 {
				r.Values = map[string]any{}
				for range rng.IntN(4) {
					r.Values[str()] = value()
				}
			}
			rs = append(rs, r)
		}
		return rs
	}
	d := &Decision{ID: str(), EventID: str(), Decision: str(), Score: num(), Reasons: reasons(), Default: rng.IntN(2) == 0,
		ScoreReasons: reasons(), Shadow: reasons(),
		CreatedAt: time.Date(2026, 12, 7, 9, 30, rng.IntN(60), rng.IntN(1e9), time.UTC).Add(time.Duration(rng.IntN(3)) * time.Hour)}
	if rng.IntN(8) > 0 {
		d.Features.Counters = map[string]float64{}
		for range rng.IntN(12) {
			d.Features.Counters[str()] = num()
		}
	}
	if rng.IntN(8) > 0 {
		d.Features.Lists = map[string]bool{}
		for range rng.IntN(3) {
			d.Features.Lists[str()] = rng.IntN(2) == 0
		}
	}
	d.Features.Graph = GraphValues{LinkedAccounts: rng.IntN(5), LinkedLabelledFraud: rng.IntN(2), ComponentSize: rng.IntN(1e6)}
	if rng.IntN(6) > 0 {
		d.RuleErrors = []RuleError{}
		for range rng.IntN(2) {
			d.RuleErrors = append(d.RuleErrors, RuleError{Rule: str(), Version: rng.IntN(4), Name: str(), Mode: ModeShadow, Error: str()})
		}
	}
	switch rng.IntN(20) {
	case 0:
		d.Rules = []RuleRef{{Rule: str(), Version: 1, Mode: ModeEnforce, Matched: true}}
	case 1:
		d.Event = &Event{ID: str(), Type: TypeOrder, Time: d.CreatedAt, Properties: map[string]any{"a": 1.0}}
	case 2:
		d.Rules = []RuleRef{}
	}
	return d
}

// BenchmarkAnswer encodes the answer to one event of the benchmark
// (10 counters, the heuristic score's reason, matched rules' values) with
// json.Marshal (go-json) and with the reused encoder.
func BenchmarkAnswer(b *testing.B) {
	svc, ctx := benchService(b)
	tc, err := svc.config(ctx, "ten_bench")
	if err != nil {
		b.Fatal(err)
	}
	var d *Decision
	for i := range 10_000 { // until rules match (emails per device)
		evs, _, err := svc.parse.Parse("ten_bench", benchEvent(i), nil)
		if err != nil {
			b.Fatal(err)
		}
		if d, err = svc.decide(ctx, tc, evs[0], true); err != nil {
			b.Fatal(err)
		}
	}
	d.EventID = "rev_01jez5s0d3k1m2n3p4q5r6s7t8"
	d.ScoreReasons = []Reason{{Rule: "score:graph.component_size", Description: "graph.component_size = 4 raised the score (heuristic model, +0.20 log-odds)",
		Values: map[string]any{"graph.component_size": 4.0, "weight": 0.2}}}
	b.Run("Marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := gojson.Marshal(d); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoder", func(b *testing.B) {
		b.ReportAllocs()
		enc := answerEncoders.Get().(*answerEncoder)
		for b.Loop() {
			if _, err := enc.encode(d); err != nil {
				b.Fatal(err)
			}
		}
	})
}
