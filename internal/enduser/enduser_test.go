package enduser_test

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
	"github.com/abacusbilling/abacus/internal/enduser"
	"github.com/abacusbilling/abacus/internal/identity/password"
	"github.com/golang-jwt/jwt/v5"
)

var cheap = password.Params{Memory: 64, Time: 1, Threads: 1, KeyLen: 32, SaltLen: 16}

// bundle is what most tests need: a service on a fresh database, a fake
// clock and a tenant context.
type bundle struct {
	svc   *enduser.Service
	db    *db.DB
	clock *abacus.FakeClock
	ctx   context.Context
	app   enduser.App
}

const tenantA, tenantB = "ten_a", "ten_b"

var dev = enduser.Device{UserAgent: "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Safari/605.1.15", IP: "203.0.113.7"}

func setup(t *testing.T, d *db.DB, opts ...enduser.Option) *bundle {
	t.Helper()
	clock := abacus.NewFakeClock(time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC))
	opts = append([]enduser.Option{enduser.WithPasswordParams(cheap), enduser.WithBaseURL("https://abacus.test")}, opts...)
	svc := enduser.NewService(d, clock, nil, opts...)
	b := &bundle{svc: svc, db: d, clock: clock, ctx: enduser.SystemContext(context.Background(), tenantA)}
	app, _, err := svc.CreateApp(b.ctx, enduser.NewApp{Name: "Web", Type: enduser.AppPublic, RedirectURIs: []string{"https://app.test/cb"}})
	if err != nil {
		t.Fatal(err)
	}
	b.app = app
	return b
}

func (b *bundle) user(t *testing.T, email, pw string) enduser.User {
	t.Helper()
	u, err := b.svc.CreateUser(b.ctx, enduser.NewUser{Email: email, Password: pw, Name: "Ada"})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func code(err error) string {
	if e, ok := abacus.AsError(err); ok {
		return e.Code
	}
	if err != nil {
		return "internal: " + err.Error()
	}
	return ""
}

func TestUsersAreUniquePerTenantCaseInsensitive(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		b := setup(t, d)
		u := b.user(t, "Ada@Example.com", "correct horse battery")
		if u.Email != "ada@example.com" || !u.HasPassword || u.Status != enduser.StatusActive {
			t.Fatalf("user = %+v", u)
		}
		_, err := b.svc.CreateUser(b.ctx, enduser.NewUser{Email: "ADA@example.com"})
		if code(err) != "end_user_exists" {
			t.Fatalf("duplicate e-mail: %v", err)
		}
		ctxB := enduser.SystemContext(context.Background(), tenantB)
		if _, err := b.svc.CreateUser(ctxB, enduser.NewUser{Email: "ada@example.com"}); err != nil {
			t.Fatalf("same e-mail in another tenant: %v", err)
		}
		if _, err := b.svc.User(ctxB, u.ID); code(err) != "end_user_not_found" {
			t.Fatalf("tenant B reads tenant A's user: %v", err)
		}
		got, err := b.svc.UserByEmail(b.ctx, " ADA@EXAMPLE.COM ")
		if err != nil || got.ID != u.ID {
			t.Fatalf("by e-mail: %+v %v", got, err)
		}
		_, err = b.svc.CreateUser(b.ctx, enduser.NewUser{Email: "weak@example.com", Password: "password"})
		if e, ok := abacus.AsError(err); !ok || e.Kind != abacus.KindInvalid || e.Fields[0].Field != "password" {
			t.Fatalf("common password: %v", err)
		}
	})
}

