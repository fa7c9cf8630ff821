package usage

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/metering"
)

// QueryParams are a usage query's parameters as the API takes them. From
// and To are rounded outward to whole minutes (usage is kept per minute);
// absent To is now, absent From is the late-event window before the
// meter's creation.
type QueryParams struct {
	From           *time.Time
	To             *time.Time
	WindowSize     metering.WindowSize
	WindowTimeZone string
	Subject        []string
	GroupBy        []string
	FilterGroupBy  map[string]string
	// ExactFrom counts from From exactly instead of from the start of its
	// minute: the events of that minute before From are left out (usage
	// that belongs to a subscription from its start instant).
	ExactFrom bool
}

// Query answers a usage query from stored rollups, reading the coarsest
// resolution whose rows fit the windows. Errors: meter_not_found,
// invalid_query (every bad parameter).
func (s *Service) Query(ctx context.Context, idOrSlug string, p QueryParams) (*metering.QueryResult, MeterRecord, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return nil, MeterRecord{}, err
	}
	rec, err := getMeter(ctx, s.db, tenant, idOrSlug)
	if err != nil {
		return nil, rec, err
	}
	c, err := metering.Compile(rec.Meter)
	if err != nil {
		return nil, rec, fmt.Errorf("compiling stored meter %s: %w", rec.ID, err)
	}
	q := metering.Query{WindowSize: p.WindowSize, TimeZone: p.WindowTimeZone, Subjects: p.Subject, GroupBy: p.GroupBy, FilterGroupBy: p.FilterGroupBy}
	if p.To != nil {
		q.To = *p.To
	} else {
		q.To = s.clock.Now()
	}
	if t := q.To.Truncate(time.Minute); !t.Equal(q.To) {
		q.To = t.Add(time.Minute)
	}
	if p.From != nil {
		q.From = p.From.Truncate(time.Minute)
	} else {
		// No from: everything the meter can hold, i.e. back to the oldest
		// event the tenant's late-event window accepted when it was created.
		window := s.limits.LateWindow
		tr, err := s.rules.For(ctx, tenant)
		if err != nil {
			return nil, rec, err
		}
		if tr != nil && tr.LateWindow > 0 {
			window = tr.LateWindow
		}
		q.From = rec.CreatedAt.Add(-window).Truncate(24 * time.Hour)
	}
	q.From, q.To = q.From.UTC(), q.To.UTC()
	var rows []metering.Row
	if p.ExactFrom && p.From != nil && !p.From.Equal(q.From) {
		rows, err = s.readFrom(ctx, tenant, c, q, p.From.UTC())
	} else {
		rows, err = s.readRows(ctx, tenant, c, q, chooseResolution(&q))
	}
	if err != nil {
		return nil, rec, err
	}
	out, err := metering.Windows(c, q, rows)
	return out, rec, err
}

// chooseResolution picks the coarsest stored rows that every window (and
// [From, To)) contains whole.
func chooseResolution(q *metering.Query) int64 {
	loc, err := time.LoadLocation(q.TimeZone)
	if err != nil || q.From.IsZero() || q.To.IsZero() || !q.From.Before(q.To) {
		return resMinute
	}
	aligned := func(res int64) bool { return q.From.Unix()%res == 0 && q.To.Unix()%res == 0 }
	offsets := func(unit int) bool { // every UTC offset of loc in range is a multiple of unit seconds
		t := q.From
		for {
			_, off := t.In(loc).Zone()
			if off%unit != 0 {
				return false
			}
			_, end := t.In(loc).ZoneBounds()
			if end.IsZero() || !end.Before(q.To) {
				return true
			}
			t = end
		}
	}
	switch q.WindowSize {
	case "":
		switch {
		case aligned(resDay):
			return resDay
		case aligned(resHour):
			return resHour
		}
	case metering.WindowHour:
		if aligned(resHour) && offsets(3600) {
			return resHour
		}
	case metering.WindowDay, metering.WindowMonth:
		switch {
		case aligned(resDay) && offsets(86400):
			return resDay
		case aligned(resHour) && offsets(3600):
			return resHour
		}
	}
	return resMinute
}

