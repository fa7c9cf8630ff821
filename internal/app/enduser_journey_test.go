package app_test

import (
	"context"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/abacusbilling/abacus/internal/config"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
	"github.com/abacusbilling/abacus/internal/notifications/smtp/smtptest"
)

const (
	journeyPassword = "a long enough passphrase 42"
	journeyCbA      = "https://app-a.test/cb"
	journeyCbB      = "https://app-b.test/cb"
)

// TestEndUserJourney is issue 13's "done when", over real HTTP on both
// engines with mail going out through a real SMTP server: sign-up in app
// A through code + PKCE (go-oidc, x/oauth2), the verification link read
// from SMTP, an organization that is a billed customer, an invitation
// accepted from its mail, a plan with max_devices 2, a third device
// refused (or, with evict_lru, the oldest signed out), and app B signed
// in without a password.
func TestEndUserJourney(t *testing.T) {
	t.Parallel()
	for _, engine := range dbtest.Engines {
		for _, policy := range []string{"refuse", "evict_lru"} {
			t.Run(string(engine)+"/"+policy, func(t *testing.T) {
				t.Parallel()
				journey(t, engine, policy)
			})
		}
	}
}

// journeyWorld is the program, its SMTP server and the two apps' relying
// parties.
type journeyWorld struct {
	*orgWorld
	mail       *smtptest.Server
	issuer     string
	appA, appB *oauth2.Config
	verifierA  *gooidc.IDTokenVerifier
	verifierB  *gooidc.IDTokenVerifier
}

func journey(t *testing.T, engine db.Engine, policy string) {
	mail := smtptest.Start(t, smtptest.Options{})
	a := start(t, engine, func(c *config.Config) { c.SMTP.URL = "smtp://" + mail.Addr })
	w := &journeyWorld{orgWorld: &orgWorld{testApp: a}, mail: mail}
	w.tenant = a.tenantOf(t, a.key)
	w.registerApps(t)

	// 1. Sign-up in app A through the hosted page: back with a code, the
	// ID token verified by go-oidc.
	phone := w.browser("Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) Safari/604.1")
	flowA := newJourneyFlow()
	page := phone.get(t, w.appA.AuthCodeURL(flowA.state, flowA.opts()...))
	signup := phone.follow(t, page, `<a href="([^"]+)">Create an account</a>`)
	res := phone.submit(t, signup, url.Values{"name": {"Ada"}, "email": {"ada@journey.test"}, "password": {journeyPassword}})
	sub, tokA := w.exchange(t, w.appA, w.verifierA, flowA, res, journeyCbA)

	// 2. The verification mail, from SMTP; its link opened and confirmed.
	link := w.mailedLink(t, "ada@journey.test", `http://[^\s"<>]+/verify-email\?token=[^\s"<>]+`)
	done := phone.submit(t, phone.get(t, link), nil)
	if done.status != 200 || !strings.Contains(done.body, "ada@journey.test is confirmed") {
		t.Fatalf("verification page: %d\n%s", done.status, done.body)
	}
	if u := w.call(t, 200, "GET", "/api/v1/end-users/"+sub, w.key, nil); u["email_verified"] != true {
		t.Fatalf("the end user is not verified after the link: %v", u)
	}

	// 3. An organization, which is a billed customer.
	org := w.call(t, 201, "POST", "/api/v1/end-user/organizations", tokA, map[string]any{"name": "Ada's studio"})
	cus := w.call(t, 200, "GET", "/api/v1/customers/"+org["customer_id"].(string), w.key, nil)
	if cus["name"] != "Ada's studio" || cus["external_id"] != org["id"] {
		t.Fatalf("the organization's customer: %v", cus)
	}

	// 4. An invitation, mailed through SMTP, accepted by a new user.
	w.call(t, 201, "POST", "/api/v1/end-user/organizations/"+org["id"].(string)+"/invitations", tokA, map[string]any{"email": "grace@journey.test"})
	inv, _ := url.Parse(w.mailedLink(t, "grace@journey.test", `http://[^\s"<>]+/accept-invitation\?token=[^\s"<>]+`))
	w.call(t, 200, "POST", "/api/v1/end-user/organization-invitations/accept", "",
		map[string]any{"token": inv.Query().Get("token"), "password": journeyPassword, "name": "Grace"})
	members := w.call(t, 200, "GET", "/api/v1/organizations/"+org["id"].(string)+"/members", w.key, nil)["data"].([]any)
	if len(members) != 2 {
		t.Fatalf("members after the invitation: %v", members)
	}

	// 5. A plan whose max_devices is 2, the organization subscribed.
	value := any(2)
	if policy == "evict_lru" {
		value = map[string]any{"limit": 2, "on_limit": "evict_lru"}
	}
	w.subscribeMaxDevices(t, "team", org["customer_id"].(string), value)

	// 6. A second device, then a third.
	laptop := w.browser("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) Firefox/140.0")
	f2 := newJourneyFlow()
	w.exchange(t, w.appA, w.verifierA, f2, laptop.signIn(t, w.appA.AuthCodeURL(f2.state, f2.opts()...)), journeyCbA)
	tablet := w.browser("Mozilla/5.0 (Linux; Android 15; Pixel Tablet) Chrome/140.0")
	f3 := newJourneyFlow()
	third := tablet.signIn(t, w.appA.AuthCodeURL(f3.state, f3.opts()...))
	sso := phone // the browser app B will find signed in
	switch policy {
	case "refuse":
		if third.status != http.StatusConflict || !strings.Contains(third.body, "2 of the 2 devices") {
			t.Fatalf("a third device: %d %v\n%s", third.status, third.location, third.body)
		}
		r := w.do("POST", "/api/v1/end-user/sign-in", "", map[string]any{"email": "ada@journey.test", "password": journeyPassword},
			"Abacus-Client-Id", w.appA.ClientID, "User-Agent", "Mozilla/5.0 (Windows NT 10.0) Edge/140.0")
		expectProblem(t, r, http.StatusConflict, "device_limit_reached")
	case "evict_lru":
		w.exchange(t, w.appA, w.verifierA, f3, third, journeyCbA)
		if r := w.do("GET", "/api/v1/end-user/organizations", tokA, nil); r.status != http.StatusUnauthorized {
			t.Fatalf("the oldest device's token still works: %d %s", r.status, r.body)
		}
		fb := newJourneyFlow()
		phone.signInPage(t, phone.get(t, w.appB.AuthCodeURL(fb.state, fb.opts()...))) // its SSO session went with it
		sso = tablet
	}
	if e := w.call(t, 200, "GET", "/api/v1/customers/"+org["customer_id"].(string)+"/entitlements/max_devices", w.key, nil); e["used"] != "2" {
		t.Fatalf("devices in use: %v", e)
	}

	// 7. App B: a code without a password, from the SSO session.
	fb := newJourneyFlow()
	subB, _ := w.exchange(t, w.appB, w.verifierB, fb, sso.get(t, w.appB.AuthCodeURL(fb.state, fb.opts()...)), journeyCbB)
	if subB != sub {
		t.Fatalf("app B signed in %s, app A %s", subB, sub)
	}
}

