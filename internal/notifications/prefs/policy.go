package prefs

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
	"github.com/abacusbilling/abacus/internal/notifications"
)

// Policy is the notifications Policy of recipients' settings, and the
// DigestSink of their digests.
type Policy struct {
	db    *db.DB
	clock abacus.Clock
}

// NewPolicy returns the policy.
func NewPolicy(d *db.DB, clock abacus.Clock) *Policy { return &Policy{db: d, clock: clock} }

var (
	_ notifications.Policy     = (*Policy)(nil)
	_ notifications.DigestSink = (*Policy)(nil)
)

// Decide implements notifications.Policy (the rules are in the package
// doc). A bare e-mail address has no settings and is always sent to.
func (p *Policy) Decide(ctx context.Context, tenantID string, to notifications.Recipient, category, channel string,
	critical bool, now time.Time) (notifications.Decision, error) {
	send := notifications.Decision{Action: notifications.Send}
	if critical || to.Kind == notifications.RecipientEmail || to.ID == "" {
		return send, nil
	}
	base, isDigest := strings.CutSuffix(category, DigestSuffix)
	s, err := load(ctx, p.db, tenantID, to.Kind, to.ID)
	if err != nil {
		return notifications.Decision{}, err
	}
	if pref, ok := s.find(base, channel); ok {
		switch {
		case pref.Mode == ModeOff:
			return notifications.Decision{Action: notifications.Drop, Reason: fmt.Sprintf("the recipient turned off %s on %s", base, channel)}, nil
		case pref.Mode == ModeDigest && !isDigest:
			return notifications.Decision{Action: notifications.Digest, Reason: fmt.Sprintf("in the recipient's %s digest", base)}, nil
		}
	}
	if until, quiet := s.QuietHours.until(now, to.TimeZone); quiet {
		return notifications.Decision{Action: notifications.Defer, Until: until, Reason: "the recipient's quiet hours"}, nil
	}
	return send, nil
}

func (s Preferences) find(category, channel string) (Preference, bool) {
	for _, p := range s.Preferences {
		if p.Category == category && p.Channel == channel {
			return p, true
		}
	}
	return Preference{}, false
}

// until tells whether now is within the quiet hours and when they end.
// The zone is the quiet hours' own, else the recipient's, else UTC.
func (q *QuietHours) until(now time.Time, recipientTZ string) (time.Time, bool) {
	if q == nil {
		return time.Time{}, false
	}
	loc := time.UTC
	for _, name := range []string{q.TimeZone, recipientTZ} {
		if l, err := time.LoadLocation(name); name != "" && err == nil {
			loc = l
			break
		}
	}
	start, _ := minuteOf(q.Start)
	end, _ := minuteOf(q.End)
	local := now.In(loc)
	m := local.Hour()*60 + local.Minute()
	inside := (start < end && m >= start && m < end) || (start > end && (m >= start || m < end))
	if !inside {
		return time.Time{}, false
	}
	t := time.Date(local.Year(), local.Month(), local.Day(), end/60, end%60, 0, 0, loc)
	if !t.After(local) {
		t = time.Date(local.Year(), local.Month(), local.Day()+1, end/60, end%60, 0, 0, loc)
	}
	return t.UTC(), true
}

// AddToDigest implements notifications.DigestSink: d joins its recipient's
// open digest of the category and channel, or opens one whose window
// starts now.
func (p *Policy) AddToDigest(ctx context.Context, tx *db.Tx, d notifications.Delivery) error {
	s, err := load(ctx, tx, d.TenantID, d.To.Kind, d.To.ID)
	if err != nil {
		return err
	}
	window := defaultDigest
	if pref, ok := s.find(d.Category, d.Channel); ok && pref.DigestSeconds > 0 {
		window = time.Duration(pref.DigestSeconds) * time.Second
	}
	now := p.clock.Now()
	var due db.Time
	err = tx.QueryRowContext(ctx, `SELECT MIN(due_at) FROM notification_digest_items WHERE tenant_id = $1 AND recipient_kind = $2
		AND recipient_id = $3 AND category = $4 AND channel = $5 AND flushed_at IS NULL HAVING COUNT(*) > 0`,
		d.TenantID, d.To.Kind, d.To.ID, d.Category, d.Channel).Scan(&due)
	if errors.Is(err, sql.ErrNoRows) {
		due, err = db.TimeOf(now.Add(window)), nil
	}
	if err != nil {
		return fmt.Errorf("finding the open digest: %w", err)
	}
	data, err := json.Marshal(d.Data)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO notification_digest_items (id, tenant_id, recipient_kind, recipient_id,
		recipient_email, recipient_name, recipient_tz, category, channel, delivery_id, template, locale, data, due_at, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
		abacus.NewID("dgi"), d.TenantID, d.To.Kind, d.To.ID, d.To.Email, d.To.Name, d.To.TimeZone, d.Category, d.Channel, d.ID,
		d.Template, d.Locale, string(data), due, db.TimeOf(now))
	if err != nil {
		return fmt.Errorf("adding to the digest: %w", err)
	}
	return nil
}

func isNoRows(err error) bool { return errors.Is(err, sql.ErrNoRows) }