func (s *Service) readRows(ctx context.Context, tenant string, c *metering.Compiled, q metering.Query, res int64) ([]metering.Row, error) {
	where := ` WHERE tenant_id = $1 AND meter_id = $2 AND res = $3 AND start >= $4 AND start < $5`
	args := []any{tenant, c.ID(), res, q.From.Unix(), q.To.Unix()}
	if len(q.Subjects) > 0 {
		ph := make([]string, len(q.Subjects))
		for i, sub := range q.Subjects {
			args = append(args, sub)
			ph[i] = "$" + strconv.Itoa(len(args))
		}
		where += ` AND subject IN (` + strings.Join(ph, ",") + `)`
	}
	rows, err := s.db.QueryContext(ctx, `SELECT start, subject, group_key, `+stateCols+` FROM usage_rollups`+where+` ORDER BY start`, args...)
	if err != nil {
		return nil, fmt.Errorf("reading usage: %w", err)
	}
	defer rows.Close()
	agg := c.Meter.Aggregation
	var out []metering.Row
	for rows.Next() {
		var start int64
		var r metering.Row
		var sr stateRow
		if err := rows.Scan(&start, &r.Subject, &r.GroupKey, &sr.count, &sr.sum, &sr.min, &sr.max, &sr.latest, &sr.latestAt, &sr.latestSource, &sr.latestID); err != nil {
			return nil, fmt.Errorf("reading usage: %w", err)
		}
		if r.State, err = sr.state(agg); err != nil {
			return nil, err
		}
		r.Start = time.Unix(start, 0).UTC()
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading usage: %w", err)
	}
	rows.Close()
	if agg != metering.AggUniqueCount || len(out) == 0 {
		return out, nil
	}
	type vk struct {
		start          int64
		subject, group string
	}
	idx := make(map[vk]int, len(out))
	for i := range out {
		out[i].State.Distinct = map[string]struct{}{}
		idx[vk{out[i].Start.Unix(), out[i].Subject, out[i].GroupKey}] = i
	}
	vrows, err := s.db.QueryContext(ctx, `SELECT start, subject, group_key, value FROM usage_rollup_values`+where, args...)
	if err != nil {
		return nil, fmt.Errorf("reading unique values: %w", err)
	}
	defer vrows.Close()
	for vrows.Next() {
		var k vk
		var v string
		if err := vrows.Scan(&k.start, &k.subject, &k.group, &v); err != nil {
			return nil, fmt.Errorf("reading unique values: %w", err)
		}
		if i, ok := idx[k]; ok {
			out[i].State.Distinct[v] = struct{}{}
		}
	}
	return out, vrows.Err()
}

// CloudEvent is a stored event in CloudEvents JSON form.
type CloudEvent struct {
	ID              string          `json:"id"`
	Source          string          `json:"source"`
	SpecVersion     string          `json:"specversion"`
	Type            string          `json:"type"`
	Subject         string          `json:"subject"`
	Time            time.Time       `json:"time"`
	DataContentType string          `json:"datacontenttype,omitempty"`
	DataSchema      string          `json:"dataschema,omitempty"`
	Data            json.RawMessage `json:"data,omitempty"`
}

// IngestedEvent is one listed event, in OpenMeter's shape.
type IngestedEvent struct {
	Event      CloudEvent `json:"event"`
	IngestedAt time.Time  `json:"ingestedAt"`
	StoredAt   time.Time  `json:"storedAt"`
}

// ListEventsParams filter the event list.
type ListEventsParams struct {
	Subject string
	Type    string
	From    *time.Time // event time, inclusive
	To      *time.Time // event time, exclusive
	Limit   int        // default 100, at most 1000
	Cursor  string
}

