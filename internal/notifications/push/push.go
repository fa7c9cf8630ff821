// Package push delivers notifications to a person's devices when the app
// is closed: the notifications channel "push". Browsers subscribe through
// Web Push (RFC 8030) with the tenant's VAPID key (RFC 8292); the payload
// is encrypted for the subscription's keys (RFC 8291, aes128gcm) by
// github.com/SherClockHolmes/webpush-go. Native apps register FCM or APNs
// device tokens, which go to a Provider the deployment supplies (none is
// built in; Fake records what would be sent, for tests).
//
// A push service answering 404 or 410 says the subscription is gone: it is
// deleted. Each tenant's VAPID key pair is made on first use; the private
// key is sealed with AES-256-GCM at rest and never logged.
package push

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"
	"unicode/utf8"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/notifications"
)

// Providers of subscriptions.
const (
	ProviderWeb  = "web"
	ProviderFCM  = "fcm"
	ProviderAPNs = "apns"
)

// ErrGone is what a Provider returns when the subscription no longer
// exists (Web Push 404/410, FCM UNREGISTERED, APNs 410): it is deleted.
var ErrGone = errors.New("push subscription expired or unsubscribed")

// Push is one message for one device.
type Push struct {
	Device Device
	// Payload is the JSON the app's service worker or app receives
	// (Message); a Provider encrypts it as its protocol needs.
	Payload []byte
	VAPID   VAPID
	TTL     time.Duration
	Urgency string // very-low, low, normal, high
	Topic   string // replaces an undelivered message with the same topic
}

// VAPID is a tenant's application server key pair (base64url, uncompressed
// P-256 public point and raw private scalar) and contact.
type VAPID struct {
	PublicKey  string
	PrivateKey string
	Subject    string // mailto: or https: contact of the sender
}

// Provider sends pushes of one kind (web, fcm, apns). Send returns nil once
// the push service accepted the message, ErrGone (wrapped or not) when
// the subscription is gone, any other error to be retried.
type Provider interface {
	Send(ctx context.Context, p Push) error
}

// Message is the payload a device receives (JSON).
type Message struct {
	NotificationID string `json:"notification_id"`
	Category       string `json:"category"`
	Title          string `json:"title"`
	Body           string `json:"body"`
	Critical       bool   `json:"critical,omitempty"`
}

// maxPayload keeps the encrypted record within the 4096 bytes every push
// service takes (RFC 8291 adds 86 bytes of header, tag and padding).
const maxPayload = 3800

// Config configures the channel.
type Config struct {
	// Subject is the VAPID contact sent to push services (mailto:…);
	// default mailto:push@abacus.invalid.
	Subject string
	// TTL is how long a push service keeps an undelivered message
	// (default 24 h).
	TTL time.Duration
	// AllowLocalEndpoints accepts http:// Web Push endpoints and ones on
	// loopback or private addresses (tests with a local push service
	// stub only; never in production: a device chooses its endpoint).
	AllowLocalEndpoints bool
}

// Service is the push channel and the store of subscriptions and keys.
type Service struct {
	db        *db.DB
	clock     abacus.Clock
	log       *slog.Logger
	cfg       Config
	seal      *Sealer
	providers map[string]Provider
}

// New returns the push channel with the Web Push provider; seal protects
// the VAPID private keys.
func New(d *db.DB, clock abacus.Clock, log *slog.Logger, seal *Sealer, cfg Config) *Service {
	if cfg.Subject == "" {
		cfg.Subject = "mailto:push@abacus.invalid"
	}
	if cfg.TTL <= 0 {
		cfg.TTL = 24 * time.Hour
	}
	return &Service{db: d, clock: clock, log: log, cfg: cfg, seal: seal,
		providers: map[string]Provider{ProviderWeb: WebPush{Client: NewClient(cfg.AllowLocalEndpoints)}}}
}

// SetProvider makes p send the pushes of provider name (web, fcm, apns).
func (s *Service) SetProvider(name string, p Provider) { s.providers[name] = p }

// Name implements notifications.Channel.
func (s *Service) Name() string { return notifications.ChannelPush }

// Deliver implements notifications.Channel: it pushes d to every device
// of its recipient. Gone subscriptions are deleted. It succeeds when one
// device accepted it; a retry after a partial failure may push again to
// devices that already have it (the payload's notification_id lets the
// app drop the repeat).
func (s *Service) Deliver(ctx context.Context, d notifications.Delivery) error {
	subs, err := s.subscriptionsOf(ctx, d.TenantID, d.To.Kind, d.To.ID)
	if err != nil {
		return err
	}
	if len(subs) == 0 {
		return notifications.Permanent(errors.New("the recipient has no push subscriptions"))
	}
	keys, err := s.VAPIDKeys(ctx, d.TenantID)
	if err != nil {
		return err
	}
	payload, err := json.Marshal(Message{NotificationID: d.NotificationID, Category: d.Category, Title: d.Subject,
		Body: truncate(d.Text, maxPayload-len(d.Subject)-200), Critical: d.Critical})
	if err != nil {
		return err
	}
	urgency := "normal"
	if d.Critical {
		urgency = "high"
	}
	return s.sendAll(ctx, subs, Push{Payload: payload, VAPID: keys, TTL: s.cfg.TTL, Urgency: urgency})
}

// sendAll pushes p to each subscription.
func (s *Service) sendAll(ctx context.Context, subs []Device, p Push) error {
	var failed []error
	accepted, gone := 0, 0
	for _, sub := range subs {
		prov, ok := s.providers[sub.Provider]
		if !ok {
			failed = append(failed, fmt.Errorf("no %s push provider is configured", sub.Provider))
			continue
		}
		p.Device = sub
		err := prov.Send(ctx, p)
		switch {
		case err == nil:
			accepted++
			s.touch(ctx, sub.ID)
		case errors.Is(err, ErrGone):
			gone++
			s.prune(ctx, sub)
		default:
			failed = append(failed, fmt.Errorf("%s subscription %s: %w", sub.Provider, sub.ID, err))
		}
	}
	switch {
	case accepted > 0:
		if len(failed) > 0 {
			s.log.Warn("push: some devices failed", "err", errors.Join(failed...))
		}
		return nil
	case len(failed) > 0:
		return errors.Join(failed...)
	default: // every subscription was gone
		return notifications.Permanent(fmt.Errorf("all %d push subscriptions of the recipient are gone", gone))
	}
}

func (s *Service) prune(ctx context.Context, sub Device) {
	if err := s.deleteSubscription(ctx, sub.TenantID, sub.ID); err != nil {
		s.log.Warn("push: deleting a gone subscription", "subscription_id", sub.ID, "err", err)
		return
	}
	s.log.Info("push: subscription gone, deleted", "tenant_id", sub.TenantID, "subscription_id", sub.ID)
}

// truncate cuts s to at most n bytes on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
