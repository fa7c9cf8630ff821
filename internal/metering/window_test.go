package metering

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/shopspring/decimal"
)

func mustLoc(t *testing.T, name string) *time.Location {
	t.Helper()
	l, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestWindowBounds(t *testing.T) {
	t.Parallel()
	u := func(s string) time.Time { t2, _ := time.Parse(time.RFC3339, s); return t2 }
	tests := []struct {
		name       string
		at         string
		size       WindowSize
		zone       string
		start, end string
	}{
		{"minute", "2026-03-10T12:34:56Z", WindowMinute, "UTC", "2026-03-10T12:34:00Z", "2026-03-10T12:35:00Z"},
		{"hour kolkata", "2026-03-10T12:10:00Z", WindowHour, "Asia/Kolkata", "2026-03-10T11:30:00Z", "2026-03-10T12:30:00Z"},
		{"hour kathmandu", "2026-03-10T12:10:00Z", WindowHour, "Asia/Kathmandu", "2026-03-10T11:15:00Z", "2026-03-10T12:15:00Z"},
		{"berlin spring day is 23h", "2026-03-29T10:00:00Z", WindowDay, "Europe/Berlin", "2026-03-28T23:00:00Z", "2026-03-29T22:00:00Z"},
		{"berlin autumn day is 25h", "2026-10-25T10:00:00Z", WindowDay, "Europe/Berlin", "2026-10-24T22:00:00Z", "2026-10-25T23:00:00Z"},
		{"berlin repeated hour, first", "2026-10-25T00:30:00Z", WindowHour, "Europe/Berlin", "2026-10-25T00:00:00Z", "2026-10-25T01:00:00Z"},
		{"berlin repeated hour, second", "2026-10-25T01:30:00Z", WindowHour, "Europe/Berlin", "2026-10-25T01:00:00Z", "2026-10-25T02:00:00Z"},
		{"new york spring day", "2026-03-08T12:00:00Z", WindowDay, "America/New_York", "2026-03-08T05:00:00Z", "2026-03-09T04:00:00Z"},
		{"new york autumn day", "2026-11-01T12:00:00Z", WindowDay, "America/New_York", "2026-11-01T04:00:00Z", "2026-11-02T05:00:00Z"},
		{"new york month across dst", "2026-03-15T00:00:00Z", WindowMonth, "America/New_York", "2026-03-01T05:00:00Z", "2026-04-01T04:00:00Z"},
		{"month utc february", "2028-02-29T23:59:00Z", WindowMonth, "UTC", "2028-02-01T00:00:00Z", "2028-03-01T00:00:00Z"},
		{"month december", "2026-12-31T23:00:00Z", WindowMonth, "Europe/Berlin", "2026-12-31T23:00:00Z", "2027-01-31T23:00:00Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, e := WindowBounds(u(tt.at), tt.size, mustLoc(t, tt.zone))
			if !s.Equal(u(tt.start)) || !e.Equal(u(tt.end)) {
				t.Errorf("got [%s, %s), want [%s, %s)", s.UTC().Format(time.RFC3339), e.UTC().Format(time.RFC3339), tt.start, tt.end)
			}
		})
	}
}

