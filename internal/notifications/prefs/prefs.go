// Package prefs is what each recipient chose about their notifications:
// per category and channel on, off or digest, and quiet hours in their time
// zone. Policy implements the notifications Policy (asked before every
// delivery) and DigestSink (holds a digested delivery until its window
// ends); Digests.FlushDue sends each window's deliveries as one
// notification.
//
// Rules, in order: a critical notification is sent (opt-outs, digests and
// quiet hours do not apply); an opted-out category and channel is dropped;
// a digested one is held for its window; during quiet hours the rest is
// deferred to their end. Security and billing cannot be turned off.
// A digest is itself sent as category "<category>.digest", which obeys
// the category's opt-out and quiet hours but is never digested again.
package prefs

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/notifications"
	"github.com/abacusbilling/abacus/internal/notifications/inapp"
)

// Modes of a preference.
const (
	ModeOn     = "on"
	ModeOff    = "off"
	ModeDigest = "digest"
)

// DigestSuffix ends the category of a digest notification.
const DigestSuffix = ".digest"

// Locked categories cannot be turned off: a person must hear about their
// account's security and about money they owe.
var Locked = []string{notifications.CategorySecurity, notifications.CategoryBilling}

// Preference is one category and channel's choice.
type Preference struct {
	Category string `json:"category" maxLength:"64" example:"usage"`
	Channel  string `json:"channel" enum:"email,in_app,push" example:"email"`
	Mode     string `json:"mode" enum:"on,off,digest" example:"digest"`
	// DigestSeconds is the digest window for mode digest (default 3600,
	// at least 60).
	DigestSeconds int `json:"digest_seconds,omitempty" minimum:"0" maximum:"604800" example:"3600" doc:"digest window in seconds (default 3600), mode digest only"`
}

// QuietHours hold non-critical notifications back between Start and End
// (local times, the window may cross midnight).
type QuietHours struct {
	Start    string `json:"start" pattern:"^[0-2][0-9]:[0-5][0-9]$" example:"22:00"`
	End      string `json:"end" pattern:"^[0-2][0-9]:[0-5][0-9]$" example:"07:00"`
	TimeZone string `json:"time_zone,omitempty" maxLength:"64" example:"Europe/Vienna" doc:"IANA zone; default the recipient's own, else UTC"`
}

// Preferences are a recipient's choices.
type Preferences struct {
	Preferences []Preference `json:"preferences" doc:"categories and channels not listed are on"`
	QuietHours  *QuietHours  `json:"quiet_hours,omitempty"`
}

const defaultDigest = time.Hour

// validate checks s and returns it with defaults filled.
func (s Preferences) validate() (Preferences, error) {
	var v abacus.Validation
	seen := map[[2]string]bool{}
	for i, p := range s.Preferences {
		at := fmt.Sprintf("preferences[%d].", i)
		if p.Category == "" {
			v.Add(at+"category", "is required")
		}
		if !slices.Contains(notifications.KnownChannels, p.Channel) {
			v.Add(at+"channel", "must be one of %s", strings.Join(notifications.KnownChannels, ", "))
		}
		switch p.Mode {
		case ModeOn, ModeDigest:
		case ModeOff:
			if slices.Contains(Locked, p.Category) {
				v.Add(at+"mode", "%s notifications cannot be turned off", p.Category)
			}
		default:
			v.Add(at+"mode", "must be on, off or digest")
		}
		if p.Mode == ModeDigest && p.DigestSeconds == 0 {
			s.Preferences[i].DigestSeconds = int(defaultDigest / time.Second)
		}
		if p.Mode == ModeDigest && p.DigestSeconds != 0 && p.DigestSeconds < 60 {
			v.Add(at+"digest_seconds", "must be at least 60")
		}
		if seen[[2]string{p.Category, p.Channel}] {
			v.Add(at+"category", "%s on %s is listed twice", p.Category, p.Channel)
		}
		seen[[2]string{p.Category, p.Channel}] = true
	}
	if q := s.QuietHours; q != nil {
		if _, ok := minuteOf(q.Start); !ok {
			v.Add("quiet_hours.start", "must be a time of day HH:MM")
		}
		if _, ok := minuteOf(q.End); !ok {
			v.Add("quiet_hours.end", "must be a time of day HH:MM")
		}
		if q.Start == q.End {
			v.Add("quiet_hours.end", "must differ from start")
		}
		if _, err := time.LoadLocation(q.TimeZone); err != nil || strings.EqualFold(q.TimeZone, "local") {
			v.Add("quiet_hours.time_zone", "must be an IANA time zone such as Europe/Vienna")
		}
	}
	return s, lockedError(v.Err("invalid_preferences"))
}

