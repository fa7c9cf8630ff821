// Package notifications sends what a tenant's users and staff should hear
// about: a module (or the API, or a domain event through a trigger) records
// a Message with Enqueue inside its own transaction; the notifications role
// renders it from the tenant's template for the recipient's locale and
// delivers it over each channel (e-mail here; in-app and push are channels
// other packages register), asking a Policy first.
//
// Each (notification, channel) is one delivery row with a state:
//
//	           ┌───────── Policy: drop ─────────▶ dropped
//	           │┌──────── Policy: digest ───────▶ digested
//	Enqueue ─▶ pending ──claim──▶ sending ──ok──▶ sent
//	           ▲   ▲                 │ │
//	           │   └─ retry (backoff)┘ └─ permanent error / attempts spent ─▶ failed
//	 deferred ─┘  (Policy: defer until; suppressed address ─▶ suppressed)
//
// A claimed delivery holds a lease (due_at while sending); a process that
// dies mid-send leaves it to be claimed again when the lease ends. So a
// channel is called again only when its last call did not return success
// (for e-mail: the server did not confirm, or we crashed before recording
// that it did). Sent, failed, dropped, suppressed and digested are final.
package notifications

import (
	"context"
	"errors"
	"time"

	"github.com/abacusbilling/abacus/internal/db"
)

// Recipient kinds.
const (
	RecipientEndUser = "end_user"
	RecipientStaff   = "staff"
	RecipientEmail   = "email"
)

// Channel names known to the module. Channels other than e-mail are
// implemented by other packages and registered with Service.RegisterChannel;
// a delivery over a channel nobody registered is dropped with a reason.
const (
	ChannelEmail = "email"
	ChannelInApp = "in_app"
	ChannelPush  = "push"
)

// KnownChannels are the channel names a Message may ask for.
var KnownChannels = []string{ChannelEmail, ChannelInApp, ChannelPush}

// Recipient is who a notification goes to. Kind end_user or staff name an
// account by ID (Email, Name, TimeZone filled when known, else through the
// Directory); Kind email is a bare address.
type Recipient struct {
	Kind     string `json:"kind" enum:"end_user,staff,email" example:"end_user"`
	ID       string `json:"id,omitempty" example:"eu_01JD6Z8Q4M7X2V3B9N5K1C0ABC"`
	Email    string `json:"email,omitempty" example:"ada@example.com"`
	Name     string `json:"name,omitempty" example:"Ada Lovelace"`
	TimeZone string `json:"time_zone,omitempty" example:"Europe/Vienna" doc:"IANA zone, for quiet hours"`
}

// Attachment is a file sent with a notification (e-mail only).
type Attachment struct {
	Filename    string `json:"filename"`
	ContentType string `json:"content_type"`
	Content     []byte `json:"content"`
}

// Message is one notification to send.
type Message struct {
	TenantID string
	// Template is the template key, e.g. "end_user.verify_email".
	Template string
	// Locale is a BCP 47 tag (de-AT); empty uses the tenant's default.
	Locale string
	To     Recipient
	// Data is what the template renders (documented per template in
	// docs/notifications.md).
	Data map[string]any
	// Category groups notifications for preferences and digests
	// (security, billing, usage, …); empty takes the template's.
	Category string
	// Critical notifications ignore opt-outs and quiet hours.
	Critical bool
	// Channels to deliver over; empty uses the template's defaults.
	Channels    []string
	Attachments []Attachment
	// DedupeKey makes Enqueue a no-op when the tenant already has a
	// notification with this key (e.g. "evt_…:invoice.finalized").
	DedupeKey string
	// Source tells where it came from (api, event:<type>, identity…);
	// SubjectType and SubjectID name what it is about (invoice, inv_…), so
	// its delivery status can be read per object.
	Source      string
	SubjectType string
	SubjectID   string
	// SendAt delays the deliveries until then (a reminder); zero or past
	// sends at once.
	SendAt time.Time
	// Tracked, when set, makes the message a delivery of its subject to the
	// customer: its e-mail delivery keeps a status history (history.go).
	Tracked *Tracking
}

// Delivery is one notification rendered for one channel, as a Channel
// receives it.
type Delivery struct {
	ID             string
	NotificationID string
	TenantID       string
	Channel        string
	Template       string
	Locale         string
	To             Recipient
	Category       string
	Critical       bool
	Data           map[string]any
	Subject        string
	Text           string
	HTML           string
	Attachments    []Attachment
	// Attempt counts from 1; a channel may use ID as an idempotency key.
	Attempt   int
	CreatedAt time.Time
	// SubjectType and SubjectID name what the notification is about.
	SubjectType, SubjectID string
}

// Channel delivers rendered notifications. Deliver returns nil once the
// notification is accepted (the SMTP server confirmed, the row is stored);
// an error wrapped with Permanent is not retried; any other error is
// retried with backoff.
type Channel interface {
	Name() string
	Deliver(ctx context.Context, d Delivery) error
}

// PermanentError marks a delivery failure that retrying cannot fix (the
// mailbox does not exist, the subscription is gone).
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent wraps err so the dispatcher does not retry it.
func Permanent(err error) error { return &PermanentError{Err: err} }

// IsPermanent tells whether err was wrapped with Permanent.
func IsPermanent(err error) bool {
	var p *PermanentError
	return errors.As(err, &p)
}

// Actions a Policy decides.
const (
	Send   = "send"
	Drop   = "drop"
	Defer  = "defer"
	Digest = "digest"
)

// Decision is what to do with one delivery now.
type Decision struct {
	Action string    // Send, Drop, Defer or Digest
	Until  time.Time // Defer: when to ask again
	Reason string    // recorded on the delivery (opted out, quiet hours…)
}

// Policy decides, just before a delivery is made, whether to send it now,
// drop it, defer it or add it to a digest (preferences, quiet hours). It is
// asked again when a deferred delivery comes due.
type Policy interface {
	Decide(ctx context.Context, tenantID string, to Recipient, category, channel string, critical bool, now time.Time) (Decision, error)
}

// AlwaysSend is the default Policy.
type AlwaysSend struct{}

func (AlwaysSend) Decide(context.Context, string, Recipient, string, string, bool, time.Time) (Decision, error) {
	return Decision{Action: Send}, nil
}

// DigestSink takes deliveries a Policy put in a digest. A Policy that
// answers Digest implements it; AddToDigest runs in the transaction that
// marks the delivery digested, so a delivery is in a digest exactly once.
type DigestSink interface {
	AddToDigest(ctx context.Context, tx *db.Tx, d Delivery) error
}

// Directory fills in what a recipient account's notification needs
// (address, name, time zone, locale), and names a tenant's staff for
// triggers; the app wires it to identity and end users.
type Directory interface {
	Lookup(ctx context.Context, tenantID string, r Recipient) (Recipient, string, error) // recipient, locale
	StaffEmails(ctx context.Context, tenantID string, roles ...string) ([]Recipient, error)
}