func TestWindows(t *testing.T) {
	t.Parallel()
	m, err := Compile(Meter{ID: "mtr_1", Slug: "tokens", EventType: "req", Aggregation: AggSum, ValueProperty: "$.n",
		GroupBy: map[string]string{"model": "$.model", "region": "$.region"}})
	if err != nil {
		t.Fatal(err)
	}
	row := func(at, subject, model, n string) Row {
		tm, _ := time.Parse(time.RFC3339, at)
		s := NewState(AggSum)
		s.observe(decimal.RequireFromString(n), nil, &Event{})
		gk := `{"model":"` + model + `","region":"eu"}`
		if model == "" {
			gk = `{"model":null,"region":"eu"}`
		}
		return Row{Start: tm, Subject: subject, GroupKey: gk, State: s}
	}
	// Europe/Berlin, autumn DST change on 2026-10-25.
	rows := []Row{
		row("2026-10-24T21:59:00Z", "a", "x", "1000"), // before from: excluded
		row("2026-10-24T22:00:00Z", "a", "x", "1"),
		row("2026-10-25T22:59:00Z", "a", "y", "2"), // still 25 Oct local (23:59 CET)
		row("2026-10-25T23:00:00Z", "b", "x", "4"), // 26 Oct local
		row("2026-10-26T10:00:00Z", "a", "", "8"),
		row("2026-10-26T23:00:00Z", "a", "x", "16"), // at to: excluded
	}
	from, _ := time.Parse(time.RFC3339, "2026-10-24T22:00:00Z")
	to, _ := time.Parse(time.RFC3339, "2026-10-26T23:00:00Z")
	base := Query{From: from, To: to, WindowSize: WindowDay, TimeZone: "Europe/Berlin"}

	type w struct{ start, subject, group, value string }
	tests := []struct {
		name string
		mod  func(q *Query)
		want []w
	}{
		{"days", func(*Query) {}, []w{{"2026-10-24T22:00:00Z", "", "", "3"}, {"2026-10-25T23:00:00Z", "", "", "12"}}},
		{"total", func(q *Query) { q.WindowSize = "" }, []w{{"2026-10-24T22:00:00Z", "", "", "15"}}},
		{"by subject", func(q *Query) { q.WindowSize, q.GroupBy = "", []string{"subject"} }, []w{{"2026-10-24T22:00:00Z", "a", "", "11"}, {"2026-10-24T22:00:00Z", "b", "", "4"}}},
		{"subject filter groups", func(q *Query) { q.Subjects = []string{"b"} }, []w{{"2026-10-25T23:00:00Z", "b", "", "4"}}},
		{"group by model", func(q *Query) { q.WindowSize, q.GroupBy = "", []string{"model"} }, []w{
			{"2026-10-24T22:00:00Z", "", `{"model":"x"}`, "5"},
			{"2026-10-24T22:00:00Z", "", `{"model":"y"}`, "2"},
			{"2026-10-24T22:00:00Z", "", `{"model":null}`, "8"}}},
		{"filter group", func(q *Query) { q.FilterGroupBy = map[string]string{"model": "x"} }, []w{{"2026-10-24T22:00:00Z", "", "", "1"}, {"2026-10-25T23:00:00Z", "", "", "4"}}},
		{"month", func(q *Query) { q.WindowSize = WindowMonth }, []w{{"2026-09-30T22:00:00Z", "", "", "15"}}},
		{"hours in UTC", func(q *Query) { q.WindowSize, q.TimeZone = WindowHour, "" }, []w{
			{"2026-10-24T22:00:00Z", "", "", "1"}, {"2026-10-25T22:00:00Z", "", "", "2"},
			{"2026-10-25T23:00:00Z", "", "", "4"}, {"2026-10-26T10:00:00Z", "", "", "8"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			q := base
			tt.mod(&q)
			res, err := Windows(m, q, rows)
			if err != nil {
				t.Fatal(err)
			}
			var got []w
			for _, d := range res.Data {
				x := w{start: d.WindowStart.Format(time.RFC3339), value: d.Value.String()}
				if d.Subject != nil {
					x.subject = *d.Subject
				}
				if d.GroupBy != nil {
					b, _ := json.Marshal(d.GroupBy)
					x.group = string(b)
				}
				got = append(got, x)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %v\nwant %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("[%d] got %v, want %v", i, got[i], tt.want[i])
				}
			}
		})
	}

	res, _ := Windows(m, base, rows)
	b, _ := json.Marshal(res)
	if !strings.Contains(string(b), `"value":3,"windowStart":"2026-10-24T22:00:00Z","windowEnd":"2026-10-25T23:00:00Z","subject":null,"groupBy":{}`) ||
		!strings.Contains(string(b), `"windowSize":"DAY"`) {
		t.Errorf("JSON = %s", b)
	}
}

