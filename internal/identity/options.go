package identity

import (
	"context"
	"runtime"
	"sync"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/httpapi"
	"github.com/abacusbilling/abacus/internal/identity/password"
	"github.com/abacusbilling/abacus/internal/identity/throttle"
	"github.com/abacusbilling/abacus/internal/identity/token"
)

// Lifetimes of what identity hands out. docs/identity.md lists them.
const (
	DefaultAccessTTL  = 15 * time.Minute    // access JWT
	DefaultRefreshTTL = 30 * 24 * time.Hour // refresh token; each use rotates it and restarts the clock
	DefaultSessionTTL = 90 * 24 * time.Hour // absolute session lifetime, however often refreshed
	VerifyTokenTTL    = 48 * time.Hour      // e-mail verification link
	ResetTokenTTL     = time.Hour           // password reset link
	InviteTokenTTL    = 7 * 24 * time.Hour  // invitation link
	authCacheTTL      = 10 * time.Second    // how long a JWT's membership/session check is trusted
	keyReloadEvery    = time.Minute         // how often a node re-reads signing keys
)

// Option configures a Service beyond its defaults.
type Option func(*options)

type options struct {
	hash      password.Params
	maxHashes int
	mailer    Mailer
	from      string
	linkBase  string
	appURL    string
	access    time.Duration
	refresh   time.Duration
	session   time.Duration
	issuer    string
	backoff   throttle.BackoffConfig
	rate      throttle.RateConfig
	clientIP  *httpapi.ClientIP
	signup    SignupMode
}

// WithPasswordParams sets the argon2id parameters of new password hashes
// (default password.DefaultParams). Tests use cheap ones.
func WithPasswordParams(p password.Params) Option { return func(o *options) { o.hash = p } }

// WithMaxConcurrentHashes bounds how many password hashes run at once
// (default 2 × GOMAXPROCS): each argon2id hash holds Params.Memory.
func WithMaxConcurrentHashes(n int) Option { return func(o *options) { o.maxHashes = n } }

// WithMailer sets how e-mail is delivered; from is the sender address.
// Without a mailer, messages are kept in the mail outbox for admins to read.
func WithMailer(m Mailer, from string) Option {
	return func(o *options) { o.mailer, o.from = m, from }
}

// WithLinkBaseURL sets Abacus's own public base URL, where it serves the
// pages e-mailed links open (verify-email, reset-password,
// accept-invitation) when there is no WithAppURL: "https://abacus.example.com"
// gives https://abacus.example.com/verify-email?token=….
func WithLinkBaseURL(u string) Option { return func(o *options) { o.linkBase = u } }

// WithAppURL sends e-mailed links to an application instead of Abacus's
// hosted pages: "https://app.example.com" gives
// https://app.example.com/verify-email?token=…; the application shows its
// own page and calls the API with the token.
func WithAppURL(u string) Option { return func(o *options) { o.appURL = u } }

// WithAccessTokenTTL sets the lifetime of access JWTs (default 15 minutes).
func WithAccessTokenTTL(d time.Duration) Option { return func(o *options) { o.access = d } }

// WithSignInBackoff tunes the progressive delay after failed sign-ins
// per (account, client IP).
func WithSignInBackoff(c throttle.BackoffConfig) Option { return func(o *options) { o.backoff = c } }

// WithRateLimit sets the per-IP budget of sign-up, password reset,
// verification and invitation-accept requests (default 20 per hour).
func WithRateLimit(c throttle.RateConfig) Option { return func(o *options) { o.rate = c } }

// SignupMode says who may create an account with POST /api/v1/auth/signup.
type SignupMode string

// Sign-up modes (identity.signup). Invitations sent by a tenant's admins
// are accepted at /api/v1/invitations/accept in every mode.
const (
	SignupOpen       SignupMode = "open"        // anyone; a new account gets a new organization
	SignupInviteOnly SignupMode = "invite_only" // only with an invitation_token, joining the inviting organization
	SignupClosed     SignupMode = "closed"      // nobody: 403 signup_closed
)

// WithSignupMode sets who may sign up (default SignupOpen).
func WithSignupMode(m SignupMode) Option { return func(o *options) { o.signup = m } }

// WithClientIP sets how the client address is found behind proxies
// (http.trusted_proxies). Without it the TCP peer is the client.
func WithClientIP(c *httpapi.ClientIP) Option { return func(o *options) { o.clientIP = c } }

