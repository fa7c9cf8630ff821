package identity_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"

	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
	"github.com/abacusbilling/abacus/internal/identity/totp"
)

// TestSignUpToTOTPFlow is the "done when", over HTTP, on both
// engines: sign-up → verify e-mail (link from the SMTP server) → sign-in
// → refresh → reuse detected and family revoked → forgot/reset → sign-in
// with TOTP. It also proves no secret reaches the log.
func TestSignUpToTOTPFlow(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d)
		var secrets []string
		keep := func(s string) string { secrets = append(secrets, s); return s }
		pw := keep("correct horse battery staple 7")

		// Bad input: stable codes, every field named.
		e.problem(e.do("POST", "/api/v1/auth/signup", "", map[string]any{"email": "not-an-email", "password": pw, "organization": "Acme"}), 400, "invalid_email")
		e.problem(e.do("POST", "/api/v1/auth/signup", "", map[string]any{"email": "ada@acme.test", "password": "k9#x", "organization": "Acme"}), 400, "password_too_short")
		e.problem(e.do("POST", "/api/v1/auth/signup", "", map[string]any{"email": "ada@acme.test", "password": "password123", "organization": "Acme"}), 400, "password_too_common")
		e.problem(e.do("POST", "/api/v1/auth/signup", "", map[string]any{"email": "ada@acme.test", "password": "xxada-lovelace-xx", "organization": "Acme"}), 400, "password_contains_email")

		// Sign-up → verification link from the SMTP server.
		r := e.want(e.do("POST", "/api/v1/auth/signup", "", map[string]any{"email": " Ada@Acme.TEST ", "password": pw, "organization": "Acme"}), 201)
		tenant := r.obj(t)["tenant"].(map[string]any)["id"].(string)
		if got := r.obj(t)["user"].(map[string]any)["email"]; got != "ada@acme.test" {
			t.Fatalf("email not normalised: %v", got)
		}
		e.problem(e.do("POST", "/api/v1/auth/signup", "", map[string]any{"email": "ADA@acme.test", "password": pw, "organization": "Again"}), 409, "email_taken")
		t.Cleanup(func() {
			if t.Failed() {
				t.Log(e.logs.String())
			}
		})
		msg := e.mail.next(t)
		if msg.To != "ada@acme.test" || !strings.Contains(msg.Subject, "Confirm") {
			t.Fatalf("verification mail: %+v", msg)
		}
		vt := keep(linkToken(t, msg))
		if v := e.want(e.do("POST", "/api/v1/auth/verify-email", "", map[string]any{"token": vt}), 200).obj(t); v["email_verified"] != true {
			t.Fatalf("not verified: %v", v)
		}
		e.problem(e.do("POST", "/api/v1/auth/verify-email", "", map[string]any{"token": vt}), 400, "email_token_used")
		e.problem(e.do("POST", "/api/v1/auth/verify-email", "", map[string]any{"token": "et_nope"}), 400, "email_token_invalid")

		// Sign-in; the access token is a JWT an independent library verifies against the JWKS.
		e.problem(e.login("ada@acme.test", "wrong password here"), 401, "invalid_credentials")
		tok := e.want(e.login("ada@acme.test", pw), 200).obj(t)
		access, refresh := keep(tok["access_token"].(string)), keep(tok["refresh_token"].(string))
		if tok["token_type"] != "Bearer" || tok["expires_in"] != float64(900) || tok["tenant_id"] != tenant {
			t.Fatalf("tokens: %v", tok)
		}
		verifyWithJWKS(t, e, access, tenant)
		me := e.want(e.do("GET", "/api/v1/me", access, nil), 200).obj(t)
		if me["kind"] != "user" || me["role"] != "owner" || me["user"].(map[string]any)["email_verified"] != true {
			t.Fatalf("me: %v", me)
		}

		// Refresh rotates; presenting the old token again revokes the family.
		tok2 := e.want(e.do("POST", "/api/v1/auth/refresh", "", map[string]any{"refresh_token": refresh}), 200).obj(t)
		access2, refresh2 := keep(tok2["access_token"].(string)), keep(tok2["refresh_token"].(string))
		if refresh2 == refresh || tok2["session_id"] != tok["session_id"] {
			t.Fatalf("refresh did not rotate within the session: %v", tok2)
		}
		e.want(e.do("GET", "/api/v1/me", access2, nil), 200)
		e.problem(e.do("POST", "/api/v1/auth/refresh", "", map[string]any{"refresh_token": refresh}), 401, "refresh_token_reused")
		e.problem(e.do("POST", "/api/v1/auth/refresh", "", map[string]any{"refresh_token": refresh2}), 401, "refresh_token_invalid")
		e.problem(e.do("GET", "/api/v1/me", access2, nil), 401, "token_revoked")

		// The security event is in the audit log (read with a fresh session).
		tok3 := e.want(e.login("ada@acme.test", pw), 200).obj(t)
		access3 := keep(tok3["access_token"].(string))
		keep(tok3["refresh_token"].(string))
		audit := e.want(e.do("GET", "/api/v1/audit-events?action=auth.refresh_reused", access3, nil), 200).obj(t)
		if evs := audit["data"].([]any); len(evs) != 1 || evs[0].(map[string]any)["target_id"] != tok["session_id"] {
			t.Fatalf("reuse audit: %s", mustJSON(audit))
		}

		// Forgot (same answer for unknown addresses) → reset → sessions revoked.
		e.want(e.do("POST", "/api/v1/auth/password/forgot", "", map[string]any{"email": "nobody@acme.test"}), 202)
		e.want(e.do("POST", "/api/v1/auth/password/forgot", "", map[string]any{"email": "ada@acme.test"}), 202)
		rt := keep(linkToken(t, e.mail.next(t)))
		e.mail.none(t) // nothing was sent for the unknown address
		e.problem(e.do("POST", "/api/v1/auth/password/reset", "", map[string]any{"token": rt, "password": "123456789"}), 400, "password_too_common")
		pw2 := keep("a much better passphrase 42")
		e.want(e.do("POST", "/api/v1/auth/password/reset", "", map[string]any{"token": rt, "password": pw2}), 204)
		e.problem(e.do("POST", "/api/v1/auth/password/reset", "", map[string]any{"token": rt, "password": pw2}), 400, "email_token_used")
		e.problem(e.do("GET", "/api/v1/me", access3, nil), 401, "token_revoked")
		e.problem(e.login("ada@acme.test", pw), 401, "invalid_credentials")

		// An expired reset link is refused.
		e.want(e.do("POST", "/api/v1/auth/password/forgot", "", map[string]any{"email": "ada@acme.test"}), 202)
		old := keep(linkToken(t, e.mail.next(t)))
		e.clock.Advance(61 * time.Minute)
		e.problem(e.do("POST", "/api/v1/auth/password/reset", "", map[string]any{"token": old, "password": pw2 + "x"}), 400, "email_token_expired")

		// TOTP: enrol, confirm, then sign-in needs a code; codes do not replay.
		tok4 := e.want(e.login("ada@acme.test", pw2), 200).obj(t)
		access4 := keep(tok4["access_token"].(string))
		keep(tok4["refresh_token"].(string))
		en := e.want(e.do("POST", "/api/v1/me/mfa/totp/enroll", access4, nil), 200).obj(t)
		secret := keep(en["secret"].(string))
		if !strings.HasPrefix(en["provisioning_uri"].(string), "otpauth://totp/") {
			t.Fatalf("enrolment: %v", en)
		}
		e.problem(e.do("POST", "/api/v1/me/mfa/totp/confirm", access4, map[string]any{"code": "000000"}), 401, "invalid_mfa_code")
		code, _ := totp.Default.Code(secret, e.clock.Now())
		conf := e.want(e.do("POST", "/api/v1/me/mfa/totp/confirm", access4, map[string]any{"code": code}), 200).obj(t)
		recovery := conf["recovery_codes"].([]any)
		if len(recovery) != 10 {
			t.Fatalf("want 10 recovery codes: %v", conf)
		}
		for _, c := range recovery {
			keep(c.(string))
		}
		e.problem(e.login("ada@acme.test", pw2), 401, "mfa_required")
		e.problem(e.login("ada@acme.test", pw2, "totp_code", code), 401, "invalid_mfa_code") // same step as the confirmation
		e.clock.Advance(30 * time.Second)
		code, _ = totp.Default.Code(secret, e.clock.Now())
		keep(e.want(e.login("ada@acme.test", pw2, "totp_code", code), 200).str(t, "access_token"))
		rc := recovery[0].(string)
		keep(e.want(e.login("ada@acme.test", pw2, "totp_code", rc), 200).str(t, "access_token"))
		e.problem(e.login("ada@acme.test", pw2, "totp_code", rc), 401, "invalid_mfa_code")
		e.problem(e.do("POST", "/api/v1/me/mfa/totp/disable", access4, map[string]any{"password": "not it at all"}), 401, "invalid_credentials")
		e.want(e.do("POST", "/api/v1/me/mfa/totp/disable", access4, map[string]any{"password": pw2}), 204)
		e.want(e.login("ada@acme.test", pw2), 200)

		// Access tokens expire.
		e.clock.Advance(16 * time.Minute)
		e.problem(e.do("GET", "/api/v1/me", access4, nil), 401, "token_expired")

		// Audit covers the flow.
		tok5 := e.want(e.login("ada@acme.test", pw2), 200).obj(t)
		all := e.want(e.do("GET", "/api/v1/audit-events?limit=200", keep(tok5["access_token"].(string)), nil), 200)
		for _, action := range []string{"user.signed_up", "user.email_verified", "auth.login_failed", "auth.login_succeeded",
			"auth.refresh_reused", "user.password_reset", "user.mfa_enabled", "user.mfa_disabled", "user.recovery_code_used"} {
			if !strings.Contains(string(all.body), `"`+action+`"`) {
				t.Errorf("audit log lacks %s", action)
			}
		}

		// No password, token or secret reached a log line.
		logs := e.logs.String()
		if !strings.Contains(logs, "refresh token reuse detected") {
			t.Fatalf("log capture does not work: %q", logs)
		}
		for _, s := range secrets {
			if strings.Contains(logs, s) {
				t.Errorf("a secret reached the log: %.12s…", s)
			}
		}
	})
}

