package usage

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/abacusbilling/abacus/internal/metering"
)

// A query with ExactFrom starts at an instant inside a minute (a
// subscription's start): that minute's rollup holds events from both
// sides of it, so the minute is folded again from the stored events,
// keeping those at or after the instant. The rest comes from rollups.

// cutSlack bounds the blocks first searched for a minute's events to those
// whose newest event is at most this long after the minute: events sent
// on time. Whether that found them all is checked against the minute's
// rollup (see cutMinute); only late events make a full search necessary.
const cutSlack = 10 * time.Minute

// readFrom reads q's rows (q.From a minute boundary) counting only the
// events at or after cut in q.From's minute.
func (s *Service) readFrom(ctx context.Context, tenant string, c *metering.Compiled, q metering.Query, cut time.Time) ([]metering.Row, error) {
	head, err := s.cutMinute(ctx, tenant, c, q.Subjects, q.From, cut)
	if err != nil {
		return nil, err
	}
	rest := q
	rest.From = q.From.Add(time.Minute)
	if !rest.From.Before(rest.To) {
		return head, nil
	}
	rows, err := s.readRows(ctx, tenant, c, rest, chooseResolution(&rest))
	return append(head, rows...), err
}

// cutMinute folds the stored events of meter c in minute (of subjects,
// when any) timed at or after cut. The events read are complete when they
// add up to the minute's rollup, which is read after them: a rollup and
// its events commit together, so what was read is a subset of what the
// rollup counts, and equal counts mean equal sets.
func (s *Service) cutMinute(ctx context.Context, tenant string, c *metering.Compiled, subjects []string, minute, cut time.Time) ([]metering.Row, error) {
	evs, err := s.minuteEvents(ctx, tenant, subjects, minute, minute.Add(time.Minute+cutSlack))
	if err != nil {
		return nil, err
	}
	stored, err := s.readRows(ctx, tenant, c, metering.Query{From: minute, To: minute.Add(time.Minute), Subjects: subjects}, resMinute)
	if err != nil {
		return nil, err
	}
	var want int64
	for _, r := range stored {
		want += r.State.Count
	}
	all, after := foldFrom(c, tenant, evs, cut)
	if all == want {
		return after, nil
	}
	if evs, err = s.minuteEvents(ctx, tenant, subjects, minute, time.Time{}); err != nil {
		return nil, err
	}
	_, after = foldFrom(c, tenant, evs, cut)
	return after, nil
}

// minuteEvents returns the tenant's stored events (of subjects, when any)
// timed in minute, searching the blocks whose newest event is before
// newest (every block since the minute when newest is zero).
func (s *Service) minuteEvents(ctx context.Context, tenant string, subjects []string, minute, newest time.Time) ([]metering.Event, error) {
	end := minute.Add(time.Minute)
	where := `tenant_id = $1 AND max_time >= $2 AND min_time < $3`
	args := []any{tenant, minute.UnixMicro(), end.UnixMicro()}
	if !newest.IsZero() {
		args = append(args, newest.UnixMicro())
		where += ` AND max_time < $` + strconv.Itoa(len(args))
	}
	rows, err := s.db.QueryContext(ctx, `SELECT data FROM usage_event_blocks WHERE `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("reading the events of %s: %w", minute.Format(time.RFC3339), err)
	}
	defer rows.Close()
	var out []metering.Event
	for rows.Next() {
		var data []byte
		if err := rows.Scan(&data); err != nil {
			return nil, fmt.Errorf("reading the events of %s: %w", minute.Format(time.RFC3339), err)
		}
		evs, err := metering.DecodeBatch(data)
		if err != nil {
			return nil, fmt.Errorf("reading the events of %s: %w", minute.Format(time.RFC3339), err)
		}
		for _, e := range evs {
			if !e.Time.Before(minute) && e.Time.Before(end) && (len(subjects) == 0 || slices.Contains(subjects, e.Subject)) {
				out = append(out, e)
			}
		}
	}
	return out, rows.Err()
}

// foldFrom folds evs into meter c's rows: it returns how many of them the
// meter counts and the rows of those at or after from.
func foldFrom(c *metering.Compiled, tenant string, evs []metering.Event, from time.Time) (int64, []metering.Row) {
	set := metering.NewMeterSet(tenant, c)
	agg := metering.NewAggregator()
	all := agg.Add(set, evs).Folded
	agg.Reset()
	var after []metering.Event
	for _, e := range evs {
		if !e.Time.Before(from) {
			after = append(after, e)
		}
	}
	agg.Add(set, after)
	var rows []metering.Row
	for _, r := range agg.Rollups() {
		rows = append(rows, metering.Row{Start: r.Key.Minute, Subject: r.Key.Subject, GroupKey: r.Key.GroupKey, State: r.State})
	}
	return int64(all), rows
}
