package usage_test

import (
	"fmt"
	"net/url"
	"sort"
	"testing"

	"github.com/abacusbilling/abacus/internal/db"
)

// TestBlocksListAndDedup stores events across many blocks whose time
// ranges overlap, then pages through them: every event exactly once, newest
// first. A retry that mixes stored and new events counts only the new ones.
func TestBlocksListAndDedup(t *testing.T) {
	t.Parallel()
	runBoth(t, func(t *testing.T, d *db.DB) {
		b := setup(t, d, options{})
		if r := b.do("POST", "/api/v1/meters", b.key, "application/json", map[string]any{"slug": "calls", "eventType": "api", "aggregation": "COUNT"}); r.status != 201 {
			t.Fatalf("create meter: %d %s", r.status, r.body)
		}
		var want []string
		req := func(n int) []string {
			var evs []string
			for i := 0; i < 5; i++ {
				// Times interleave across requests: block ranges overlap.
				id := fmt.Sprintf("r%d-%d", n, i)
				evs = append(evs, ev(id, fmt.Sprintf("cus_%d", i%3), "api", fmt.Sprintf("2026-03-10T10:%02d:%02dZ", i*10+n%7, n), `{}`))
			}
			return evs
		}
		for n := 0; n < 8; n++ {
			evs := req(n)
			b.ingest(b.key, ceBatch, batch(evs...))
			b.waitProcessed() // one round per request: one block each
			for i := 0; i < 5; i++ {
				want = append(want, fmt.Sprintf("r%d-%d", n, i))
			}
		}
		// A retry of request 3 with two new events in it.
		retry := append(req(3), ev("x1", "cus_1", "api", "2026-03-10T10:00:03Z", `{}`), ev("x2", "cus_1", "api", "2026-03-10T11:00:00Z", `{}`))
		b.ingest(b.key, ceBatch, batch(retry...))
		b.waitProcessed()
		want = append(want, "x1", "x2")

		if got := b.total("calls", ""); got != fmt.Sprint(len(want)) {
			t.Errorf("calls = %s, want %d", got, len(want))
		}
		var seen []string
		var times []string
		cur := ""
		for page := 0; page < 20; page++ {
			r := b.do("GET", "/api/v1/events?limit=4&cursor="+url.QueryEscape(cur), b.key, "", nil)
			var got []struct {
				Event struct {
					ID   string `json:"id"`
					Time string `json:"time"`
				} `json:"event"`
			}
			if r.status != 200 || jsonUnmarshal(r.body, &got) != nil {
				t.Fatalf("list: %d %s", r.status, r.body)
			}
			for _, e := range got {
				seen = append(seen, e.Event.ID)
				times = append(times, e.Event.Time)
			}
			if cur = r.header.Get("Abacus-Next-Cursor"); cur == "" {
				break
			}
		}
		if !sort.SliceIsSorted(times, func(i, j int) bool { return times[i] > times[j] }) {
			t.Errorf("not newest first: %v", times)
		}
		sort.Strings(seen)
		sort.Strings(want)
		if fmt.Sprint(seen) != fmt.Sprint(want) {
			t.Errorf("listed %v\nwant   %v", seen, want)
		}
	})
}