// ListEvents returns the tenant's stored events, newest event time first,
// and the cursor of the next page ("" at the end). Errors: invalid_cursor,
// invalid_limit.
func (s *Service) ListEvents(ctx context.Context, p ListEventsParams) ([]IngestedEvent, string, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return nil, "", err
	}
	if p.Limit == 0 {
		p.Limit = 100
	}
	if p.Limit < 1 || p.Limit > 1000 {
		return nil, "", abacus.Invalid("invalid_limit", "limit must be between 1 and 1000, got %d", p.Limit).WithField("query.limit", "out of range")
	}
	var cur *eventPos
	if p.Cursor != "" {
		raw, err := base64.RawURLEncoding.DecodeString(p.Cursor)
		parts := strings.SplitN(string(raw), "\x00", 3)
		var t int64
		if err == nil && len(parts) == 3 {
			t, err = strconv.ParseInt(parts[0], 10, 64)
		}
		if err != nil || len(parts) != 3 {
			return nil, "", abacus.Invalid("invalid_cursor", "cursor is not one this API returned; start again without it").WithField("query.cursor", "malformed")
		}
		cur = &eventPos{t, parts[1], parts[2]}
	}
	// Blocks are read newest max_time first; once limit+1 events are held
	// and the next block ends before the oldest of them, no later block can
	// hold a newer one.
	where := `tenant_id = $1`
	args := []any{tenant}
	if p.From != nil {
		args = append(args, p.From.UnixMicro())
		where += ` AND max_time >= $` + strconv.Itoa(len(args))
	}
	if p.To != nil {
		args = append(args, p.To.UnixMicro())
		where += ` AND min_time < $` + strconv.Itoa(len(args))
	}
	if cur != nil {
		args = append(args, cur.t)
		where += ` AND min_time <= $` + strconv.Itoa(len(args))
	}
	rows, err := s.db.QueryContext(ctx, `SELECT max_time, data FROM usage_event_blocks WHERE `+where+` ORDER BY max_time DESC`, args...)
	if err != nil {
		return nil, "", fmt.Errorf("listing events: %w", err)
	}
	defer rows.Close()
	var held []metering.Event
	for rows.Next() {
		var maxT int64
		var data []byte
		if err := rows.Scan(&maxT, &data); err != nil {
			return nil, "", fmt.Errorf("listing events: %w", err)
		}
		if len(held) > p.Limit && maxT < held[p.Limit].Time.UnixMicro() {
			break
		}
		evs, err := metering.DecodeBatch(data)
		if err != nil {
			return nil, "", fmt.Errorf("listing events: %w", err)
		}
		for _, e := range evs {
			t := e.Time.UnixMicro()
			switch {
			case p.Subject != "" && e.Subject != p.Subject,
				p.Type != "" && e.Type != p.Type,
				p.From != nil && t < p.From.UnixMicro(),
				p.To != nil && t >= p.To.UnixMicro(),
				cur != nil && !cur.after(eventPos{t, e.Source, e.ID}):
				continue
			}
			held = append(held, e)
		}
		slices.SortFunc(held, func(a, b metering.Event) int { return -posOf(&a).compare(posOf(&b)) })
		if len(held) > p.Limit+1 {
			held = held[:p.Limit+1]
		}
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("listing events: %w", err)
	}
	out := make([]IngestedEvent, 0, len(held))
	for _, e := range held {
		ce := CloudEvent{ID: e.ID, Source: e.Source, SpecVersion: "1.0", Type: e.Type, Subject: e.Subject, Time: e.Time,
			DataContentType: e.DataContentType, DataSchema: e.DataSchema}
		if e.Data != nil {
			ce.Data = json.RawMessage(e.Data)
		}
		recv := e.ReceivedAt.Truncate(time.Microsecond)
		out = append(out, IngestedEvent{Event: ce, IngestedAt: recv, StoredAt: recv})
	}
	next := ""
	if len(out) > p.Limit {
		out = out[:p.Limit]
		l := out[len(out)-1].Event
		next = base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(l.Time.UnixMicro(), 10) + "\x00" + l.Source + "\x00" + l.ID))
	}
	return out, next, nil
}