func mustJSON(v any) string { b, _ := json.Marshal(v); return string(b) }

// verifyWithJWKS checks an access token with go-jose against the JWKS.
func verifyWithJWKS(t *testing.T, e *env, access, tenant string) {
	t.Helper()
	r := e.want(e.do("GET", "/.well-known/jwks.json", "", nil), 200)
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(r.body, &set); err != nil {
		t.Fatal(err)
	}
	parsed, err := josejwt.ParseSigned(access, []jose.SignatureAlgorithm{jose.EdDSA})
	if err != nil {
		t.Fatal(err)
	}
	keys := set.Key(parsed.Headers[0].KeyID)
	if len(keys) != 1 {
		t.Fatalf("kid %s not in JWKS %s", parsed.Headers[0].KeyID, r.body)
	}
	var std josejwt.Claims
	var extra struct {
		TID   string `json:"tid"`
		Scope string `json:"scope"`
	}
	if err := parsed.Claims(keys[0].Key, &std, &extra); err != nil {
		t.Fatalf("go-jose rejects the token: %v", err)
	}
	if err := std.ValidateWithLeeway(josejwt.Expected{Time: e.clock.Now()}, 0); err != nil {
		t.Fatal(err)
	}
	if extra.TID != tenant || std.Subject == "" || std.Expiry.Time().Sub(std.IssuedAt.Time()) != 15*time.Minute {
		t.Fatalf("claims: %+v %+v", std, extra)
	}
}