func TestSignInIsEnumerationSafeAndThrottled(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		b := setup(t, d)
		b.user(t, "ada@example.com", "correct horse battery")
		_, _, wrong := b.svc.SignIn(b.ctx, tenantA, "ada@example.com", "wrong password!", dev, b.app.ID)
		_, _, unknown := b.svc.SignIn(b.ctx, tenantA, "nobody@example.com", "wrong password!", dev, b.app.ID)
		if code(wrong) != "invalid_credentials" || code(unknown) != "invalid_credentials" || wrong.Error() != unknown.Error() {
			t.Fatalf("wrong password %v, unknown user %v", wrong, unknown)
		}
		// The same account at another tenant does not exist.
		if _, _, err := b.svc.SignIn(b.ctx, tenantB, "ada@example.com", "correct horse battery", dev, b.app.ID); code(err) != "invalid_credentials" {
			t.Fatalf("sign-in at tenant B: %v", err)
		}
		for range 10 {
			_, _, _ = b.svc.SignIn(b.ctx, tenantA, "ada@example.com", "wrong password!", dev, b.app.ID)
		}
		if _, _, err := b.svc.SignIn(b.ctx, tenantA, "ada@example.com", "correct horse battery", dev, b.app.ID); code(err) != "too_many_attempts" {
			t.Fatalf("after 11 failures: %v", err)
		}
		b.clock.Advance(time.Hour)
		sess, u, err := b.svc.SignIn(b.ctx, tenantA, "ada@example.com", "correct horse battery", dev, b.app.ID)
		if err != nil {
			t.Fatal(err)
		}
		if sess.DeviceName != "Safari on macOS" || sess.IP != dev.IP || sess.UserID != u.ID || sess.AppID != b.app.ID {
			t.Fatalf("session = %+v", sess)
		}
	})
}

func TestDisabledUserCannotSignIn(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		b := setup(t, d)
		u := b.user(t, "ada@example.com", "correct horse battery")
		if _, err := d.ExecContext(b.ctx, `UPDATE end_users SET status = 'disabled' WHERE id = $1`, u.ID); err != nil {
			t.Fatal(err)
		}
		if _, _, err := b.svc.SignIn(b.ctx, tenantA, "ada@example.com", "correct horse battery", dev, b.app.ID); code(err) != "end_user_disabled" {
			t.Fatalf("disabled: %v", err)
		}
	})
}

func signIn(t *testing.T, b *bundle, scopes ...string) (enduser.Session, enduser.Tokens) {
	t.Helper()
	sess, _, err := b.svc.SignIn(b.ctx, tenantA, "ada@example.com", "correct horse battery", dev, b.app.ID)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := b.svc.IssueTokens(b.ctx, sess, b.app, scopes, "n-0S6_WzA2Mj")
	if err != nil {
		t.Fatal(err)
	}
	return sess, tok
}

func TestTokensCarryTheTenantIssuerAndVerify(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		b := setup(t, d)
		u := b.user(t, "ada@example.com", "correct horse battery")
		b.svc.ClaimsFor(func(_ context.Context, tenant, user string) (map[string]any, error) {
			return map[string]any{"org": "org_1", "org_role": "owner", "sub": "forged"}, nil
		})
		sess, tok := signIn(t, b, "openid", "email")
		if tok.TokenType != "Bearer" || tok.ExpiresIn != 900 || tok.IDToken == "" || !strings.HasPrefix(tok.RefreshToken, "eurt_") {
			t.Fatalf("tokens = %+v", tok)
		}
		c, err := b.svc.VerifyAccessToken(b.ctx, tenantA, tok.AccessToken)
		if err != nil {
			t.Fatal(err)
		}
		if c.Issuer != "https://abacus.test/oidc/"+tenantA || c.Subject != u.ID || c.Audience != b.app.ClientID || c.SessionID != sess.ID ||
			c.Extra["org"] != "org_1" || c.Extra["org_role"] != "owner" || c.TenantID() != tenantA {
			t.Fatalf("claims = %+v", c)
		}
		// The ID token is RS256 with the nonce, and is not an access token.
		id, _, err := jwt.NewParser().ParseUnverified(tok.IDToken, jwt.MapClaims{})
		if err != nil {
			t.Fatal(err)
		}
		if id.Method.Alg() != "RS256" || id.Claims.(jwt.MapClaims)["nonce"] != "n-0S6_WzA2Mj" || id.Claims.(jwt.MapClaims)["email"] != "ada@example.com" {
			t.Fatalf("id token header %v claims %v", id.Header, id.Claims)
		}
		if _, err := b.svc.VerifyAccessToken(b.ctx, tenantA, tok.IDToken); code(err) != "token_invalid" {
			t.Fatalf("ID token as access token: %v", err)
		}
		// Tenant B's keys do not accept tenant A's token; verifying at a
		// tenant makes no keys for it (a forged issuer costs one read).
		if _, err := b.svc.VerifyAccessToken(b.ctx, tenantB, tok.AccessToken); code(err) != "token_invalid" {
			t.Fatalf("tenant A's token at tenant B: %v", err)
		}
		var n int
		if err := d.QueryRowContext(b.ctx, `SELECT COUNT(*) FROM end_user_signing_keys WHERE tenant_id = $1`, tenantB).Scan(&n); err != nil || n != 0 {
			t.Fatalf("verifying at tenant B made %d keys (%v)", n, err)
		}
		b.clock.Advance(16 * time.Minute)
		if _, err := b.svc.VerifyAccessToken(b.ctx, tenantA, tok.AccessToken); code(err) != "token_expired" {
			t.Fatalf("expired: %v", err)
		}
	})
}