// lockedError gives a refusal that only turns off a locked category its
// own code, so clients can tell it from a typo.
func lockedError(err error) error {
	e, ok := abacus.AsError(err)
	if !ok {
		return err
	}
	for _, f := range e.Fields {
		if !strings.HasSuffix(f.Field, ".mode") || !strings.Contains(f.Message, "cannot be turned off") {
			return err
		}
	}
	e.Code = "preference_locked"
	e.Message = "security and billing notifications cannot be turned off"
	return e
}

func minuteOf(hhmm string) (int, bool) {
	t, err := time.Parse("15:04", hhmm)
	if err != nil {
		return 0, false
	}
	return t.Hour()*60 + t.Minute(), true
}

// Store reads and writes recipients' settings.
type Store struct {
	db    *db.DB
	clock abacus.Clock
}

// NewStore returns the settings store.
func NewStore(d *db.DB, clock abacus.Clock) *Store { return &Store{db: d, clock: clock} }

// Get returns me's settings.
func (s *Store) Get(ctx context.Context, me inapp.Person) (Preferences, error) {
	return load(ctx, s.db, me.TenantID, me.Kind, me.ID)
}

// Put replaces me's settings.
func (s *Store) Put(ctx context.Context, me inapp.Person, in Preferences) (Preferences, error) {
	in, err := in.validate()
	if err != nil {
		return Preferences{}, err
	}
	now := db.TimeOf(s.clock.Now())
	err = s.db.InTx(ctx, func(tx *db.Tx) error {
		if err := clearSettings(ctx, tx, me); err != nil {
			return err
		}
		for _, p := range in.Preferences {
			if _, err := tx.ExecContext(ctx, `INSERT INTO notification_preferences (tenant_id, recipient_kind, recipient_id,
				category, channel, mode, digest_seconds, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
				me.TenantID, me.Kind, me.ID, p.Category, p.Channel, p.Mode, p.DigestSeconds, now); err != nil {
				return fmt.Errorf("storing preference: %w", err)
			}
		}
		if q := in.QuietHours; q != nil {
			start, _ := minuteOf(q.Start)
			end, _ := minuteOf(q.End)
			if _, err := tx.ExecContext(ctx, `INSERT INTO notification_quiet_hours (tenant_id, recipient_kind, recipient_id,
				start_minute, end_minute, time_zone, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
				me.TenantID, me.Kind, me.ID, start, end, q.TimeZone, now); err != nil {
				return fmt.Errorf("storing quiet hours: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return Preferences{}, err
	}
	return s.Get(ctx, me)
}

func clearSettings(ctx context.Context, tx *db.Tx, me inapp.Person) error {
	for _, table := range []string{"notification_preferences", "notification_quiet_hours"} {
		if _, err := tx.ExecContext(ctx, `DELETE FROM `+table+` WHERE tenant_id = $1 AND recipient_kind = $2 AND recipient_id = $3`,
			me.TenantID, me.Kind, me.ID); err != nil {
			return fmt.Errorf("clearing preferences: %w", err)
		}
	}
	return nil
}

func load(ctx context.Context, q db.Querier, tenant, kind, id string) (Preferences, error) {
	rows, err := q.QueryContext(ctx, `SELECT category, channel, mode, digest_seconds FROM notification_preferences
		WHERE tenant_id = $1 AND recipient_kind = $2 AND recipient_id = $3 ORDER BY category, channel`, tenant, kind, id)
	if err != nil {
		return Preferences{}, fmt.Errorf("reading preferences: %w", err)
	}
	defer rows.Close()
	out := Preferences{Preferences: []Preference{}}
	for rows.Next() {
		var p Preference
		if err := rows.Scan(&p.Category, &p.Channel, &p.Mode, &p.DigestSeconds); err != nil {
			return Preferences{}, err
		}
		out.Preferences = append(out.Preferences, p)
	}
	if err := rows.Err(); err != nil {
		return Preferences{}, err
	}
	var start, end int
	var tz string
	err = q.QueryRowContext(ctx, `SELECT start_minute, end_minute, time_zone FROM notification_quiet_hours
		WHERE tenant_id = $1 AND recipient_kind = $2 AND recipient_id = $3`, tenant, kind, id).Scan(&start, &end, &tz)
	if err == nil {
		out.QuietHours = &QuietHours{Start: hhmm(start), End: hhmm(end), TimeZone: tz}
	} else if !isNoRows(err) {
		return Preferences{}, fmt.Errorf("reading quiet hours: %w", err)
	}
	return out, nil
}

func hhmm(m int) string { return fmt.Sprintf("%02d:%02d", m/60, m%60) }
