package app_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
	"github.com/abacusbilling/abacus/internal/enduser"
)

const orgTestPassword = "a long enough passphrase 42"

// orgWorld is a whole Abacus with an app for end users and a mailer that
// keeps what organizations mail.
type orgWorld struct {
	*testApp
	eu     *enduser.Service
	tenant string
	app    enduser.App

	mu    sync.Mutex
	mails []enduser.Mail
}

func newOrgWorld(t *testing.T, engine db.Engine) *orgWorld {
	t.Helper()
	w := &orgWorld{testApp: start(t, engine, nil)}
	w.eu = w.EndUsers()
	w.tenant = w.tenantOf(t, w.key)
	w.setUp(t, "web")
	return w
}

// setUp keeps what organizations mail and registers an app for sign-ins.
func (w *orgWorld) setUp(t *testing.T, app string) {
	t.Helper()
	w.Organizations().SetMailer(enduser.MailerFunc(func(_ context.Context, _ *db.Tx, m enduser.Mail) error {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.mails = append(w.mails, m)
		return nil
	}))
	var err error
	w.app, _, err = w.eu.CreateApp(w.ctx(), enduser.NewApp{Name: app, Type: enduser.AppPublic, RedirectURIs: []string{"https://" + app + ".test/cb"}})
	if err != nil {
		t.Fatal(err)
	}
}

func (w *orgWorld) ctx() context.Context {
	return enduser.SystemContext(context.Background(), w.tenant)
}

func (w *orgWorld) user(t *testing.T, email string, verified bool) enduser.User {
	t.Helper()
	u, err := w.eu.CreateUser(w.ctx(), enduser.NewUser{Email: email, Password: orgTestPassword, EmailVerified: verified})
	if err != nil {
		t.Fatalf("creating %s: %v", email, err)
	}
	return u
}

// signIn signs email in on a device and returns an access token.
func (w *orgWorld) signIn(email, device string) (string, enduser.Session, error) {
	sess, _, err := w.eu.SignIn(context.Background(), w.tenant, email, orgTestPassword,
		enduser.Device{UserAgent: device, IP: "127.0.0.1"}, w.app.ID)
	if err != nil {
		return "", sess, err
	}
	tok, err := w.eu.IssueTokens(context.Background(), sess, w.app, []string{"openid"}, "")
	return tok.AccessToken, sess, err
}

func (w *orgWorld) mustSignIn(t *testing.T, email string) string {
	t.Helper()
	tok, _, err := w.signIn(email, "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0")
	if err != nil {
		t.Fatalf("sign-in %s: %v", email, err)
	}
	return tok
}

// call sends a request and fails unless it answers want.
func (w *orgWorld) call(t *testing.T, want int, method, path, cred string, body any) map[string]any {
	t.Helper()
	r := w.do(method, path, cred, body)
	if r.status != want {
		t.Fatalf("%s %s: %d, want %d: %s", method, path, r.status, want, r.body)
	}
	if len(r.body) == 0 {
		return nil
	}
	return r.json(t)
}

// invitationToken returns the token of the last invitation mailed to email.
func (w *orgWorld) invitationToken(t *testing.T, email string) string {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	for i := len(w.mails) - 1; i >= 0; i-- {
		if m := w.mails[i]; m.To == email && m.Template == "end_user.invitation" {
			u, err := url.Parse(m.Data["link"].(string))
			if err != nil {
				t.Fatal(err)
			}
			return u.Query().Get("token")
		}
	}
	t.Fatalf("no invitation mailed to %s", email)
	return ""
}

