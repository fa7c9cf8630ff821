package enduser

import (
	"context"
	"crypto/subtle"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/identity/token"
)

const appColumns = `id, tenant_id, name, type, client_id, secret_hash, redirect_uris, created_at, updated_at`

func scanApp(r rowScanner) (App, error) {
	var a App
	var secret sql.NullString
	var uris string
	var created, updated db.Time
	if err := r.Scan(&a.ID, &a.TenantID, &a.Name, &a.Type, &a.ClientID, &secret, &uris, &created, &updated); err != nil {
		return App{}, err
	}
	a.secretHash, a.CreatedAt, a.UpdatedAt = secret.String, created.Time, updated.Time
	if err := json.Unmarshal([]byte(uris), &a.RedirectURIs); err != nil || a.RedirectURIs == nil {
		a.RedirectURIs = []string{}
	}
	return a, nil
}

// CreateApp registers an app of the tenant on ctx. A confidential app gets
// a client secret, returned here once and stored only as a hash. Errors:
// invalid_app naming each bad field.
func (s *Service) CreateApp(ctx context.Context, in NewApp) (App, string, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return App{}, "", err
	}
	if err := checkApp(&in.Name, in.Type, in.RedirectURIs); err != nil {
		return App{}, "", err
	}
	clientID, _ := token.NewOpaque("")
	clientID = "cid_" + clientID[:26]
	var secret string
	var secretHash sql.NullString
	if in.Type == AppConfidential {
		var h string
		secret, h = token.NewOpaque("cs")
		secretHash = sql.NullString{String: h, Valid: true}
	}
	uris, _ := json.Marshal(orEmpty(in.RedirectURIs))
	now := db.TimeOf(s.clock.Now())
	id := abacus.NewID("app")
	_, err = s.db.ExecContext(ctx, `INSERT INTO end_user_apps (id, tenant_id, name, type, client_id, secret_hash, redirect_uris, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)`, id, tenant, in.Name, in.Type, clientID, secretHash, string(uris), now)
	if err != nil {
		return App{}, "", fmt.Errorf("creating app: %w", err)
	}
	a, err := s.App(ctx, id)
	return a, secret, err
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// checkApp checks a new or changed app. Redirect URIs are absolute,
// without a fragment, https (or http on a loopback host, or a private
// scheme for native apps); they are matched exactly, so nothing is
// normalised.
func checkApp(name *string, typ string, uris []string) error {
	var v abacus.Validation
	*name = strings.TrimSpace(*name)
	if *name == "" || utf8.RuneCountInString(*name) > 200 {
		v.Add("name", "1 to 200 characters")
	}
	if typ != AppPublic && typ != AppConfidential {
		v.Add("type", "public or confidential")
	}
	if len(uris) > 20 {
		v.Add("redirect_uris", "at most 20")
	}
	for i, u := range uris {
		if msg := checkRedirectURI(u); msg != "" {
			v.AddAt(i, "redirect_uris", "%s", msg)
		}
	}
	return v.Err("invalid_app")
}

func checkRedirectURI(raw string) string {
	u, err := url.Parse(raw)
	switch {
	case err != nil || !u.IsAbs() || len(raw) > 2048:
		return "an absolute URL"
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return "no fragment (#…) allowed"
	case u.Scheme == "https":
		return ""
	case u.Scheme == "http" && (u.Hostname() == "localhost" || u.Hostname() == "127.0.0.1" || u.Hostname() == "::1"):
		return ""
	case u.Scheme == "http", u.Scheme == "javascript", u.Scheme == "data", u.Scheme == "file":
		return "https, or http on localhost only"
	}
	return "" // a private-use scheme (com.example.app:/cb) for a native app
}

// App returns the app id of the tenant on ctx. Errors: app_not_found.
func (s *Service) App(ctx context.Context, id string) (App, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return App{}, err
	}
	a, err := scanApp(s.db.QueryRowContext(ctx, `SELECT `+appColumns+` FROM end_user_apps
		WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL`, tenant, id))
	if errors.Is(err, sql.ErrNoRows) {
		return App{}, abacus.NotFound("app", id)
	}
	if err != nil {
		return App{}, fmt.Errorf("reading app %s: %w", id, err)
	}
	return a, nil
}

// AppByClientID returns the tenant's app with this client id: how public
// flows, which carry only the publishable client id, find the app.
// Errors: app_not_found (also for another tenant's client id).
func (s *Service) AppByClientID(ctx context.Context, tenantID, clientID string) (App, error) {
	a, err := scanApp(s.db.QueryRowContext(ctx, `SELECT `+appColumns+` FROM end_user_apps
		WHERE tenant_id = $1 AND client_id = $2 AND deleted_at IS NULL`, tenantID, clientID))
	if errors.Is(err, sql.ErrNoRows) {
		return App{}, abacus.NotFound("app", clientID)
	}
	if err != nil {
		return App{}, fmt.Errorf("reading app by client id: %w", err)
	}
	return a, nil
}

// CheckAppSecret reports whether secret is the confidential app's client
// secret (in constant time). A public app has no secret: always false.
func (s *Service) CheckAppSecret(a App, secret string) bool {
	if a.secretHash == "" || secret == "" {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(token.Hash(secret)), []byte(a.secretHash)) == 1
}

// AllowsRedirect reports whether uri is one of the app's redirect URIs,
// compared exactly.
func (a App) AllowsRedirect(uri string) bool {
	for _, u := range a.RedirectURIs {
		if u == uri {
			return true
		}
	}
	return false
}
