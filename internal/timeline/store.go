package timeline

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
)

// row is one timeline_entries row.
type row struct {
	tenant, eventID, customer, typ string
	organization                   string // to find the customer by (indexing only)
	at                             db.Time
	object                         TimelineObject
	data                           map[string]string
}

// insertRows indexes rows; an event id the tenant already has is left as
// it is, which makes a redelivery harmless, or with refresh written again
// from the event (a rebuild).
func insertRows(ctx context.Context, tx *db.Tx, rows []row, refresh bool) error {
	vals := make([][]any, 0, len(rows))
	for _, r := range rows {
		data, err := json.Marshal(r.data)
		if err != nil {
			return fmt.Errorf("encoding timeline data of %s: %w", r.eventID, err)
		}
		vals = append(vals, []any{r.tenant, r.eventID, r.customer, r.typ, r.at, r.object.Type, r.object.ID, string(data)})
	}
	conflict := ` ON CONFLICT (tenant_id, event_id) DO NOTHING`
	if refresh {
		conflict = ` ON CONFLICT (tenant_id, event_id) DO UPDATE SET customer_id = excluded.customer_id, type = excluded.type,
			occurred_at = excluded.occurred_at, object_type = excluded.object_type, object_id = excluded.object_id, data = excluded.data`
	}
	err := tx.InsertRows(ctx, `INSERT INTO timeline_entries (tenant_id, event_id, customer_id, type, occurred_at, object_type, object_id, data)`,
		conflict, vals)
	if err != nil {
		return fmt.Errorf("indexing timeline entries: %w", err)
	}
	return nil
}

// query is one page of one customer's entries.
type query struct {
	tenant, customer string
	types            []string // exact types; none = all
	since, until     db.NullTime
	cursor           string // event id of the last entry of the previous page
	limit            int
}

// listRows reads a page newest first (then by event id, so entries at the
// same instant keep one order), one row more than the limit to tell
// whether a next page exists. Errors: "invalid_cursor" when the cursor is
// not an entry of this customer.
func listRows(ctx context.Context, q db.Querier, p query) ([]row, error) {
	sqlText := `SELECT event_id, type, occurred_at, object_type, object_id, data FROM timeline_entries
		WHERE tenant_id = $1 AND customer_id = $2`
	args := []any{p.tenant, p.customer}
	add := func(cond string, vs ...any) {
		refs := make([]any, len(vs))
		for i, v := range vs {
			args = append(args, v)
			refs[i] = len(args)
		}
		sqlText += " AND " + fmt.Sprintf(cond, refs...)
	}
	if len(p.types) > 0 {
		marks := make([]string, len(p.types))
		for i, t := range p.types {
			args = append(args, t)
			marks[i] = fmt.Sprintf("$%d", len(args))
		}
		sqlText += " AND type IN (" + strings.Join(marks, ", ") + ")"
	}
	if p.since.Valid {
		add("occurred_at >= $%d", p.since)
	}
	if p.until.Valid {
		add("occurred_at < $%d", p.until)
	}
	if p.cursor != "" {
		var at db.Time
		err := q.QueryRowContext(ctx, `SELECT occurred_at FROM timeline_entries WHERE tenant_id = $1 AND event_id = $2 AND customer_id = $3`,
			p.tenant, p.cursor, p.customer).Scan(&at)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, abacus.Invalid("invalid_cursor", "cursor is not an entry of this customer's timeline; pass next_cursor of the previous page, or start again without it").
				WithField("query.cursor", "unknown")
		}
		if err != nil {
			return nil, fmt.Errorf("reading the timeline cursor: %w", err)
		}
		add("(occurred_at < $%d OR (occurred_at = $%d AND event_id < $%d))", at, at, p.cursor)
	}
	sqlText += fmt.Sprintf(" ORDER BY occurred_at DESC, event_id DESC LIMIT %d", p.limit+1)
	rows, err := q.QueryContext(ctx, sqlText, args...)
	if err != nil {
		return nil, fmt.Errorf("listing the timeline of %s: %w", p.customer, err)
	}
	defer rows.Close()
	var out []row
	for rows.Next() {
		r := row{tenant: p.tenant, customer: p.customer}
		var data string
		if err := rows.Scan(&r.eventID, &r.typ, &r.at, &r.object.Type, &r.object.ID, &data); err != nil {
			return nil, fmt.Errorf("reading a timeline entry: %w", err)
		}
		if err := json.Unmarshal([]byte(data), &r.data); err != nil {
			return nil, fmt.Errorf("decoding timeline data of %s: %w", r.eventID, err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}
