package usage_test

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/abacusbilling/abacus/internal/db"
)

// A worker that dies after commit and before ack (the hook fails) resumes
// from the stored offset: the committed round is not applied again, and
// what follows is not lost.
func TestRedeliveryAppliedOnce(t *testing.T) {
	t.Parallel()
	runBoth(t, func(t *testing.T, d *db.DB) {
		var crashes atomic.Int32
		b := setup(t, d, options{partitions: 1, afterCommit: func(int) error {
			if crashes.Add(1) <= 3 {
				return errors.New("simulated crash before ack")
			}
			return nil
		}})
		if r := b.do("POST", "/api/v1/meters", b.key, "application/json",
			map[string]any{"slug": "tokens", "eventType": "api", "aggregation": "SUM", "valueProperty": "$.n"}); r.status != http.StatusCreated {
			t.Fatalf("%d %s", r.status, r.body)
		}
		var evs []string
		for i := 0; i < 50; i++ {
			evs = append(evs, ev(fmt.Sprintf("r%d", i), "cus_1", "api", "2026-03-10T10:00:00Z", fmt.Sprintf(`{"n":%d}`, i)))
		}
		for i := 0; i < 5; i++ { // five requests; the first rounds "crash" after commit
			b.ingest(b.key, ceBatch, "["+strings.Join(evs[i*10:i*10+10], ",")+"]")
		}
		b.ingest(b.key, ceBatch, "["+strings.Join(evs, ",")+"]") // and everything again
		b.waitProcessed()
		if got := b.total("tokens", ""); got != "1225" {
			t.Fatalf("sum = %s, want 1225 (0+…+49)", got)
		}
		if crashes.Load() < 1 {
			t.Fatalf("hook ran %d times", crashes.Load())
		}
	})
}