// registerApps registers apps A and B (public, PKCE) through the staff
// API and discovers the issuer with go-oidc.
func (w *journeyWorld) registerApps(t *testing.T) {
	t.Helper()
	w.issuer = w.base + "/oidc/" + w.tenant
	prov, err := gooidc.NewProvider(context.Background(), w.issuer)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	conf := func(name, cb string) (*oauth2.Config, *gooidc.IDTokenVerifier) {
		app := w.call(t, 201, "POST", "/api/v1/apps", w.key, map[string]any{"name": name, "type": "public", "redirect_uris": []string{cb}})
		id := app["client_id"].(string)
		if _, ok := app["client_secret"]; ok {
			t.Fatalf("a public app got a secret: %v", app)
		}
		return &oauth2.Config{ClientID: id, Endpoint: prov.Endpoint(), RedirectURL: cb, Scopes: []string{"openid", "email", "profile"}},
			prov.Verifier(&gooidc.Config{ClientID: id})
	}
	w.appA, w.verifierA = conf("App A", journeyCbA)
	w.appB, w.verifierB = conf("App B", journeyCbB)
}

// exchange checks res redirects to cb with the flow's state and a code,
// exchanges the code with the PKCE verifier and verifies the ID token
// with go-oidc; it returns the subject and the access token.
func (w *journeyWorld) exchange(t *testing.T, conf *oauth2.Config, v *gooidc.IDTokenVerifier, f journeyFlow, res page, cb string) (string, string) {
	t.Helper()
	if res.status != http.StatusSeeOther || res.location == nil || !strings.HasPrefix(res.location.String(), cb+"?") {
		t.Fatalf("want a redirect to %s, got %d %v\n%s", cb, res.status, res.location, res.body)
	}
	q := res.location.Query()
	if q.Get("state") != f.state || q.Get("code") == "" {
		t.Fatalf("callback %v", q)
	}
	tok, err := conf.Exchange(context.Background(), q.Get("code"), oauth2.VerifierOption(f.verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := v.Verify(context.Background(), raw)
	if err != nil || idt.Nonce != f.nonce {
		t.Fatalf("go-oidc rejects the ID token: %v", err)
	}
	return idt.Subject, tok.AccessToken
}

// mailedLink waits for a mail to to whose text has a link matching re.
func (w *journeyWorld) mailedLink(t *testing.T, to, re string) string {
	t.Helper()
	linkRe := regexp.MustCompile(re)
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		for _, m := range w.mail.Messages() {
			if m.To != to {
				continue
			}
			p := smtptest.Parse(t, m.Raw)
			if l := linkRe.FindString(p.Text); l != "" {
				return l
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no mail to %s with a link like %s (%d mails)", to, re, len(w.mail.Messages()))
	return ""
}

type journeyFlow struct{ state, nonce, verifier string }

func newJourneyFlow() journeyFlow {
	return journeyFlow{state: oauth2.GenerateVerifier(), nonce: oauth2.GenerateVerifier(), verifier: oauth2.GenerateVerifier()}
}

func (f journeyFlow) opts() []oauth2.AuthCodeOption {
	return []oauth2.AuthCodeOption{gooidc.Nonce(f.nonce), oauth2.S256ChallengeOption(f.verifier)}
}

// device is one browser: its own cookie jar and User-Agent; redirects
// are not followed (the test reads each Location).
type device struct {
	base, agent string
	c           *http.Client
}

type page struct {
	status   int
	body     string
	location *url.URL
}

func (w *journeyWorld) browser(agent string) *device {
	jar, _ := cookiejar.New(nil)
	return &device{base: w.base, agent: agent, c: &http.Client{Jar: jar, Timeout: 2 * time.Minute,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (d *device) do(t *testing.T, req *http.Request) page {
	t.Helper()
	req.Header.Set("User-Agent", d.agent)
	res, err := d.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	p := page{status: res.StatusCode, body: string(b)}
	if l := res.Header.Get("Location"); l != "" {
		p.location, _ = url.Parse(l)
	}
	return p
}

func (d *device) get(t *testing.T, u string) page {
	t.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	return d.do(t, req)
}

var (
	journeyFormRe   = regexp.MustCompile(`<form method="post" action="([^"]+)">`)
	journeyHiddenRe = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)
)

// submit posts p's form with its hidden fields and fields.
func (d *device) submit(t *testing.T, p page, fields url.Values) page {
	t.Helper()
	m := journeyFormRe.FindStringSubmatch(p.body)
	if p.status != 200 || m == nil {
		t.Fatalf("no form on the page (%d %v):\n%s", p.status, p.location, p.body)
	}
	form := url.Values{}
	for _, h := range journeyHiddenRe.FindAllStringSubmatch(p.body, -1) {
		form.Set(html.UnescapeString(h[1]), html.UnescapeString(h[2]))
	}
	for k, v := range fields {
		form[k] = v
	}
	req, _ := http.NewRequest("POST", d.base+html.UnescapeString(m[1]), strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", d.base)
	return d.do(t, req)
}

// follow opens the link of p that re's group matches.
func (d *device) follow(t *testing.T, p page, re string) page {
	t.Helper()
	m := regexp.MustCompile(re).FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("no link like %s on the page (%d):\n%s", re, p.status, p.body)
	}
	return d.get(t, d.base+html.UnescapeString(m[1]))
}

// signInPage checks p is the hosted sign-in page.
func (d *device) signInPage(t *testing.T, p page) {
	t.Helper()
	if p.status != 200 || !strings.Contains(p.body, `<input type="password" id="password" name="password" autocomplete="current-password"`) {
		t.Fatalf("want the sign-in page, got %d %v\n%s", p.status, p.location, p.body)
	}
}

// signIn opens an authorization URL and signs Ada in on the hosted page.
func (d *device) signIn(t *testing.T, authURL string) page {
	t.Helper()
	p := d.get(t, authURL)
	d.signInPage(t, p)
	return d.submit(t, p, url.Values{"email": {"ada@journey.test"}, "password": {journeyPassword}})
}