// Sign-in throttles besides the per-(account, IP) backoff of
// WithSignInBackoff. An account's own budget is larger and its wait
// short, so guessing spread over many addresses is slowed while a victim
// is never kept out for long; a per-IP budget counts failures over every
// account and refills every few seconds, so password spraying from one
// address is slowed while other people behind it (a NAT, an office) wait
// seconds at most, and only after a burst of 100 failures; an account
// that signed in from that address in the last 30 days is spared it.
var (
	accountBackoff = throttle.BackoffConfig{Free: 20, Base: time.Second, Max: time.Minute, Forget: time.Hour}
	ipFailures     = throttle.RateConfig{Limit: 100, Window: 10 * time.Minute}
	knownPairTTL   = 30 * 24 * time.Hour
)

// auth is the state identity keeps beyond tenants and API keys.
type auth struct {
	opt     options
	hasher  *password.Hasher
	hashSem chan struct{}
	backoff *throttle.Backoff         // sign-in per (account, IP); OAuth clients; re-authentication
	account *throttle.Backoff         // sign-in per account, from any IP
	ipFails *throttle.Rate            // failed sign-ins per IP, over all accounts
	known   *throttle.Known           // (account, IP) pairs that signed in: spared ipFails
	rates   map[string]*throttle.Rate // per endpoint family

	keyMu      sync.Mutex
	ring       *token.Keyring
	ringLoaded time.Time
	ringTried  time.Time

	authMu    sync.Mutex
	authCache map[string]cachedAuth
}

type cachedAuth struct {
	p     *abacus.Principal
	err   error
	until time.Time
}

func newAuth(clock abacus.Clock, opts []Option) *auth {
	o := options{
		hash: password.DefaultParams, maxHashes: 2 * runtime.GOMAXPROCS(0),
		linkBase: "http://127.0.0.1:8080", access: DefaultAccessTTL, refresh: DefaultRefreshTTL,
		session: DefaultSessionTTL, issuer: "abacus", signup: SignupOpen,
		rate: throttle.RateConfig{Limit: 20, Window: time.Hour},
	}
	for _, f := range opts {
		f(&o)
	}
	h, err := password.NewHasher(o.hash)
	if err != nil {
		panic("identity: " + err.Error()) // a programming error: parameters are code, not input
	}
	a := &auth{opt: o, hasher: h, hashSem: make(chan struct{}, max(1, o.maxHashes)),
		backoff: must(throttle.NewBackoff(o.backoff, clock)), account: must(throttle.NewBackoff(accountBackoff, clock)),
		ipFails: must(throttle.NewRate(ipFailures, clock)), known: throttle.NewKnown(knownPairTTL, 100_000, clock), rates: map[string]*throttle.Rate{}, authCache: map[string]cachedAuth{}}
	for _, name := range []string{"signup", "forgot", "reset", "verify", "accept", "token"} {
		a.rates[name] = must(throttle.NewRate(o.rate, clock))
	}
	return a
}

// must panics on a construction error: throttle settings are code, not input.
func must[T any](v T, err error) T {
	if err != nil {
		panic("identity: " + err.Error())
	}
	return v
}

// withHashSlot runs fn while holding one of the bounded hashing slots, so
// a burst of sign-ins cannot allocate unbounded argon2 memory.
func (s *Service) withHashSlot(ctx context.Context, fn func()) error {
	select {
	case s.a.hashSem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-s.a.hashSem }()
	fn()
	return nil
}

// limit takes one request from ip's budget for the endpoint family name.
func (s *Service) limit(name, ip string) error {
	if wait, ok := s.a.rates[name].Allow(ip); !ok {
		e := throttle.TooManyAttempts(wait)
		e.Message = "too many requests from your address; try again in " + wait.Round(time.Second).String()
		return e
	}
	return nil
}

// hashPassword hashes pw within a hashing slot.
func (s *Service) hashPassword(ctx context.Context, pw string) (string, error) {
	var h string
	var err error
	if serr := s.withHashSlot(ctx, func() { h, err = s.a.hasher.Hash(pw) }); serr != nil {
		return "", serr
	}
	return h, err
}

// verifyPassword checks pw against phc within a hashing slot; an empty
// phc (no such account) does the same work for nothing.
func (s *Service) verifyPassword(ctx context.Context, pw, phc string) (ok, rehash bool, err error) {
	serr := s.withHashSlot(ctx, func() {
		if phc == "" {
			s.a.hasher.VerifyNothing(pw)
			return
		}
		ok, rehash, err = s.a.hasher.Verify(pw, phc)
	})
	if serr != nil {
		return false, false, serr
	}
	return ok, rehash, err
}