// TestOrganizations drives organizations over HTTP on both engines: an
// end user's organization is a catalog customer; invitations reach a new
// and an existing user; the last owner cannot leave or be removed;
// joining by a verified domain; ownership transfer; tokens name the
// selected organization.
func TestOrganizations(t *testing.T) {
	t.Parallel()
	for _, engine := range dbtest.Engines {
		t.Run(string(engine), func(t *testing.T) {
			t.Parallel()
			w := newOrgWorld(t, engine)
			alice := w.user(t, "alice@acme.test", true)
			carol := w.user(t, "carol@other.test", true)
			w.user(t, "dave@acme.test", true)
			w.user(t, "eve@acme.test", false)
			tokA := w.mustSignIn(t, "alice@acme.test")

			// Creating an organization makes its billed customer.
			o := w.call(t, 201, "POST", "/api/v1/end-user/organizations", tokA, map[string]any{"name": "Acme", "currency": "EUR"})
			id, cus := o["id"].(string), o["customer_id"].(string)
			if o["role"] != "owner" || !strings.HasPrefix(cus, "cus_") {
				t.Fatalf("created: %v", o)
			}
			c := w.call(t, 200, "GET", "/api/v1/customers/"+cus, w.key, nil)
			if c["name"] != "Acme" || c["external_id"] != id || c["currency"] != "EUR" || c["email"] != "alice@acme.test" {
				t.Fatalf("the organization's customer: %v", c)
			}
			if got := w.call(t, 200, "GET", "/api/v1/organizations/"+id, w.key, nil); got["customer_id"] != cus {
				t.Fatalf("staff view: %v", got)
			}

			// Invitations: a new user accepts with a password, an existing one signed in.
			base := "/api/v1/end-user/organizations/" + id
			w.call(t, 201, "POST", base+"/invitations", tokA, map[string]any{"email": "bob@new.test", "role": "billing_admin"})
			acc := w.call(t, 200, "POST", "/api/v1/end-user/organization-invitations/accept", "",
				map[string]any{"token": w.invitationToken(t, "bob@new.test"), "password": orgTestPassword, "name": "Bob"})
			if acc["new_user"] != true || acc["membership"].(map[string]any)["role"] != "billing_admin" {
				t.Fatalf("accepted: %v", acc)
			}
			reuse := w.do("POST", "/api/v1/end-user/organization-invitations/accept", "", map[string]any{"token": w.invitationToken(t, "bob@new.test"), "password": orgTestPassword})
			expectProblem(t, reuse, 404, "invitation_invalid")
			w.call(t, 201, "POST", base+"/invitations", tokA, map[string]any{"email": "carol@other.test"})
			carolTok := w.mustSignIn(t, "carol@other.test")
			bobTok := w.mustSignIn(t, "bob@new.test")
			expectProblem(t, w.do("POST", "/api/v1/end-user/organization-invitations/accept", bobTok,
				map[string]any{"token": w.invitationToken(t, "carol@other.test")}), 403, "invitation_email_mismatch")
			w.call(t, 200, "POST", "/api/v1/end-user/organization-invitations/accept", carolTok,
				map[string]any{"token": w.invitationToken(t, "carol@other.test")})
			// A member cannot invite; a billing admin can.
			expectProblem(t, w.do("POST", base+"/invitations", carolTok, map[string]any{"email": "x@y.test"}), 403, "organization_role_required")
			w.call(t, 201, "POST", base+"/invitations", bobTok, map[string]any{"email": "x@y.test"})

			// The last owner cannot leave nor be removed.
			expectProblem(t, w.do("POST", base+"/leave", tokA, nil), 409, "last_owner")
			expectProblem(t, w.do("DELETE", "/api/v1/organizations/"+id+"/members/"+alice.ID, w.key, nil), 409, "last_owner")
			expectProblem(t, w.do("PATCH", base+"/members/"+alice.ID, tokA, map[string]any{"role": "member"}), 409, "last_owner")
			w.call(t, 204, "POST", base+"/leave", carolTok, nil)

			// Joining by domain: verified addresses only.
			w.call(t, 200, "PATCH", base, tokA, map[string]any{"domain": "acme.test"})
			eveTok := w.mustSignIn(t, "eve@acme.test")
			expectProblem(t, w.do("POST", base+"/join", eveTok, nil), 403, "domain_not_allowed")
			daveTok := w.mustSignIn(t, "dave@acme.test")
			if j := w.call(t, 200, "GET", "/api/v1/end-user/joinable-organizations", daveTok, nil); len(j["data"].([]any)) != 1 {
				t.Fatalf("joinable: %v", j)
			}
			w.call(t, 200, "POST", base+"/join", daveTok, nil)
			expectProblem(t, w.do("POST", base+"/join", carolTok, nil), 403, "domain_not_allowed")

			// Transfer: the new owner may now leave-proof the old one.
			users := w.call(t, 200, "GET", base+"/members", tokA, nil)["data"].([]any)
			if len(users) != 3 {
				t.Fatalf("members: %v", users)
			}
			var bobID string
			for _, m := range users {
				if mm := m.(map[string]any); mm["email"] == "bob@new.test" {
					bobID = mm["user_id"].(string)
				}
			}
			w.call(t, 204, "POST", base+"/transfer", tokA, map[string]any{"user_id": bobID})
			w.call(t, 204, "POST", base+"/leave", tokA, nil)
			expectProblem(t, w.do("POST", base+"/leave", bobTok, nil), 409, "last_owner")

			// Tokens name the selected organization.
			other := w.call(t, 201, "POST", "/api/v1/end-user/organizations", carolTok, map[string]any{"name": "Carol's"})
			w.call(t, 201, "POST", "/api/v1/organizations/"+other["id"].(string)+"/members", w.key, map[string]any{"user_id": bobID, "role": "member"})
			w.call(t, 200, "POST", "/api/v1/end-user/organizations/"+other["id"].(string)+"/select", bobTok, nil)
			claims, err := w.eu.VerifyAccessToken(context.Background(), w.tenant, w.mustSignIn(t, "bob@new.test"))
			if err != nil || claims.Extra["org"] != other["id"] || claims.Extra["org_role"] != "member" {
				t.Fatalf("claims after select: %v %v", claims.Extra, err)
			}
			w.call(t, 200, "POST", base+"/select", bobTok, nil)
			claims, _ = w.eu.VerifyAccessToken(context.Background(), w.tenant, w.mustSignIn(t, "bob@new.test"))
			if claims.Extra["org"] != id || claims.Extra["org_role"] != "owner" {
				t.Fatalf("claims after the second select: %v", claims.Extra)
			}
			_ = carol
		})
	}
}

