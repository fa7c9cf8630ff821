package enduser_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
	"github.com/abacusbilling/abacus/internal/enduser"
)

func TestSignUpFollowsTheTenantPolicy(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		rec := &recorder{}
		b := setup(t, d, enduser.WithMailer(rec))
		in := enduser.SignUpInput{Email: "ada@example.com", Password: "correct horse battery"}
		for _, c := range []struct {
			set  enduser.Settings
			code string
		}{
			{enduser.Settings{Signup: enduser.SignupClosed}, "signup_closed"},
			{enduser.Settings{Signup: enduser.SignupInviteOnly}, "signup_invite_only"},
			{enduser.Settings{AllowedEmailDomains: []string{"@Acme.test"}}, "email_domain_not_allowed"},
		} {
			if _, err := b.svc.PutSettings(b.ctx, c.set); err != nil {
				t.Fatal(err)
			}
			if _, _, err := b.svc.SignUp(b.ctx, b.app, in, dev); code(err) != c.code {
				t.Fatalf("%+v: %v, want %s", c.set, err, c.code)
			}
		}
		if _, err := b.svc.PutSettings(b.ctx, enduser.Settings{AllowedEmailDomains: []string{"example.com"}, RequireVerifiedEmail: true}); err != nil {
			t.Fatal(err)
		}
		_, u, err := b.svc.SignUp(b.ctx, b.app, in, dev)
		if !errors.Is(err, enduser.ErrVerifyEmail) || u.ID == "" {
			t.Fatalf("sign-up needing verification: %+v %v", u, err)
		}
		if _, _, err := b.svc.SignIn(b.ctx, tenantA, in.Email, in.Password, dev, b.app.ID); code(err) != "email_not_verified" {
			t.Fatalf("unverified sign-in: %v", err)
		}
		if _, err := b.svc.VerifyEmail(b.ctx, tenantA, tokenOf(t, rec.last(t).Data["link"].(string))); err != nil {
			t.Fatal(err)
		}
		if _, _, err := b.svc.SignIn(b.ctx, tenantA, in.Email, in.Password, dev, b.app.ID); err != nil {
			t.Fatalf("verified sign-in: %v", err)
		}
		_, err = b.svc.PutSettings(b.ctx, enduser.Settings{Signup: "sometimes", AccessTokenTTL: 5, CustomClaims: map[string]any{"sub": "x"}})
		if e, ok := asError(err); !ok || len(e.Fields) != 3 {
			t.Fatalf("bad settings: %v", err)
		}
	})
}

func TestDeleteErasesPersonalData(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		b := setup(t, d)
		u := b.user(t, "ada@example.com", "correct horse battery")
		sess, tok := signIn(t, b)
		if err := b.svc.DeleteUser(b.ctx, u.ID); err != nil {
			t.Fatal(err)
		}
		var email, name, ua, ip *string
		var status string
		if err := d.QueryRowContext(b.ctx, `SELECT email, name, status FROM end_users WHERE id = $1`, u.ID).Scan(&email, &name, &status); err != nil {
			t.Fatal(err)
		}
		if email != nil || *name != "" || status != "deleted" {
			t.Fatalf("after erasure: email %v name %q status %s", email, *name, status)
		}
		if err := d.QueryRowContext(b.ctx, `SELECT user_agent, ip FROM end_user_sessions WHERE id = $1`, sess.ID).Scan(&ua, &ip); err != nil {
			t.Fatal(err)
		}
		if *ua != "" || *ip != "" {
			t.Fatalf("device details kept: %q %q", *ua, *ip)
		}
		if _, err := b.svc.VerifyAccessToken(b.ctx, tenantA, tok.AccessToken); code(err) != "token_revoked" {
			t.Fatalf("token after deletion: %v", err)
		}
		if _, err := b.svc.Refresh(b.ctx, tenantA, tok.RefreshToken, b.app.ClientID); code(err) != "refresh_token_invalid" {
			t.Fatalf("refresh after deletion: %v", err)
		}
		if _, err := b.svc.User(b.ctx, u.ID); code(err) != "end_user_not_found" {
			t.Fatalf("read after deletion: %v", err)
		}
	})
}

