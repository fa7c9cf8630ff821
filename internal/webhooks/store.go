package webhooks

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
)

const endpointCols = `id, url, description, event_types, enabled, disabled_reason, rate_limit, secret, old_secret, old_secret_until, failing_since, created_at, updated_at`

// endpointRow is an endpoint with its sealed secrets.
type endpointRow struct {
	Endpoint
	tenant            string
	secret, oldSecret string
	oldSecretUntil    time.Time
}

type scanner interface{ Scan(dest ...any) error }

// collect scans every row with scan.
func collect[T any](rows *sql.Rows, err error, what string, scan func(scanner) (T, error)) ([]T, error) {
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// withTenant scans an endpoint row led by its tenant_id.
func withTenant(r scanner) (endpointRow, error) {
	var tenant string
	e, err := scanEndpoint(scanFunc(func(dest ...any) error { return r.Scan(append([]any{&tenant}, dest...)...) }))
	e.tenant = tenant
	return e, err
}

func scanEndpoint(r scanner) (endpointRow, error) {
	var e endpointRow
	var types string
	var enabled int
	var until, created, updated db.Time
	var failing db.NullTime
	if err := r.Scan(&e.ID, &e.URL, &e.Description, &types, &enabled, &e.DisabledReason, &e.RateLimit,
		&e.secret, &e.oldSecret, &until, &failing, &created, &updated); err != nil {
		return e, err
	}
	e.Enabled, e.oldSecretUntil, e.FailingSince = enabled == 1, until.Time, failing.Ptr()
	e.CreatedAt, e.UpdatedAt = created.Time, updated.Time
	if err := json.Unmarshal([]byte(types), &e.EventTypes); err != nil {
		return e, fmt.Errorf("reading event types of %s: %w", e.ID, err)
	}
	return e, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func typesJSON(types []string) string {
	if types == nil {
		types = []string{}
	}
	b, _ := json.Marshal(types)
	return string(b)
}

func countEndpoints(ctx context.Context, q db.Querier, tenant string) (int, error) {
	var n int
	err := q.QueryRowContext(ctx, `SELECT count(*) FROM webhook_endpoints WHERE tenant_id = $1`, tenant).Scan(&n)
	return n, err
}

func insertEndpoint(ctx context.Context, tx *db.Tx, tenant string, e Endpoint, sealed string) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO webhook_endpoints (`+endpointCols+`, tenant_id)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, '', 0, NULL, $9, $10, $11)`,
		e.ID, e.URL, e.Description, typesJSON(e.EventTypes), boolInt(e.Enabled), e.DisabledReason, e.RateLimit, sealed,
		db.TimeOf(e.CreatedAt), db.TimeOf(e.UpdatedAt), tenant)
	if err != nil {
		return fmt.Errorf("creating webhook endpoint: %w", err)
	}
	return nil
}

func loadEndpoint(ctx context.Context, q db.Querier, tenant, id string) (endpointRow, error) {
	e, err := scanEndpoint(q.QueryRowContext(ctx, `SELECT `+endpointCols+` FROM webhook_endpoints WHERE tenant_id = $1 AND id = $2`, tenant, id))
	if errors.Is(err, sql.ErrNoRows) {
		return e, abacus.NotFound("webhook_endpoint", id)
	}
	e.tenant = tenant
	return e, err
}

func listEndpoints(ctx context.Context, q db.Querier, tenant, cursor string, limit int) ([]Endpoint, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+endpointCols+` FROM webhook_endpoints WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT $3`,
		tenant, cursor, limit)
	return collect(rows, err, "listing webhook endpoints", func(r scanner) (Endpoint, error) {
		e, err := scanEndpoint(r)
		return e.Endpoint, err
	})
}

// endpointsOf returns the endpoints of tenants, by tenant.
func endpointsOf(ctx context.Context, q db.Querier, tenants []string) (map[string][]Endpoint, error) {
	out := map[string][]Endpoint{}
	if len(tenants) == 0 {
		return out, nil
	}
	args := make([]any, len(tenants))
	for i, t := range tenants {
		args[i] = t
	}
	rows, err := q.QueryContext(ctx, `SELECT tenant_id, `+endpointCols+` FROM webhook_endpoints WHERE tenant_id IN (`+db.Placeholders(1, len(tenants))+`)`, args...)
	eps, err := collect(rows, err, "reading webhook endpoints", withTenant)
	for _, e := range eps {
		out[e.tenant] = append(out[e.tenant], e.Endpoint)
	}
	return out, err
}

type scanFunc func(dest ...any) error

func (f scanFunc) Scan(dest ...any) error { return f(dest...) }

func updateEndpoint(ctx context.Context, tx *db.Tx, tenant string, e Endpoint) error {
	_, err := tx.ExecContext(ctx, `UPDATE webhook_endpoints SET url = $1, description = $2, event_types = $3, enabled = $4,
		disabled_reason = $5, rate_limit = $6, failing_since = $7, updated_at = $8 WHERE tenant_id = $9 AND id = $10`,
		e.URL, e.Description, typesJSON(e.EventTypes), boolInt(e.Enabled), e.DisabledReason, e.RateLimit,
		db.NullTimeOf(e.FailingSince), db.TimeOf(e.UpdatedAt), tenant, e.ID)
	if err != nil {
		return fmt.Errorf("updating webhook endpoint %s: %w", e.ID, err)
	}
	return nil
}

func rotateSecret(ctx context.Context, tx *db.Tx, tenant, id, sealed, oldSealed string, oldUntil, now time.Time) error {
	_, err := tx.ExecContext(ctx, `UPDATE webhook_endpoints SET secret = $1, old_secret = $2, old_secret_until = $3, updated_at = $4
		WHERE tenant_id = $5 AND id = $6`, sealed, oldSealed, db.TimeOf(oldUntil), db.TimeOf(now), tenant, id)
	if err != nil {
		return fmt.Errorf("rotating the secret of %s: %w", id, err)
	}
	return nil
}

func deleteEndpoint(ctx context.Context, tx *db.Tx, tenant, id string) error {
	res, err := tx.ExecContext(ctx, `DELETE FROM webhook_endpoints WHERE tenant_id = $1 AND id = $2`, tenant, id)
	if err != nil {
		return fmt.Errorf("deleting webhook endpoint %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return abacus.NotFound("webhook_endpoint", id)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM webhook_attempts WHERE tenant_id = $1 AND message_id IN
		(SELECT id FROM webhook_messages WHERE tenant_id = $1 AND endpoint_id = $2)`, tenant, id); err != nil {
		return fmt.Errorf("deleting the attempts of %s: %w", id, err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM webhook_messages WHERE tenant_id = $1 AND endpoint_id = $2`, tenant, id); err != nil {
		return fmt.Errorf("deleting the messages of %s: %w", id, err)
	}
	return nil
}

// insertEvent stores an event once; false when it was stored before (a
// redelivery from the bus).
func insertEvent(ctx context.Context, tx *db.Tx, id, tenant, typ string, body []byte, at time.Time) (bool, error) {
	res, err := tx.ExecPrepared(ctx, `INSERT INTO webhook_events (id, tenant_id, type, body, created_at) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (id) DO NOTHING`, id, tenant, typ, string(body), db.TimeOf(at))
	if err != nil {
		return false, fmt.Errorf("storing event %s: %w", id, err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// newMessage is a message row to insert.
type newMessage struct {
	id, tenant, endpoint, event, typ string
}

func insertMessages(ctx context.Context, tx *db.Tx, ms []newMessage, now time.Time) error {
	rows := make([][]any, len(ms))
	at := db.TimeOf(now)
	for i, m := range ms {
		rows[i] = []any{m.id, m.tenant, m.endpoint, m.event, m.typ, "pending", 0, at, 0, at}
	}
	err := tx.InsertRows(ctx, `INSERT INTO webhook_messages (id, tenant_id, endpoint_id, event_id, event_type, status, attempts, next_attempt_at, lease_until, created_at)`,
		` ON CONFLICT (event_id, endpoint_id) DO NOTHING`, rows)
	if err != nil {
		return fmt.Errorf("queueing %d webhook messages: %w", len(ms), err)
	}
	return nil
}

// requeue makes messages of an endpoint pending again from now on, with
// a fresh schedule; the filter is " AND id = $4" or " AND event_id IN
// (SELECT … )" with its arguments following.
func requeue(ctx context.Context, tx *db.Tx, tenant, endpoint string, now time.Time, filter string, args ...any) (int64, error) {
	res, err := tx.ExecContext(ctx, `UPDATE webhook_messages SET status = 'pending', attempts = 0, next_attempt_at = $1, lease_until = 0,
		delivered_at = NULL WHERE tenant_id = $2 AND endpoint_id = $3`+filter, append([]any{db.TimeOf(now), tenant, endpoint}, args...)...)
	if err != nil {
		return 0, fmt.Errorf("requeueing webhook messages: %w", err)
	}
	return res.RowsAffected()
}

// eventsSince returns the ids and types of the tenant's stored events
// from since on.
func eventsSince(ctx context.Context, q db.Querier, tenant string, since time.Time) (ids, types []string, err error) {
	rows, err := q.QueryContext(ctx, `SELECT id, type FROM webhook_events WHERE tenant_id = $1 AND created_at >= $2 ORDER BY created_at, id`,
		tenant, db.TimeOf(since))
	if err != nil {
		return nil, nil, fmt.Errorf("reading events since %s: %w", since, err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, typ string
		if err := rows.Scan(&id, &typ); err != nil {
			return nil, nil, err
		}
		ids, types = append(ids, id), append(types, typ)
	}
	return ids, types, rows.Err()
}

const messageCols = `id, event_id, event_type, status, attempts, next_attempt_at, created_at, delivered_at`

func scanMessage(r scanner) (Message, error) {
	var m Message
	var next, created db.Time
	var delivered db.NullTime
	var attempts int
	if err := r.Scan(&m.ID, &m.EventID, &m.EventType, &m.Status, &attempts, &next, &created, &delivered); err != nil {
		return m, err
	}
	m.CreatedAt, m.DeliveredAt = created.Time, delivered.Ptr()
	if m.Status == StatusPending {
		m.NextAttemptAt = &next.Time
	}
	return m, nil
}

func listMessages(ctx context.Context, q db.Querier, tenant, endpoint, status, cursor string, limit int) ([]Message, error) {
	query := `SELECT ` + messageCols + ` FROM webhook_messages WHERE tenant_id = $1 AND endpoint_id = $2 AND id > $3`
	args := []any{tenant, endpoint, cursor}
	if status != "" {
		query += ` AND status = $5`
		args = append(args, limit, status)
	} else {
		args = append(args, limit)
	}
	rows, err := q.QueryContext(ctx, query+` ORDER BY id LIMIT $4`, args...)
	out, err := collect(rows, err, "listing webhook messages", scanMessage)
	if err != nil {
		return nil, err
	}
	return out, attachAttempts(ctx, q, tenant, out)
}

func loadMessage(ctx context.Context, q db.Querier, tenant, endpoint, id string) (Message, error) {
	m, err := scanMessage(q.QueryRowContext(ctx, `SELECT `+messageCols+` FROM webhook_messages WHERE tenant_id = $1 AND endpoint_id = $2 AND id = $3`,
		tenant, endpoint, id))
	if errors.Is(err, sql.ErrNoRows) {
		return m, abacus.NotFound("webhook_message", id)
	}
	if err != nil {
		return m, err
	}
	ms := []Message{m}
	err = attachAttempts(ctx, q, tenant, ms)
	return ms[0], err
}

func attachAttempts(ctx context.Context, q db.Querier, tenant string, ms []Message) error {
	if len(ms) == 0 {
		return nil
	}
	idx := map[string]int{}
	args := []any{tenant}
	for i, m := range ms {
		idx[m.ID] = i
		ms[i].Attempts = []Attempt{}
		args = append(args, m.ID)
	}
	rows, err := q.QueryContext(ctx, `SELECT message_id, attempt, at, status_code, latency_us, error, response, next_attempt_at
		FROM webhook_attempts WHERE tenant_id = $1 AND message_id IN (`+db.Placeholders(2, len(ms))+`) ORDER BY at, id`, args...)
	if err != nil {
		return fmt.Errorf("reading webhook attempts: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var a Attempt
		var at db.Time
		var next db.NullTime
		var us int64
		if err := rows.Scan(&id, &a.Attempt, &at, &a.StatusCode, &us, &a.Error, &a.Response, &next); err != nil {
			return err
		}
		a.At, a.NextAttemptAt, a.LatencyMS = at.Time, next.Ptr(), float64(us)/1000
		ms[idx[id]].Attempts = append(ms[idx[id]].Attempts, a)
	}
	return rows.Err()
}

// due returns the endpoints, enabled, with a message due at now and not
// leased.
func dueEndpoints(ctx context.Context, q db.Querier, now time.Time) ([]endpointRow, error) {
	t := db.TimeOf(now)
	// One probe of the (endpoint_id, status, next_attempt_at) index per
	// enabled endpoint, past at most its leased messages, rather than a
	// scan of every due message: a backlog does not slow the rounds.
	rows, err := q.QueryContext(ctx, `SELECT tenant_id, `+endpointCols+` FROM webhook_endpoints e WHERE enabled = 1 AND EXISTS
		(SELECT 1 FROM webhook_messages m WHERE m.endpoint_id = e.id AND m.status = 'pending' AND m.next_attempt_at <= $1 AND m.lease_until <= $1)`, t)
	return collect(rows, err, "finding due webhook messages", withTenant)
}

// claimed is a message leased for one attempt.
type claimed struct {
	id, tenant, endpoint, event string
	attempts                    int
	body                        []byte
}

const dueCols = `SELECT m.id, m.tenant_id, m.endpoint_id, m.event_id, m.attempts, e.body FROM webhook_messages m
	JOIN webhook_events e ON e.id = m.event_id
	WHERE m.status = 'pending' AND m.next_attempt_at <= $1 AND m.lease_until <= $1`

// dueFor returns, for each endpoint of want, up to its number of due
// messages, oldest due first, with their event bodies. Each endpoint is a
// branch of one UNION ALL with its own LIMIT, served by the
// (endpoint_id, status, next_attempt_at, id) index: an endpoint's backlog
// (a dead one's, say) is never scanned for the others.
func dueFor(ctx context.Context, q db.Querier, want map[string]int, now time.Time) ([]claimed, error) {
	ids := make([]string, 0, len(want))
	for id := range want {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var out []claimed
	for start := 0; start < len(ids); start += 100 {
		part := ids[start:min(start+100, len(ids))]
		args := []any{db.TimeOf(now)}
		var b strings.Builder
		for i, id := range part {
			if i > 0 {
				b.WriteString(" UNION ALL ")
			}
			fmt.Fprintf(&b, "SELECT * FROM (%s AND m.endpoint_id = $%d ORDER BY m.next_attempt_at, m.id LIMIT $%d) AS d%d",
				dueCols, len(args)+1, len(args)+2, i)
			args = append(args, id, want[id])
		}
		cs, err := scanClaims(q.QueryContext(ctx, b.String(), args...))
		if err != nil {
			return nil, err
		}
		out = append(out, cs...)
	}
	return out, nil
}

func scanClaims(rows *sql.Rows, err error) ([]claimed, error) {
	return collect(rows, err, "finding due webhook messages", func(r scanner) (claimed, error) {
		var c claimed
		var body string
		err := r.Scan(&c.id, &c.tenant, &c.endpoint, &c.event, &c.attempts, &body)
		c.body = []byte(body)
		return c, err
	})
}

// lease claims the messages still free at now until until and returns
// the ids it got: of dispatchers racing for a message (nodes sharing
// PostgreSQL), the one whose UPDATE commits first gets it.
func lease(ctx context.Context, tx *db.Tx, ids []string, now, until time.Time) (map[string]bool, error) {
	got := map[string]bool{}
	for start := 0; start < len(ids); start += 500 {
		part := ids[start:min(start+500, len(ids))]
		args := []any{db.TimeOf(until), db.TimeOf(now)}
		for _, id := range part {
			args = append(args, id)
		}
		rows, err := tx.QueryContext(ctx, `UPDATE webhook_messages SET lease_until = $1
			WHERE status = 'pending' AND lease_until <= $2 AND id IN (`+db.Placeholders(3, len(part))+`) RETURNING id`, args...)
		if err != nil {
			return nil, fmt.Errorf("leasing webhook messages: %w", err)
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return nil, err
			}
			got[id] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return got, nil
}

// release returns unattempted claims to the queue.
func release(ctx context.Context, d *db.DB, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	_, err := d.ExecContext(ctx, `UPDATE webhook_messages SET lease_until = 0 WHERE status = 'pending' AND id IN (`+db.Placeholders(1, len(ids))+`)`, args...)
	return err
}

func insertAttempt(ctx context.Context, tx *db.Tx, r result, next *time.Time) error {
	if err := insertAttempts(ctx, tx, []result{r}, next); err != nil {
		return fmt.Errorf("recording attempt of %s: %w", r.c.id, err)
	}
	return nil
}

func insertAttempts(ctx context.Context, tx *db.Tx, rs []result, next *time.Time) error {
	rows := make([][]any, len(rs))
	for i, r := range rs {
		rows[i] = []any{abacus.NewID("wha"), r.c.tenant, r.c.id, r.c.attempts + 1, db.TimeOf(r.at),
			r.status, r.latency.Microseconds(), truncate(r.errText, 500), r.excerpt, db.NullTimeOf(next)}
	}
	return tx.InsertRows(ctx, `INSERT INTO webhook_attempts (id, tenant_id, message_id, attempt, at, status_code, latency_us, error, response, next_attempt_at)`, "", rows)
}

// recordDelivered records successful attempts: their log rows, their
// messages delivered (at the time of the attempt just logged), and their
// endpoints' failure streaks ended.
func recordDelivered(ctx context.Context, tx *db.Tx, rs []result) error {
	if len(rs) == 0 {
		return nil
	}
	if err := insertAttempts(ctx, tx, rs, nil); err != nil {
		return fmt.Errorf("recording %d attempts: %w", len(rs), err)
	}
	ids := make([]any, len(rs))
	var endpoints []string
	for i, r := range rs {
		ids[i] = r.c.id
		if !slices.Contains(endpoints, r.c.endpoint) {
			endpoints = append(endpoints, r.c.endpoint)
		}
	}
	for start := 0; start < len(ids); start += 500 {
		part := ids[start:min(start+500, len(ids))]
		_, err := tx.ExecContext(ctx, `UPDATE webhook_messages SET status = 'delivered', attempts = attempts + 1, lease_until = 0,
			delivered_at = (SELECT a.at FROM webhook_attempts a WHERE a.message_id = webhook_messages.id AND a.attempt = webhook_messages.attempts + 1)
			WHERE id IN (`+db.Placeholders(1, len(part))+`)`, part...)
		if err != nil {
			return fmt.Errorf("marking %d messages delivered: %w", len(part), err)
		}
	}
	for _, ep := range endpoints {
		if err := endpointSucceeded(ctx, tx, ep); err != nil {
			return err
		}
	}
	return nil
}

func updateMessage(ctx context.Context, tx *db.Tx, r result, status string, next time.Time) error {
	_, err := tx.ExecPrepared(ctx, `UPDATE webhook_messages SET status = $1, attempts = attempts + 1, next_attempt_at = $2, lease_until = 0
		WHERE id = $3`, status, db.TimeOf(next), r.c.id)
	if err != nil {
		return fmt.Errorf("updating message %s: %w", r.c.id, err)
	}
	return nil
}

// endpointSucceeded clears the endpoint's failure streak.
func endpointSucceeded(ctx context.Context, tx *db.Tx, endpoint string) error {
	_, err := tx.ExecPrepared(ctx, `UPDATE webhook_endpoints SET failing_since = NULL WHERE id = $1 AND failing_since IS NOT NULL`, endpoint)
	return err
}

// endpointFailed starts the failure streak if none runs and returns its
// start.
func endpointFailed(ctx context.Context, tx *db.Tx, endpoint string, at time.Time) (time.Time, error) {
	if _, err := tx.ExecPrepared(ctx, `UPDATE webhook_endpoints SET failing_since = $1 WHERE id = $2 AND failing_since IS NULL`,
		db.TimeOf(at), endpoint); err != nil {
		return time.Time{}, err
	}
	var since db.NullTime
	err := tx.QueryRowContext(ctx, `SELECT failing_since FROM webhook_endpoints WHERE id = $1`, endpoint).Scan(&since)
	if errors.Is(err, sql.ErrNoRows) || !since.Valid {
		return at, nil // deleted meanwhile
	}
	return since.Time, err
}

// disable turns an endpoint off and returns its URL; "" when it was off
// already (or is gone).
func disable(ctx context.Context, tx *db.Tx, endpoint, reason string, at time.Time) (string, error) {
	var url string
	err := tx.QueryRowContext(ctx, `UPDATE webhook_endpoints SET enabled = 0, disabled_reason = $1, updated_at = $2
		WHERE id = $3 AND enabled = 1 RETURNING url`, reason, db.TimeOf(at), endpoint).Scan(&url)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return url, err
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "")
}

// prune deletes finished messages created before cutoff with their
// attempts, and events before cutoff that no message needs any more.
func prune(ctx context.Context, tx *db.Tx, cutoff time.Time) (int64, error) {
	t := db.TimeOf(cutoff)
	if _, err := tx.ExecContext(ctx, `DELETE FROM webhook_attempts WHERE message_id IN
		(SELECT id FROM webhook_messages WHERE status <> 'pending' AND created_at < $1)`, t); err != nil {
		return 0, fmt.Errorf("pruning webhook attempts: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM webhook_messages WHERE status <> 'pending' AND created_at < $1`, t); err != nil {
		return 0, fmt.Errorf("pruning webhook messages: %w", err)
	}
	res, err := tx.ExecContext(ctx, `DELETE FROM webhook_events WHERE created_at < $1
		AND NOT EXISTS (SELECT 1 FROM webhook_messages m WHERE m.event_id = webhook_events.id)`, t)
	if err != nil {
		return 0, fmt.Errorf("pruning webhook events: %w", err)
	}
	return res.RowsAffected()
}

// enabledAmong returns which of the endpoints exist and are enabled.
func enabledAmong(ctx context.Context, q db.Querier, ids []string) (map[string]bool, error) {
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	rows, err := q.QueryContext(ctx, `SELECT id FROM webhook_endpoints WHERE enabled = 1 AND id IN (`+db.Placeholders(1, len(ids))+`)`, args...)
	got, err := collect(rows, err, "reading webhook endpoints", func(r scanner) (string, error) {
		var id string
		return id, r.Scan(&id)
	})
	out := map[string]bool{}
	for _, id := range got {
		out[id] = true
	}
	return out, err
}
