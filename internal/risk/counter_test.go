package risk

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"
)

// Counters stay exact when events reach them out of time order, as
// concurrent requests do, and for questions in between: every value is
// checked against a count over every event kept, on a few hot keys.
func TestCountersExactOutOfOrder(t *testing.T) {
	t.Parallel()
	base := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	for _, def := range []Counter{
		{Name: "n", Key: "customer_id", Op: OpCount, window: 10 * time.Minute},
		{Name: "amount", Key: "customer_id", Op: OpSum, Of: "amount", window: 10 * time.Minute},
		{Name: "cards", Key: "customer_id", Op: OpDistinct, Of: "card_fingerprint", window: 10 * time.Minute},
		// Few cards a key in a short window: live windows of 0 to 4
		// values, so the values move between inline and a map.
		{Name: "few_cards", Key: "customer_id", Op: OpDistinct, Of: "card_fingerprint", window: 3 * time.Second},
	} {
		t.Run(def.Name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(18, 4))
			st := newCounterState(def)
			type fact struct {
				key, card string
				at        time.Time
				micros    int64
			}
			var kept []fact
			want := func(f fact) float64 {
				n, sum := int64(1), f.micros
				cards := map[string]bool{f.card: true}
				from := f.at.Add(-def.window)
				for _, k := range kept {
					if k.key == f.key && k.at.After(from) && !k.at.After(f.at) {
						n, sum, cards[k.card] = n+1, sum+k.micros, true
					}
				}
				switch def.Op {
				case OpSum:
					return float64(sum) / 1e6
				case OpDistinct:
					return float64(len(cards))
				}
				return float64(n)
			}
			for i := range 1500 {
				// Mostly a little behind the newest (up to 3 s), sometimes
				// minutes late; 400 ms apart, so windows hold ~1,500 events.
				at := base.Add(time.Duration(i)*400*time.Millisecond - time.Duration(r.IntN(3000))*time.Millisecond)
				if r.IntN(50) == 0 {
					at = at.Add(-time.Duration(r.IntN(15)) * time.Minute)
				}
				cents := r.IntN(10_000)
				cards := 40
				if def.Name == "few_cards" {
					cards = 4
				}
				f := fact{key: "c" + strconv.Itoa(r.IntN(3)), card: "card" + strconv.Itoa(r.IntN(cards)), at: at, micros: int64(cents) * 10_000}
				ev := &Event{ID: fmt.Sprint(i), Type: TypePayment, Time: at, CustomerID: f.key, CardFingerprint: f.card,
					Amount: fmt.Sprintf("%d.%02d", cents/100, cents%100)}
				ev.finish()
				question := r.IntN(5) == 0
				if got, w := st.add(ev, !question), want(f); got != w {
					t.Fatalf("event %d (question %v, %s behind): %s = %v, want %v", i, question, base.Add(time.Duration(i)*400*time.Millisecond).Sub(at), def.Op, got, w)
				}
				if !question {
					kept = append(kept, f)
				}
			}
		})
	}
}

// A prune pass lets go of the counter between strides, and what decisions
// do meanwhile survives it: a new series, and a fresh entry in a series
// whose other entries expired; series with only expired entries go.
func TestPruneLetsDecisionsInBetweenStrides(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	st := newCounterState(Counter{Name: "n", Key: "customer_id", Op: OpCount, window: 10 * time.Minute})
	old := now.Add(-10*time.Minute - LateWindow - time.Minute)
	const series = 3 * pruneStride
	for i := range series {
		at := now.Add(-time.Minute)
		if i%2 == 0 {
			at = old
		}
		st.add(&Event{ID: fmt.Sprint("e", i), Time: at, CustomerID: fmt.Sprint("c", i)}, true)
	}
	count := func(customer string) float64 { // the entries kept (a question counts itself too)
		return st.add(&Event{ID: "q", Time: now, CustomerID: customer}, false) - 1
	}
	yields := 0
	st.yield = func() {
		yields++
		if yields == 1 {
			st.add(&Event{ID: "new", Time: now, CustomerID: "newcomer"}, true)
			for i := 0; i < series; i += 2 {
				st.add(&Event{ID: fmt.Sprint("fresh", i), Time: now, CustomerID: fmt.Sprint("c", i)}, true)
			}
		}
	}
	st.prune(now)
	if yields != series/pruneStride {
		t.Fatalf("the pass let go of the lock %d times, want %d", yields, series/pruneStride)
	}
	if got := count("newcomer"); got != 1 {
		t.Fatalf("the series made during the pass counts %v, want 1", got)
	}
	for i := range series {
		want := 1.0 // odd: one fresh entry; even: the expired one pruned (or never reached), the fresh one kept
		if got := count(fmt.Sprint("c", i)); got != want {
			t.Fatalf("c%d counts %v, want %v", i, got, want)
		}
	}
	st.yield = nil
	st.prune(now)
	for i := 0; i < series; i += 2 {
		if es := len(st.by[fmt.Sprint("c", i)].es); es != 1 {
			t.Fatalf("c%d keeps %d entries after a second pass, want only the fresh one", i, es)
		}
	}
}

// A pass that finds only expired entries leaves no series behind.
func TestPruneDropsExpiredSeries(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	st := newCounterState(Counter{Name: "n", Key: "customer_id", Op: OpCount, window: 10 * time.Minute})
	for i := range 2*pruneStride + 5 {
		st.add(&Event{ID: fmt.Sprint("e", i), Time: now.Add(-10*time.Minute - LateWindow - time.Second), CustomerID: fmt.Sprint("c", i)}, true)
	}
	if kept := st.prune(now); kept != 0 || len(st.by) != 0 {
		t.Fatalf("kept %d entries in %d series, want none", kept, len(st.by))
	}
}

// valueCounts answers as a map of counts does, through random increments
// and decrements over few values (inline) and more (a map).
func TestValueCountsAgreeWithAMap(t *testing.T) {
	t.Parallel()
	for _, values := range []int{2, 3, 8} {
		r := rand.New(rand.NewPCG(uint64(values), 9))
		var c valueCounts
		want := map[int64]int32{}
		for i := range 5000 {
			v := int64(r.IntN(values))
			switch x := r.IntN(10); {
			case x < 5:
				c.inc(v)
				want[v]++
			case x < 9:
				c.dec(v)
				if want[v]--; want[v] <= 0 {
					delete(want, v)
				}
			default:
				c.reset()
				clear(want)
			}
			if c.len() != len(want) {
				t.Fatalf("%d values, step %d: len %d, want %d", values, i, c.len(), len(want))
			}
			for v := range int64(values) {
				if c.get(v) != want[v] {
					t.Fatalf("%d values, step %d: get(%d) = %d, want %d", values, i, v, c.get(v), want[v])
				}
			}
		}
	}
}
