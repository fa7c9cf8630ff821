package notifications

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/mail"
	"strconv"
	"strings"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
)

// SendingSettings are a tenant's sending identity and defaults.
type SendingSettings struct {
	From            string    `json:"from" example:"Acme Billing <billing@acme.example>" doc:"sender of the tenant's mail; empty: smtp.from"`
	ReplyTo         string    `json:"reply_to" example:"support@acme.example"`
	DefaultLocale   string    `json:"default_locale" example:"de" doc:"used when a notification names no locale; the chain ends in en"`
	BounceSecretSet bool      `json:"bounce_secret_set" doc:"whether a bounce webhook secret exists (POST …/settings/bounce-secret makes one)"`
	UpdatedAt       time.Time `json:"updated_at,omitzero"`
}

// SendingSettingsPatch changes the fields given.
type SendingSettingsPatch struct {
	From          *string `json:"from,omitempty" example:"Acme Billing <billing@acme.example>"`
	ReplyTo       *string `json:"reply_to,omitempty" example:"support@acme.example"`
	DefaultLocale *string `json:"default_locale,omitempty" example:"de"`
}

// GetSettings returns the tenant's settings (defaults when never set).
func (s *Service) GetSettings(ctx context.Context) (SendingSettings, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return SendingSettings{}, err
	}
	return s.loadSettings(ctx, s.db, tenant)
}

func (s *Service) loadSettings(ctx context.Context, q db.Querier, tenant string) (SendingSettings, error) {
	var st SendingSettings
	var secret string
	var at db.Time
	err := q.QueryRowContext(ctx, `SELECT from_addr, reply_to, default_locale, bounce_secret, updated_at FROM notification_settings
		WHERE tenant_id = $1`, tenant).Scan(&st.From, &st.ReplyTo, &st.DefaultLocale, &secret, &at)
	if isNoRows(err) {
		return SendingSettings{}, nil
	}
	st.BounceSecretSet, st.UpdatedAt = secret != "", at.Time
	return st, err
}

// UpdateSettings applies p. From and ReplyTo must be e-mail addresses (or
// empty to clear), DefaultLocale a BCP 47 tag.
func (s *Service) UpdateSettings(ctx context.Context, p SendingSettingsPatch) (SendingSettings, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return SendingSettings{}, err
	}
	var v abacus.Validation
	for field, val := range map[string]*string{"from": p.From, "reply_to": p.ReplyTo} {
		if val != nil && *val != "" {
			if a, err := mail.ParseAddress(*val); err != nil || a.Address == "" {
				v.Add(field, "must be an e-mail address such as Acme Billing <billing@acme.example>")
			}
		}
	}
	if p.DefaultLocale != nil && *p.DefaultLocale != "" {
		l, err := canonicalLocale("default_locale", *p.DefaultLocale)
		if err != nil {
			v.Add("default_locale", "must be a BCP 47 language tag such as de or de-AT")
		}
		p.DefaultLocale = &l
	}
	if err := v.Err("invalid_settings"); err != nil {
		return SendingSettings{}, err
	}
	var out SendingSettings
	err = s.db.InTx(ctx, func(tx *db.Tx) error {
		st, err := s.loadSettings(ctx, tx, tenant)
		if err != nil {
			return err
		}
		set := func(dst *string, src *string) {
			if src != nil {
				*dst = *src
			}
		}
		set(&st.From, p.From)
		set(&st.ReplyTo, p.ReplyTo)
		set(&st.DefaultLocale, p.DefaultLocale)
		st.UpdatedAt = s.clock.Now()
		if _, err := tx.ExecContext(ctx, `INSERT INTO notification_settings (tenant_id, from_addr, reply_to, default_locale, bounce_secret, updated_at)
			VALUES ($1, $2, $3, $4, '', $5) ON CONFLICT (tenant_id) DO UPDATE SET from_addr = $2, reply_to = $3, default_locale = $4, updated_at = $5`,
			tenant, st.From, st.ReplyTo, st.DefaultLocale, db.TimeOf(st.UpdatedAt)); err != nil {
			return err
		}
		out = st
		return nil
	})
	return out, err
}

// BounceSecret is answered once, when made.
type BounceSecret struct {
	Secret string `json:"secret" example:"nbs_3q2v8l0c5m1x7k9w4r6t2y8u0i" doc:"shown once; sign bounce webhooks with it (docs/notifications.md)"`
}

// RotateBounceSecret makes a new bounce webhook secret (the old one stops
// working) and returns it; only its SHA-256 is stored.
func (s *Service) RotateBounceSecret(ctx context.Context) (BounceSecret, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return BounceSecret{}, err
	}
	var b [20]byte
	if _, err := rand.Read(b[:]); err != nil {
		return BounceSecret{}, err
	}
	secret := "nbs_" + strings.ToLower(hex.EncodeToString(b[:]))
	_, err = s.db.ExecContext(ctx, `INSERT INTO notification_settings (tenant_id, from_addr, reply_to, default_locale, bounce_secret, updated_at)
		VALUES ($1, '', '', '', $2, $3) ON CONFLICT (tenant_id) DO UPDATE SET bounce_secret = $2, updated_at = $3`,
		tenant, signingKeyHex(secret), db.TimeOf(s.clock.Now()))
	if err != nil {
		return BounceSecret{}, fmt.Errorf("storing the bounce secret: %w", err)
	}
	return BounceSecret{Secret: secret}, nil
}

// signingKeyHex is what is stored of a bounce secret: its SHA-256, which is
// also the HMAC key (so the secret itself is never at rest).
func signingKeyHex(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// SignBounce returns the Abacus-Signature header value for body sent at t
// with secret: t=<unix seconds>,v1=<hex HMAC-SHA256(SHA-256(secret), "<t>.<body>")>.
func SignBounce(secret string, t time.Time, body []byte) string {
	key, _ := hex.DecodeString(signingKeyHex(secret))
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(key, ts, body))
}

func mac(key []byte, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(ts + "."))
	m.Write(body)
	return m.Sum(nil)
}
