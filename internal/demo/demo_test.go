package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/abacusbilling/abacus/internal/client"
	"github.com/abacusbilling/abacus/internal/period"
)

// The backdated subscriptions start two months (and two hours) before now,
// clamped to shorter months, so both their monthly periods have ended by
// now in every demo customer's time zone.
func TestBackdate(t *testing.T) {
	var zones []*time.Location
	for _, p := range people {
		loc, err := time.LoadLocation(p.tz)
		if err != nil {
			t.Fatal(err)
		}
		zones = append(zones, loc)
	}
	for _, tc := range []struct{ now, want string }{
		{"2026-12-04T14:30:00Z", "2026-10-04T12:30:00Z"}, // across the end of summer time in Europe and the US
		{"2026-03-31T08:00:00Z", "2026-01-31T06:00:00Z"}, // the first period ends on Feb 28
		{"2028-04-29T00:00:00Z", "2028-02-28T22:00:00Z"}, // leap year
		{"2026-04-30T23:59:00Z", "2026-02-28T21:59:00Z"}, // not Mar 2, as AddDate(0, -2, 0) has it
		{"2026-08-31T01:00:00Z", "2026-06-29T23:00:00Z"},
		{"2026-05-31T12:00:00Z", "2026-03-31T10:00:00Z"}, // across the start of summer time
		{"2027-01-01T00:30:00Z", "2026-10-31T22:30:00Z"},
	} {
		now, _ := time.Parse(time.RFC3339, tc.now)
		start := backdate(now)
		if got := start.Format(time.RFC3339); got != tc.want {
			t.Errorf("backdate(%s) = %s, want %s", tc.now, got, tc.want)
		}
		for _, loc := range zones {
			if end := period.NewSchedule(start, period.Monthly, loc).Period(1).End; end.After(now) {
				t.Errorf("now %s: the second period in %s ends later, at %s", tc.now, loc, end)
			}
		}
	}
}

func TestOptionsValidate(t *testing.T) {
	for days, ok := range map[int]bool{-1: false, 0: true, 1: true, MaxUsageDays: true, MaxUsageDays + 1: false} {
		if err := (Options{UsageDays: days}).validate(); (err == nil) != ok {
			t.Errorf("UsageDays %d: %v", days, err)
		}
	}
}

// On a loaded machine billing may finalize both periods of some backdated
// customers before it reaches the others: as many invoices as backdated
// customers, and a count that holds still for a while. The demo must wait
// for every backdated customer's second period, not for that count.
func TestInvoicesWaitsForEveryBackdatedCustomer(t *testing.T) {
	backdated := []string{"cus_1", "cus_2", "cus_3", "cus_4"}
	var polls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path != "/api/v1/invoices" {
			_, _ = w.Write([]byte(`{"lines":[]}`))
			return
		}
		// Both periods of the first two customers for six looks, then
		// both periods of all four.
		n := 2
		if polls.Add(1) > 6 {
			n = len(backdated)
		}
		var data []map[string]any
		for _, c := range backdated[:n] {
			for cycle := range 2 {
				data = append(data, map[string]any{"id": fmt.Sprintf("inv_%s_%d", c, cycle), "customer_id": c, "status": "open", "cycle_index": cycle})
			}
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"data": data, "next_cursor": ""})
	}))
	defer srv.Close()

	r := &Runner{c: client.New(srv.URL, "abk_test", nil), o: Options{Out: io.Discard}, poll: time.Millisecond}
	for _, id := range backdated {
		r.custs = append(r.custs, &customer{id: id, backdate: true})
	}
	r.custs = append(r.custs, &customer{id: "cus_5"}) // started now: no closed period
	if err := r.invoices(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r.sum.Invoices != 2*len(backdated) {
		t.Fatalf("the demo stopped waiting at %d finalized invoices after %d looks; want both periods of all %d backdated customers (%d)",
			r.sum.Invoices, polls.Load(), len(backdated), 2*len(backdated))
	}
}
