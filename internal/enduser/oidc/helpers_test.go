package oidc_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/oauth2"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/enduser"
	"github.com/abacusbilling/abacus/internal/enduser/oidc"
	"github.com/abacusbilling/abacus/internal/httpapi"
	"github.com/abacusbilling/abacus/internal/identity"
	"github.com/abacusbilling/abacus/internal/identity/password"
)

var cheap = password.Params{Memory: 64, Time: 1, Threads: 1, KeyLen: 32, SaltLen: 16}

const pw = "correct horse battery staple"

// env is a whole provider over real HTTP: an httpapi server with the
// OIDC routes, two tenants, each with a public app A and a confidential
// app B, and one end user.
type env struct {
	t      testing.TB
	url    string
	clock  *abacus.FakeClock
	eu     *enduser.Service
	http   *http.Client // the relying parties' client (no cookies)
	tenant [2]tenantFix
	logs   syncBuffer
}

// syncBuffer collects the logs, so tests can check no secret reaches them.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type tenantFix struct {
	id      string
	issuer  string
	appA    enduser.App // public, PKCE
	appB    enduser.App // confidential
	secretB string
	user    enduser.User
}

const (
	cbA       = "https://app-a.test/cb"
	cbA2      = "https://app-a.test/other-cb"
	loggedOut = "https://app-a.test/logged-out"
	cbB       = "https://app-b.test/cb"
)

func newEnv(t testing.TB, d *db.DB) *env { return newEnvOver(t, d, false) }

// newEnvOver serves the provider over TLS when tls is set.
func newEnvOver(t testing.TB, d *db.DB, tls bool) *env {
	t.Helper()
	ts := httptest.NewUnstartedServer(nil)
	scheme := map[bool]string{false: "http://", true: "https://"}[tls]
	e := &env{t: t, url: scheme + ts.Listener.Addr().String(), clock: abacus.NewFakeClock(time.Now().UTC().Truncate(time.Second))}
	log := slog.New(slog.NewTextHandler(&e.logs, nil))
	e.eu = enduser.NewService(d, e.clock, log, enduser.WithPasswordParams(cheap), enduser.WithBaseURL(e.url))
	p := oidc.New(e.eu, d, e.clock, log)
	srv := httpapi.New(httpapi.Config{Version: "test"}, d, log, prometheus.NewRegistry())
	srv.SetAuthenticator(p.Authenticate(nil))
	oidc.RegisterRoutes(srv, p)
	ts.Config.Handler = srv.Handler()
	if tls {
		ts.StartTLS()
	} else {
		ts.Start()
	}
	t.Cleanup(ts.Close)
	e.http = ts.Client()
	ids := identity.NewService(d, e.clock, nil)
	for i, name := range []string{"Tenant A", "Tenant B"} {
		ten, err := ids.CreateTenant(context.Background(), name)
		if err != nil {
			t.Fatal(err)
		}
		e.tenant[i] = e.fixture(ten.ID)
	}
	return e
}

// start is what most tests begin with: the env, tenant A, a browser and
// app A's relying party.
func start(t testing.TB, d *db.DB) (*env, tenantFix, *browser, *rp) {
	e := newEnv(t, d)
	ta := e.tenant[0]
	return e, ta, e.browser(), e.rp(ta, ta.appA, "", cbA)
}

func (e *env) fixture(tenant string) tenantFix {
	t := e.t
	ctx := enduser.SystemContext(context.Background(), tenant)
	f := tenantFix{id: tenant, issuer: e.eu.Issuer(tenant)}
	var err error
	if f.appA, _, err = e.eu.CreateApp(ctx, enduser.NewApp{Name: "App A", Type: enduser.AppPublic, RedirectURIs: []string{cbA, cbA2, loggedOut}}); err != nil {
		t.Fatal(err)
	}
	if f.appB, f.secretB, err = e.eu.CreateApp(ctx, enduser.NewApp{Name: "App B", Type: enduser.AppConfidential, RedirectURIs: []string{cbB}}); err != nil {
		t.Fatal(err)
	}
	if f.user, err = e.eu.CreateUser(ctx, enduser.NewUser{Email: "ada@example.com", Password: pw, Name: "Ada", EmailVerified: true}); err != nil {
		t.Fatal(err)
	}
	return f
}

// rp is one relying party: go-oidc's provider and verifier, and an
// oauth2.Config.
type rp struct {
	ctx      context.Context
	provider *gooidc.Provider
	verifier *gooidc.IDTokenVerifier
	conf     oauth2.Config
}

func (e *env) rp(f tenantFix, app enduser.App, secret, redirect string) *rp {
	e.t.Helper()
	ctx := gooidc.ClientContext(context.Background(), e.http)
	prov, err := gooidc.NewProvider(ctx, f.issuer)
	if err != nil {
		e.t.Fatalf("discovery of %s: %v", f.issuer, err)
	}
	return &rp{ctx: ctx, provider: prov, verifier: prov.Verifier(&gooidc.Config{ClientID: app.ClientID}),
		conf: oauth2.Config{ClientID: app.ClientID, ClientSecret: secret, Endpoint: prov.Endpoint(), RedirectURL: redirect,
			Scopes: []string{gooidc.ScopeOpenID, "email", "profile"}}}
}

