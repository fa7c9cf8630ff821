package push

import (
	"context"
	"crypto/ecdh"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	webpush "github.com/SherClockHolmes/webpush-go"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/notifications/inapp"
)

// Device is one subscription (a device) of a person.
type Device struct {
	ID            string     `json:"id" example:"psub_01jd6z8q4m7x2v3b9n5k1c0abc"`
	TenantID      string     `json:"-"`
	RecipientKind string     `json:"-"`
	RecipientID   string     `json:"-"`
	Provider      string     `json:"provider" enum:"web,fcm,apns" example:"web"`
	Endpoint      string     `json:"endpoint" example:"https://fcm.googleapis.com/fcm/send/c1KrmpTuRm…" doc:"Web Push endpoint, or the FCM/APNs device token"`
	P256dh        string     `json:"-"`
	Auth          string     `json:"-"`
	UserAgent     string     `json:"user_agent,omitempty" example:"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) …"`
	CreatedAt     time.Time  `json:"created_at"`
	LastSentAt    *time.Time `json:"last_sent_at,omitempty"`
}

// NewDevice is what a device registers: for web, the browser's
// PushSubscription.toJSON().
type NewDevice struct {
	Provider string `json:"provider,omitempty" enum:"web,fcm,apns" doc:"default web"`
	Endpoint string `json:"endpoint" maxLength:"2048" example:"https://fcm.googleapis.com/fcm/send/c1KrmpTuRm…"`
	Keys     struct {
		P256dh string `json:"p256dh,omitempty" maxLength:"128" example:"BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7DkM"`
		Auth   string `json:"auth,omitempty" maxLength:"64" example:"tBHItJI5svbpez7KI4CCXg"`
	} `json:"keys,omitempty" doc:"web only"`
	UserAgent string `json:"user_agent,omitempty" maxLength:"512"`
}

func (n NewDevice) validate(insecure bool) (NewDevice, error) {
	var v abacus.Validation
	if n.Provider == "" {
		n.Provider = ProviderWeb
	}
	switch n.Provider {
	case ProviderWeb:
		u, err := url.Parse(n.Endpoint)
		if err != nil || u.Host == "" || (u.Scheme != "https" && !(insecure && u.Scheme == "http")) {
			v.Add("endpoint", "must be the https URL of the browser's push service")
		}
		if b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(n.Keys.P256dh, "=")); err != nil {
			v.Add("keys.p256dh", "must be the base64url P-256 public key of the subscription")
		} else if _, err := ecdh.P256().NewPublicKey(b); err != nil {
			v.Add("keys.p256dh", "is not a valid uncompressed P-256 point")
		}
		if b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(n.Keys.Auth, "=")); err != nil || len(b) != 16 {
			v.Add("keys.auth", "must be the base64url 16-byte auth secret of the subscription")
		}
	case ProviderFCM, ProviderAPNs:
		if strings.TrimSpace(n.Endpoint) == "" {
			v.Add("endpoint", "must be the device token")
		}
	default:
		v.Add("provider", "must be web, fcm or apns")
	}
	return n, v.Err("invalid_push_subscription")
}

const subColumns = `id, tenant_id, recipient_kind, recipient_id, provider, endpoint, p256dh, auth, user_agent, created_at, last_sent_at`

