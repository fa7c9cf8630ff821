package identity

import (
	"context"
	"crypto/subtle"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/identity/token"
)

// Client is an OAuth2 client (a machine) of a tenant that gets access
// tokens with the client-credentials grant (RFC 6749 §4.4).
type Client struct {
	ID        string         `json:"id" doc:"the client_id"`
	Name      string         `json:"name"`
	Scopes    []abacus.Scope `json:"scopes"`
	CreatedAt time.Time      `json:"created_at"`
	RevokedAt *time.Time     `json:"revoked_at,omitempty"`
}

// ClientInput describes a client to create.
type ClientInput struct {
	Name   string         `json:"name" minLength:"1" maxLength:"200"`
	Scopes []abacus.Scope `json:"scopes" minItems:"1" enum:"ingest,read,write,admin"`
}

// CreateClient creates a client and returns it with its secret, shown
// only now. Errors: invalid_client (every bad field listed).
func (s *Service) CreateClient(ctx context.Context, in ClientInput) (Client, string, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return Client{}, "", err
	}
	var v abacus.Validation
	in.Name = strings.TrimSpace(in.Name)
	if in.Name == "" || len(in.Name) > 200 {
		v.Add("name", "must be 1 to 200 characters")
	}
	if len(in.Scopes) == 0 {
		v.Add("scopes", "name at least one of ingest, read, write, admin")
	}
	var scopes []abacus.Scope
	for i, sc := range in.Scopes {
		if !abacus.ValidScope(sc) {
			v.Add(fmt.Sprintf("scopes[%d]", i), "%q is not a scope; use ingest, read, write or admin", sc)
		} else if !slices.Contains(scopes, sc) {
			scopes = append(scopes, sc)
		}
	}
	if err := v.Err("invalid_client"); err != nil {
		return Client{}, "", err
	}
	secret, hash := token.NewOpaque("cs")
	c := Client{ID: abacus.NewID("cli"), Name: in.Name, Scopes: scopes, CreatedAt: s.clock.Now()}
	err = s.db.InTx(ctx, func(tx *db.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO oauth_clients (id, tenant_id, name, secret_hash, scopes, created_at) VALUES ($1, $2, $3, $4, $5, $6)`,
			c.ID, tenant, c.Name, hash, joinScopes(scopes), db.TimeOf(c.CreatedAt)); err != nil {
			return fmt.Errorf("creating client: %w", err)
		}
		return s.audit(ctx, tx, tenant, "oauth_client.created", "oauth_client", c.ID, map[string]any{"name": c.Name, "scopes": scopes})
	})
	if err != nil {
		return Client{}, "", err
	}
	return c, secret, nil
}

const clientColumns = `id, name, scopes, created_at, revoked_at`

func scanClient(r scanner) (Client, error) {
	var c Client
	var scopes string
	var at db.Time
	var rev db.NullTime
	if err := r.Scan(&c.ID, &c.Name, &scopes, &at, &rev); err != nil {
		return c, err
	}
	c.Scopes, c.CreatedAt, c.RevokedAt = splitScopes(scopes), at.Time, rev.Ptr()
	return c, nil
}

// ListClients lists the tenant's clients, ordered by id.
func (s *Service) ListClients(ctx context.Context) ([]Client, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+clientColumns+` FROM oauth_clients WHERE tenant_id = $1 ORDER BY id`, tenant)
	if err != nil {
		return nil, fmt.Errorf("listing clients: %w", err)
	}
	defer rows.Close()
	out := []Client{}
	for rows.Next() {
		c, err := scanClient(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// GetClient returns one of the tenant's clients. Error: oauth_client_not_found.
func (s *Service) GetClient(ctx context.Context, id string) (Client, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return Client{}, err
	}
	c, err := scanClient(s.db.QueryRowContext(ctx, `SELECT `+clientColumns+` FROM oauth_clients WHERE tenant_id = $1 AND id = $2`, tenant, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Client{}, abacus.NotFound("oauth_client", id)
	}
	return c, err
}

// RevokeClient revokes a client: it gets no new tokens, and its tokens
// stop working within 10 seconds. Revoking twice is not an error.
func (s *Service) RevokeClient(ctx context.Context, id string) (Client, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return Client{}, err
	}
	var c Client
	err = s.db.InTx(ctx, func(tx *db.Tx) error {
		c, err = scanClient(tx.QueryRowContext(ctx, `SELECT `+clientColumns+` FROM oauth_clients WHERE tenant_id = $1 AND id = $2`, tenant, id))
		if errors.Is(err, sql.ErrNoRows) {
			return abacus.NotFound("oauth_client", id)
		}
		if err != nil || c.RevokedAt != nil {
			return err
		}
		now := s.clock.Now()
		if _, err := tx.ExecContext(ctx, `UPDATE oauth_clients SET revoked_at = $1 WHERE id = $2`, db.TimeOf(now), id); err != nil {
			return fmt.Errorf("revoking client: %w", err)
		}
		c.RevokedAt = &now
		return s.audit(ctx, tx, tenant, "oauth_client.revoked", "oauth_client", id, nil)
	})
	s.forgetAuth()
	return c, err
}

// OAuthError is an RFC 6749 §5.2 error response. The token endpoint
// answers in this form, not problem+json, because OAuth client libraries
// expect it.
type OAuthError struct {
	Status      int    `json:"-"`
	Code        string `json:"error"`
	Description string `json:"error_description,omitempty"`
	RetryAfter  int    `json:"-"`
}

func (e *OAuthError) Error() string { return e.Code + ": " + e.Description }

// TokenResponse is a successful client-credentials answer (RFC 6749 §5.1).
type TokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int    `json:"expires_in"`
	Scope       string `json:"scope"`
}

// ClientCredentials issues an access token to a client (RFC 6749 §4.4).
// requested is the space-separated scope parameter (empty: every scope of
// the client). Errors are *OAuthError: invalid_client (401), invalid_scope,
// invalid_request (400), and slow_down-style throttling as 429.
func (s *Service) ClientCredentials(ctx context.Context, clientID, secret, requested string) (TokenResponse, error) {
	key := "client:" + clientID
	if wait, ok := s.a.backoff.Check(key); !ok {
		return TokenResponse{}, &OAuthError{Status: http.StatusTooManyRequests, Code: "invalid_request",
			Description: "too many failed attempts for this client; retry later", RetryAfter: throttleErr(wait).RetryAfter}
	}
	var tenant, hash, scopes string
	var revoked db.NullTime
	err := s.db.QueryRowContext(ctx, `SELECT tenant_id, secret_hash, scopes, revoked_at FROM oauth_clients WHERE id = $1`, clientID).
		Scan(&tenant, &hash, &scopes, &revoked)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return TokenResponse{}, fmt.Errorf("reading client: %w", err)
	}
	if err != nil || revoked.Valid || subtle.ConstantTimeCompare([]byte(token.Hash(secret)), []byte(hash)) != 1 {
		s.a.backoff.Fail(key)
		if err == nil {
			_ = s.audit(withActor(ctx, "client", clientID), s.db, tenant, "oauth_client.auth_failed", "oauth_client", clientID, nil)
		}
		return TokenResponse{}, &OAuthError{Status: http.StatusUnauthorized, Code: "invalid_client",
			Description: "unknown client, wrong secret or revoked client"}
	}
	s.a.backoff.Succeed(key)
	allowed := splitScopes(scopes)
	granted := allowed
	if strings.TrimSpace(requested) != "" {
		granted = nil
		for _, sc := range strings.Fields(requested) {
			if !slices.Contains(allowed, abacus.Scope(sc)) {
				return TokenResponse{}, &OAuthError{Status: http.StatusBadRequest, Code: "invalid_scope",
					Description: fmt.Sprintf("scope %q is not granted to this client; it may ask for: %s", sc, joinScopesSpace(allowed))}
			}
			if !slices.Contains(granted, abacus.Scope(sc)) {
				granted = append(granted, abacus.Scope(sc))
			}
		}
	}
	ring, err := s.keyring(ctx)
	if err != nil {
		return TokenResponse{}, err
	}
	access, err := ring.Sign(token.Claims{Subject: clientID, TenantID: tenant, Scopes: granted, Role: "client"})
	if err != nil {
		return TokenResponse{}, err
	}
	return TokenResponse{AccessToken: access, TokenType: "Bearer", ExpiresIn: int(s.a.opt.access / time.Second), Scope: joinScopesSpace(granted)}, nil
}

func joinScopesSpace(sc []abacus.Scope) string { return strings.Join(scopeStrings(sc), " ") }

// tokenHandler serves POST /oauth/token: form-encoded, client credentials
// via HTTP Basic (RFC 6749 §2.3.1) or client_id/client_secret in the form.
func (s *Service) tokenHandler(w http.ResponseWriter, r *http.Request) {
	write := func(status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Pragma", "no-cache")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(v)
	}
	fail := func(e *OAuthError) {
		if e.Status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Basic realm="abacus"`)
		}
		if e.RetryAfter > 0 {
			w.Header().Set("Retry-After", fmt.Sprint(e.RetryAfter))
		}
		write(e.Status, e)
	}
	ctx := withRequest(r.Context(), newRequest(r.RemoteAddr, r.Header, r.UserAgent()))
	if _, ok := s.a.rates["token"].Allow(s.clientIP(ctx)); !ok {
		fail(&OAuthError{Status: http.StatusTooManyRequests, Code: "invalid_request", Description: "too many requests from your address; retry later", RetryAfter: 60})
		return
	}
	ct := r.Header.Get("Content-Type")
	if !strings.HasPrefix(ct, "application/x-www-form-urlencoded") {
		fail(&OAuthError{Status: http.StatusBadRequest, Code: "invalid_request", Description: "send the request form-encoded (Content-Type: application/x-www-form-urlencoded)"})
		return
	}
	if err := r.ParseForm(); err != nil {
		fail(&OAuthError{Status: http.StatusBadRequest, Code: "invalid_request", Description: "the form body could not be parsed"})
		return
	}
	id, secret, basic := r.BasicAuth()
	if basic {
		// RFC 6749 §2.3.1: Basic credentials are form-url-encoded first.
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
	} else {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if gt := r.PostForm.Get("grant_type"); gt != "client_credentials" {
		code := "unsupported_grant_type"
		if gt == "" {
			code = "invalid_request"
		}
		fail(&OAuthError{Status: http.StatusBadRequest, Code: code, Description: "grant_type must be client_credentials"})
		return
	}
	if id == "" || secret == "" {
		fail(&OAuthError{Status: http.StatusUnauthorized, Code: "invalid_client", Description: "send client_id and client_secret with HTTP Basic or in the form"})
		return
	}
	res, err := s.ClientCredentials(ctx, id, secret, r.PostForm.Get("scope"))
	if err != nil {
		var oe *OAuthError
		if errors.As(err, &oe) {
			fail(oe)
			return
		}
		s.log.ErrorContext(ctx, "issuing client token", "err", err)
		fail(&OAuthError{Status: http.StatusInternalServerError, Code: "server_error", Description: "an internal error occurred"})
		return
	}
	write(http.StatusOK, res)
}
