package inapp

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

const itemColumns = `id, notification_id, category, template, title, body, data, created_at, seen_at, read_at, archived_at`

// insertItem stores it for delivery deliveryID, or returns the item an
// earlier try of that delivery stored.
func insertItem(ctx context.Context, d *db.DB, to Person, deliveryID string, it InboxItem) (InboxItem, error) {
	data, err := json.Marshal(it.Data)
	if err != nil {
		return InboxItem{}, fmt.Errorf("encoding inbox data: %w", err)
	}
	_, err = d.ExecContext(ctx, `INSERT INTO notification_inbox (id, tenant_id, recipient_kind, recipient_id, notification_id,
		delivery_id, category, template, title, body, data, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
		it.ID, to.TenantID, to.Kind, to.ID, it.NotificationID, deliveryID, it.Category, it.Template, it.Title, it.Body,
		string(data), db.TimeOf(it.CreatedAt))
	if db.IsUniqueViolation(err) {
		return scanItem(d.QueryRowContext(ctx, `SELECT `+itemColumns+` FROM notification_inbox WHERE delivery_id = $1`, deliveryID))
	}
	if err != nil {
		return InboxItem{}, fmt.Errorf("storing inbox item: %w", err)
	}
	return it, nil
}

type scanner interface{ Scan(dest ...any) error }

func scanItem(r scanner) (InboxItem, error) {
	var it InboxItem
	var data string
	var created db.Time
	var seen, read, archived db.NullTime
	if err := r.Scan(&it.ID, &it.NotificationID, &it.Category, &it.Template, &it.Title, &it.Body, &data, &created,
		&seen, &read, &archived); err != nil {
		return InboxItem{}, err
	}
	if err := json.Unmarshal([]byte(data), &it.Data); err != nil {
		return InboxItem{}, fmt.Errorf("decoding inbox item %s: %w", it.ID, err)
	}
	it.CreatedAt, it.SeenAt, it.ReadAt, it.ArchivedAt = created.Time, seen.Ptr(), read.Ptr(), archived.Ptr()
	return it, nil
}

// Filter narrows List.
type Filter struct {
	// State: "" or "inbox" (not archived), "unread", "archived", "all".
	State  string
	Limit  int
	Cursor string // the last id of the previous page
}

var stateClauses = map[string]string{
	"":         " AND archived_at IS NULL",
	"inbox":    " AND archived_at IS NULL",
	"unread":   " AND archived_at IS NULL AND read_at IS NULL",
	"archived": " AND archived_at IS NOT NULL",
	"all":      "",
}

// List returns a page of me's items, newest first.
func (s *Service) List(ctx context.Context, me Person, f Filter) (abacus.List[InboxItem], error) {
	clause, ok := stateClauses[f.State]
	if !ok {
		return abacus.List[InboxItem]{}, abacus.Invalid("invalid_state", "state must be inbox, unread, archived or all").
			WithField("query.state", "unknown state")
	}
	limit := f.Limit
	if limit <= 0 || limit > 100 {
		limit = 20
	}
	q := `SELECT ` + itemColumns + ` FROM notification_inbox WHERE tenant_id = $1 AND recipient_kind = $2 AND recipient_id = $3` + clause
	args := []any{me.TenantID, me.Kind, me.ID}
	if f.Cursor != "" {
		q += ` AND id < $4`
		args = append(args, f.Cursor)
	}
	items, err := s.query(ctx, q+fmt.Sprintf(` ORDER BY id DESC LIMIT %d`, limit+1), args...)
	if err != nil {
		return abacus.List[InboxItem]{}, err
	}
	next := ""
	if len(items) > limit {
		items = items[:limit]
		next = items[limit-1].ID
	}
	return abacus.ListOf(items, next), nil
}

// after returns me's items after id, oldest first (a stream's resume).
func (s *Service) after(ctx context.Context, me Person, id string) ([]InboxItem, error) {
	return s.query(ctx, `SELECT `+itemColumns+` FROM notification_inbox WHERE tenant_id = $1 AND recipient_kind = $2
		AND recipient_id = $3 AND id > $4 ORDER BY id LIMIT `+fmt.Sprint(s.cfg.Replay), me.TenantID, me.Kind, me.ID, id)
}

func (s *Service) query(ctx context.Context, q string, args ...any) ([]InboxItem, error) {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("listing inbox items: %w", err)
	}
	defer rows.Close()
	var out []InboxItem
	for rows.Next() {
		it, err := scanItem(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, it)
	}
	return out, rows.Err()
}

// Item returns one of me's items; another person's is not found.
func (s *Service) Item(ctx context.Context, me Person, id string) (InboxItem, error) {
	it, err := scanItem(s.db.QueryRowContext(ctx, `SELECT `+itemColumns+` FROM notification_inbox
		WHERE id = $1 AND tenant_id = $2 AND recipient_kind = $3 AND recipient_id = $4`, id, me.TenantID, me.Kind, me.ID))
	if errors.Is(err, sql.ErrNoRows) {
		return InboxItem{}, abacus.NotFound("notification", id)
	}
	return it, err
}

// Counts returns me's unread and unseen counts.
func (s *Service) Counts(ctx context.Context, me Person) (InboxCounts, error) {
	var c InboxCounts
	err := s.db.QueryRowContext(ctx, `SELECT
		COALESCE(SUM(CASE WHEN read_at IS NULL THEN 1 ELSE 0 END), 0),
		COALESCE(SUM(CASE WHEN read_at IS NULL AND seen_at IS NULL THEN 1 ELSE 0 END), 0)
		FROM notification_inbox WHERE tenant_id = $1 AND recipient_kind = $2 AND recipient_id = $3 AND archived_at IS NULL`,
		me.TenantID, me.Kind, me.ID).Scan(&c.Unread, &c.Unseen)
	if err != nil {
		return InboxCounts{}, fmt.Errorf("counting inbox items: %w", err)
	}
	return c, nil
}

// InboxChange sets or clears an item's states; nil leaves one as it is.
type InboxChange struct {
	Seen     *bool `json:"seen,omitempty" doc:"true marks it seen (shown in a list), false unseen"`
	Read     *bool `json:"read,omitempty" doc:"true marks it read (and seen), false unread"`
	Archived *bool `json:"archived,omitempty" doc:"true archives it, false brings it back"`
}

// Update applies c to one of me's items and returns it.
func (s *Service) Update(ctx context.Context, me Person, id string, c InboxChange) (InboxItem, error) {
	now := db.TimeOf(s.clock.Now())
	var sets []string
	var args []any
	set := func(col string, on *bool, keep bool) {
		switch {
		case on == nil:
		case *on && keep: // keep the first time it happened
			sets = append(sets, fmt.Sprintf("%s = COALESCE(%s, $%d)", col, col, len(args)+1))
			args = append(args, now)
		case *on:
			sets = append(sets, fmt.Sprintf("%s = $%d", col, len(args)+1))
			args = append(args, now)
		default:
			sets = append(sets, col+" = NULL")
		}
	}
	set("seen_at", c.Seen, true)
	set("read_at", c.Read, true)
	if c.Read != nil && *c.Read && c.Seen == nil {
		set("seen_at", c.Read, true)
	}
	set("archived_at", c.Archived, true)
	if len(sets) > 0 {
		n := len(args)
		args = append(args, id, me.TenantID, me.Kind, me.ID)
		_, err := s.db.ExecContext(ctx, `UPDATE notification_inbox SET `+strings.Join(sets, ", ")+
			fmt.Sprintf(` WHERE id = $%d AND tenant_id = $%d AND recipient_kind = $%d AND recipient_id = $%d`, n+1, n+2, n+3, n+4), args...)
		if err != nil {
			return InboxItem{}, fmt.Errorf("updating inbox item: %w", err)
		}
	}
	return s.Item(ctx, me, id)
}

// ReadAll marks every unread item of me read (and seen) and returns how
// many changed.
func (s *Service) ReadAll(ctx context.Context, me Person) (int, error) {
	now := db.TimeOf(s.clock.Now())
	res, err := s.db.ExecContext(ctx, `UPDATE notification_inbox SET read_at = $1, seen_at = COALESCE(seen_at, $1)
		WHERE tenant_id = $2 AND recipient_kind = $3 AND recipient_id = $4 AND read_at IS NULL`, now, me.TenantID, me.Kind, me.ID)
	if err != nil {
		return 0, fmt.Errorf("marking inbox read: %w", err)
	}
	n, err := res.RowsAffected()
	return int(n), err
}