// TestPersonalOrganizationOnSignUp: with the tenant's setting, a new end
// user gets an organization of their own, with its customer.
func TestPersonalOrganizationOnSignUp(t *testing.T) {
	t.Parallel()
	w := newOrgWorld(t, db.SQLite)
	set, err := w.eu.Settings(w.ctx())
	if err != nil {
		t.Fatal(err)
	}
	w.user(t, "before@b2c.test", true)
	set.PersonalOrganization = true
	if _, err := w.eu.PutSettings(w.ctx(), set); err != nil {
		t.Fatal(err)
	}
	u := w.user(t, "viewer@b2c.test", true)
	ms := w.call(t, 200, "GET", "/api/v1/end-user/organizations", w.mustSignIn(t, "viewer@b2c.test"), nil)["data"].([]any)
	if len(ms) != 1 || ms[0].(map[string]any)["personal"] != true || ms[0].(map[string]any)["role"] != "owner" {
		t.Fatalf("personal organization of %s: %v", u.ID, ms)
	}
	if n := len(w.call(t, 200, "GET", "/api/v1/end-user/organizations", w.mustSignIn(t, "before@b2c.test"), nil)["data"].([]any)); n != 0 {
		t.Fatalf("a user made before the setting has %d organizations", n)
	}
}

// subscribeMaxDevices puts the organization's customer on a plan whose
// max_devices feature has value.
func (w *orgWorld) subscribeMaxDevices(t *testing.T, key, customer string, value any) {
	t.Helper()
	if r := w.do("GET", "/api/v1/features/max_devices", w.key, nil); r.status == 404 {
		w.post("/api/v1/features", map[string]any{"key": "max_devices", "name": "Max devices", "kind": "static", "value": 1})
	}
	pid := w.post("/api/v1/plans", map[string]any{"key": key, "name": key})["id"].(string)
	v := w.post("/api/v1/plans/"+pid+"/versions", map[string]any{"currency": "USD", "billing_interval": map[string]any{"unit": "month"},
		"entitlements": []any{map[string]any{"feature": "max_devices", "value": value}},
		"charges":      []any{map[string]any{"key": "base", "kind": "fee", "fee": map[string]any{"amount": "5.00"}}}})
	w.post(fmt.Sprintf("/api/v1/plans/%s/versions/%v/publish", pid, v["version"]), nil)
	w.post("/api/v1/subscriptions", map[string]any{"customer_id": customer, "plan_id": pid})
}

