package notifications

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"golang.org/x/text/language"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
)

// Template is a template key in one locale: the tenant's own current
// version, or the built-in one (Version 0).
type NotificationTemplate struct {
	Key       string    `json:"key" example:"invoice.finalized"`
	Locale    string    `json:"locale" example:"de"`
	Source    string    `json:"source" enum:"tenant,builtin" example:"tenant" doc:"tenant: the tenant's own version; builtin: Abacus's default"`
	Version   int       `json:"version" example:"3" doc:"the tenant's version number; 0 for the built-in one"`
	Subject   string    `json:"subject" example:"Rechnung {{.invoice.number}} von {{.tenant.name}}"`
	Text      string    `json:"text" example:"Hallo {{.customer.name}}, …"`
	HTML      string    `json:"html" example:"<!doctype html>…"`
	CreatedAt time.Time `json:"created_at,omitzero"`
}

// NotificationTemplateSummary is one entry of the template list.
type NotificationTemplateSummary struct {
	Key       string    `json:"key" example:"invoice.finalized"`
	Locale    string    `json:"locale" example:"de"`
	Source    string    `json:"source" enum:"tenant,builtin" example:"tenant"`
	Version   int       `json:"version" example:"3"`
	UpdatedAt time.Time `json:"updated_at,omitzero"`
}

// canonicalLocale validates a locale path or field and returns its
// canonical form (de-at → de-AT).
func canonicalLocale(field, s string) (string, error) {
	tag, err := language.Parse(s)
	if err != nil || s == "" {
		return "", abacus.Invalid("invalid_locale", "%s %q is not a BCP 47 language tag such as de or de-AT", field, s).
			WithField(field, "must be a BCP 47 language tag such as de or de-AT")
	}
	return tag.String(), nil
}

func checkKey(field, key string) error {
	if !templateKey.MatchString(key) || len(key) > 100 {
		return abacus.Invalid("invalid_template_key", "template key %q must be dotted lower-case words such as invoice.finalized", key).
			WithField(field, "must be dotted lower-case words such as invoice.finalized")
	}
	return nil
}

// SaveTemplate stores in as the tenant's next version of key in locale,
// after checking it (syntax, functions, variables of built-in keys, sizes;
// each problem a field error with line and column).
func (s *Service) SaveTemplate(ctx context.Context, key, locale string, in NotificationTemplateInput) (NotificationTemplate, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return NotificationTemplate{}, err
	}
	if err := checkKey("path.key", key); err != nil {
		return NotificationTemplate{}, err
	}
	if locale, err = canonicalLocale("path.locale", locale); err != nil {
		return NotificationTemplate{}, err
	}
	if err := validateTemplate(in, sampleFor(key)); err != nil {
		return NotificationTemplate{}, err
	}
	now := s.clock.Now()
	t := NotificationTemplate{Key: key, Locale: locale, Source: "tenant", Subject: in.Subject, Text: in.Text, HTML: in.HTML, CreatedAt: now}
	err = s.db.InTx(ctx, func(tx *db.Tx) error {
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) + 1 FROM notification_template_versions
			WHERE tenant_id = $1 AND key = $2 AND locale = $3`, tenant, key, locale).Scan(&t.Version); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO notification_template_versions (tenant_id, key, locale, version, subject,
			text_body, html_body, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			tenant, key, locale, t.Version, in.Subject, in.Text, in.HTML, db.TimeOf(now)); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO notification_templates (tenant_id, key, locale, version, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (tenant_id, key, locale) DO UPDATE SET version = $4, updated_at = $5`,
			tenant, key, locale, t.Version, db.TimeOf(now))
		return err
	})
	if err != nil {
		return NotificationTemplate{}, fmt.Errorf("saving template %s (%s): %w", key, locale, err)
	}
	return t, nil
}

// GetTemplate returns the template used for key in exactly locale: the
// tenant's current version, else the built-in one.
func (s *Service) GetTemplate(ctx context.Context, key, locale string) (NotificationTemplate, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return NotificationTemplate{}, err
	}
	if err := checkKey("path.key", key); err != nil {
		return NotificationTemplate{}, err
	}
	if locale, err = canonicalLocale("path.locale", locale); err != nil {
		return NotificationTemplate{}, err
	}
	t, err := s.templateVersion(ctx, tenant, key, locale, 0)
	if err == nil || !errors.Is(err, sql.ErrNoRows) {
		return t, err
	}
	if src, ok := builtinSource(key, locale); ok {
		return NotificationTemplate{Key: key, Locale: locale, Source: "builtin", Subject: src.Subject, Text: src.Text, HTML: src.HTML}, nil
	}
	return NotificationTemplate{}, abacus.NotFound("template", key+"/"+locale)
}

// templateVersion reads one version (0: the current one).
func (s *Service) templateVersion(ctx context.Context, tenant, key, locale string, version int) (NotificationTemplate, error) {
	t := NotificationTemplate{Key: key, Locale: locale, Source: "tenant"}
	var at db.Time
	q := `SELECT v.version, v.subject, v.text_body, v.html_body, v.created_at FROM notification_template_versions v
		JOIN notification_templates t ON t.tenant_id = v.tenant_id AND t.key = v.key AND t.locale = v.locale AND t.version = v.version
		WHERE v.tenant_id = $1 AND v.key = $2 AND v.locale = $3`
	args := []any{tenant, key, locale}
	if version > 0 {
		q = `SELECT version, subject, text_body, html_body, created_at FROM notification_template_versions
			WHERE tenant_id = $1 AND key = $2 AND locale = $3 AND version = $4`
		args = append(args, version)
	}
	err := s.db.QueryRowContext(ctx, q, args...).Scan(&t.Version, &t.Subject, &t.Text, &t.HTML, &at)
	t.CreatedAt = at.Time
	return t, err
}