func TestWindowsRejects(t *testing.T) {
	t.Parallel()
	m, _ := Compile(Meter{Slug: "c", EventType: "req", Aggregation: AggCount, GroupBy: map[string]string{"model": "$.model"}})
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name  string
		q     Query
		field string
	}{
		{"window size", Query{From: from, To: from.Add(time.Hour), WindowSize: "WEEK"}, "windowSize"},
		{"zone", Query{From: from, To: from.Add(time.Hour), TimeZone: "Mars/Olympus"}, "windowTimeZone"},
		{"order", Query{From: from, To: from}, "from"},
		{"missing to", Query{From: from}, "to"},
		{"sub-minute", Query{From: from.Add(time.Second), To: from.Add(time.Hour)}, "from"},
		{"group", Query{From: from, To: from.Add(time.Hour), GroupBy: []string{"region"}}, "groupBy"},
		{"filter", Query{From: from, To: from.Add(time.Hour), FilterGroupBy: map[string]string{"region": "eu"}}, "filterGroupBy[region]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Windows(m, tt.q, nil)
			e, ok := abacus.AsError(err)
			if !ok || e.Code != CodeInvalidQuery || e.Fields[0].Field != tt.field {
				t.Fatalf("got %v, want invalid_query on %s", err, tt.field)
			}
		})
	}
}

// Every window says how many events are behind its value: the events that
// contributed a value (State.Count). An event whose value property is
// missing, null or not a number adds nothing to a SUM meter, so it is not
// one of its events either. The count is for Go callers (billing's
// per-event fees); the JSON answer keeps OpenMeter's shape.
func TestWindowsCountEvents(t *testing.T) {
	t.Parallel()
	sum, _ := Compile(Meter{ID: "mtr_sum", Slug: "payments", EventType: "payment", Aggregation: AggSum, ValueProperty: "$.amount"})
	cnt, _ := Compile(Meter{ID: "mtr_cnt", Slug: "payment_count", EventType: "payment", Aggregation: AggCount})
	ev := func(min int, subject, data string) Event {
		return Event{TenantID: "ten_1", ID: subject + data, Source: "s", Type: "payment", Subject: subject,
			Time: testNow.Add(timeMinutes(min)), Data: []byte(data)}
	}
	a := NewAggregator()
	a.Add(NewMeterSet("ten_1", sum, cnt), []Event{
		ev(0, "a", `{"amount":"10.50"}`),
		ev(0, "a", `{"amount":20}`),
		ev(61, "a", `{"amount":0}`), // a zero value is a value: one event
		ev(1, "b", `{"amount":5}`),
		ev(1, "b", `{"amount":null}`),
		ev(2, "b", `{}`),
		ev(2, "b", `{"amount":"lots"}`),
	})
	rows := map[string][]Row{}
	for _, r := range a.Rollups() {
		rows[r.Key.MeterID] = append(rows[r.Key.MeterID], Row{Start: r.Key.Minute, Subject: r.Key.Subject, GroupKey: r.Key.GroupKey, State: r.State})
	}
	from := testNow
	type w struct {
		start, subject, value string
		events                int64
	}
	tests := []struct {
		name string
		m    *Compiled
		q    Query
		want []w
	}{
		{"total", sum, Query{From: from, To: from.Add(2 * time.Hour)}, []w{{"12:00", "", "35.5", 4}}},
		{"by subject", sum, Query{From: from, To: from.Add(2 * time.Hour), Subjects: []string{"a", "b"}},
			[]w{{"12:00", "a", "30.5", 3}, {"12:00", "b", "5", 1}}},
		{"hours", sum, Query{From: from, To: from.Add(2 * time.Hour), WindowSize: WindowHour},
			[]w{{"12:00", "", "35.5", 3}, {"13:00", "", "0", 1}}},
		{"count meter", cnt, Query{From: from, To: from.Add(2 * time.Hour), GroupBy: []string{"subject"}},
			[]w{{"12:00", "a", "3", 3}, {"12:00", "b", "4", 4}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res, err := Windows(tt.m, tt.q, rows[tt.m.ID()])
			if err != nil {
				t.Fatal(err)
			}
			var got []w
			for _, d := range res.Data {
				x := w{start: d.WindowStart.Format("15:04"), value: d.Value.String(), events: d.Events}
				if d.Subject != nil {
					x.subject = *d.Subject
				}
				got = append(got, x)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("got %v\nwant %v", got, tt.want)
			}
			b, err := json.Marshal(res)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(strings.ToLower(string(b)), "events") || strings.Contains(string(b), "count") {
				t.Errorf("the JSON answer carries the event count: %s", b)
			}
		})
	}
}
