package notifications

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
)

// Delivery states (see the package doc).
const (
	StatePending    = "pending"
	StateDeferred   = "deferred"
	StateSending    = "sending"
	StateSent       = "sent"
	StateFailed     = "failed"
	StateDropped    = "dropped"
	StateSuppressed = "suppressed"
	StateDigested   = "digested"
)

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// insertNotification stores m; it reports false when the tenant already
// has a notification with m's dedupe key.
func insertNotification(ctx context.Context, tx *db.Tx, id string, m Message, now time.Time) (bool, error) {
	data, err := json.Marshal(m.Data)
	if err != nil {
		return false, fmt.Errorf("notifications: encoding data of %s: %w", m.Template, err)
	}
	if m.Data == nil {
		data = []byte("{}")
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO notifications (id, tenant_id, template, locale, recipient_kind, recipient_id,
		recipient_email, recipient_name, recipient_tz, data, category, critical, dedupe_key, source, subject_type, subject_id, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) ON CONFLICT DO NOTHING`,
		id, m.TenantID, m.Template, m.Locale, m.To.Kind, m.To.ID, m.To.Email, m.To.Name, m.To.TimeZone, string(data),
		m.Category, boolInt(m.Critical), nullable(m.DedupeKey), m.Source, m.SubjectType, m.SubjectID, db.TimeOf(now))
	if err != nil {
		return false, fmt.Errorf("notifications: recording %s: %w", m.Template, err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

func insertAttachment(ctx context.Context, tx *db.Tx, id, tenant string, pos int, a Attachment) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO notification_attachments (notification_id, position, tenant_id, filename, content_type, content)
		VALUES ($1, $2, $3, $4, $5, $6)`, id, pos, tenant, a.Filename, a.ContentType, a.Content)
	if err != nil {
		return fmt.Errorf("notifications: recording attachment %s: %w", a.Filename, err)
	}
	return nil
}

func insertDelivery(ctx context.Context, tx *db.Tx, tenant, notification, channel string, now, due time.Time) (string, error) {
	id := abacus.NewID("dlv")
	_, err := tx.ExecContext(ctx, `INSERT INTO notification_deliveries (id, tenant_id, notification_id, channel, state, attempts,
		due_at, subject, text_body, html_body, provider_id, last_error, created_at, updated_at)
		VALUES ($1, $2, $3, $4, 'pending', 0, $5, '', '', '', '', '', $6, $6)`,
		id, tenant, notification, channel, db.TimeOf(due), db.TimeOf(now))
	if err != nil {
		return "", fmt.Errorf("notifications: recording %s delivery: %w", channel, err)
	}
	return id, nil
}

// due is a delivery whose time has come: pending or deferred and due, or
// sending with an expired lease (its process died mid-send).
type due struct {
	id       string
	state    string
	dueAt    db.Time
	attempts int
}

func (s *Service) dueDeliveries(ctx context.Context, now time.Time, limit int) ([]due, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, state, due_at, attempts FROM notification_deliveries
		WHERE state IN ('pending', 'deferred', 'sending') AND due_at <= $1 ORDER BY due_at LIMIT $2`, db.TimeOf(now), limit)
	if err != nil {
		return nil, fmt.Errorf("notifications: listing due deliveries: %w", err)
	}
	return scanDue(rows)
}

func scanDue(rows *sql.Rows) ([]due, error) {
	defer rows.Close()
	var out []due
	for rows.Next() {
		var d due
		if err := rows.Scan(&d.id, &d.state, &d.dueAt, &d.attempts); err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// dueOf lists the due deliveries of one notification.
func (s *Service) dueOf(ctx context.Context, notification string, now time.Time) ([]due, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, state, due_at, attempts FROM notification_deliveries
		WHERE notification_id = $1 AND state IN ('pending', 'deferred', 'sending') AND due_at <= $2`, notification, db.TimeOf(now))
	if err != nil {
		return nil, fmt.Errorf("notifications: listing deliveries of %s: %w", notification, err)
	}
	return scanDue(rows)
}

