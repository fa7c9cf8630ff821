package app_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
	"github.com/abacusbilling/abacus/internal/enduser"
	"github.com/abacusbilling/abacus/internal/identity/totp"
)

// mailbox is an end-user Mailer that keeps what committed.
type mailbox struct {
	mu   sync.Mutex
	mail []enduser.Mail
}

func (m *mailbox) Send(_ context.Context, tx *db.Tx, mail enduser.Mail) error {
	tx.AfterCommit(func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		m.mail = append(m.mail, mail)
	})
	return nil
}

// last returns the data of the newest mail of template to, failing when
// there is none.
func (m *mailbox) last(t *testing.T, template, to string) map[string]any {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := len(m.mail) - 1; i >= 0; i-- {
		if m.mail[i].Template == template && m.mail[i].To == to {
			return m.mail[i].Data
		}
	}
	t.Fatalf("no %s mail to %s", template, to)
	return nil
}

func (m *mailbox) count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.mail)
}

func getPage(t *testing.T, link string) string {
	t.Helper()
	res, err := http.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 || res.Header.Get("Content-Security-Policy") == "" {
		t.Fatalf("GET %s: %d %s", link, res.StatusCode, b)
	}
	return string(b)
}

func linkToken(t *testing.T, data map[string]any) string {
	t.Helper()
	u, err := url.Parse(data["link"].(string))
	if err != nil {
		t.Fatal(err)
	}
	return u.Query().Get("token")
}

// endUsers is a test's end-user side of one tenant: the app and the
// headers its front-end sends.
type endUsers struct {
	a        *testApp
	clientID string
	mail     *mailbox
}

const browserUA = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"

func newEndUsers(t *testing.T, a *testApp, staffKey string) *endUsers {
	t.Helper()
	mb := &mailbox{}
	a.EndUsers().SetMailer(mb)
	r := a.do("POST", "/api/v1/apps", staffKey, map[string]any{"name": "Web", "type": "public", "redirect_uris": []string{"https://app.test/cb"}})
	if r.status != http.StatusCreated {
		t.Fatalf("create app: %d %s", r.status, r.body)
	}
	app := r.json(t)
	if app["client_secret"] != nil || !strings.HasPrefix(app["client_id"].(string), "cid_") {
		t.Fatalf("public app = %v", app)
	}
	return &endUsers{a: a, clientID: app["client_id"].(string), mail: mb}
}

// call sends a public end-user request with the app's client id (and the
// end user's access token when given).
func (e *endUsers) call(method, path, token string, body any) response {
	e.a.t.Helper()
	return e.a.do(method, path, token, body, enduser.ClientHeader, e.clientID, "User-Agent", browserUA)
}

func (e *endUsers) must(t *testing.T, status int, method, path, token string, body any) map[string]any {
	t.Helper()
	r := e.call(method, path, token, body)
	if r.status != status {
		t.Fatalf("%s %s: %d %s, want %d", method, path, r.status, r.body, status)
	}
	if len(r.body) == 0 {
		return nil
	}
	return r.json(t)
}

