package usage_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/metering/usage"
)

// A query with ExactFrom counts the minute From cuts only from From on,
// read from the stored events: on time, and after an event of that minute
// arrived late in a block with current events, outside the blocks first
// searched.
func TestQueryExactFromCountsFromTheInstant(t *testing.T) {
	t.Parallel()
	runBoth(t, func(t *testing.T, d *db.DB) {
		b := setup(t, d, options{})
		if r := b.do("POST", "/api/v1/meters", b.key, "application/json", map[string]any{"slug": "calls", "eventType": "call",
			"aggregation": "SUM", "valueProperty": "$.n"}); r.status != http.StatusCreated {
			t.Fatalf("creating meter: %d %s", r.status, r.body)
		}
		cut := testNow.Add(-2 * time.Hour).Add(30 * time.Second)
		send := func(evs ...[2]any) { // (time, n)
			var out []map[string]any
			for _, e := range evs {
				at := e[0].(time.Time)
				out = append(out, map[string]any{"specversion": "1.0", "id": fmt.Sprint("c-", at.UnixMicro()), "source": "test", "type": "call",
					"subject": "ada", "time": at.Format(time.RFC3339Nano), "data": map[string]any{"n": e[1]}})
			}
			body, _ := json.Marshal(out)
			b.ingest(b.key, ceBatch, string(body))
			b.waitProcessed()
		}
		ctx := abacus.WithPrincipal(t.Context(), &abacus.Principal{TenantID: b.tenant, Kind: "system", Scopes: []abacus.Scope{abacus.ScopeRead}})
		to := cut.Add(time.Hour).Truncate(time.Minute)
		total := func(exact bool) string {
			t.Helper()
			res, _, err := b.svc.Query(ctx, "calls", usage.QueryParams{From: &cut, To: &to, Subject: []string{"ada"}, ExactFrom: exact})
			if err != nil {
				t.Fatal(err)
			}
			sum := "0"
			for _, w := range res.Data {
				sum = w.Value.String()
			}
			return sum
		}
		send([2]any{cut.Add(-20 * time.Second), 1}, [2]any{cut.Add(10 * time.Second), 2}, [2]any{cut.Add(2 * time.Minute), 8})
		if got, whole := total(true), total(false); got != "10" || whole != "11" {
			t.Fatalf("exact %s, to the minute %s; want 10 and 11", got, whole)
		}
		// Late: sent with an event of now, so its block's newest event is
		// two hours after the minute.
		send([2]any{cut.Add(5 * time.Second), 4}, [2]any{testNow, 100})
		if got := total(true); got != "14" {
			t.Fatalf("exact after a late event %s, want 14", got)
		}
	})
}
