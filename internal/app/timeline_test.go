package app_test

import (
	"context"
	"testing"

	"github.com/abacusbilling/abacus/internal/db"
)

// TestTimelineRebuildsFromTheStream: a customer's entries, indexed by the
// timeline role, come back from the events stream after the index lost
// them (POST /api/v1/timeline/rebuild).
func TestTimelineRebuildsFromTheStream(t *testing.T) {
	t.Parallel()
	a := start(t, db.SQLite, nil)
	cus := a.do("POST", "/api/v1/customers", a.key, map[string]any{"name": "Timeline GmbH", "currency": "EUR"}).json(t)
	path := "/api/v1/customers/" + cus["id"].(string) + "/timeline"
	waitFor(t, func() bool { return len(a.do("GET", path, a.key, nil).json(t)["data"].([]any)) == 1 })
	if _, err := a.DB.ExecContext(context.Background(), `DELETE FROM timeline_entries`); err != nil {
		t.Fatal(err)
	}
	if n := len(a.do("GET", path, a.key, nil).json(t)["data"].([]any)); n != 0 {
		t.Fatalf("%d entries after the index was emptied", n)
	}
	res := a.do("POST", "/api/v1/timeline/rebuild", a.key, nil)
	if res.status != 200 {
		t.Fatalf("rebuild: %d %s", res.status, res.body)
	}
	if got := res.json(t); got["indexed"].(float64) < 1 {
		t.Fatalf("rebuild indexed nothing: %v", got)
	}
	entries := a.do("GET", path, a.key, nil).json(t)["data"].([]any)
	if len(entries) != 1 || entries[0].(map[string]any)["summary"] != "Customer created." {
		t.Fatalf("after the rebuild: %v", entries)
	}
}
