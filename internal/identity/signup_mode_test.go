package identity_test

import (
	"context"
	"testing"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
	"github.com/abacusbilling/abacus/internal/identity"
)

// invite creates a tenant with an admin key and invites email with role;
// it returns the tenant and the token from the invitation mail.
func (e *env) invite(email, role string) (tenant, tok string) {
	e.t.Helper()
	t, err := e.svc.CreateTenant(context.Background(), "Inviting Co")
	if err != nil {
		e.t.Fatal(err)
	}
	ctx := abacus.WithPrincipal(context.Background(), &abacus.Principal{Kind: "api_key", TenantID: t.ID, Scopes: []abacus.Scope{abacus.ScopeAdmin}})
	_, key, err := e.svc.CreateAPIKey(ctx, identity.NewKeyInput{Name: "admin", Scopes: []abacus.Scope{abacus.ScopeAdmin}})
	if err != nil {
		e.t.Fatal(err)
	}
	e.want(e.do("POST", "/api/v1/invitations", key, map[string]any{"email": email, "role": role}), 201)
	return t.ID, linkToken(e.t, e.mail.next(e.t))
}

func TestSignupModes(t *testing.T) {
	t.Parallel()
	const pw = "correct horse battery staple 7"
	signup := func(e *env, email, org, tok string) res {
		b := map[string]any{"email": email, "password": pw, "organization": org}
		if tok != "" {
			b["invitation_token"] = tok
		}
		return e.do("POST", "/api/v1/auth/signup", "", b)
	}
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		t.Run("open by default, and an invitation joins its organization", func(t *testing.T) {
			e := newEnv(t, d)
			tenant, tok := e.invite("joiner@mode.test", "member")
			e.problem(signup(e, "other@mode.test", "", tok), 400, "invitation_email_mismatch")
			r := e.want(signup(e, "joiner@mode.test", "", tok), 201).obj(t)
			if r["tenant"].(map[string]any)["id"] != tenant || r["role"] != "member" || r["user"].(map[string]any)["email_verified"] != true {
				t.Fatalf("sign-up by invitation: %v", r)
			}
			e.mail.none(t) // the invitation proved the address: no verification mail
			e.want(e.login("joiner@mode.test", pw), 200)
			e.want(signup(e, "founder@mode.test", "Founders", ""), 201)
		})
		t.Run("invite_only", func(t *testing.T) {
			e := newEnv(t, d, identity.WithSignupMode(identity.SignupInviteOnly))
			e.problem(signup(e, "walkin@mode.test", "Walk-in", ""), 403, "signup_invite_only")
			tenant, tok := e.invite("invited@mode.test", "viewer")
			r := e.want(signup(e, "invited@mode.test", "", tok), 201).obj(t)
			if r["tenant"].(map[string]any)["id"] != tenant || r["role"] != "viewer" {
				t.Fatalf("sign-up by invitation: %v", r)
			}
			e.problem(signup(e, "invited@mode.test", "", tok), 400, "email_token_used")
		})
		t.Run("invite_only refuses an invitation for an existing account", func(t *testing.T) {
			e := newEnv(t, d, identity.WithSignupMode(identity.SignupInviteOnly))
			_, tok := e.invite("joiner@mode.test", "member") // signed up in the first subtest
			e.problem(signup(e, "joiner@mode.test", "", tok), 409, "email_taken")
			// The token is still good for accepting as the existing account.
			e.want(e.do("POST", "/api/v1/invitations/accept", "", map[string]any{"token": tok}), 200)
		})
		t.Run("closed", func(t *testing.T) {
			e := newEnv(t, d, identity.WithSignupMode(identity.SignupClosed))
			e.problem(signup(e, "walkin@mode.test", "Walk-in", ""), 403, "signup_closed")
			_, tok := e.invite("staff@mode.test", "member")
			e.problem(signup(e, "staff@mode.test", "", tok), 403, "signup_closed")
			// An admin's invitation still brings people in.
			acc := e.want(e.do("POST", "/api/v1/invitations/accept", "", map[string]any{"token": tok, "password": pw}), 200).obj(t)
			if acc["user_created"] != true {
				t.Fatalf("accept: %v", acc)
			}
		})
	})
}