func TestJWKSPublishesEveryKeyAndRotationOverlaps(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		b := setup(t, d)
		b.user(t, "ada@example.com", "correct horse battery")
		_, tok := signIn(t, b, "openid")
		raw, err := b.svc.JWKS(b.ctx, tenantA)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(raw), `"d"`) || strings.Contains(string(raw), `"p"`) {
			t.Fatalf("JWKS leaks private material: %s", raw)
		}
		var set struct {
			Keys []map[string]string `json:"keys"`
		}
		if err := json.Unmarshal(raw, &set); err != nil {
			t.Fatal(err)
		}
		algs := map[string]bool{}
		for _, k := range set.Keys {
			if k["kid"] == "" || k["use"] != "sig" {
				t.Fatalf("key %v", k)
			}
			algs[k["alg"]] = true
		}
		if !algs["RS256"] || !algs["EdDSA"] || len(set.Keys) != 2 {
			t.Fatalf("JWKS = %s", raw)
		}
		other, _ := b.svc.JWKS(b.ctx, tenantB)
		if string(other) == string(raw) {
			t.Fatal("tenants share keys")
		}
		keys, err := b.svc.RotateKeys(b.ctx, tenantA)
		if err != nil || len(keys) != 4 {
			t.Fatalf("rotate: %v %v", keys, err)
		}
		if _, err := b.svc.VerifyAccessToken(b.ctx, tenantA, tok.AccessToken); err != nil {
			t.Fatalf("token signed before rotation: %v", err)
		}
		_, tok2 := signIn(t, b)
		if kid(t, tok2.AccessToken) == kid(t, tok.AccessToken) {
			t.Fatal("rotation did not change the signing key")
		}
		b.clock.Advance(25 * time.Hour)
		raw, _ = b.svc.JWKS(b.ctx, tenantA)
		if err := json.Unmarshal(raw, &set); err != nil || len(set.Keys) != 2 {
			t.Fatalf("after retirement JWKS = %s", raw)
		}
	})
}

func kid(t *testing.T, tok string) string {
	t.Helper()
	p, _, err := jwt.NewParser().ParseUnverified(tok, jwt.MapClaims{})
	if err != nil {
		t.Fatal(err)
	}
	return p.Header["kid"].(string)
}

func TestRefreshRotatesAndReuseRevokesTheFamily(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		b := setup(t, d)
		b.user(t, "ada@example.com", "correct horse battery")
		sess, tok := signIn(t, b)
		b.clock.Advance(time.Minute)
		next, err := b.svc.Refresh(b.ctx, tenantA, tok.RefreshToken, b.app.ClientID)
		if err != nil {
			t.Fatal(err)
		}
		if next.RefreshToken == tok.RefreshToken || next.AccessToken == "" {
			t.Fatalf("refresh = %+v", next)
		}
		if _, err := b.svc.Refresh(b.ctx, tenantB, next.RefreshToken, b.app.ClientID); code(err) != "refresh_token_invalid" {
			t.Fatalf("at tenant B: %v", err)
		}
		other, _, _ := b.svc.CreateApp(b.ctx, enduser.NewApp{Name: "Other", Type: enduser.AppPublic})
		if _, err := b.svc.Refresh(b.ctx, tenantA, next.RefreshToken, other.ClientID); code(err) != "refresh_token_invalid" {
			t.Fatalf("by another app: %v", err)
		}
		if _, err := b.svc.Refresh(b.ctx, tenantA, tok.RefreshToken, b.app.ClientID); code(err) != "refresh_token_reused" {
			t.Fatalf("reuse: %v", err)
		}
		if _, err := b.svc.Refresh(b.ctx, tenantA, next.RefreshToken, b.app.ClientID); code(err) != "refresh_token_invalid" {
			t.Fatalf("the family after reuse: %v", err)
		}
		if _, err := b.svc.VerifyAccessToken(b.ctx, tenantA, next.AccessToken); code(err) != "token_revoked" {
			t.Fatalf("access token after reuse: %v", err)
		}
		got, err := b.svc.Session(b.ctx, tenantA, sess.ID)
		if err != nil || got.RevokedReason != enduser.ReasonReuse {
			t.Fatalf("session = %+v %v", got, err)
		}
	})
}

