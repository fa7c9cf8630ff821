package inbound

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
)

func loadAddress(ctx context.Context, q db.Querier, tenant string) (string, time.Time, error) {
	var token string
	var at db.Time
	err := q.QueryRowContext(ctx, `SELECT token, created_at FROM inbound_addresses WHERE tenant_id = $1`, tenant).Scan(&token, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return "", time.Time{}, abacus.NotFound("inbound_address", tenant)
	}
	if err != nil {
		return "", time.Time{}, fmt.Errorf("loading the inbound address: %w", err)
	}
	return token, at.Time.UTC(), nil
}

// insertAddress creates tenant's address unless it has one.
func insertAddress(ctx context.Context, d *db.DB, tenant, token string, now time.Time) error {
	_, err := d.ExecContext(ctx, `INSERT INTO inbound_addresses (tenant_id, token, created_at) VALUES ($1, $2, $3)
		ON CONFLICT (tenant_id) DO NOTHING`, tenant, token, db.TimeOf(now))
	if err != nil {
		return fmt.Errorf("creating the inbound address: %w", err)
	}
	return nil
}

func replaceAddress(ctx context.Context, d *db.DB, tenant, token string, now time.Time) error {
	_, err := d.ExecContext(ctx, `INSERT INTO inbound_addresses (tenant_id, token, created_at) VALUES ($1, $2, $3)
		ON CONFLICT (tenant_id) DO UPDATE SET token = $2, created_at = $3`, tenant, token, db.TimeOf(now))
	if err != nil {
		return fmt.Errorf("rotating the inbound address: %w", err)
	}
	return nil
}

func tenantByToken(ctx context.Context, q db.Querier, token string) (string, error) {
	var tenant string
	err := q.QueryRowContext(ctx, `SELECT tenant_id FROM inbound_addresses WHERE token = $1`, token).Scan(&tenant)
	if errors.Is(err, sql.ErrNoRows) {
		return "", abacus.NotFound("inbound_address", token)
	}
	if err != nil {
		return "", fmt.Errorf("looking up the inbound address: %w", err)
	}
	return tenant, nil
}

const msgCols = `id, tenant_id, content_hash, blob_key, size, mail_from, rcpt_to, subject, message_id, status, documents, notes, error, received_at, processed_at`

func scanMessage(r scanner) (ReceivedMail, error) {
	var m ReceivedMail
	var docs, notes string
	var at db.Time
	var done db.NullTime
	if err := r.Scan(&m.ID, &m.tenant, &m.ContentHash, &m.blobKey, &m.Size, &m.From, &m.To, &m.Subject, &m.MessageID, &m.Status,
		&docs, &notes, &m.Error, &at, &done); err != nil {
		return m, err
	}
	m.ReceivedAt = at.Time.UTC()
	if done.Valid {
		t := done.Time.UTC()
		m.ProcessedAt = &t
	}
	if err := json.Unmarshal([]byte(docs), &m.Documents); err != nil {
		return m, fmt.Errorf("reading message %s: %w", m.ID, err)
	}
	if err := json.Unmarshal([]byte(notes), &m.Notes); err != nil {
		return m, fmt.Errorf("reading message %s: %w", m.ID, err)
	}
	return m, nil
}

func jsonList(l []string) string {
	if l == nil {
		return "[]"
	}
	b, _ := json.Marshal(l) // a string slice always encodes
	return string(b)
}

func insertMessage(ctx context.Context, d *db.DB, m *ReceivedMail) error {
	_, err := d.ExecContext(ctx, `INSERT INTO inbound_messages (`+msgCols+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, NULL)`,
		m.ID, m.tenant, m.ContentHash, m.blobKey, m.Size, m.From, m.To, m.Subject, m.MessageID, string(m.Status),
		jsonList(m.Documents), jsonList(m.Notes), m.Error, db.TimeOf(m.ReceivedAt))
	if err != nil && !db.IsUniqueViolation(err) {
		return fmt.Errorf("storing the received e-mail: %w", err)
	}
	return err
}

func finishMessage(ctx context.Context, d *db.DB, m *ReceivedMail) error {
	_, err := d.ExecContext(ctx, `UPDATE inbound_messages SET status = $1, documents = $2, notes = $3, error = $4, processed_at = $5
		WHERE tenant_id = $6 AND id = $7`, string(m.Status), jsonList(m.Documents), jsonList(m.Notes), m.Error, db.TimeOf(*m.ProcessedAt), m.tenant, m.ID)
	if err != nil {
		return fmt.Errorf("recording e-mail %s as %s: %w", m.ID, m.Status, err)
	}
	return nil
}

func loadMessage(ctx context.Context, q db.Querier, tenant, id string) (ReceivedMail, error) {
	return one(scanMessage, q.QueryRowContext(ctx, `SELECT `+msgCols+` FROM inbound_messages WHERE tenant_id = $1 AND id = $2`, tenant, id),
		"inbound_message", id)
}

func loadMessageByHash(ctx context.Context, q db.Querier, tenant, hash string) (ReceivedMail, error) {
	return one(scanMessage, q.QueryRowContext(ctx, `SELECT `+msgCols+` FROM inbound_messages WHERE tenant_id = $1 AND content_hash = $2`, tenant, hash),
		"inbound_message", hash)
}

// pendingMessages returns messages of every tenant still received before
// `before`, oldest first.
func pendingMessages(ctx context.Context, q db.Querier, before time.Time, limit int) ([]ReceivedMail, error) {
	return all(ctx, q, scanMessage, "received e-mails", `SELECT `+msgCols+` FROM inbound_messages WHERE status = $1 AND received_at < $2
		ORDER BY received_at LIMIT $3`, string(MessageReceived), db.TimeOf(before), limit)
}

func listMessages(ctx context.Context, q db.Querier, tenant string, f MessageFilter) ([]ReceivedMail, error) {
	query := `SELECT ` + msgCols + ` FROM inbound_messages WHERE tenant_id = $1 AND id > $2`
	args := []any{tenant, f.Cursor}
	if f.Status != "" {
		args = append(args, string(f.Status))
		query += fmt.Sprintf(" AND status = $%d", len(args))
	}
	args = append(args, f.Limit+1)
	query += fmt.Sprintf(" ORDER BY id LIMIT $%d", len(args))
	return all(ctx, q, scanMessage, "received e-mails", query, args...)
}