// eventPos is an event's place in the listing order.
type eventPos struct {
	t          int64
	source, id string
}

func posOf(e *metering.Event) eventPos { return eventPos{e.Time.UnixMicro(), e.Source, e.ID} }

func (a eventPos) compare(b eventPos) int {
	switch {
	case a.t != b.t:
		return cmp.Compare(a.t, b.t)
	case a.source != b.source:
		return strings.Compare(a.source, b.source)
	}
	return strings.Compare(a.id, b.id)
}

// after reports whether b comes after a cursor at a (is older).
func (a eventPos) after(b eventPos) bool { return b.compare(a) < 0 }

// RebuildResult reports a rebuild.
type RebuildResult struct {
	Meter  MeterRecord `json:"meter"`
	Events int         `json:"events"` // stored events of the meter's type re-folded
}

// Rebuild recomputes the meter's rollups from the tenant's stored events,
// in one transaction that meter workers wait for, so nothing is counted
// twice or missed while ingestion continues. Errors: meter_not_found.
func (s *Service) Rebuild(ctx context.Context, idOrSlug string) (RebuildResult, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return RebuildResult{}, err
	}
	var out RebuildResult
	err = s.db.InTx(ctx, func(tx *db.Tx) error {
		lock := `SELECT epoch FROM metering_versions WHERE name = 'global'` + tx.LockClause(` FOR UPDATE`)
		var epoch int64
		if err := tx.QueryRowContext(ctx, lock).Scan(&epoch); err != nil {
			return fmt.Errorf("locking metering versions: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE metering_versions SET epoch = epoch + 1 WHERE name = 'global'`); err != nil {
			return fmt.Errorf("bumping rollup epoch: %w", err)
		}
		rec, err := getMeter(ctx, tx, tenant, idOrSlug)
		if err != nil {
			return err
		}
		out.Meter = rec
		c, err := metering.Compile(rec.Meter)
		if err != nil {
			return fmt.Errorf("compiling stored meter %s: %w", rec.ID, err)
		}
		for _, t := range []string{"usage_rollups", "usage_rollup_values"} {
			if _, err := tx.ExecContext(ctx, `DELETE FROM `+t+` WHERE tenant_id = $1 AND meter_id = $2`, tenant, c.ID()); err != nil {
				return fmt.Errorf("clearing %s: %w", t, err)
			}
		}
		set := metering.NewMeterSet(tenant, c)
		w := &worker{agg: metering.NewAggregator(), cache: map[rkey]metering.State{}, deltas: map[rkey]*metering.State{}, aggs: map[string]metering.Aggregation{}}
		rows, err := tx.QueryContext(ctx, `SELECT data FROM usage_event_blocks WHERE tenant_id = $1`, tenant)
		if err != nil {
			return fmt.Errorf("reading stored events: %w", err)
		}
		// Fold everything first (the read cursor must be closed before
		// writing on SQLite's single connection), then write.
		for rows.Next() {
			var data []byte
			if err := rows.Scan(&data); err != nil {
				rows.Close()
				return fmt.Errorf("reading stored events: %w", err)
			}
			evs, err := metering.DecodeBatch(data)
			if err != nil {
				rows.Close()
				return fmt.Errorf("reading stored events: %w", err)
			}
			for _, e := range evs {
				if e.Type == rec.EventType {
					w.scratch = append(w.scratch, e)
				}
			}
			if len(w.scratch) >= 10_000 {
				w.agg.Add(set, w.scratch)
				out.Events += len(w.scratch)
				w.scratch = w.scratch[:0]
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("reading stored events: %w", err)
		}
		w.agg.Add(set, w.scratch)
		out.Events += len(w.scratch)
		_, err = w.writeRollups(ctx, tx)
		return err
	})
	return out, err
}