func TestListUsersSearchesByPrefixAndPages(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		b := setup(t, d)
		for _, e := range []string{"ada@example.com", "adam@example.com", "bob@example.com", "100%_odd@example.com"} {
			b.user(t, e, "")
		}
		got, err := b.svc.ListUsers(b.ctx, enduser.UserQuery{Search: "ADAM"})
		if err != nil || len(got.Data) != 1 || got.Data[0].Email != "adam@example.com" {
			t.Fatalf("search adam: %+v %v", got, err)
		}
		if got, _ := b.svc.ListUsers(b.ctx, enduser.UserQuery{Search: "100%_"}); len(got.Data) != 1 {
			t.Fatalf("LIKE characters are not escaped: %+v", got)
		}
		page, _ := b.svc.ListUsers(b.ctx, enduser.UserQuery{Limit: 3})
		rest, _ := b.svc.ListUsers(b.ctx, enduser.UserQuery{Limit: 3, Cursor: page.NextCursor})
		if len(page.Data) != 3 || page.NextCursor == "" || len(rest.Data) != 1 || rest.NextCursor != "" {
			t.Fatalf("pages: %d %q, %d %q", len(page.Data), page.NextCursor, len(rest.Data), rest.NextCursor)
		}
		ctxB := enduser.SystemContext(b.ctx, tenantB)
		if got, _ := b.svc.ListUsers(ctxB, enduser.UserQuery{}); len(got.Data) != 0 {
			t.Fatalf("tenant B lists A's users: %+v", got)
		}
		if _, err := b.svc.ListUsers(b.ctx, enduser.UserQuery{Status: "gone"}); code(err) != "invalid_status" {
			t.Fatalf("bad status: %v", err)
		}
	})
}

func TestMagicLinkAndCodeAreOneSignIn(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		rec := &recorder{}
		b := setup(t, d, enduser.WithMailer(rec))
		b.user(t, "ada@example.com", "")
		// Without an app_url there is nothing for a magic link to open: the code comes alone.
		if err := b.svc.StartPasswordless(b.ctx, b.app, "ada@example.com", dev); err != nil {
			t.Fatal(err)
		}
		if m := rec.last(t); m.Data["link"] != nil || len(m.Data["code"].(string)) != 6 {
			t.Fatalf("magic mail without app_url = %+v", m.Data)
		}
		rec.mail = nil
		if _, err := b.svc.PutSettings(b.ctx, enduser.Settings{AppURL: "https://app.test"}); err != nil {
			t.Fatal(err)
		}
		if err := b.svc.StartPasswordless(b.ctx, b.app, "nobody@example.com", dev); err != nil || len(rec.mail) != 0 {
			t.Fatalf("unknown address: %v, %d mails", err, len(rec.mail))
		}
		if err := b.svc.StartPasswordless(b.ctx, b.app, "ada@example.com", dev); err != nil {
			t.Fatal(err)
		}
		m := rec.last(t)
		c := m.Data["code"].(string)
		if m.Template != enduser.MailMagicLink || len(c) != 6 || !strings.HasPrefix(m.Data["link"].(string), "https://app.test/magic-link?token=") {
			t.Fatalf("mail = %+v", m)
		}
		wrong := "000000"
		if c == wrong {
			wrong = "111111"
		}
		if _, _, err := b.svc.SignInWithCode(b.ctx, b.app, "ada@example.com", wrong, dev); code(err) != "code_invalid" {
			t.Fatalf("wrong code: %v", err)
		}
		sess, u, err := b.svc.SignInWithCode(b.ctx, b.app, "ada@example.com", c, dev)
		if err != nil || !u.EmailVerified || sess.ID == "" {
			t.Fatalf("code sign-in: %+v %v", u, err)
		}
		if _, _, err := b.svc.SignInWithLink(b.ctx, tenantA, tokenOf(t, m.Data["link"].(string)), dev); code(err) != "token_invalid" {
			t.Fatalf("the link after its code was used: %v", err)
		}
		// Five wrong codes end a code, even the right one after them.
		if err := b.svc.StartPasswordless(b.ctx, b.app, "ada@example.com", dev); err != nil {
			t.Fatal(err)
		}
		c = rec.last(t).Data["code"].(string)
		for range 5 {
			_, _, _ = b.svc.SignInWithCode(b.ctx, b.app, "ada@example.com", wrong, enduser.Device{IP: "192.0.2.9"})
			b.clock.Advance(2 * 60e9)
		}
		if _, _, err := b.svc.SignInWithCode(b.ctx, b.app, "ada@example.com", c, enduser.Device{IP: "192.0.2.10"}); code(err) != "code_invalid" {
			t.Fatalf("right code after 5 wrong ones: %v", err)
		}
	})
}