// Subscribe registers a device of me; registering the same endpoint again
// moves it to me and updates its keys.
func (s *Service) Subscribe(ctx context.Context, me inapp.Person, n NewDevice) (Device, error) {
	n, err := n.validate(s.cfg.AllowLocalEndpoints)
	if err != nil {
		return Device{}, err
	}
	now := db.TimeOf(s.clock.Now())
	id := abacus.NewID("psub")
	_, err = s.db.ExecContext(ctx, `INSERT INTO notification_push_subscriptions (`+subColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, NULL)
		ON CONFLICT (tenant_id, endpoint) DO UPDATE SET recipient_kind = $3, recipient_id = $4, provider = $5,
		p256dh = $7, auth = $8, user_agent = $9`,
		id, me.TenantID, me.Kind, me.ID, n.Provider, n.Endpoint, n.Keys.P256dh, n.Keys.Auth, n.UserAgent, now)
	if err != nil {
		return Device{}, fmt.Errorf("storing push subscription: %w", err)
	}
	return scanSub(s.db.QueryRowContext(ctx, `SELECT `+subColumns+` FROM notification_push_subscriptions
		WHERE tenant_id = $1 AND endpoint = $2`, me.TenantID, n.Endpoint))
}

// Subscriptions lists me's devices.
func (s *Service) Subscriptions(ctx context.Context, me inapp.Person) ([]Device, error) {
	return s.subscriptionsOf(ctx, me.TenantID, me.Kind, me.ID)
}

func (s *Service) subscriptionsOf(ctx context.Context, tenant, kind, id string) ([]Device, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+subColumns+` FROM notification_push_subscriptions
		WHERE tenant_id = $1 AND recipient_kind = $2 AND recipient_id = $3 ORDER BY id`, tenant, kind, id)
	if err != nil {
		return nil, fmt.Errorf("listing push subscriptions: %w", err)
	}
	defer rows.Close()
	var out []Device
	for rows.Next() {
		sub, err := scanSub(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, sub)
	}
	return out, rows.Err()
}

// Unsubscribe deletes one of me's devices.
func (s *Service) Unsubscribe(ctx context.Context, me inapp.Person, id string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM notification_push_subscriptions
		WHERE id = $1 AND tenant_id = $2 AND recipient_kind = $3 AND recipient_id = $4`, id, me.TenantID, me.Kind, me.ID)
	if err != nil {
		return fmt.Errorf("deleting push subscription: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return abacus.NotFound("push_subscription", id)
	}
	return nil
}

func (s *Service) deleteSubscription(ctx context.Context, tenant, id string) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM notification_push_subscriptions WHERE id = $1 AND tenant_id = $2`, id, tenant)
	return err
}

func (s *Service) touch(ctx context.Context, id string) {
	_, _ = s.db.ExecContext(ctx, `UPDATE notification_push_subscriptions SET last_sent_at = $1 WHERE id = $2`,
		db.TimeOf(s.clock.Now()), id)
}

type scanner interface{ Scan(dest ...any) error }

func scanSub(r scanner) (Device, error) {
	var sub Device
	var created db.Time
	var last db.NullTime
	err := r.Scan(&sub.ID, &sub.TenantID, &sub.RecipientKind, &sub.RecipientID, &sub.Provider, &sub.Endpoint, &sub.P256dh,
		&sub.Auth, &sub.UserAgent, &created, &last)
	sub.CreatedAt, sub.LastSentAt = created.Time, last.Ptr()
	return sub, err
}

// ServerKey is what a browser needs to subscribe: the tenant's VAPID
// application server key.
type ServerKey struct {
	PublicKey string `json:"public_key" example:"BDd3_hVL9fZi9Ybo2UUzA284WG5FZR30_95YeZJsiApwXKpNcF1rRPF3foIiBHXRdJI2Qhumhf6_LFTeZaNndIo" doc:"applicationServerKey for PushManager.subscribe (base64url)"`
}

// VAPIDKeys returns the tenant's key pair, made on first use.
func (s *Service) VAPIDKeys(ctx context.Context, tenant string) (VAPID, error) {
	k, err := s.loadKeys(ctx, tenant)
	if !errors.Is(err, sql.ErrNoRows) {
		return k, err
	}
	priv, pub, err := webpush.GenerateVAPIDKeys()
	if err != nil {
		return VAPID{}, fmt.Errorf("generating VAPID keys: %w", err)
	}
	sealed, err := s.seal.Seal(priv)
	if err != nil {
		return VAPID{}, err
	}
	// Two processes may race to make the first pair: the first insert wins
	// and both use it.
	_, err = s.db.ExecContext(ctx, `INSERT INTO notification_push_keys (tenant_id, public_key, private_key_sealed, created_at)
		VALUES ($1, $2, $3, $4) ON CONFLICT (tenant_id) DO NOTHING`, tenant, pub, sealed, db.TimeOf(s.clock.Now()))
	if err != nil {
		return VAPID{}, fmt.Errorf("storing VAPID keys: %w", err)
	}
	return s.loadKeys(ctx, tenant)
}

func (s *Service) loadKeys(ctx context.Context, tenant string) (VAPID, error) {
	var k VAPID
	var sealed string
	err := s.db.QueryRowContext(ctx, `SELECT public_key, private_key_sealed FROM notification_push_keys WHERE tenant_id = $1`,
		tenant).Scan(&k.PublicKey, &sealed)
	if err != nil {
		return VAPID{}, err
	}
	if k.PrivateKey, err = s.seal.Open(sealed); err != nil {
		return VAPID{}, err
	}
	k.Subject = s.cfg.Subject
	return k, nil
}
