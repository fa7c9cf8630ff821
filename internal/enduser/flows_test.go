package enduser_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/abacusbilling/abacus"

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

// No secret reaches a log line: passwords, refresh tokens, e-mailed
// tokens and codes, whatever the flow logs on its way (a reuse, a failed
// sign-in, dropped mail).
func TestSecretsAreNeverLogged(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		var logged bytes.Buffer
		var mu sync.Mutex
		log := slog.New(slog.NewJSONHandler(&lockedWriter{w: &logged, mu: &mu}, &slog.HandlerOptions{Level: slog.LevelDebug}))
		rec := &recorder{}
		clock := abacus.NewFakeClock(time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC))
		svc := enduser.NewService(d, clock, log, enduser.WithPasswordParams(cheap), enduser.WithBaseURL("https://abacus.test"), enduser.WithMailer(rec))
		ctx := enduser.SystemContext(context.Background(), tenantA)
		app, secret, err := svc.CreateApp(ctx, enduser.NewApp{Name: "S", Type: enduser.AppConfidential})
		if err != nil {
			t.Fatal(err)
		}
		pw := "correct horse battery"
		sess, _, err := svc.SignUp(ctx, app, enduser.SignUpInput{Email: "ada@example.com", Password: pw}, dev)
		if err != nil {
			t.Fatal(err)
		}
		tok, _ := svc.IssueTokens(ctx, sess, app, []string{"openid"}, "")
		next, _ := svc.Refresh(ctx, tenantA, tok.RefreshToken, app.ClientID)
		_, _ = svc.Refresh(ctx, tenantA, tok.RefreshToken, app.ClientID) // reuse: logged as a warning
		_, _, _ = svc.SignIn(ctx, tenantA, "ada@example.com", "wrong password 1", dev, app.ID)
		_ = svc.ForgotPassword(ctx, app, "ada@example.com", dev)
		_ = svc.StartPasswordless(ctx, app, "ada@example.com", dev)
		svc.SetMailer(nil) // mail dropped: logged
		_ = svc.ForgotPassword(ctx, app, "ada@example.com", dev)
		secrets := []string{pw, "wrong password 1", secret, tok.RefreshToken, next.RefreshToken, tok.AccessToken, tok.IDToken}
		for _, m := range rec.mail {
			if l, ok := m.Data["link"].(string); ok {
				secrets = append(secrets, l[strings.Index(l, "token=")+6:])
			}
			if c, ok := m.Data["code"].(string); ok {
				secrets = append(secrets, `"`+c+`"`)
			}
		}
		mu.Lock()
		out := logged.String()
		mu.Unlock()
		if !strings.Contains(out, "reuse") {
			t.Fatalf("the reuse was not logged: %s", out)
		}
		for _, s := range secrets {
			if s != "" && strings.Contains(out, s) {
				t.Fatalf("a secret (%.12s…) is in the log: %s", s, out)
			}
		}
	})
}

type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
