// Package enduser is the directory of a tenant's end users: the people who
// use the tenant's own apps (the viewers of "My Better Netflix"), as
// opposed to the tenant's staff, whom identity serves.
//
// An end user belongs to one tenant; the same e-mail in two tenants is two
// people. They sign in to the tenant's registered apps (App, an OIDC
// client); each sign-in is a Session, one device. A session hands out
// Tokens: a short-lived JWT access token whose issuer is the tenant's
// (Issuer), an ID token when "openid" was asked for, and a rotating opaque
// refresh token. The tenant's apps verify access tokens on their own
// against the tenant's JWKS.
//
// Sessions:
//
//	SignIn / StartSession ──▶ active ──Refresh──▶ active (new refresh token)
//	                            │  ╰─ reuse of a rotated refresh token ─╮
//	                            ▼                                        ▼
//	          RevokeSession, sign-out, expiry, LRU eviction ──▶ revoked
//
// Other packages extend it through hooks instead of being imported:
// OnSignUp, OnSessionStart (organizations, "max devices") and ClaimsFor
// (org claims in tokens). Mail goes through the Mailer interface.
package enduser

import (
	"context"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/httpapi"
	"github.com/abacusbilling/abacus/internal/identity/password"
	"github.com/abacusbilling/abacus/internal/identity/throttle"
)

// Lifetimes of what end users are handed.
const (
	DefaultAccessTTL  = 15 * time.Minute    // access JWT (tenant setting access_token_ttl)
	DefaultRefreshTTL = 30 * 24 * time.Hour // refresh token; each use rotates it; an idle session ends after it
	DefaultSessionTTL = 90 * 24 * time.Hour // absolute session lifetime, however often refreshed
	VerifyTokenTTL    = 48 * time.Hour      // e-mail verification link
	ResetTokenTTL     = time.Hour           // password reset link
	MagicLinkTTL      = 15 * time.Minute    // magic sign-in link and one-time code
	MFAChallengeTTL   = 5 * time.Minute     // between the password and the second factor
	keyReloadEvery    = time.Minute         // how often a node re-reads a tenant's signing keys
)

// User statuses.
const (
	StatusActive   = "active"
	StatusDisabled = "disabled"
	StatusDeleted  = "deleted"
)

// User is one end user of a tenant.
type User struct {
	ID            string         `json:"id"`
	TenantID      string         `json:"tenant_id"`
	Email         string         `json:"email"`
	Name          string         `json:"name"`
	EmailVerified bool           `json:"email_verified"`
	Locale        string         `json:"locale"`
	TimeZone      string         `json:"time_zone"`
	AvatarURL     string         `json:"avatar_url"`
	Metadata      map[string]any `json:"metadata"`
	Status        string         `json:"status"`
	HasPassword   bool           `json:"has_password"`
	MFAEnabled    bool           `json:"mfa_enabled"`
	CreatedAt     time.Time      `json:"created_at"`
	UpdatedAt     time.Time      `json:"updated_at"`
	LastSeenAt    *time.Time     `json:"last_seen_at,omitempty"`
}

// NewUser is what CreateUser needs: an e-mail, the rest optional.
// Password empty means the user signs in by magic link or one-time code
// (or sets a password through a reset).
type NewUser struct {
	Email         string
	Password      string
	Name          string
	EmailVerified bool
	Locale        string
	TimeZone      string
	AvatarURL     string
	Metadata      map[string]any
}

// App types.
const (
	AppPublic       = "public"       // runs on the user's device: PKCE, no secret
	AppConfidential = "confidential" // has a server: authenticates with its client secret
)