func TestSessionHooksCountAndEvict(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		b := setup(t, d)
		u := b.user(t, "ada@example.com", "correct horse battery")
		var evicted []enduser.Session
		limit, refuse := 2, false
		b.svc.OnSessionStart(func(ctx context.Context, tx *db.Tx, u enduser.User, s enduser.Session) error {
			n, err := b.svc.CountActiveSessions(ctx, tx, s.TenantID, []string{u.ID})
			if err != nil || n <= limit {
				return err
			}
			if refuse {
				return abacus.Errorf(abacus.KindForbidden, "device_limit_reached", "signed in on %d devices already", limit)
			}
			ev, err := b.svc.RevokeLeastRecentlyUsed(ctx, tx, s.TenantID, []string{u.ID}, limit)
			evicted = append(evicted, ev...)
			return err
		})
		first, _ := signIn(t, b)
		b.clock.Advance(time.Minute)
		second, _ := signIn(t, b)
		b.clock.Advance(time.Minute)
		third, _ := signIn(t, b)
		if len(evicted) != 1 || evicted[0].ID != first.ID {
			t.Fatalf("evicted %+v, want the first session %s", evicted, first.ID)
		}
		list, err := b.svc.ListSessions(b.ctx, u.ID)
		if err != nil || len(list) != 2 || list[0].ID != third.ID || list[1].ID != second.ID {
			t.Fatalf("sessions = %+v %v", list, err)
		}
		refuse = true
		if _, _, err := b.svc.SignIn(b.ctx, tenantA, "ada@example.com", "correct horse battery", dev, b.app.ID); code(err) != "device_limit_reached" {
			t.Fatalf("refused sign-in: %v", err)
		}
		if n, _ := b.svc.CountActiveSessions(b.ctx, d, tenantA, []string{u.ID}); n != 2 {
			t.Fatalf("the refused session was kept: %d active", n)
		}
		if err := b.svc.RevokeSession(b.ctx, tenantA, second.ID); err != nil {
			t.Fatal(err)
		}
		if n, _ := b.svc.CountActiveSessions(b.ctx, d, tenantA, []string{u.ID}); n != 1 {
			t.Fatalf("after revoking: %d active", n)
		}
		if err := b.svc.RevokeSession(b.ctx, tenantB, third.ID); code(err) != "session_not_found" {
			t.Fatalf("revoke from tenant B: %v", err)
		}
	})
}

func TestSignUpHookRunsInTheTransaction(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		b := setup(t, d)
		b.svc.OnSignUp(func(ctx context.Context, tx *db.Tx, u enduser.User) error {
			if u.Email == "refused@example.com" {
				return abacus.Invalid("refused", "no")
			}
			return nil
		})
		if _, err := b.svc.CreateUser(b.ctx, enduser.NewUser{Email: "refused@example.com"}); code(err) != "refused" {
			t.Fatalf("hook error: %v", err)
		}
		if _, err := b.svc.UserByEmail(b.ctx, "refused@example.com"); code(err) != "end_user_not_found" {
			t.Fatalf("the refused user was kept: %v", err)
		}
	})
}

func TestAppSecretsAndRedirects(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		b := setup(t, d)
		app, secret, err := b.svc.CreateApp(b.ctx, enduser.NewApp{Name: "Server", Type: enduser.AppConfidential, RedirectURIs: []string{"https://srv.test/cb"}})
		if err != nil || secret == "" {
			t.Fatalf("confidential app: %v", err)
		}
		got, err := b.svc.AppByClientID(b.ctx, tenantA, app.ClientID)
		if err != nil || !b.svc.CheckAppSecret(got, secret) || b.svc.CheckAppSecret(got, secret+"x") {
			t.Fatalf("secret check: %v", err)
		}
		if _, err := b.svc.AppByClientID(b.ctx, tenantB, app.ClientID); code(err) != "app_not_found" {
			t.Fatalf("client id at tenant B: %v", err)
		}
		if !got.AllowsRedirect("https://srv.test/cb") || got.AllowsRedirect("https://srv.test/cb/") {
			t.Fatal("redirects are not matched exactly")
		}
		_, _, err = b.svc.CreateApp(b.ctx, enduser.NewApp{Name: "Bad", Type: "public", RedirectURIs: []string{"http://evil.test/cb", "https://x.test/#f"}})
		if e, ok := abacus.AsError(err); !ok || len(e.Fields) != 2 {
			t.Fatalf("bad redirects: %v", err)
		}
	})
}

