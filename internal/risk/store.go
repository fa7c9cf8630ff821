package risk

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	gojson "github.com/goccy/go-json"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
)

const ruleCols = `id, version, name, description, action, mode, logic, status, created_at, activated_at, retired_at`

func scanRule(row interface{ Scan(...any) error }) (*Rule, error) {
	var r Rule
	var logic string
	var created db.Time
	var activated, retired db.NullTime
	if err := row.Scan(&r.ID, &r.Version, &r.Name, &r.Description, &r.Action, &r.Mode, &logic, &r.Status, &created, &activated, &retired); err != nil {
		return nil, err
	}
	r.Logic = json.RawMessage(logic)
	r.CreatedAt = created.UTC()
	r.ActivatedAt, r.RetiredAt = utcPtr(activated.Ptr()), utcPtr(retired.Ptr())
	return &r, nil
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

func queryRules(ctx context.Context, q db.Querier, query string, args ...any) ([]*Rule, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("reading rules: %w", err)
	}
	defer rows.Close()
	var out []*Rule
	for rows.Next() {
		r, err := scanRule(rows)
		if err != nil {
			return nil, fmt.Errorf("reading rules: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

func activeRules(ctx context.Context, q db.Querier, tenant string) ([]*Rule, error) {
	return queryRules(ctx, q, `SELECT `+ruleCols+` FROM risk_rules WHERE tenant_id = $1 AND status = 'active' ORDER BY id`, tenant)
}

func ruleVersions(ctx context.Context, q db.Querier, tenant, id string) ([]*Rule, error) {
	return queryRules(ctx, q, `SELECT `+ruleCols+` FROM risk_rules WHERE tenant_id = $1 AND id = $2 ORDER BY version`, tenant, id)
}

// latestRules lists each rule's newest version after cursor, by id.
func latestRules(ctx context.Context, q db.Querier, tenant, status, cursor string, limit int) ([]*Rule, error) {
	return queryRules(ctx, q, `SELECT `+ruleCols+` FROM risk_rules r WHERE tenant_id = $1 AND id > $2
		AND version = (SELECT MAX(version) FROM risk_rules v WHERE v.tenant_id = r.tenant_id AND v.id = r.id)
		AND ($3 = '' OR status = $3) ORDER BY id LIMIT $4`, tenant, cursor, status, limit)
}

func insertRule(ctx context.Context, tx *db.Tx, tenant string, r *Rule) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO risk_rules (tenant_id, id, version, name, description, action, mode, logic, status, created_at, activated_at, retired_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, NULL, NULL)`,
		tenant, r.ID, r.Version, r.Name, r.Description, r.Action, r.Mode, string(r.Logic), r.Status, db.TimeOf(r.CreatedAt))
	if err != nil {
		return fmt.Errorf("storing rule %s: %w", r.ID, err)
	}
	return nil
}

func setRuleStatus(ctx context.Context, tx *db.Tx, tenant, id string, version int, status string, at time.Time) error {
	col := "retired_at"
	if status == StatusActive {
		col = "activated_at"
	}
	_, err := tx.ExecContext(ctx, `UPDATE risk_rules SET status = $1, `+col+` = $2 WHERE tenant_id = $3 AND id = $4 AND version = $5`,
		status, db.TimeOf(at), tenant, id, version)
	if err != nil {
		return fmt.Errorf("updating rule %s: %w", id, err)
	}
	return nil
}

func countActive(ctx context.Context, tx *db.Tx, tenant string) (int, error) {
	var n int
	err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM risk_rules WHERE tenant_id = $1 AND status = 'active'`, tenant).Scan(&n)
	return n, err
}

const counterCols = `id, name, counter_key, op, counter_of, window_seconds, event_types, created_at`

func scanCounter(row interface{ Scan(...any) error }) (Counter, error) {
	var c Counter
	var secs int64
	var types string
	var created db.Time
	if err := row.Scan(&c.ID, &c.Name, &c.Key, &c.Op, &c.Of, &secs, &types, &created); err != nil {
		return c, err
	}
	c.window = time.Duration(secs) * time.Second
	c.Window = formatWindow(c.window)
	c.CreatedAt = created.UTC()
	if err := json.Unmarshal([]byte(types), &c.EventTypes); err != nil {
		return c, fmt.Errorf("counter %s: event types: %w", c.ID, err)
	}
	return c, nil
}

func formatWindow(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	s := d.String()
	if len(s) > 4 && s[len(s)-4:] == "m0s" {
		s = s[:len(s)-2]
	}
	if len(s) > 4 && s[len(s)-3:] == "h0m" {
		s = s[:len(s)-2]
	}
	return s
}

func tenantCounters(ctx context.Context, q db.Querier, tenant string) ([]Counter, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+counterCols+` FROM risk_counters WHERE tenant_id = $1 ORDER BY id`, tenant)
	if err != nil {
		return nil, fmt.Errorf("reading counters: %w", err)
	}
	defer rows.Close()
	var out []Counter
	for rows.Next() {
		c, err := scanCounter(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

func insertCounter(ctx context.Context, tx *db.Tx, tenant string, c Counter) error {
	types, _ := json.Marshal(c.EventTypes)
	_, err := tx.ExecContext(ctx, `INSERT INTO risk_counters (tenant_id, id, name, counter_key, op, counter_of, window_seconds, event_types, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		tenant, c.ID, c.Name, c.Key, c.Op, c.Of, int64(c.window/time.Second), string(types), db.TimeOf(c.CreatedAt))
	if db.IsUniqueViolation(err) {
		return abacus.Conflict("counter_exists", "a counter named %q exists", c.Name).WithField("name", "is taken")
	}
	if err != nil {
		return fmt.Errorf("storing counter: %w", err)
	}
	return nil
}

func loadSettings(ctx context.Context, q db.Querier, tenant string) (RiskSettings, error) {
	st := RiskSettings{DefaultDecision: Allow}
	var at db.Time
	err := q.QueryRowContext(ctx, `SELECT default_decision, updated_at FROM risk_settings WHERE tenant_id = $1`, tenant).Scan(&st.DefaultDecision, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return st, nil
	}
	if err != nil {
		return st, fmt.Errorf("reading risk settings: %w", err)
	}
	t := at.UTC()
	st.UpdatedAt = &t
	return st, nil
}

func saveSettings(ctx context.Context, tx *db.Tx, tenant string, st RiskSettings, at time.Time) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO risk_settings (tenant_id, default_decision, updated_at) VALUES ($1, $2, $3)
		ON CONFLICT (tenant_id) DO UPDATE SET default_decision = excluded.default_decision, updated_at = excluded.updated_at`,
		tenant, st.DefaultDecision, db.TimeOf(at))
	if err != nil {
		return fmt.Errorf("saving risk settings: %w", err)
	}
	return nil
}

func loadSchemas(ctx context.Context, q db.Querier, tenant string) (map[string][]byte, error) {
	rows, err := q.QueryContext(ctx, `SELECT event_type, schema FROM risk_event_schemas WHERE tenant_id = $1`, tenant)
	if err != nil {
		return nil, fmt.Errorf("reading event schemas: %w", err)
	}
	defer rows.Close()
	out := map[string][]byte{}
	for rows.Next() {
		var t, s string
		if err := rows.Scan(&t, &s); err != nil {
			return nil, err
		}
		out[t] = []byte(s)
	}
	return out, rows.Err()
}

func saveSchema(ctx context.Context, tx *db.Tx, tenant, typ string, doc []byte, at time.Time) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO risk_event_schemas (tenant_id, event_type, schema, updated_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (tenant_id, event_type) DO UPDATE SET schema = excluded.schema, updated_at = excluded.updated_at`,
		tenant, typ, string(doc), db.TimeOf(at))
	if err != nil {
		return fmt.Errorf("saving event schema: %w", err)
	}
	return nil
}

func deleteSchema(ctx context.Context, tx *db.Tx, tenant, typ string) (bool, error) {
	res, err := tx.ExecContext(ctx, `DELETE FROM risk_event_schemas WHERE tenant_id = $1 AND event_type = $2`, tenant, typ)
	if err != nil {
		return false, fmt.Errorf("deleting event schema: %w", err)
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}

// pending is one event (or question) with its decision, waiting for the
// group commit.
type pending struct {
	tenant string
	ev     *Event // nil for a question
	d      *Decision
	// customer is the customer id the event or question names.
	customer string
	evJSON   []byte
	fJSON    []byte
	dJSON    []byte
	// received is when the group commit took the event.
	received time.Time
}

// insertDecided stores events with their decisions (one risk_events row
// each: the decision record in body) and the decisions of questions
// (risk_decisions) in one transaction, through prepared statements of
// fixed sizes (insertChunks).
func insertDecided(ctx context.Context, tx *db.Tx, batch []*pending) error {
	evRows := make([]any, 0, len(batch)*eventCols)
	var dRows []any
	nEv, nD := 0, 0
	for _, p := range batch {
		if p.ev != nil {
			evRows = append(evRows, p.tenant, p.ev.ID, p.ev.Type, p.ev.Time.UnixMicro(), p.ev.CustomerID, string(p.evJSON), p.d.ID,
				p.received.UnixMicro(), string(p.fJSON), p.d.Decision, string(p.dJSON))
			nEv++
			continue
		}
		dRows = append(dRows, p.tenant, p.d.ID, p.d.EventID, p.d.Decision, string(p.dJSON), p.d.CreatedAt.UnixMicro(), p.customer)
		nD++
	}
	if err := insertChunks(ctx, tx, &eventInserts, nEv, eventCols, evRows); err != nil {
		return fmt.Errorf("storing risk events: %w", err)
	}
	if err := insertChunks(ctx, tx, &decisionInserts, nD, decisionCols, dRows); err != nil {
		return fmt.Errorf("storing risk decisions: %w", err)
	}
	return nil
}

const (
	eventCols    = 11
	decisionCols = 7
)

// insertStatements are a table's multi-row INSERTs, one per chunk size.
//
// On SQLite they name their conflict resolution (OR IGNORE, OR FAIL):
// under the default (ABORT) a statement that writes many rows inside a
// transaction must be able to undo itself alone, so SQLite copies every
// page it changes to a statement journal first. With the customer index
// that is a page per event: storing 200 events over 250,000 customers
// took 49–56 µs an event with it and 39–40 µs without (interleaved runs)
// (BenchmarkStoreDecided/customers=250000). Nothing is lost: a failed
// statement fails the transaction, which is rolled back whole.
type insertStatements struct {
	// table is "t (cols)"; SQLite puts sqliteVerb before it, PostgreSQL
	// INSERT INTO before and pgTail after (the same effect on both).
	table      string
	sqliteVerb string
	pgTail     string
	cols       int
	once       sync.Once
	bySize     map[db.Engine]map[int]string
}

var (
	// A stored event is never stored twice (the journal replays batches a
	// crash left unapplied): the second is skipped.
	eventInserts = insertStatements{table: `risk_events (tenant_id, id, type, time, customer_id, data, decision_id, received_at, features, decision, body)`,
		sqliteVerb: `INSERT OR IGNORE INTO `, pgTail: ` ON CONFLICT (tenant_id, id) DO NOTHING`, cols: eventCols}
	decisionInserts = insertStatements{table: `risk_decisions (tenant_id, id, event_id, decision, body, created_at, customer_id)`,
		sqliteVerb: `INSERT OR FAIL INTO `, cols: decisionCols}
)

// chunkSizes are the row counts of the prepared INSERTs: a batch is
// written as the fewest chunks of these sizes (its binary digits), so
// the statements stay few and prepared on SQLite (modernc otherwise
// parses every statement anew, which cost as much as writing the rows).
var chunkSizes = []int{256, 128, 64, 32, 16, 8, 4, 2, 1}

// text is the statement of size rows; SQLite gets plain ? placeholders
// (modernc binds numbered ?N slowly in big statements).
func (is *insertStatements) text(e db.Engine, size int) string {
	is.once.Do(func() {
		is.bySize = map[db.Engine]map[int]string{}
		for _, e := range []db.Engine{db.SQLite, db.Postgres} {
			is.bySize[e] = map[int]string{}
			for _, n := range chunkSizes {
				is.bySize[e][n] = is.build(e, n)
			}
		}
	})
	return is.bySize[e][size]
}

func (is *insertStatements) build(e db.Engine, rows int) string {
	var b strings.Builder
	if e == db.SQLite {
		b.WriteString(is.sqliteVerb)
	} else {
		b.WriteString("INSERT INTO ")
	}
	b.WriteString(is.table)
	b.WriteString(" VALUES ")
	for r := range rows {
		if r > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('(')
		for c := range is.cols {
			if c > 0 {
				b.WriteString(", ")
			}
			if e == db.SQLite {
				b.WriteByte('?')
			} else {
				b.WriteByte('$')
				b.WriteString(strconv.Itoa(r*is.cols + c + 1))
			}
		}
		b.WriteByte(')')
	}
	if e == db.Postgres {
		b.WriteString(is.pgTail)
	}
	return b.String()
}

// insertChunks writes n rows (args holds n*cols values, row after row).
func insertChunks(ctx context.Context, tx *db.Tx, is *insertStatements, n, cols int, args []any) error {
	at := 0
	for _, size := range chunkSizes {
		for n-at >= size {
			if _, err := tx.ExecPrepared(ctx, is.text(tx.Engine(), size), args[at*cols:(at+size)*cols]...); err != nil {
				return err
			}
			at += size
		}
	}
	return nil
}

// decisionIDOf is the id of a stored event's decision: the event's with
// rdec_ for rev_ (the decision lives in the event's row).
func decisionIDOf(eventID string) string {
	return "rdec_" + strings.TrimPrefix(eventID, "rev_")
}

// eventIDOf is the event whose row may hold decision id.
func eventIDOf(decisionID string) string {
	return "rev_" + strings.TrimPrefix(decisionID, "rdec_")
}

func loadDecision(ctx context.Context, q db.Querier, tenant, id string) (*Decision, error) {
	var body, data, features string
	err := q.QueryRowContext(ctx, `SELECT body, data, features FROM risk_events WHERE tenant_id = $1 AND id = $2 AND decision_id = $3 AND body <> ''`,
		tenant, eventIDOf(id), id).Scan(&body, &data, &features)
	if errors.Is(err, sql.ErrNoRows) {
		// A question's decision, or one stored before decisions moved
		// into the event's row.
		err = q.QueryRowContext(ctx, `SELECT body FROM risk_decisions WHERE tenant_id = $1 AND id = $2`, tenant, id).Scan(&body)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, abacus.NotFound("risk_decision", id)
		}
		if err != nil {
			return nil, fmt.Errorf("reading decision %s: %w", id, err)
		}
		data = ""
	} else if err != nil {
		return nil, fmt.Errorf("reading decision %s: %w", id, err)
	}
	var r decisionRecord
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		return nil, fmt.Errorf("decision %s: %w", id, err)
	}
	set := r.RuleSet
	if r.RuleSetRef != "" {
		var rules string
		err := q.QueryRowContext(ctx, `SELECT rules FROM risk_rule_sets WHERE tenant_id = $1 AND id = $2`, tenant, r.RuleSetRef).Scan(&rules)
		if err != nil {
			return nil, fmt.Errorf("reading the rule set of decision %s: %w", id, err)
		}
		if err := json.Unmarshal([]byte(rules), &set); err != nil {
			return nil, fmt.Errorf("rule set %s: %w", r.RuleSetRef, err)
		}
	}
	if r.EventID == "" {
		return r.decision(nil, nil, set), nil
	}
	if data == "" {
		err = q.QueryRowContext(ctx, `SELECT data, features FROM risk_events WHERE tenant_id = $1 AND id = $2`, tenant, r.EventID).Scan(&data, &features)
		if err != nil {
			return nil, fmt.Errorf("reading the event of decision %s: %w", id, err)
		}
	}
	var ev Event
	var b basis
	if err := json.Unmarshal([]byte(data), &ev); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(features), &b); err != nil {
		return nil, err
	}
	return r.decision(&Features{Counters: b.Counters, Graph: b.Graph, Lists: b.Lists}, &ev, set), nil
}

// DecisionFilter narrows a list of decisions: of one kind, of one
// customer (the id events name it by); "" for any.
type DecisionFilter struct {
	Decision string
	Customer string
}

// listDecisions lists decisions by id after cursor: those of stored
// events (in their rows) merged with those of questions and older ones
// (risk_decisions).
func listDecisions(ctx context.Context, q db.Querier, tenant string, f DecisionFilter, cursor string, limit int) ([]*Decision, error) {
	var out []*Decision
	read := func(query string, args ...any) error {
		rows, err := q.QueryContext(ctx, query, args...)
		if err != nil {
			return fmt.Errorf("listing decisions: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var body, features string
			if err := rows.Scan(&body, &features); err != nil {
				return err
			}
			var r decisionRecord
			if err := json.Unmarshal([]byte(body), &r); err != nil {
				return err
			}
			var f *Features
			if features != "" {
				var b basis
				if err := json.Unmarshal([]byte(features), &b); err != nil {
					return err
				}
				f = &Features{Counters: b.Counters, Graph: b.Graph, Lists: b.Lists}
			}
			d := r.decision(f, nil, nil)
			d.Event, d.Rules = nil, nil
			out = append(out, d)
		}
		return rows.Err()
	}
	// Event ids and their decisions' ids share the ULID after the prefix,
	// so both lists are in decision id order.
	after := ""
	if cursor != "" {
		after = eventIDOf(cursor)
	}
	// A customer's list reads its own index (risk_*_customer).
	byCustomer := ` AND customer_id = $4`
	if f.Customer == "" {
		byCustomer = ` AND $4 = ''`
	}
	err := read(`SELECT body, features FROM risk_events WHERE tenant_id = $1 AND id > $2 AND body <> '' AND ($3 = '' OR decision = $3)`+
		byCustomer+` ORDER BY id LIMIT $5`, tenant, after, f.Decision, f.Customer, limit)
	if err != nil {
		return nil, err
	}
	err = read(`SELECT d.body, COALESCE(e.features, '') FROM risk_decisions d
		LEFT JOIN risk_events e ON e.tenant_id = d.tenant_id AND e.id = d.event_id AND d.event_id <> ''
		WHERE d.tenant_id = $1 AND d.id > $2 AND ($3 = '' OR d.decision = $3)`+strings.Replace(byCustomer, "customer_id", "d.customer_id", 1)+
		` ORDER BY d.id LIMIT $5`, tenant, cursor, f.Decision, f.Customer, limit)
	if err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// storedEvent is a stored event with its tenant and decision.
type storedEvent struct {
	tenant     string
	ev         *Event
	decisionID string
}

// scanEvents calls fn for tenant's stored events with time ≥ since, in
// time order, reading in pages of 5,000.
func scanEvents(ctx context.Context, q db.Querier, tenant string, since time.Time, fn func(storedEvent) error) error {
	lastTime, lastID := since.UnixMicro(), ""
	first := true
	for {
		var rows *sql.Rows
		var err error
		if first {
			rows, err = q.QueryContext(ctx, `SELECT id, time, data, decision_id FROM risk_events
				WHERE tenant_id = $1 AND time >= $2 ORDER BY time, id LIMIT 5000`, tenant, lastTime)
		} else {
			rows, err = q.QueryContext(ctx, `SELECT id, time, data, decision_id FROM risk_events
				WHERE tenant_id = $1 AND (time > $2 OR (time = $2 AND id > $3)) ORDER BY time, id LIMIT 5000`,
				tenant, lastTime, lastID)
		}
		if err != nil {
			return fmt.Errorf("reading risk events: %w", err)
		}
		n := 0
		for rows.Next() {
			se := storedEvent{tenant: tenant}
			var at int64
			var data, id string
			if err := rows.Scan(&id, &at, &data, &se.decisionID); err != nil {
				rows.Close()
				return err
			}
			var ev Event
			if err := gojson.Unmarshal([]byte(data), &ev); err != nil {
				rows.Close()
				return fmt.Errorf("risk event %s: %w", id, err)
			}
			ev.finish()
			se.ev = &ev
			lastTime, lastID = at, id
			n++
			if err := fn(se); err != nil {
				rows.Close()
				return err
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		first = false
		if n < 5000 {
			return nil
		}
	}
}

// eventTenants lists the tenants with stored risk events.
func eventTenants(ctx context.Context, q db.Querier) ([]string, error) {
	rows, err := q.QueryContext(ctx, `SELECT DISTINCT tenant_id FROM risk_events`)
	if err != nil {
		return nil, fmt.Errorf("listing risk tenants: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// firstEventTime is the time of tenant's first event at or after since
// (since when there is none).
func firstEventTime(ctx context.Context, q db.Querier, tenant string, since time.Time) (time.Time, error) {
	var first sql.NullInt64
	err := q.QueryRowContext(ctx, `SELECT MIN(time) FROM risk_events WHERE tenant_id = $1 AND time >= $2`, tenant, since.UnixMicro()).Scan(&first)
	if err != nil {
		return since, fmt.Errorf("reading risk events: %w", err)
	}
	if !first.Valid {
		return since, nil
	}
	return time.UnixMicro(first.Int64), nil
}

// scanBacktest streams tenant's events with since ≤ time < until with
// what their decisions were based on, in one query, as stored (JSON).
func scanBacktest(ctx context.Context, q db.Querier, tenant string, since, until time.Time, fn func(data, decisionID, features, decision string) error) error {
	rows, err := q.QueryContext(ctx, `SELECT data, decision_id, features, decision FROM risk_events WHERE tenant_id = $1 AND time >= $2 AND time < $3`,
		tenant, since.UnixMicro(), until.UnixMicro())
	if err != nil {
		return fmt.Errorf("reading risk events: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var data, decisionID, features, decision string
		if err := rows.Scan(&data, &decisionID, &features, &decision); err != nil {
			return err
		}
		if err := fn(data, decisionID, features, decision); err != nil {
			return err
		}
	}
	return rows.Err()
}

// eventStored reports whether an event id is stored (the feed is
// idempotent by it).
func eventStored(ctx context.Context, q db.Querier, tenant, id string) (bool, error) {
	var n int
	err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM risk_events WHERE tenant_id = $1 AND id = $2`, tenant, id).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("reading risk event %s: %w", id, err)
	}
	return n > 0, nil
}

// journalApplied is the last journal batch stored (0 for none).
func journalApplied(ctx context.Context, q db.Querier) (uint64, error) {
	var seq int64
	err := q.QueryRowContext(ctx, `SELECT applied_seq FROM risk_journal WHERE id = 1`).Scan(&seq)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("reading the risk journal's position: %w", err)
	}
	return uint64(seq), nil
}

// setJournalApplied records seq as the last journal batch stored.
func setJournalApplied(ctx context.Context, tx *db.Tx, seq uint64) error {
	_, err := tx.ExecPrepared(ctx, `INSERT INTO risk_journal (id, applied_seq) VALUES (1, $1)
		ON CONFLICT (id) DO UPDATE SET applied_seq = excluded.applied_seq`, int64(seq))
	if err != nil {
		return fmt.Errorf("recording the risk journal's position: %w", err)
	}
	return nil
}