// sendingOf counts the notification's deliveries being sent now.
func (s *Service) sendingOf(ctx context.Context, notification string) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM notification_deliveries WHERE notification_id = $1 AND state = 'sending'`,
		notification).Scan(&n)
	return n, err
}

// claim takes d for this process until lease: the conditional update
// succeeds for one claimant only. It returns the attempt number.
func (s *Service) claim(ctx context.Context, d due, now, lease time.Time) (bool, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE notification_deliveries SET state = 'sending', attempts = attempts + 1,
		due_at = $1, updated_at = $2 WHERE id = $3 AND state = $4 AND due_at = $5 AND attempts = $6`,
		db.TimeOf(lease), db.TimeOf(now), d.id, d.state, d.dueAt, d.attempts)
	if err != nil {
		return false, fmt.Errorf("notifications: claiming delivery %s: %w", d.id, err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// loadDelivery reads a claimed delivery with its notification.
func (s *Service) loadDelivery(ctx context.Context, id string) (Delivery, error) {
	var d Delivery
	var data string
	var critical int
	var at db.Time
	err := s.db.QueryRowContext(ctx, `SELECT d.id, d.notification_id, d.tenant_id, d.channel, d.attempts, n.template, n.locale,
		n.recipient_kind, n.recipient_id, n.recipient_email, n.recipient_name, n.recipient_tz, n.data, n.category, n.critical, n.created_at,
		n.subject_type, n.subject_id FROM notification_deliveries d JOIN notifications n ON n.id = d.notification_id WHERE d.id = $1`, id).Scan(
		&d.ID, &d.NotificationID, &d.TenantID, &d.Channel, &d.Attempt, &d.Template, &d.Locale,
		&d.To.Kind, &d.To.ID, &d.To.Email, &d.To.Name, &d.To.TimeZone, &data, &d.Category, &critical, &at,
		&d.SubjectType, &d.SubjectID)
	if err != nil {
		return d, fmt.Errorf("notifications: loading delivery %s: %w", id, err)
	}
	d.Critical, d.CreatedAt = critical == 1, at.Time
	if err := json.Unmarshal([]byte(data), &d.Data); err != nil {
		return d, fmt.Errorf("notifications: decoding data of %s: %w", d.NotificationID, err)
	}
	return d, nil
}

func (s *Service) loadAttachments(ctx context.Context, notification string) ([]Attachment, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT filename, content_type, content FROM notification_attachments
		WHERE notification_id = $1 ORDER BY position`, notification)
	if err != nil {
		return nil, fmt.Errorf("notifications: loading attachments of %s: %w", notification, err)
	}
	defer rows.Close()
	var out []Attachment
	for rows.Next() {
		var a Attachment
		if err := rows.Scan(&a.Filename, &a.ContentType, &a.Content); err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// outcome is how a claimed delivery ends (or waits).
type outcome struct {
	state      string
	due        time.Time // next try (pending, deferred)
	subject    string
	text, html string // kept only when the service keeps bodies
	providerID string
	err        string
	uncount    bool // the attempt did not happen (deferred)
}

// finish records o for the claim of attempt on id, in tx; a claim that
// expired and was taken over by another process changes nothing.
func finish(ctx context.Context, tx db.Querier, id string, attempt int, o outcome, now time.Time) (bool, error) {
	var sent db.NullTime
	if o.state == StateSent {
		sent = db.NullTime{Time: now, Valid: true}
	}
	dueAt := o.due
	if dueAt.IsZero() {
		dueAt = now
	}
	res, err := tx.ExecContext(ctx, `UPDATE notification_deliveries SET state = $1, due_at = $2, subject = $3, text_body = $4,
		html_body = $5, provider_id = $6, last_error = $7, updated_at = $8, sent_at = $9, attempts = attempts - $10
		WHERE id = $11 AND state = 'sending' AND attempts = $12`,
		o.state, db.TimeOf(dueAt), o.subject, o.text, o.html, o.providerID, o.err, db.TimeOf(now), sent, boolInt(o.uncount), id, attempt)
	if err != nil {
		return false, fmt.Errorf("notifications: recording delivery %s as %s: %w", id, o.state, err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// tenantSource returns the current version of the tenant's template key in
// locale, if the tenant has one.
func (s *Service) tenantSource(ctx context.Context, tenant, key, locale string) (source, bool, error) {
	src := source{Locale: locale}
	err := s.db.QueryRowContext(ctx, `SELECT v.subject, v.text_body, v.html_body FROM notification_templates t
		JOIN notification_template_versions v ON v.tenant_id = t.tenant_id AND v.key = t.key AND v.locale = t.locale AND v.version = t.version
		WHERE t.tenant_id = $1 AND t.key = $2 AND t.locale = $3`, tenant, key, locale).Scan(&src.Subject, &src.Text, &src.HTML)
	if errors.Is(err, sql.ErrNoRows) {
		return src, false, nil
	}
	if err != nil {
		return src, false, fmt.Errorf("notifications: loading template %s (%s): %w", key, locale, err)
	}
	return src, true, nil
}

func (s *Service) defaultLocale(ctx context.Context, tenant string) (string, error) {
	st, err := s.loadSettings(ctx, s.db, tenant)
	return st.DefaultLocale, err
}

// suppressed tells whether the tenant suppressed mail to address.
func (s *Service) suppressed(ctx context.Context, tenant, address string) (bool, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM notification_suppressions WHERE tenant_id = $1 AND email = $2`,
		tenant, strings.ToLower(address)).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("notifications: checking the suppression list: %w", err)
	}
	return n > 0, nil
}

func isNoRows(err error) bool { return errors.Is(err, sql.ErrNoRows) }

// cancelPending drops the waiting deliveries of the tenant's notifications
// of template about one object (a trial reminder once the trial ended).
func cancelPending(ctx context.Context, tx *db.Tx, tenant, subjectType, subjectID, template, reason string, now time.Time) error {
	_, err := tx.ExecContext(ctx, `UPDATE notification_deliveries SET state = 'dropped', last_error = $1, updated_at = $2
		WHERE tenant_id = $3 AND state IN ('pending', 'deferred') AND notification_id IN (SELECT id FROM notifications
		WHERE tenant_id = $3 AND subject_type = $4 AND subject_id = $5 AND template = $6)`,
		reason, db.TimeOf(now), tenant, subjectType, subjectID, template)
	if err != nil {
		return fmt.Errorf("notifications: canceling %s about %s: %w", template, subjectID, err)
	}
	return nil
}