// TestMaxDevices: a plan with max_devices 2 refuses a third device
// (refuse) or signs the least recently used one out (evict_lru); the
// devices route answers how many are in use.
func TestMaxDevices(t *testing.T) {
	t.Parallel()
	for _, engine := range dbtest.Engines {
		t.Run(string(engine), func(t *testing.T) {
			t.Parallel()
			w := newOrgWorld(t, engine)
			w.user(t, "ann@family.test", true)
			w.user(t, "ben@family.test", true)
			w.user(t, "cid@evict.test", true)
			annTok := w.mustSignIn(t, "ann@family.test") // device 1, before any plan
			fam := w.call(t, 201, "POST", "/api/v1/end-user/organizations", annTok, map[string]any{"name": "Family"})
			w.call(t, 201, "POST", "/api/v1/end-user/organizations/"+fam["id"].(string)+"/invitations", annTok, map[string]any{"email": "ben@family.test"})
			w.call(t, 200, "POST", "/api/v1/end-user/organization-invitations/accept", w.mustSignIn(t, "ben@family.test"), // device 2
				map[string]any{"token": w.invitationToken(t, "ben@family.test")})
			w.subscribeMaxDevices(t, "family", fam["customer_id"].(string), 2)

			_, _, err := w.signIn("ann@family.test", "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) Safari/604.1")
			if e, ok := abacus.AsError(err); !ok || e.Code != "device_limit_reached" || e.Kind.Status() != 409 {
				t.Fatalf("third device of the family: %v", err)
			}
			dev := w.call(t, 200, "GET", "/api/v1/organizations/"+fam["id"].(string)+"/devices", w.key, nil)
			if dev["in_use"] != 2.0 || dev["limited"] != true || dev["policy"].(map[string]any)["limit"] != 2.0 {
				t.Fatalf("devices: %v", dev)
			}

			// The entitlement check answers the devices in use, live.
			ent := "/api/v1/customers/" + fam["customer_id"].(string) + "/entitlements/max_devices"
			if e := w.call(t, 200, "GET", ent, w.key, nil); e["used"] != "2" || e["value"] != 2.0 || e["has_access"] != true {
				t.Fatalf("entitlement: %v", e)
			}
			// Analytics answers "how many devices has this customer connected" alike.
			an := w.call(t, 200, "GET", "/api/v1/analytics/customers/"+fam["customer_id"].(string), w.key, nil)
			if dv, _ := an["devices"].(map[string]any); dv == nil || dv["sessions"] != 2.0 || dv["connections"] != 0.0 || dv["total"] != 2.0 {
				t.Fatalf("analytics devices: %v", an)
			}
			annClaims, err := w.eu.VerifyAccessToken(context.Background(), w.tenant, annTok)
			if err != nil {
				t.Fatal(err)
			}
			if err := w.eu.RevokeSession(context.Background(), w.tenant, annClaims.SessionID); err != nil {
				t.Fatal(err)
			}
			if e := w.call(t, 200, "GET", ent, w.key, nil); e["used"] != "1" {
				t.Fatalf("entitlement after a sign-out: %v", e)
			}
			if _, _, err := w.signIn("ann@family.test", "Mozilla/5.0 (iPad) Safari/604.1"); err != nil {
				t.Fatalf("a freed device slot: %v", err)
			}

			cidTok, first, err := w.signIn("cid@evict.test", "Mozilla/5.0 (Windows NT 10.0) Chrome/140.0")
			if err != nil {
				t.Fatal(err)
			}
			solo := w.call(t, 201, "POST", "/api/v1/end-user/organizations", cidTok, map[string]any{"name": "Solo"})
			w.subscribeMaxDevices(t, "solo", solo["customer_id"].(string), map[string]any{"limit": 2, "on_limit": "evict_lru", "per": "user"})
			if _, _, err := w.signIn("cid@evict.test", "Mozilla/5.0 (Macintosh) Safari/605.1"); err != nil {
				t.Fatal(err)
			}
			if _, _, err := w.signIn("cid@evict.test", "Mozilla/5.0 (Linux; Android 15) Chrome/140.0"); err != nil {
				t.Fatalf("third device with evict_lru: %v", err)
			}
			if s, _ := w.eu.Session(context.Background(), w.tenant, first.ID); s.RevokedAt == nil || s.RevokedReason != enduser.ReasonEvicted {
				t.Fatalf("the oldest device is still signed in: %+v", s)
			}
			if r := w.do("GET", "/api/v1/end-user/organizations/"+solo["id"].(string)+"/devices", cidTok, nil); r.status != http.StatusUnauthorized {
				t.Fatalf("the evicted device's token still works: %d %s", r.status, r.body)
			}
		})
	}
}