// TestEndUserJourneyOverHTTP drives the end-user flows a tenant's
// front-end uses, on both engines: sign-up, e-mail verification, sign-in,
// refresh with reuse detection, devices, password reset, magic link and
// code, TOTP MFA, sign-out everywhere; and staff managing the user.
func TestEndUserJourneyOverHTTP(t *testing.T) {
	t.Parallel()
	for _, engine := range dbtest.Engines {
		t.Run(string(engine), func(t *testing.T) {
			t.Parallel()
			a := start(t, engine, nil)
			eu := newEndUsers(t, a, a.key)
			pw := "correct horse battery staple"
			up := eu.must(t, 201, "POST", "/api/v1/end-user/sign-up", "", map[string]any{"email": "Ada@Example.com", "password": pw, "name": "Ada"})
			user := up["user"].(map[string]any)
			if up["access_token"] == "" || up["refresh_token"] == "" || up["verification_sent"] != true || user["email_verified"] != false {
				t.Fatalf("sign-up = %v", up)
			}
			id := user["id"].(string)
			// The link opens Abacus's hosted page: a GET shows a form, the form's POST verifies.
			link := eu.mail.last(t, enduser.MailVerifyEmail, "ada@example.com")["link"].(string)
			for range 2 {
				page := getPage(t, link)
				if !strings.Contains(page, `<form method="post"`) {
					t.Fatalf("verification page = %s", page)
				}
			}
			form, _ := http.PostForm(strings.Split(link, "?")[0], url.Values{"token": {linkToken(t, map[string]any{"link": link})}})
			if form.StatusCode != 200 {
				t.Fatalf("submitting the verification page: %d", form.StatusCode)
			}
			form.Body.Close()
			if me := eu.must(t, 200, "GET", "/api/v1/end-user/me", up["access_token"].(string), nil); me["email_verified"] != true || me["id"] != id {
				t.Fatalf("me after verification = %v", me)
			}
			// The staff API sees the user; the end user's token is no staff credential.
			if got := a.do("GET", "/api/v1/end-users/"+id, a.key, nil).json(t); got["email"] != "ada@example.com" {
				t.Fatalf("staff view = %v", got)
			}
			if r := a.do("GET", "/api/v1/end-users", up["access_token"].(string), nil); r.status != http.StatusForbidden {
				t.Fatalf("end-user token on a staff route: %d %s", r.status, r.body)
			}

			// Sign-in, wrong password, refresh rotation and reuse.
			if r := eu.call("POST", "/api/v1/end-user/sign-in", "", map[string]any{"email": "ada@example.com", "password": "wrong password 1"}); r.status != 401 || problemCode(r.body) != "invalid_credentials" {
				t.Fatalf("wrong password: %d %s", r.status, r.body)
			}
			in := eu.must(t, 200, "POST", "/api/v1/end-user/sign-in", "", map[string]any{"email": "ada@example.com", "password": pw, "scopes": []string{"openid"}})
			if in["id_token"] == "" {
				t.Fatalf("sign-in with openid = %v", in)
			}
			// A key rotation keeps tokens signed before it valid.
			if keys := a.do("POST", "/api/v1/settings/end-users/keys/rotate", a.key, nil).json(t)["keys"].([]any); len(keys) != 4 {
				t.Fatalf("keys after rotation = %v", keys)
			}
			eu.must(t, 200, "GET", "/api/v1/end-user/me", in["access_token"].(string), nil)
			next := eu.must(t, 200, "POST", "/api/v1/end-user/token/refresh", "", map[string]any{"refresh_token": in["refresh_token"]})
			if r := eu.call("POST", "/api/v1/end-user/token/refresh", "", map[string]any{"refresh_token": in["refresh_token"]}); problemCode(r.body) != "refresh_token_reused" {
				t.Fatalf("reuse: %d %s", r.status, r.body)
			}
			if r := eu.call("GET", "/api/v1/end-user/me", next["access_token"].(string), nil); r.status != 401 || problemCode(r.body) != "token_revoked" {
				t.Fatalf("token of the revoked family: %d %s", r.status, r.body)
			}

			// Devices: the sign-up session is listed as Firefox on Linux and can be revoked.
			tok := up["access_token"].(string)
			list := eu.must(t, 200, "GET", "/api/v1/end-user/me/sessions", tok, nil)["data"].([]any)
			if len(list) != 1 || list[0].(map[string]any)["device_name"] != "Firefox on Linux" || list[0].(map[string]any)["current"] != true {
				t.Fatalf("my sessions = %v", list)
			}
			staffList := a.do("GET", "/api/v1/end-users/"+id+"/sessions", a.key, nil).json(t)["data"].([]any)
			if len(staffList) != 1 {
				t.Fatalf("staff sees %d sessions", len(staffList))
			}

			// Forgot and reset: the same answer for an unknown address, and the reset signs every session out.
			sent := eu.mail.count()
			eu.must(t, 202, "POST", "/api/v1/end-user/password/forgot", "", map[string]any{"email": "nobody@example.com"})
			if eu.mail.count() != sent {
				t.Fatal("a reset mail went to an unknown address")
			}
			eu.must(t, 202, "POST", "/api/v1/end-user/password/forgot", "", map[string]any{"email": "ada@example.com"})
			reset := eu.mail.last(t, enduser.MailResetPassword, "ada@example.com")
			pw = "a brand new passphrase 9"
			eu.must(t, 200, "POST", "/api/v1/end-user/password/reset", "", map[string]any{"token": linkToken(t, reset), "password": pw})
			if r := eu.call("GET", "/api/v1/end-user/me", tok, nil); r.status != 401 {
				t.Fatalf("session after a reset: %d %s", r.status, r.body)
			}

			// Magic link and one-time code (the link opens the tenant's app).
			if r := a.do("PUT", "/api/v1/settings/end-users", a.key, map[string]any{"signup": "open", "app_url": "https://app.test"}); r.status != 200 {
				t.Fatalf("settings: %d %s", r.status, r.body)
			}
			eu.must(t, 202, "POST", "/api/v1/end-user/magic-link", "", map[string]any{"email": "ada@example.com"})
			magic := eu.mail.last(t, enduser.MailMagicLink, "ada@example.com")
			code := magic["code"].(string)
			eu.must(t, 200, "POST", "/api/v1/end-user/magic-link/sign-in", "", map[string]any{"token": linkToken(t, magic)})
			if r := eu.call("POST", "/api/v1/end-user/code/sign-in", "", map[string]any{"email": "ada@example.com", "code": code}); r.status != 400 || problemCode(r.body) != "code_invalid" {
				t.Fatalf("the code mailed with a magic link already used: %d %s", r.status, r.body)
			}
			eu.must(t, 202, "POST", "/api/v1/end-user/magic-link", "", map[string]any{"email": "ada@example.com"})
			code = eu.mail.last(t, enduser.MailMagicLink, "ada@example.com")["code"].(string)
			byCode := eu.must(t, 200, "POST", "/api/v1/end-user/code/sign-in", "", map[string]any{"email": "ada@example.com", "code": code})
			tok = byCode["access_token"].(string)

			// TOTP: enrol, confirm, then sign-in needs the second step.
			enr := eu.must(t, 200, "POST", "/api/v1/end-user/me/mfa/totp/enroll", tok, nil)
			secret := enr["secret"].(string)
			now, _ := totp.Default.Code(secret, time.Now())
			codes := eu.must(t, 200, "POST", "/api/v1/end-user/me/mfa/totp/confirm", tok, map[string]any{"code": now})["recovery_codes"].([]any)
			if len(codes) != 10 {
				t.Fatalf("recovery codes = %v", codes)
			}
			step := eu.must(t, 200, "POST", "/api/v1/end-user/sign-in", "", map[string]any{"email": "ada@example.com", "password": pw})
			if step["mfa_required"] != true || step["access_token"] != nil {
				t.Fatalf("sign-in with MFA = %v", step)
			}
			if r := eu.call("POST", "/api/v1/end-user/sign-in/mfa", "", map[string]any{"mfa_token": step["mfa_token"], "code": "000000"}); problemCode(r.body) != "invalid_mfa_code" {
				t.Fatalf("wrong MFA code: %d %s", r.status, r.body)
			}
			done := eu.must(t, 200, "POST", "/api/v1/end-user/sign-in/mfa", "", map[string]any{"mfa_token": step["mfa_token"], "code": codes[0]})
			eu.must(t, 204, "POST", "/api/v1/end-user/me/mfa/totp/disable", done["access_token"].(string), map[string]any{"password": pw})

			// Sign out everywhere; then staff disables, enables and deletes the user.
			out := eu.must(t, 200, "POST", "/api/v1/end-user/sign-out-everywhere", done["access_token"].(string), nil)
			if out["revoked"].(float64) < 2 {
				t.Fatalf("sign out everywhere = %v", out)
			}
			if r := a.do("PATCH", "/api/v1/end-users/"+id, a.key, map[string]any{"status": "disabled"}); r.status != 200 {
				t.Fatalf("disable: %d %s", r.status, r.body)
			}
			if r := eu.call("POST", "/api/v1/end-user/sign-in", "", map[string]any{"email": "ada@example.com", "password": pw}); problemCode(r.body) != "end_user_disabled" {
				t.Fatalf("disabled sign-in: %d %s", r.status, r.body)
			}
			a.do("PATCH", "/api/v1/end-users/"+id, a.key, map[string]any{"status": "active"})
			exp := a.do("GET", "/api/v1/end-users/"+id+"/export", a.key, nil).json(t)
			if len(exp["sessions"].([]any)) < 4 {
				t.Fatalf("export = %v", exp)
			}
			if r := a.do("DELETE", "/api/v1/end-users/"+id, a.key, nil); r.status != 204 {
				t.Fatalf("delete: %d %s", r.status, r.body)
			}
			if r := a.do("GET", "/api/v1/end-users/"+id, a.key, nil); r.status != 404 {
				t.Fatalf("deleted user: %d %s", r.status, r.body)
			}
			// Staff actions on the end user are in the audit log, by the key; the
			// end user's own (sign-out everywhere) are not.
			audit := a.do("GET", "/api/v1/audit-events?target_id="+id, a.key, nil).json(t)["data"].([]any)
			var actions []string
			for _, e := range audit {
				ev := e.(map[string]any)
				if ev["actor_type"] != "api_key" {
					t.Errorf("audit event %v: actor %v, want the API key", ev["action"], ev["actor_type"])
				}
				actions = append(actions, ev["action"].(string))
			}
			if want := "end_user.deleted end_user.enabled end_user.disabled"; strings.Join(actions, " ") != want {
				t.Errorf("audit log of the end user = %v, want %s", actions, want)
			}
			if r := eu.call("POST", "/api/v1/end-user/sign-up", "", map[string]any{"email": "ada@example.com", "password": pw}); r.status != 201 {
				t.Fatalf("the erased address can sign up again: %d %s", r.status, r.body)
			}
		})
	}
}

