package identity_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
	"github.com/abacusbilling/abacus/internal/httpapi"
	"github.com/abacusbilling/abacus/internal/identity"
)

// TestCredentialsMembersAndThrottling: API keys, user JWTs and client
// credentials all authenticate; members, invitations, the last owner;
// another tenant's objects are 404; failed sign-ins get 429.
func TestCredentialsMembersAndThrottling(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d)
		pw := "correct horse battery staple 7"
		tenantA, owner := e.signup("owner@a.test", pw, "A")
		access := e.want(e.login("owner@a.test", pw), 200).str(t, "access_token")

		// API key made with a user JWT authenticates too.
		key := e.want(e.do("POST", "/api/v1/api-keys", access, map[string]any{"name": "ci", "scopes": []string{"read"}}), 201).str(t, "key")
		if me := e.want(e.do("GET", "/api/v1/me", key, nil), 200).obj(t); me["kind"] != "api_key" || me["tenant_id"] != tenantA {
			t.Fatalf("me with key: %v", me)
		}

		// OAuth client credentials: Basic and form; RFC 6749 errors.
		cr := e.want(e.do("POST", "/api/v1/oauth-clients", access, map[string]any{"name": "etl", "scopes": []string{"read", "ingest"}}), 201).obj(t)
		cid, csecret := cr["id"].(string), cr["client_secret"].(string)
		form := func(v url.Values, basic bool) res {
			req, _ := http.NewRequest("POST", e.url+"/oauth/token", strings.NewReader(v.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if basic {
				req.SetBasicAuth(cid, csecret)
			}
			return e.send(req)
		}
		tr := e.want(form(url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}}, true), 200).obj(t)
		if tr["token_type"] != "Bearer" || tr["scope"] != "read" {
			t.Fatalf("token: %v", tr)
		}
		cme := e.want(e.do("GET", "/api/v1/me", tr["access_token"].(string), nil), 200).obj(t)
		if cme["kind"] != "client" || cme["id"] != cid || len(cme["scopes"].([]any)) != 1 {
			t.Fatalf("client me: %v", cme)
		}
		e.want(form(url.Values{"grant_type": {"client_credentials"}, "client_id": {cid}, "client_secret": {csecret}}, false), 200)
		for _, c := range []struct {
			v      url.Values
			status int
			code   string
		}{
			{url.Values{"grant_type": {"client_credentials"}, "client_id": {cid}, "client_secret": {"cs_wrong"}}, 401, "invalid_client"},
			{url.Values{"grant_type": {"password"}, "client_id": {cid}, "client_secret": {csecret}}, 400, "unsupported_grant_type"},
			{url.Values{"grant_type": {"client_credentials"}, "client_id": {cid}, "client_secret": {csecret}, "scope": {"admin"}}, 400, "invalid_scope"},
		} {
			r := form(c.v, false)
			if r.status != c.status || r.obj(t)["error"] != c.code || r.obj(t)["error_description"] == "" {
				t.Fatalf("%v: %d %s", c.v, r.status, r.body)
			}
		}
		e.want(e.do("DELETE", "/api/v1/oauth-clients/"+cid, access, nil), 200)
		e.problem(e.do("GET", "/api/v1/me", tr["access_token"].(string), nil), 401, "token_revoked")

		// Invitation by e-mail → accept (new account) → member; roles and the last owner.
		inv := e.want(e.do("POST", "/api/v1/invitations", access, map[string]any{"email": "bill@a.test", "role": "billing"}), 201).obj(t)
		it := linkToken(t, e.mail.next(t))
		acc := e.want(e.do("POST", "/api/v1/invitations/accept", "", map[string]any{"token": it, "password": "finance person pass 9"}), 200).obj(t)
		if acc["tenant_id"] != tenantA || acc["role"] != "billing" || acc["user_created"] != true {
			t.Fatalf("accept: %v (invitation %v)", acc, inv)
		}
		e.problem(e.do("POST", "/api/v1/invitations/accept", "", map[string]any{"token": it}), 400, "email_token_used")
		bill := acc["user_id"].(string)
		billAccess := e.want(e.login("bill@a.test", "finance person pass 9"), 200).str(t, "access_token")
		e.problem(e.do("GET", "/api/v1/members", billAccess, nil), 403, "insufficient_scope")
		e.problem(e.do("PATCH", "/api/v1/members/"+owner, access, map[string]any{"role": "admin"}), 409, "last_owner")
		e.problem(e.do("DELETE", "/api/v1/members/"+owner, access, nil), 409, "last_owner")
		e.want(e.do("PATCH", "/api/v1/members/"+bill, access, map[string]any{"role": "viewer"}), 200)
		if me := e.want(e.do("GET", "/api/v1/me", billAccess, nil), 200).obj(t); me["role"] != "viewer" {
			t.Fatalf("role change not effective: %v", me)
		}
		e.want(e.do("DELETE", "/api/v1/members/"+bill, access, nil), 204)
		e.problem(e.do("GET", "/api/v1/me", billAccess, nil), 401, "token_revoked")

		// Tenant B cannot see or touch A's objects: 404, never 403.
		e.signup("owner@b.test", pw, "B")
		accessB := e.want(e.login("owner@b.test", pw), 200).str(t, "access_token")
		e.problem(e.do("GET", "/api/v1/oauth-clients/"+cid, accessB, nil), 404, "oauth_client_not_found")
		e.problem(e.do("DELETE", "/api/v1/members/"+owner, accessB, nil), 404, "member_not_found")
		e.problem(e.do("DELETE", "/api/v1/invitations/"+inv["id"].(string), accessB, nil), 404, "invitation_not_found")
		e.problem(e.do("POST", "/api/v1/auth/login", "", map[string]any{"email": "owner@a.test", "password": pw, "tenant_id": tenantA + "x"}), 404, "tenant_not_found")

		// Throttling: after the free failures, 429 with Retry-After, for the right password too.
		for i := 0; i < 5; i++ {
			e.problem(e.login("owner@b.test", "wrong wrong wrong"), 401, "invalid_credentials")
		}
		e.problem(e.login("owner@b.test", "wrong wrong wrong"), 401, "invalid_credentials")
		r := e.login("owner@b.test", pw)
		e.problem(r, 429, "too_many_attempts")
		if r.header.Get("Retry-After") == "" {
			t.Fatal("429 without Retry-After")
		}
	})
}

