package notifications

import (
	"context"
	"net/mail"
	"regexp"
	"slices"
	"strings"
	"time"

	"golang.org/x/text/language"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
)

var templateKey = regexp.MustCompile(`^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$`)

// Enqueue records m inside tx, with one pending delivery per channel, so it
// is sent if and only if tx commits. A message whose DedupeKey the tenant
// already used is ignored. Bad input is an *abacus.Error naming the field
// (template, locale, to.kind, to.email, channels). The notifications role
// picks it up after commit (in this process at once, elsewhere at its next
// poll).
func Enqueue(ctx context.Context, tx *db.Tx, m Message) error {
	_, err := enqueue(ctx, tx, m, time.Now().UTC())
	return err
}

// enqueue is Enqueue at a given time; it returns the notification's id
// ("" when the dedupe key was already used).
func enqueue(ctx context.Context, tx *db.Tx, m Message, now time.Time) (string, error) {
	m, err := normalize(m)
	if err != nil {
		return "", err
	}
	id := abacus.NewID("ntf")
	inserted, err := insertNotification(ctx, tx, id, m, now)
	if err != nil || !inserted {
		return "", err
	}
	for i, a := range m.Attachments {
		if err := insertAttachment(ctx, tx, id, m.TenantID, i, a); err != nil {
			return "", err
		}
	}
	due := now
	if m.SendAt.After(now) {
		due = m.SendAt
	}
	for _, ch := range m.Channels {
		dlv, err := insertDelivery(ctx, tx, m.TenantID, id, ch, now, due)
		if err != nil {
			return "", err
		}
		if m.Tracked != nil && ch == ChannelEmail {
			err = RecordQueued(ctx, tx, []Queued{{TenantID: m.TenantID, SubjectType: m.SubjectType, SubjectID: m.SubjectID,
				DeliveryID: dlv, Channel: m.Tracked.Channel, Recipient: m.To.Email, Formats: m.Tracked.Formats, At: now}})
			if err != nil {
				return "", err
			}
		}
	}
	tx.AfterCommit(wake)
	return id, nil
}

// normalize validates m and fills its defaults from the template's.
func normalize(m Message) (Message, error) {
	var v abacus.Validation
	if m.TenantID == "" {
		v.Add("tenant_id", "is required")
	}
	if !templateKey.MatchString(m.Template) {
		v.Add("template", "must be a key such as end_user.verify_email")
	}
	if m.Locale != "" {
		if _, err := language.Parse(m.Locale); err != nil {
			v.Add("locale", "must be a BCP 47 language tag such as de-AT")
		}
	}
	validateRecipient(&v, m.To)
	def := defaultsFor(m.Template)
	if len(m.Channels) == 0 {
		m.Channels = def.channels(m.To)
	}
	m.Channels = slices.Compact(slices.Sorted(slices.Values(m.Channels)))
	for _, ch := range m.Channels {
		if !slices.Contains(KnownChannels, ch) {
			v.Add("channels", "unknown channel %q; known: %s", ch, strings.Join(KnownChannels, ", "))
		}
	}
	if m.Category == "" {
		m.Category = def.Category
	}
	m.Critical = m.Critical || def.Critical
	if m.Source == "" {
		m.Source = "api"
	}
	return m, v.Err("invalid_notification")
}

func validateRecipient(v *abacus.Validation, r Recipient) {
	switch r.Kind {
	case RecipientEmail:
		if r.Email == "" {
			v.Add("to.email", "is required when to.kind is email")
		}
	case RecipientEndUser, RecipientStaff:
		if r.ID == "" && r.Email == "" {
			v.Add("to.id", "is required when to.kind is %s", r.Kind)
		}
	default:
		v.Add("to.kind", "must be end_user, staff or email")
	}
	if r.Email != "" {
		if a, err := mail.ParseAddress(r.Email); err != nil || a.Address != r.Email {
			v.Add("to.email", "must be an e-mail address such as ada@example.com")
		}
	}
	if r.TimeZone != "" {
		if _, err := time.LoadLocation(r.TimeZone); err != nil {
			v.Add("to.time_zone", "must be an IANA time zone such as Europe/Vienna")
		}
	}
}

// wakeCh lets Enqueue nudge an in-process dispatcher right after commit.
var wakeCh = make(chan struct{}, 1)

func wake() {
	select {
	case wakeCh <- struct{}{}:
	default:
	}
}