// App is an application of the tenant that end users sign in to: an
// OpenID Connect client. ClientID is publishable (the front-end sends it);
// a confidential app also has a secret, stored only as a hash.
type App struct {
	ID           string    `json:"id"`
	TenantID     string    `json:"tenant_id"`
	Name         string    `json:"name"`
	Type         string    `json:"type"`
	ClientID     string    `json:"client_id"`
	RedirectURIs []string  `json:"redirect_uris"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
	secretHash   string
}

// NewApp is what CreateApp needs.
type NewApp struct {
	Name         string
	Type         string
	RedirectURIs []string
}

// Device is where a sign-in comes from.
type Device struct {
	UserAgent string
	IP        string
}

// Session is one signed-in device of an end user.
type Session struct {
	ID            string     `json:"id"`
	TenantID      string     `json:"tenant_id"`
	UserID        string     `json:"user_id"`
	AppID         string     `json:"app_id"`
	DeviceName    string     `json:"device_name"`
	UserAgent     string     `json:"user_agent"`
	IP            string     `json:"ip"`
	MFA           bool       `json:"mfa"`
	CreatedAt     time.Time  `json:"created_at"`
	LastSeenAt    time.Time  `json:"last_seen_at"`
	ExpiresAt     time.Time  `json:"expires_at"`
	RevokedAt     *time.Time `json:"revoked_at,omitempty"`
	RevokedReason string     `json:"revoked_reason,omitempty"`
}

// Active reports whether the session can still be used at now.
func (s Session) Active(now time.Time) bool {
	return s.RevokedAt == nil && now.Before(s.ExpiresAt)
}

// Tokens is what a sign-in or a refresh hands out (an OAuth 2.0 token
// response). IDToken is set when "openid" was among the scopes at sign-in.
type Tokens struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	IDToken      string `json:"id_token,omitempty"`
	ExpiresIn    int    `json:"expires_in"`
	TokenType    string `json:"token_type"`
	Scope        string `json:"scope,omitempty"`
	SessionID    string `json:"-"`
}

// Claims are what a verified access token says.
type Claims struct {
	Issuer    string         `json:"iss"`
	Subject   string         `json:"sub"` // end-user id
	Audience  string         `json:"aud"` // the app's client_id
	ClientID  string         `json:"client_id"`
	SessionID string         `json:"sid"`
	Scope     string         `json:"scope,omitempty"`
	IssuedAt  time.Time      `json:"iat"`
	ExpiresAt time.Time      `json:"exp"`
	ID        string         `json:"jti"`
	Extra     map[string]any `json:"-"` // org, org_role and the tenant's custom claims
}

// TenantID returns the tenant whose issuer signed the token.
func (c Claims) TenantID() string {
	i := strings.LastIndex(c.Issuer, "/")
	return c.Issuer[i+1:]
}

// Option configures a Service beyond its defaults.
type Option func(*options)

type options struct {
	hash      password.Params
	maxHashes int
	base      string
	mailer    Mailer
	access    time.Duration
	refresh   time.Duration
	session   time.Duration
	clientIP  *httpapi.ClientIP
	backoff   throttle.BackoffConfig
	audit     Auditor
}

// Auditor records a staff action on an end user in the tenant's audit log,
// inside q (the change's transaction). Identity's audit log is wired in by
// the app; enduser does not write identity's tables.
type Auditor func(ctx context.Context, q db.Querier, tenant, action, targetType, targetID string, data map[string]any) error

// WithAuditor sets where staff actions on end users are recorded (creating,
// disabling, enabling, deleting a user, signing out their sessions). End
// users' own actions are domain events only.
func WithAuditor(a Auditor) Option { return func(o *options) { o.audit = a } }

// WithPasswordParams sets the argon2id parameters of new password hashes
// (default password.DefaultParams). Tests use cheap ones.
func WithPasswordParams(p password.Params) Option { return func(o *options) { o.hash = p } }

// WithMaxConcurrentHashes bounds how many password hashes run at once
// (default 2 × GOMAXPROCS): each argon2id hash holds Params.Memory.
func WithMaxConcurrentHashes(n int) Option { return func(o *options) { o.maxHashes = n } }

// WithBaseURL sets Abacus's public base URL: the issuer of tenant T is
// {base}/oidc/T, and e-mailed links open there unless the tenant set an
// app_url. Default http://127.0.0.1:8080.
func WithBaseURL(u string) Option {
	return func(o *options) { o.base = strings.TrimRight(u, "/") }
}

// WithMailer sets how e-mail reaches end users. Without one, mail is
// dropped (and logged without its secrets).
func WithMailer(m Mailer) Option { return func(o *options) { o.mailer = m } }

// WithAccessTokenTTL sets the default lifetime of access tokens (a tenant
// may set its own).
func WithAccessTokenTTL(d time.Duration) Option { return func(o *options) { o.access = d } }

// WithRefreshTTL sets how long an unused refresh token (and so an idle
// session) lives.
func WithRefreshTTL(d time.Duration) Option { return func(o *options) { o.refresh = d } }

// WithSessionTTL sets the absolute lifetime of a session.
func WithSessionTTL(d time.Duration) Option { return func(o *options) { o.session = d } }

// WithClientIP sets how the HTTP handlers find the client's address.
func WithClientIP(c *httpapi.ClientIP) Option { return func(o *options) { o.clientIP = c } }

// WithSignInBackoff tunes the progressive delay after failed sign-ins per
// (account, client IP).
func WithSignInBackoff(c throttle.BackoffConfig) Option { return func(o *options) { o.backoff = c } }

// Sign-in throttles (as identity's): per (account, IP) the Option's
// backoff, per account a larger budget with short waits, per IP a budget
// of failures over every account that spares pairs known to succeed.
var (
	accountBackoff = throttle.BackoffConfig{Free: 20, Base: time.Second, Max: time.Minute, Forget: time.Hour}
	ipFailures     = throttle.RateConfig{Limit: 100, Window: 10 * time.Minute}
	knownPairTTL   = 30 * 24 * time.Hour
)

// Service is the end-user directory and its sign-in machinery. It is safe
// for concurrent use; one per process.
type Service struct {
	db    *db.DB
	clock abacus.Clock
	log   *slog.Logger
	opt   options

	hasher  *password.Hasher
	hashSem chan struct{}
	backoff *throttle.Backoff
	account *throttle.Backoff
	ipFails *throttle.Rate
	known   *throttle.Known
	// mailLimit bounds links and codes mailed per (address, IP).
	mailLimit *throttle.Rate
	// signupLimit bounds sign-ups per (tenant, IP).
	signupLimit *throttle.Rate

	keys *keyStore

	appMu sync.Mutex
	apps  map[string]cachedApp // by client id

	mailMu sync.RWMutex
	mailer Mailer

	hookMu        sync.RWMutex
	onSignUp      []func(ctx context.Context, tx *db.Tx, u User) error
	onSession     []func(ctx context.Context, tx *db.Tx, u User, s Session) error
	claimsFor     []func(ctx context.Context, tenantID, userID string) (map[string]any, error)
	settingsMu    sync.Mutex
	settingsCache map[string]cachedSettings
}

// NewService returns the end-user service over d. It panics on invalid
// options (a programming error).
func NewService(d *db.DB, clock abacus.Clock, log *slog.Logger, opts ...Option) *Service {
	o := options{
		hash: password.DefaultParams, maxHashes: 2 * runtime.GOMAXPROCS(0), base: "http://127.0.0.1:8080",
		access: DefaultAccessTTL, refresh: DefaultRefreshTTL, session: DefaultSessionTTL,
		backoff: throttle.BackoffConfig{Free: 5, Base: time.Second, Max: 15 * time.Minute, Forget: 24 * time.Hour},
	}
	for _, f := range opts {
		f(&o)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Service{
		db: d, clock: clock, log: log, opt: o,
		hasher:        must(password.NewHasher(o.hash)),
		hashSem:       make(chan struct{}, max(o.maxHashes, 1)),
		backoff:       must(throttle.NewBackoff(o.backoff, clock)),
		account:       must(throttle.NewBackoff(accountBackoff, clock)),
		ipFails:       must(throttle.NewRate(ipFailures, clock)),
		known:         throttle.NewKnown(knownPairTTL, 100_000, clock),
		mailLimit:     must(throttle.NewRate(mailRate, clock)),
		signupLimit:   must(throttle.NewRate(signupRate, clock)),
		settingsCache: map[string]cachedSettings{},
		apps:          map[string]cachedApp{},
	}
	s.keys = newKeyStore(s)
	s.mailer = o.mailer
	return s
}

// SetMailer sets (or replaces) how mail reaches end users, for wiring
// that builds the mailer after the service.
func (s *Service) SetMailer(m Mailer) {
	s.mailMu.Lock()
	defer s.mailMu.Unlock()
	s.mailer = m
}

func must[T any](v T, err error) T {
	if err != nil {
		panic("enduser: " + err.Error())
	}
	return v
}

// Issuer returns the OIDC issuer of a tenant: {base}/oidc/{tenant_id}.
func (s *Service) Issuer(tenantID string) string {
	return s.opt.base + "/oidc/" + tenantID
}

// BaseURL returns Abacus's public base URL (WithBaseURL).
func (s *Service) BaseURL() string { return s.opt.base }

// OnSignUp registers f to run in the transaction that creates an end user
// (sign-up, or staff creating one). An error refuses the creation.
func (s *Service) OnSignUp(f func(ctx context.Context, tx *db.Tx, u User) error) {
	s.hookMu.Lock()
	defer s.hookMu.Unlock()
	s.onSignUp = append(s.onSignUp, f)
}

// OnSessionStart registers f to run in the transaction that creates a
// session, after the session row exists (so it counts among the user's
// active sessions). An error (an *abacus.Error tells the end user why)
// refuses the sign-in; f may revoke other sessions in tx
// (RevokeLeastRecentlyUsed).
func (s *Service) OnSessionStart(f func(ctx context.Context, tx *db.Tx, u User, sess Session) error) {
	s.hookMu.Lock()
	defer s.hookMu.Unlock()
	s.onSession = append(s.onSession, f)
}

// ClaimsFor registers f to add claims (org, org_role…) to every access
// and ID token issued for a user. Later registrations win on a key
// collision; registered claims never replace the standard ones.
func (s *Service) ClaimsFor(f func(ctx context.Context, tenantID, userID string) (map[string]any, error)) {
	s.hookMu.Lock()
	defer s.hookMu.Unlock()
	s.claimsFor = append(s.claimsFor, f)
}

// systemCtx returns ctx carrying a principal of tenantID, for the public
// flows that have no staff principal (stores read the tenant from it).
func systemCtx(ctx context.Context, tenantID string) context.Context {
	return abacus.WithPrincipal(ctx, &abacus.Principal{TenantID: tenantID, Kind: "system", ID: "enduser"})
}

// SystemContext returns ctx carrying a system principal of tenantID, as
// public flows need before calling the tenant-scoped methods.
func SystemContext(ctx context.Context, tenantID string) context.Context {
	return systemCtx(ctx, tenantID)
}