func TestSignupRateLimited(t *testing.T) {
	t.Parallel()
	e := newEnv(t, dbtest.Open(t, db.SQLite))
	for i := 0; i < 20; i++ {
		e.do("POST", "/api/v1/auth/password/forgot", "", map[string]any{"email": "x@y.test"})
	}
	r := e.do("POST", "/api/v1/auth/password/forgot", "", map[string]any{"email": "x@y.test"})
	e.problem(r, 429, "too_many_attempts")
}

// TestBillingRoleAreas is the role dimension of the permission table.
func TestBillingRoleAreas(t *testing.T) {
	t.Parallel()
	svc := identity.NewService(nil, abacus.SystemClock{}, nil)
	billing := &abacus.Principal{TenantID: "ten_1", Kind: "user", ID: "usr_1", Scopes: identity.RoleScopes(identity.RoleBilling)}
	admin := &abacus.Principal{TenantID: "ten_1", Kind: "user", ID: "usr_2", Scopes: identity.RoleScopes(identity.RoleAdmin)}
	for _, c := range []struct {
		path  string
		allow bool
	}{
		{"/api/v1/invoices/{id}", true},
		{"/api/v1/credit-notes", true},
		{"/api/v1/customers/{id}/credits", true},
		{"/api/v1/me", true},
		{"/api/v1/customers", false},
		{"/api/v1/customers/{id}", false},
		{"/api/v1/plans", false},
		{"/api/v1/members", false},
		{"/api/v1/no-such-area", false},
	} {
		err := svc.Authorize(context.Background(), billing, httpapi.Route{Method: "GET", Path: c.path, Scope: abacus.ScopeRead})
		if (err == nil) != c.allow {
			t.Errorf("billing on %s: err %v, want allowed=%v", c.path, err, c.allow)
		}
		if err != nil && abacus.ErrorKind(err) != abacus.KindForbidden {
			t.Errorf("%s: want forbidden, got %v", c.path, err)
		}
		if err := svc.Authorize(context.Background(), admin, httpapi.Route{Method: "GET", Path: c.path}); err != nil {
			t.Errorf("admin refused on %s: %v", c.path, err)
		}
	}
	for path, want := range map[string]identity.Area{
		"/api/v1/members": identity.AreaIdentity, "/api/v1/me/sessions/{id}": identity.AreaSelf,
		"/api/v1/customers/{id}/credits/{credit_id}": identity.AreaBilling, "/openapi.json": identity.AreaPlatform,
	} {
		if got, ok := identity.AreaOf(path); !ok || got != want {
			t.Errorf("AreaOf(%s) = %s, %v; want %s", path, got, ok, want)
		}
	}
}