// TemplateVersions lists every saved version of key in locale, newest first.
func (s *Service) TemplateVersions(ctx context.Context, key, locale string) ([]NotificationTemplate, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return nil, err
	}
	if locale, err = canonicalLocale("path.locale", locale); err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT version, subject, text_body, html_body, created_at FROM notification_template_versions
		WHERE tenant_id = $1 AND key = $2 AND locale = $3 ORDER BY version DESC`, tenant, key, locale)
	if err != nil {
		return nil, fmt.Errorf("listing template versions: %w", err)
	}
	defer rows.Close()
	out := []NotificationTemplate{}
	for rows.Next() {
		t := NotificationTemplate{Key: key, Locale: locale, Source: "tenant"}
		var at db.Time
		if err := rows.Scan(&t.Version, &t.Subject, &t.Text, &t.HTML, &at); err != nil {
			return nil, err
		}
		t.CreatedAt = at.Time
		out = append(out, t)
	}
	return out, rows.Err()
}

// DeleteTemplate removes the tenant's own template of key in locale, so
// the built-in one (or the next locale of the chain) applies again. Its
// versions stay readable; a later save continues their numbering.
func (s *Service) DeleteTemplate(ctx context.Context, key, locale string) error {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return err
	}
	if locale, err = canonicalLocale("path.locale", locale); err != nil {
		return err
	}
	res, err := s.db.ExecContext(ctx, `DELETE FROM notification_templates WHERE tenant_id = $1 AND key = $2 AND locale = $3`, tenant, key, locale)
	if err != nil {
		return fmt.Errorf("deleting template: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return abacus.NotFound("template", key+"/"+locale)
	}
	return nil
}

// ListTemplates lists the tenant's own templates and the built-in ones
// (a built-in hidden by a tenant template of the same key and locale is
// left out), by key and locale.
func (s *Service) ListTemplates(ctx context.Context) ([]NotificationTemplateSummary, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT key, locale, version, updated_at FROM notification_templates WHERE tenant_id = $1`, tenant)
	if err != nil {
		return nil, fmt.Errorf("listing templates: %w", err)
	}
	defer rows.Close()
	out := []NotificationTemplateSummary{}
	own := map[string]bool{}
	for rows.Next() {
		t := NotificationTemplateSummary{Source: "tenant"}
		var at db.Time
		if err := rows.Scan(&t.Key, &t.Locale, &t.Version, &at); err != nil {
			return nil, err
		}
		t.UpdatedAt = at.Time
		own[t.Key+"/"+t.Locale] = true
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for _, b := range builtinList() {
		if !own[b.Key+"/"+b.Locale] {
			out = append(out, b)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Key != out[j].Key {
			return out[i].Key < out[j].Key
		}
		return out[i].Locale < out[j].Locale
	})
	return out, nil
}

// builtinList lists the built-in templates.
func builtinList() []NotificationTemplateSummary {
	var out []NotificationTemplateSummary
	locales, _ := builtinFS.ReadDir("templates")
	for _, l := range locales {
		files, _ := builtinFS.ReadDir("templates/" + l.Name())
		for _, f := range files {
			if key, ok := strings.CutSuffix(f.Name(), ".subject"); ok {
				out = append(out, NotificationTemplateSummary{Key: key, Locale: l.Name(), Source: "builtin"})
			}
		}
	}
	return out
}

// PreviewInput is what a preview renders: the saved template (nothing
// given) or unsaved parts, against data (default: the key's sample).
type PreviewInput struct {
	Subject *string        `json:"subject,omitempty" doc:"unsaved subject to render instead of the saved one"`
	Text    *string        `json:"text,omitempty"`
	HTML    *string        `json:"html,omitempty"`
	Data    map[string]any `json:"data,omitempty" doc:"the data to render; default: the documented sample of the template key"`
}

// Preview renders key in locale (through the fallback chain) against the
// data given or the key's sample; unsaved parts are checked like a save.
func (s *Service) Preview(ctx context.Context, key, locale string, in PreviewInput) (Rendered, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return Rendered{}, err
	}
	if err := checkKey("path.key", key); err != nil {
		return Rendered{}, err
	}
	if locale, err = canonicalLocale("path.locale", locale); err != nil {
		return Rendered{}, err
	}
	data := in.Data
	if data == nil {
		data = sampleFor(key)
	}
	if data == nil {
		data = map[string]any{"recipient": sampleUser}
	}
	if in.Subject == nil && in.Text == nil && in.HTML == nil {
		r, err := s.Render(ctx, tenant, key, locale, data)
		if errors.Is(err, ErrNoTemplate) {
			return r, abacus.NotFound("template", key+"/"+locale)
		}
		return r, err
	}
	src := NotificationTemplateInput{Subject: deref(in.Subject), Text: deref(in.Text), HTML: deref(in.HTML)}
	if err := validateTemplate(src, nil); err != nil {
		return Rendered{}, err
	}
	p, err := compile(source{Subject: src.Subject, Text: src.Text, HTML: src.HTML})
	if err != nil {
		return Rendered{}, err
	}
	r, err := p.execute(data)
	if err != nil {
		return r, abacus.Invalid("template_render_failed", "rendering failed: %s", err.Error())
	}
	r.Locale = locale
	return r, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
