// Package inapp is the in-app inbox: the notifications channel "in_app"
// stores each delivery as an inbox item of its recipient (an end user or
// a member of the tenant's staff), which reads, marks and archives them
// through /api/v1/me/notifications and receives new ones live over
// server-sent events (/api/v1/me/notifications/stream).
//
// Live delivery crosses processes through NATS core: the process that
// stores an item publishes it on abacus.inbox.<tenant>.<kind>.<id>; every
// process holds one subscription to abacus.inbox.> and hands each item to
// the streams of that recipient open on it. An item published while no
// stream was open is not lost: a client that reconnects with Last-Event-ID
// is sent every item after that id from the database first.
//
// Item state:
//
//	new ──seen──▶ seen ──read──▶ read      (any state) ──archive──▶ archived
//	 └─────────────read──────────▲          (archived ──unarchive──▶ as before)
package inapp

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/notifications"
)

// Person is whose inbox: a tenant's end user or staff member.
type Person struct {
	TenantID string
	Kind     string // notifications.RecipientEndUser or RecipientStaff
	ID       string
}

// principalKinds maps an authenticated principal's kind to a recipient
// kind. API keys and OAuth clients are not people and have no inbox.
var principalKinds = map[string]string{
	"end_user": notifications.RecipientEndUser, // enduser.PrincipalKind
	"user":     notifications.RecipientStaff,
}

// Me returns the signed-in person of ctx: 401 without credentials, 403
// for an API key or OAuth client.
func Me(ctx context.Context) (Person, error) {
	p := abacus.PrincipalFrom(ctx)
	if p == nil {
		return Person{}, &abacus.Error{Kind: abacus.KindUnauthorized, Code: "unauthenticated",
			Message: "this route needs a person's access token (an end user's or a staff member's): send Authorization: Bearer <access_token>"}
	}
	kind, ok := principalKinds[p.Kind]
	if !ok {
		return Person{}, &abacus.Error{Kind: abacus.KindForbidden, Code: "not_a_person",
			Message: "only end users and staff members have notifications; an API key or OAuth client has none"}
	}
	return Person{TenantID: p.TenantID, Kind: kind, ID: p.ID}, nil
}

// InboxItem is one notification in an inbox.
type InboxItem struct {
	ID             string         `json:"id" example:"itm_01jd6z8q4m7x2v3b9n5k1c0abc" doc:"time-ordered; the SSE event id"`
	NotificationID string         `json:"notification_id" example:"ntf_01jd6z8q4m7x2v3b9n5k1c0abc"`
	Category       string         `json:"category" example:"usage"`
	Template       string         `json:"template" example:"usage.threshold_reached"`
	Title          string         `json:"title" example:"You have used 80 % of your API calls"`
	Body           string         `json:"body" example:"Your plan includes 10,000 calls a month; 8,000 are used."`
	Data           map[string]any `json:"data"`
	CreatedAt      time.Time      `json:"created_at"`
	SeenAt         *time.Time     `json:"seen_at,omitempty"`
	ReadAt         *time.Time     `json:"read_at,omitempty"`
	ArchivedAt     *time.Time     `json:"archived_at,omitempty"`
}

// InboxCounts are what a badge shows.
type InboxCounts struct {
	Unread int `json:"unread" example:"3" doc:"not read and not archived"`
	Unseen int `json:"unseen" example:"1" doc:"not seen, not read and not archived"`
}

// Config tunes live delivery.
type Config struct {
	// Heartbeat is how often an idle stream gets a comment line, so
	// proxies keep it open and a dead client is noticed (default 15 s).
	Heartbeat time.Duration
	// Buffer is how many items one stream may have waiting; a client
	// that falls further behind is disconnected and resumes with
	// Last-Event-ID (default 64).
	Buffer int
	// Replay bounds how many missed items one resume sends (default 500).
	Replay int
}

// WithDefaults fills zero fields.
func (c Config) WithDefaults() Config {
	if c.Heartbeat <= 0 {
		c.Heartbeat = 15 * time.Second
	}
	if c.Buffer <= 0 {
		c.Buffer = 64
	}
	if c.Replay <= 0 {
		c.Replay = 500
	}
	return c
}

// Service is the inbox: the in_app channel, the store and the live hub.
type Service struct {
	db    *db.DB
	clock abacus.Clock
	log   *slog.Logger
	cfg   Config
	hub   *hub
}

// New returns the inbox. With nc nil, live delivery reaches only streams
// open in this process (tests, a single node without a bus).
func New(d *db.DB, clock abacus.Clock, log *slog.Logger, nc *nats.Conn, cfg Config) *Service {
	cfg = cfg.WithDefaults()
	return &Service{db: d, clock: clock, log: log, cfg: cfg, hub: newHub(nc, log, cfg.Buffer)}
}

// Close stops the hub's subscription; streams still open end.
func (s *Service) Close() { s.hub.close() }

// Name implements notifications.Channel.
func (s *Service) Name() string { return notifications.ChannelInApp }

// Deliver implements notifications.Channel: it stores d as an item of its
// recipient (once per delivery, however often it is retried) and
// publishes it to the recipient's open streams.
func (s *Service) Deliver(ctx context.Context, d notifications.Delivery) error {
	if d.To.Kind != notifications.RecipientEndUser && d.To.Kind != notifications.RecipientStaff {
		return notifications.Permanent(fmt.Errorf("in-app notifications need an end user or staff recipient, not %q", d.To.Kind))
	}
	data := d.Data
	if data == nil {
		data = map[string]any{}
	}
	it := InboxItem{ID: abacus.NewID("itm"), NotificationID: d.NotificationID, Category: d.Category, Template: d.Template,
		Title: d.Subject, Body: d.Text, Data: data, CreatedAt: s.clock.Now()}
	to := Person{TenantID: d.TenantID, Kind: d.To.Kind, ID: d.To.ID}
	stored, err := insertItem(ctx, s.db, to, d.ID, it)
	if err != nil {
		return err
	}
	s.hub.publish(to, stored)
	return nil
}

// encodeEvent is one SSE event for it.
func encodeEvent(it InboxItem) ([]byte, error) {
	b, err := json.Marshal(it)
	if err != nil {
		return nil, err
	}
	return fmt.Appendf(nil, "id: %s\nevent: notification\ndata: %s\n\n", it.ID, b), nil
}
