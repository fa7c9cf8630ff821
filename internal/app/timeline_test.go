package app_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
	"github.com/abacusbilling/abacus/internal/risk/casework"
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

// TestTimelineShowsRiskUsageSpikes: a usage spike the risk module records
// (risk.usage_anomaly v2, naming the subject's customer) reaches the
// customer's timeline through the relay and the timeline role, on both
// engines, and the risk.* family filters it.
func TestTimelineShowsRiskUsageSpikes(t *testing.T) {
	t.Parallel()
	for _, engine := range dbtest.Engines {
		t.Run(string(engine), func(t *testing.T) {
			t.Parallel()
			a := start(t, engine, nil)
			cus := a.post("/api/v1/customers", map[string]any{"name": "Spiky", "currency": "EUR", "subjects": []string{"spiky"}})
			day := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -1)
			spike := casework.UsageAnomalyEventV2{CustomerID: cus["id"].(string), UsageAnomalyEvent: casework.UsageAnomalyEvent{
				Meter: "calls", Subject: "spiky", Day: day, Value: 2500, Median: 100, MAD: 3, Days: 28, Ratio: 25}}
			if err := a.DB.InTx(t.Context(), func(tx *db.Tx) error {
				_, err := casework.UsageAnomaly.Record(t.Context(), tx, a.tenantOf(t, a.key), "spiky", time.Now(), spike)
				return err
			}); err != nil {
				t.Fatal(err)
			}
			path := "/api/v1/customers/" + cus["id"].(string) + "/timeline?type=risk.*"
			want := "Usage of calls was 25× its baseline on " + day.Format(time.DateOnly) + "."
			waitFor(t, func() bool {
				r := a.do("GET", path, a.key, nil)
				return r.status == 200 && strings.Contains(string(r.body), want)
			})
		})
	}
}