// TestOrganizationsTenantIsolation: an end user of tenant B gets what a
// made-up id gets for every end-user organization route with A's ids.
func TestOrganizationsTenantIsolation(t *testing.T) {
	t.Parallel()
	w := newOrgWorld(t, db.SQLite)
	w.user(t, "owner@a.test", true)
	tokA := w.mustSignIn(t, "owner@a.test")
	o := w.call(t, 201, "POST", "/api/v1/end-user/organizations", tokA, map[string]any{"name": "A"})
	inv := w.call(t, 201, "POST", "/api/v1/end-user/organizations/"+o["id"].(string)+"/invitations", tokA, map[string]any{"email": "x@a.test"})
	tokenA := w.invitationToken(t, "x@a.test")

	// Tenant B, its app and end user (same e-mail: another person).
	jwtB := w.do("POST", "/api/v1/auth/signup", "", map[string]any{"email": "staff@b.test", "password": orgTestPassword, "organization": "B"})
	if jwtB.status != 201 {
		t.Fatalf("signup B: %d %s", jwtB.status, jwtB.body)
	}
	b := &orgWorld{testApp: w.testApp, eu: w.eu}
	login := w.call(t, 200, "POST", "/api/v1/auth/login", "", map[string]any{"email": "staff@b.test", "password": orgTestPassword})
	b.tenant = w.tenantOf(t, login["access_token"].(string))
	var err error
	if b.app, _, err = w.eu.CreateApp(b.ctx(), enduser.NewApp{Name: "b", Type: enduser.AppPublic, RedirectURIs: []string{"https://b.test/cb"}}); err != nil {
		t.Fatal(err)
	}
	b.user(t, "owner@a.test", true)
	tokB := b.mustSignIn(t, "owner@a.test")
	w.call(t, 201, "POST", "/api/v1/end-user/organizations", tokB, map[string]any{"name": "B's"})

	ids := []string{o["id"].(string), inv["id"].(string)}
	checked := 0
	for _, r := range w.HTTP.Routes() {
		if !strings.HasPrefix(r.Path, "/api/v1/end-user/organizations/{id}") {
			continue
		}
		for _, id := range ids {
			fake := id[:strings.Index(id, "_")+1] + strings.Repeat("0", 26)
			var body any
			if r.Method != "GET" && r.Method != "DELETE" {
				body = map[string]any{}
			}
			got, want := w.do(r.Method, fillPath(r.Path, id), tokB, body), w.do(r.Method, fillPath(r.Path, fake), tokB, body)
			if got.status/100 == 2 || got.status != want.status || problemCode(got.body) != problemCode(want.body) {
				t.Errorf("%s %s with A's %s as B: %d %s; made-up: %d %s", r.Method, r.Path, id, got.status, got.body, want.status, want.body)
			}
			checked++
		}
	}
	if checked < 20 {
		t.Fatalf("only %d calls checked", checked)
	}
	for _, path := range []string{"/api/v1/end-user/organizations", "/api/v1/end-user/joinable-organizations"} {
		if r := w.do("GET", path, tokB, nil); strings.Contains(string(r.body), o["id"].(string)) {
			t.Errorf("GET %s as B shows A's organization", path)
		}
	}
	// A's invitation token is useless to B's signed-in user.
	expectProblem(t, w.do("POST", "/api/v1/end-user/organization-invitations/accept", tokB, map[string]any{"token": tokenA}), 404, "invitation_invalid")
	// End-user tokens are no staff credentials.
	expectProblem(t, w.do("GET", "/api/v1/organizations", tokA, nil), 403, "insufficient_scope")
}

// exerciseOrgEvents records every organization event (for
// TestRecordedEventsMatchTheServedCatalog).
func exerciseOrgEvents(t *testing.T, a *testApp) {
	t.Helper()
	w := &orgWorld{testApp: a, eu: a.EndUsers(), tenant: a.tenantOf(t, a.key)}
	w.setUp(t, "events")
	owner := w.user(t, "owner@events.test", true)
	w.user(t, "second@events.test", true)
	tok := w.mustSignIn(t, "owner@events.test")
	o := w.call(t, 201, "POST", "/api/v1/end-user/organizations", tok, map[string]any{"name": "Events"})
	base := "/api/v1/end-user/organizations/" + o["id"].(string)
	w.call(t, 200, "PATCH", base, tok, map[string]any{"name": "Events renamed"})
	w.call(t, 201, "POST", base+"/invitations", tok, map[string]any{"email": "second@events.test"})
	second := w.mustSignIn(t, "second@events.test")
	acc := w.call(t, 200, "POST", "/api/v1/end-user/organization-invitations/accept", second, map[string]any{"token": w.invitationToken(t, "second@events.test")})
	w.call(t, 200, "PATCH", base+"/members/"+acc["user_id"].(string), tok, map[string]any{"role": "billing_admin"})
	w.call(t, 204, "POST", base+"/transfer", tok, map[string]any{"user_id": acc["user_id"]})
	w.call(t, 204, "DELETE", "/api/v1/organizations/"+o["id"].(string)+"/members/"+owner.ID, a.key, nil)
	w.call(t, 200, "DELETE", "/api/v1/organizations/"+o["id"].(string), a.key, nil)
}