// TestEndUserRoutesAreTenantIsolated: tenant B's staff (JWT and API key)
// and tenant B's end users get from tenant A's end-user objects exactly
// what made-up ids get, and B's lists never show them.
func TestEndUserRoutesAreTenantIsolated(t *testing.T) {
	t.Parallel()
	for _, engine := range dbtest.Engines {
		t.Run(string(engine), func(t *testing.T) {
			t.Parallel()
			a := start(t, engine, nil)
			pw := "quite a long passphrase 77"
			euA := newEndUsers(t, a, a.key)
			signA := euA.must(t, 201, "POST", "/api/v1/end-user/sign-up", "", map[string]any{"email": "ada@a.test", "password": pw})
			userA := signA["user"].(map[string]any)["id"].(string)
			sessA := signA["session_id"].(string)
			appA := a.do("GET", "/api/v1/apps", a.key, nil).json(t)["data"].([]any)[0].(map[string]any)["id"].(string)
			idsA := []string{userA, sessA, appA}

			b := a.do("POST", "/api/v1/auth/signup", "", map[string]any{"email": "owner@b.test", "password": pw, "organization": "B"})
			if b.status != 201 {
				t.Fatalf("signup B: %d %s", b.status, b.body)
			}
			jwtB := a.do("POST", "/api/v1/auth/login", "", map[string]any{"email": "owner@b.test", "password": pw}).json(t)["access_token"].(string)
			keyB := a.do("POST", "/api/v1/api-keys", jwtB, map[string]any{"name": "b-admin", "scopes": []string{"admin"}}).json(t)["key"].(string)
			appB := a.do("POST", "/api/v1/apps", keyB, map[string]any{"name": "B web", "type": "public"}).json(t)
			euB := &endUsers{a: a, clientID: appB["client_id"].(string)}
			signB := euB.must(t, 201, "POST", "/api/v1/end-user/sign-up", "", map[string]any{"email": "bob@b.test", "password": pw})
			tokB := signB["access_token"].(string)

			checked := 0
			for _, r := range a.HTTP.Routes() {
				if !strings.HasPrefix(r.Path, "/api/v1/end-user") && !strings.HasPrefix(r.Path, "/api/v1/apps") && !strings.HasPrefix(r.Path, "/api/v1/settings/end-users") {
					continue
				}
				for _, cred := range []string{jwtB, keyB, tokB} {
					if !strings.Contains(r.Path, "{") {
						if r.Method == "GET" {
							var res response
							if isStream(r.Path) { // endless: read two seconds of it
								res = a.readStream(r.Path, cred, enduser.ClientHeader, euB.clientID)
							} else {
								res = euB.call("GET", r.Path, cred, nil)
							}
							for _, id := range idsA {
								if strings.Contains(string(res.body), id) {
									t.Errorf("GET %s as tenant B shows A's %s", r.Path, id)
								}
							}
						}
						continue
					}
					for _, id := range idsA {
						fake := id[:strings.IndexByte(id, '_')+1] + strings.Repeat("0", 26)
						var body any
						if r.Method != "GET" && r.Method != "DELETE" {
							body = map[string]any{}
						}
						got := euB.call(r.Method, fillPath(r.Path, id), cred, body)
						want := euB.call(r.Method, fillPath(r.Path, fake), cred, body)
						if got.status/100 == 2 || got.status != want.status || problemCode(got.body) != problemCode(want.body) {
							t.Errorf("%s %s with A's %s as tenant B: %d %s; a made-up id gets %d %s",
								r.Method, r.Path, id, got.status, problemCode(got.body), want.status, problemCode(want.body))
						}
						checked++
					}
				}
			}
			if checked < 20 {
				t.Fatalf("checked only %d cross-tenant calls", checked)
			}
			// A's refresh token, e-mailed tokens and session are useless with B's app.
			if r := euB.call("POST", "/api/v1/end-user/token/refresh", "", map[string]any{"refresh_token": signA["refresh_token"]}); problemCode(r.body) != "refresh_token_invalid" {
				t.Fatalf("A's refresh token at B: %d %s", r.status, r.body)
			}
			verify := euA.mail.last(t, enduser.MailVerifyEmail, "ada@a.test")
			if r := euB.call("POST", "/api/v1/end-user/verify-email", "", map[string]any{"token": linkToken(t, verify)}); problemCode(r.body) != "token_invalid" {
				t.Fatalf("A's verification link at B: %d %s", r.status, r.body)
			}
			// A's user still works.
			if r := euA.call("GET", "/api/v1/end-user/me", signA["access_token"].(string), nil); r.status != 200 {
				t.Fatalf("A's user after B's attempts: %d %s", r.status, r.body)
			}
			t.Logf("%d cross-tenant calls", checked)
		})
	}
}