// recorder is a Mailer that keeps what it was given, in commit order.
type recorder struct {
	mu   sync.Mutex
	mail []enduser.Mail
}

func (r *recorder) Send(_ context.Context, tx *db.Tx, m enduser.Mail) error {
	tx.AfterCommit(func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.mail = append(r.mail, m)
	})
	return nil
}

func (r *recorder) last(t *testing.T) enduser.Mail {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.mail) == 0 {
		t.Fatal("no mail sent")
	}
	return r.mail[len(r.mail)-1]
}

func tokenOf(t *testing.T, link string) string {
	t.Helper()
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query().Get("token")
}

func TestVerificationLinkIsSingleUse(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		rec := &recorder{}
		b := setup(t, d, enduser.WithMailer(rec))
		u := b.user(t, "ada@example.com", "correct horse battery")
		if u.EmailVerified {
			t.Fatal("verified before the link was opened")
		}
		err := d.InTx(b.ctx, func(tx *db.Tx) error { return b.svc.SendVerification(b.ctx, tx, u, b.app.ID) })
		if err != nil {
			t.Fatal(err)
		}
		m := rec.last(t)
		link, _ := m.Data["link"].(string)
		if m.Template != enduser.MailVerifyEmail || m.To != "ada@example.com" || !strings.HasPrefix(link, "https://abacus.test/oidc/"+tenantA+"/verify-email?token=") ||
			m.Data["app"].(map[string]any)["name"] != "Web" || m.Data["expires_at"] == "" {
			t.Fatalf("mail = %+v", m)
		}
		if _, err := b.svc.VerifyEmail(b.ctx, tenantB, tokenOf(t, link)); code(err) != "token_invalid" {
			t.Fatalf("at tenant B: %v", err)
		}
		got, err := b.svc.VerifyEmail(b.ctx, tenantA, tokenOf(t, link))
		if err != nil || !got.EmailVerified {
			t.Fatalf("verify: %+v %v", got, err)
		}
		if _, err := b.svc.VerifyEmail(b.ctx, tenantA, tokenOf(t, link)); code(err) != "token_invalid" {
			t.Fatalf("second use: %v", err)
		}
	})
}

func asError(err error) (*abacus.Error, bool) { return abacus.AsError(err) }

// A password is hashed before the transaction that inserts its user: on
// SQLite a transaction holds the only writer, and a sign-up that hashed
// inside it made every other module's writes wait for the hash.
func TestHashingDoesNotHoldTheWriter(t *testing.T) {
	t.Parallel()
	d := dbtest.Open(t, db.SQLite)
	slow := password.Params{Memory: 32 * 1024, Time: 8, Threads: 1, KeyLen: 32, SaltLen: 16}
	b := setup(t, d, enduser.WithPasswordParams(slow))
	if _, err := d.ExecContext(b.ctx, `CREATE TABLE writer_probe (n INTEGER)`); err != nil {
		t.Fatal(err)
	}
	created := make(chan time.Time, 1)
	go func() {
		_, err := b.svc.CreateUser(b.ctx, enduser.NewUser{Email: "slow@example.com", Password: "correct horse battery staple"})
		if err != nil {
			t.Error(err)
		}
		created <- time.Now()
	}()
	time.Sleep(20 * time.Millisecond) // the creation is hashing now
	err := d.InTx(b.ctx, func(tx *db.Tx) error {
		_, err := tx.ExecContext(b.ctx, `INSERT INTO writer_probe (n) VALUES (1)`)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	wrote := time.Now()
	if c := <-created; c.Before(wrote) {
		t.Fatalf("another write waited for the sign-up's hash (it ended %v after the user was created)", wrote.Sub(c))
	}
}
