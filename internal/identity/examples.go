package identity

import (
	"time"

	"github.com/abacusbilling/abacus"
)

// Examples are the values the API reference shows for the identity
// request and response bodies (httpapi.Server.Example). The anonymous
// structs are those of the routes that read them.
func Examples() []any {
	at := time.Date(2026, 11, 2, 9, 30, 0, 0, time.UTC)
	expires := at.AddDate(1, 0, 0)
	const tenant, user = "ten_01jbx6z8w6y8a0c2e4g6j8l0np", "usr_01jbx6z9x7z9b1d3f5h7k9m1pq"
	key := APIKey{ID: "key_01jbx70a2c4e6g8j0l2n4q6s8u", TenantID: tenant, Name: "billing-worker", Prefix: "abk_7Qm2",
		Scopes: []abacus.Scope{abacus.ScopeRead, abacus.ScopeWrite}, ExpiresAt: &expires, CreatedAt: at}
	client := Client{ID: "cli_01jbx71b3d5f7h9k1m3p5r7t9v", Name: "metering-gateway", Scopes: []abacus.Scope{abacus.ScopeIngest}, CreatedAt: at}
	me := User{ID: user, Email: "jane@example.com", EmailVerified: true, CreatedAt: at}
	const password = "correct horse battery staple"
	return []any{
		NewKeyInput{Name: "billing-worker", Scopes: []abacus.Scope{abacus.ScopeRead, abacus.ScopeWrite}, ExpiresAt: &expires},
		key,
		createdKey{APIKey: key, Key: "abk_7Qm2c9XvYt4LrP8sKd1NwE6hBz3Fj5Ua"},
		ClientInput{Name: "metering-gateway", Scopes: []abacus.Scope{abacus.ScopeIngest}},
		client,
		createdClient{Client: client, ClientSecret: "cs_Vb7Xk2Qp9Lm4Rt8Wz1Ny6Hd3Fg5Js0Ae"},
		SignupInput{Email: "jane@example.com", Password: password, Organization: "Example SaaS GmbH"},
		SignupResult{User: User{ID: user, Email: "jane@example.com", CreatedAt: at}, Tenant: Tenant{ID: tenant, Name: "Example SaaS GmbH", CreatedAt: at}, Role: RoleOwner},
		LoginInput{Email: "jane@example.com", Password: password, TOTPCode: "492817"},
		Tokens{AccessToken: "eyJhbGciOiJFZERTQSIsImtpZCI6ImsxIn0.eyJzdWIiOiJ1c3JfMDFqYng2ejl4In0.c2lnbmF0dXJl", RefreshToken: "rt_Hq4Zp8Xc2Vb6Nm1Lk5Jd9Fs3Ga7Wr0Ty",
			TokenType: "Bearer", ExpiresIn: 900, TenantID: tenant, SessionID: "ses_01jbx72c4e6g8j0l2n4q6s8uwx"},
		refreshBody{RefreshToken: "rt_Hq4Zp8Xc2Vb6Nm1Lk5Jd9Fs3Ga7Wr0Ty"},
		SetupInput{Token: "et_9Qm4Xc2Vb7Nk1Lp5Jd8Hs3Fg6Wr0Ty", Email: "jane@example.com", Password: password},
		BrowserSession{TenantID: tenant, SessionID: "ses_01jbx72c4e6g8j0l2n4q6s8uwx", ExpiresIn: 900},
		tokenBody{Token: "vt_3Kd8Pq1Xz6Wm9Rb4Ny7Lc2Hf5Js0Tg"},
		me,
		Me{Kind: "user", ID: user, TenantID: tenant, Scopes: []abacus.Scope{abacus.ScopeAdmin}, Role: RoleOwner, User: &me,
			Memberships: []Membership{{TenantID: tenant, TenantName: "Example SaaS GmbH", Role: RoleOwner}}},
		TOTPEnrollment{Secret: "JBSWY3DPEHPK3PXP", ProvisioningURI: "otpauth://totp/Abacus:jane@example.com?secret=JBSWY3DPEHPK3PXP&issuer=Abacus"},
		Member{UserID: user, Email: "jane@example.com", Role: RoleOwner, CreatedAt: at},
		InvitationInput{Email: "sam@example.com", Role: RoleBilling},
		Invitation{ID: "inv_01jbx73d5f7h9k1m3p5r7t9vxz", Email: "sam@example.com", Role: RoleBilling, CreatedAt: at, ExpiresAt: at.AddDate(0, 0, 7)},
		AcceptInput{Token: "it_8Nc3Wq6Xv1Zb4Mk7Lp2Hd5Fs9Jg0Ta", Password: password},
		Accepted{TenantID: tenant, UserID: "usr_01jbx74e6g8j0l2n4q6s8uwxyz", Role: RoleBilling, UserCreated: true},
		Session{ID: "ses_01jbx72c4e6g8j0l2n4q6s8uwx", TenantID: tenant, IP: "203.0.113.7", UserAgent: "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) Firefox/133.0",
			CreatedAt: at, LastUsedAt: at.Add(3 * time.Hour), ExpiresAt: at.AddDate(0, 0, 30), Current: true},
		MailMessage{ID: "msg_01jbx75f7h9k1m3p5r7t9vxz1b", To: "jane@example.com", Template: "verify_email", Subject: "Confirm your e-mail address",
			Text: "Open this link to confirm your address: …", CreatedAt: at, SentAt: &at},
		AuditEvent{ID: "aud_01jbx76g8j0l2n4q6s8uwxyz3d", Action: "auth.login_succeeded", ActorType: "user", ActorID: user, TargetType: "session",
			TargetID: "ses_01jbx72c4e6g8j0l2n4q6s8uwx", IP: "203.0.113.7", Data: map[string]any{"mfa": true}, CreatedAt: at},
		struct {
			Role Role `json:"role" enum:"owner,admin,member,viewer,billing"`
		}{Role: RoleAdmin},
		struct {
			Email string `json:"email" maxLength:"254"`
		}{Email: "jane@example.com"},
		struct {
			Token    string `json:"token" maxLength:"200"`
			Password string `json:"password" maxLength:"1024"`
		}{Token: "pr_5Tg2Hk8Xq1Wz4Nc7Mb0Lp3Fd6Js9Ra", Password: password},
		struct {
			Code string `json:"code" maxLength:"16"`
		}{Code: "492817"},
		struct {
			Password string `json:"password" maxLength:"1024"`
		}{Password: password},
		map[string]string{"status": "sent"},
		map[string]int{"revoked": 3},
		map[string][]string{"recovery_codes": {"k7q2-m9x4", "p3w8-z6n1", "r5t0-v2c7", "h4j9-b8d3", "f1g6-s0l5"}},
	}
}
