package prefs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/notifications"
)

// DigestTemplate renders a digest: data category, count and items (each
// with subject and text, oldest first).
const DigestTemplate = "notifications.digest"

// Sender is what digests need of the notifications service.
type Sender interface {
	Render(ctx context.Context, tenant, key, locale string, data map[string]any) (notifications.Rendered, error)
	Enqueue(ctx context.Context, tx *db.Tx, m notifications.Message) (string, error)
}

// Digests sends each digest when its window ends.
type Digests struct {
	db    *db.DB
	clock abacus.Clock
	log   *slog.Logger
	send  Sender
}

// NewDigests returns the digest sender.
func NewDigests(d *db.DB, clock abacus.Clock, log *slog.Logger, send Sender) *Digests {
	return &Digests{db: d, clock: clock, log: log, send: send}
}

// Run flushes due digests every interval until ctx ends.
func (g *Digests) Run(ctx context.Context, interval time.Duration) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := g.FlushDue(ctx); err != nil && ctx.Err() == nil {
			g.log.Warn("sending digests", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

type group struct{ tenant, kind, id, category, channel string }

// FlushDue turns every digest whose window has ended into one
// notification and returns how many it sent.
func (g *Digests) FlushDue(ctx context.Context) (int, error) {
	rows, err := g.db.QueryContext(ctx, `SELECT tenant_id, recipient_kind, recipient_id, category, channel
		FROM notification_digest_items WHERE flushed_at IS NULL
		GROUP BY tenant_id, recipient_kind, recipient_id, category, channel HAVING MIN(due_at) <= $1 LIMIT 100`,
		db.TimeOf(g.clock.Now()))
	if err != nil {
		return 0, fmt.Errorf("finding due digests: %w", err)
	}
	var due []group
	for rows.Next() {
		var gr group
		if err := rows.Scan(&gr.tenant, &gr.kind, &gr.id, &gr.category, &gr.channel); err != nil {
			rows.Close()
			return 0, err
		}
		due = append(due, gr)
	}
	rows.Close()
	n := 0
	var errs []error
	for _, gr := range due {
		if err := g.flush(ctx, gr); err != nil {
			errs = append(errs, err)
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}

type digestItem struct {
	id, template, locale string
	to                   notifications.Recipient
	data                 map[string]any
}

// errFlushedElsewhere rolls back a flush another process did first.
var errFlushedElsewhere = errors.New("digest already sent")

// flush sends one group's items as one notification; marking them and
// enqueueing it share a transaction, so a digest is sent once.
func (g *Digests) flush(ctx context.Context, gr group) error {
	items, err := g.items(ctx, gr)
	if err != nil || len(items) == 0 {
		return err
	}
	entries := make([]map[string]any, 0, len(items))
	for _, it := range items {
		r, err := g.send.Render(ctx, gr.tenant, it.template, it.locale, withRecipient(it))
		if err != nil {
			return fmt.Errorf("rendering a digest item: %w", err)
		}
		entries = append(entries, map[string]any{"subject": r.Subject, "text": r.Text})
	}
	first := items[0]
	m := notifications.Message{TenantID: gr.tenant, Template: DigestTemplate, Locale: first.locale, To: first.to,
		Category: gr.category + DigestSuffix, Channels: []string{gr.channel}, DedupeKey: "digest:" + first.id, Source: "digest",
		Data: map[string]any{"category": gr.category, "count": len(entries), "items": entries}}
	err = g.db.InTx(ctx, func(tx *db.Tx) error {
		ids := make([]any, 0, len(items)+1)
		ids = append(ids, db.TimeOf(g.clock.Now()))
		for _, it := range items {
			ids = append(ids, it.id)
		}
		res, err := tx.ExecContext(ctx, `UPDATE notification_digest_items SET flushed_at = $1
			WHERE flushed_at IS NULL AND id IN (`+db.Placeholders(2, len(items))+`)`, ids...)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); int(n) != len(items) {
			return errFlushedElsewhere
		}
		_, err = g.send.Enqueue(ctx, tx, m)
		return err
	})
	if errors.Is(err, errFlushedElsewhere) {
		return nil
	}
	return err
}

func withRecipient(it digestItem) map[string]any {
	out := make(map[string]any, len(it.data)+1)
	for k, v := range it.data {
		out[k] = v
	}
	if _, ok := out["recipient"]; !ok {
		out["recipient"] = map[string]any{"name": it.to.Name, "email": it.to.Email}
	}
	return out
}

func (g *Digests) items(ctx context.Context, gr group) ([]digestItem, error) {
	rows, err := g.db.QueryContext(ctx, `SELECT id, template, locale, data, recipient_email, recipient_name, recipient_tz
		FROM notification_digest_items WHERE tenant_id = $1 AND recipient_kind = $2 AND recipient_id = $3 AND category = $4
		AND channel = $5 AND flushed_at IS NULL ORDER BY id LIMIT 200`, gr.tenant, gr.kind, gr.id, gr.category, gr.channel)
	if err != nil {
		return nil, fmt.Errorf("reading a digest: %w", err)
	}
	defer rows.Close()
	var out []digestItem
	for rows.Next() {
		it := digestItem{to: notifications.Recipient{Kind: gr.kind, ID: gr.id}}
		var data string
		if err := rows.Scan(&it.id, &it.template, &it.locale, &data, &it.to.Email, &it.to.Name, &it.to.TimeZone); err != nil {
			return nil, err
		}
		if err := json.Unmarshal([]byte(data), &it.data); err != nil {
			return nil, fmt.Errorf("decoding digest item %s: %w", it.id, err)
		}
		out = append(out, it)
	}
	return out, rows.Err()
}