// browser is an end user's browser: a cookie jar, redirects not followed
// (the test reads every Location).
type browser struct {
	e *env
	c *http.Client
}

func (e *env) browser() *browser {
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Transport: e.http.Transport, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
	return &browser{e: e, c: c}
}

type resp struct {
	status   int
	header   http.Header
	body     string
	location *url.URL
}

func (b *browser) do(req *http.Request) resp {
	b.e.t.Helper()
	res, err := b.c.Do(req)
	if err != nil {
		b.e.t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	r := resp{status: res.StatusCode, header: res.Header, body: string(body)}
	if loc := res.Header.Get("Location"); loc != "" {
		r.location, _ = url.Parse(loc)
	}
	return r
}

func (b *browser) get(u string) resp {
	req, _ := http.NewRequest("GET", u, nil)
	return b.do(req)
}

var (
	formRe   = regexp.MustCompile(`<form method="post" action="([^"]+)">`)
	hiddenRe = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)
)

// signInForm checks a response is the hosted sign-in page and returns its
// form's action and hidden fields.
func (b *browser) signInForm(r resp) (string, url.Values) {
	t := b.e.t
	t.Helper()
	if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") {
		t.Fatalf("want the sign-in page, got %d %s (Location %v): %s", r.status, r.header.Get("Content-Type"), r.location, r.body)
	}
	for _, want := range []string{`<label for="email">`, `<input type="email" id="email" name="email"`,
		`<label for="password">`, `<input type="password" id="password" name="password"`, `<button type="submit">`} {
		if !strings.Contains(r.body, want) {
			t.Fatalf("sign-in page lacks %s:\n%s", want, r.body)
		}
	}
	csp := r.header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "unsafe-inline") || strings.Contains(r.body, "<script") {
		t.Fatalf("page not locked down: CSP %q", csp)
	}
	m := formRe.FindStringSubmatch(r.body)
	if m == nil {
		t.Fatalf("no form:\n%s", r.body)
	}
	hidden := url.Values{}
	for _, h := range hiddenRe.FindAllStringSubmatch(r.body, -1) {
		hidden.Set(html.UnescapeString(h[1]), html.UnescapeString(h[2]))
	}
	return html.UnescapeString(m[1]), hidden
}

// formOf returns the action and hidden fields of r's form (any of
// the hosted forms, not only the sign-in one).
func (b *browser) formOf(r resp) (string, url.Values) {
	b.e.t.Helper()
	m := formRe.FindStringSubmatch(r.body)
	if m == nil {
		b.e.t.Fatalf("no form:\n%s", r.body)
	}
	hidden := url.Values{}
	for _, h := range hiddenRe.FindAllStringSubmatch(r.body, -1) {
		hidden.Set(html.UnescapeString(h[1]), html.UnescapeString(h[2]))
	}
	return html.UnescapeString(m[1]), hidden
}

// post submits a form as the browser (same origin).
func (b *browser) post(path string, form url.Values) resp {
	req, _ := http.NewRequest("POST", b.e.url+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", b.e.url)
	return b.do(req)
}

// signIn fills the sign-in page of r with the password and returns the
// answer to the POST.
func (b *browser) signIn(r resp, email, password string) resp {
	action, form := b.signInForm(r)
	form.Set("email", email)
	form.Set("password", password)
	return b.post(action, form)
}

// backTo checks r redirects to redirect (exactly, before the query) and
// returns the query it carries.
func backTo(t testing.TB, r resp, redirect string) url.Values {
	t.Helper()
	if r.status != http.StatusSeeOther || r.location == nil {
		t.Fatalf("want a redirect to %s, got %d: %s", redirect, r.status, r.body)
	}
	u := *r.location
	q := u.Query()
	u.RawQuery = ""
	if u.String() != redirect {
		t.Fatalf("redirected to %s, want %s", r.location, redirect)
	}
	return q
}

func random() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// flow is one authorization request of a relying party.
type flow struct {
	state, nonce, verifier string
}

func newFlow() flow {
	return flow{state: random(), nonce: random(), verifier: oauth2.GenerateVerifier()}
}

func (r *rp) authURL(f flow, extra ...oauth2.AuthCodeOption) string {
	opts := append([]oauth2.AuthCodeOption{gooidc.Nonce(f.nonce), oauth2.S256ChallengeOption(f.verifier)}, extra...)
	return r.conf.AuthCodeURL(f.state, opts...)
}

// tokenErr is the OAuth error code of an oauth2 exchange's error.
func tokenErr(err error) string {
	if re, ok := err.(*oauth2.RetrieveError); ok {
		return re.ErrorCode
	}
	if err == nil {
		return ""
	}
	return err.Error()
}
