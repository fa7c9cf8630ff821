package notifications

import (
	"context"
	"errors"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
)

// SendInput is a notification a tenant or its app sends directly.
type SendInput struct {
	Template  string         `json:"template" example:"usage.quota_warning" doc:"a template key: a built-in one or one the tenant saved"`
	Locale    string         `json:"locale,omitempty" example:"de-AT" doc:"default: the recipient's, else the tenant's default"`
	To        Recipient      `json:"to"`
	Data      map[string]any `json:"data,omitempty" doc:"what the template renders; see docs/notifications.md for each built-in template's variables"`
	Category  string         `json:"category,omitempty" example:"usage" doc:"default: the template's (security, account, billing, usage, general)"`
	Critical  bool           `json:"critical,omitempty" doc:"ignores opt-outs and quiet hours; security and billing-critical templates are critical anyway"`
	Channels  []string       `json:"channels,omitempty" example:"[\"email\"]" doc:"email, in_app, push; default: the template's"`
	DedupeKey string         `json:"dedupe_key,omitempty" maxLength:"200" example:"quota-80-2026-11" doc:"a second send with the same key answers the first notification"`
}

// Send records a notification from the API; the notifications role
// delivers it. A send whose dedupe key was used answers the first one.
func (s *Service) Send(ctx context.Context, in SendInput) (Notification, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return Notification{}, err
	}
	if err := checkKey("template", in.Template); err != nil {
		return Notification{}, err
	}
	if _, err := s.findSource(ctx, tenant, in.Template, in.Locale); errors.Is(err, ErrNoTemplate) {
		return Notification{}, abacus.Invalid("unknown_template", "there is no template %q: save one at PUT /api/v1/notifications/templates/%s/{locale} or use a built-in key",
			in.Template, in.Template).WithField("template", "names no built-in or saved template")
	} else if err != nil {
		return Notification{}, err
	}
	m := Message{TenantID: tenant, Template: in.Template, Locale: in.Locale, To: in.To, Data: in.Data, Category: in.Category,
		Critical: in.Critical, Channels: in.Channels, DedupeKey: in.DedupeKey, Source: "api"}
	var id string
	err = s.db.InTx(ctx, func(tx *db.Tx) error {
		var err error
		id, err = s.Enqueue(ctx, tx, m)
		if err == nil && id == "" {
			id, err = s.byDedupeKey(ctx, tx, tenant, in.DedupeKey)
		}
		return err
	})
	if err != nil {
		return Notification{}, err
	}
	return GetNotification(ctx, s.db, id)
}

func (s *Service) byDedupeKey(ctx context.Context, q db.Querier, tenant, key string) (string, error) {
	var id string
	err := q.QueryRowContext(ctx, `SELECT id FROM notifications WHERE tenant_id = $1 AND dedupe_key = $2`, tenant, key).Scan(&id)
	return id, err
}