// exerciseEndUserEvents provokes every end-user event through the API.
func exerciseEndUserEvents(t *testing.T, a *testApp) {
	t.Helper()
	eu := newEndUsers(t, a, a.key)
	pw := "correct horse battery staple"
	up := eu.must(t, 201, "POST", "/api/v1/end-user/sign-up", "", map[string]any{"email": "events@example.com", "password": pw})
	id := up["user"].(map[string]any)["id"].(string)
	eu.call("POST", "/api/v1/end-user/sign-in", "", map[string]any{"email": "events@example.com", "password": "wrong password 1"})
	tok := up["access_token"].(string)
	secret := eu.must(t, 200, "POST", "/api/v1/end-user/me/mfa/totp/enroll", tok, nil)["secret"].(string)
	code, _ := totp.Default.Code(secret, time.Now())
	eu.must(t, 200, "POST", "/api/v1/end-user/me/mfa/totp/confirm", tok, map[string]any{"code": code})
	eu.must(t, 204, "POST", "/api/v1/end-user/me/mfa/totp/disable", tok, map[string]any{"password": pw})
	eu.must(t, 204, "POST", "/api/v1/end-user/password/change", tok, map[string]any{"current_password": pw, "new_password": "another long passphrase 5"})
	eu.must(t, 204, "POST", "/api/v1/end-user/sign-out", tok, nil)
	for _, st := range []string{"disabled", "active"} {
		if r := a.do("PATCH", "/api/v1/end-users/"+id, a.key, map[string]any{"status": st}); r.status != 200 {
			t.Fatalf("%s: %d %s", st, r.status, r.body)
		}
	}
	if r := a.do("DELETE", "/api/v1/end-users/"+id, a.key, nil); r.status != 204 {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
}
