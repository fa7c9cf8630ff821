package enduser

import "github.com/abacusbilling/abacus"

// Examples are the values the API reference shows for the end-user
// routes' bodies (httpapi.Server.Example).
func Examples() []any {
	at := exampleTime
	seen := at.Add(3 * 24 * 3600e9)
	name := "Ada Lovelace"
	user := User{ID: "eu_01jbx7k2q9m4r8t6v3w5y0z1ab", TenantID: "ten_01jbx6z8c4e6g8j0l2n4q6s8tv", Email: "ada@example.com", Name: name,
		EmailVerified: true, Locale: "en-GB", TimeZone: "Europe/London", Metadata: map[string]any{"plan_hint": "family"},
		Status: StatusActive, HasPassword: true, CreatedAt: at, UpdatedAt: at, LastSeenAt: &seen}
	app := App{ID: "app_01jbx7m0d4f6h8j0k2m4n6p8qr", TenantID: user.TenantID, Name: "Web", Type: AppPublic,
		ClientID: "cid_ab3kq9m4r8t6v3w5y0z1abcdef", RedirectURIs: []string{"https://app.example.com/callback"}, CreatedAt: at, UpdatedAt: at}
	sess := Session{ID: "ses_01jbx7n3s5v7x9z1b3d5f7h9jk", TenantID: user.TenantID, UserID: user.ID, AppID: app.ID, DeviceName: "Safari on iPhone",
		UserAgent: "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1",
		IP:        "203.0.113.7", CreatedAt: at, LastSeenAt: seen, ExpiresAt: at.Add(90 * 24 * 3600e9)}
	tokens := Tokens{AccessToken: "eyJhbGciOiJFZERTQSIsImtpZCI6ImtleV8wMWpieDcuLi4iLCJ0eXAiOiJhdCtqd3QifQ.eyJzdWIiOiJldV8uLi4ifQ.c2lnbmF0dXJl",
		RefreshToken: "eurt_3kq9m4r8t6v3w5y0z1abcdefghjkmnpqrstvwxyz0123456789ab", TokenType: "Bearer", ExpiresIn: 900}
	verified, status := true, StatusDisabled
	return []any{
		user, app, sess, tokens,
		CreateUserBody{Email: "ada@example.com", Password: "correct horse battery staple", Name: name, EmailVerified: true, Locale: "en-GB"},
		UpdateUserBody{Status: &status, EmailVerified: &verified},
		CreateAppBody{Name: "Web", Type: AppPublic, RedirectURIs: []string{"https://app.example.com/callback"}},
		UpdateAppBody{Name: &[]string{"Web app"}[0]},
		CreatedApp{App: app},
		Settings{Signup: SignupOpen, AllowedEmailDomains: []string{}, AppURL: "https://app.example.com", CustomClaims: map[string]any{"tier": "gold"},
			AccessTokenTTL: 900, AccessTokenAlg: AlgEdDSA, UpdatedAt: &at},
		SettingsBody{Signup: SignupOpen, AppURL: "https://app.example.com", CustomClaims: map[string]any{"tier": "gold"}, AccessTokenTTL: 900, AccessTokenAlg: AlgEdDSA},
		Export{User: user, Sessions: []Session{sess}, ExportedAt: seen},
		IntrospectBody{Token: tokens.AccessToken},
		Introspection{Active: true, Subject: user.ID, ClientID: app.ClientID, SessionID: sess.ID, Issuer: "https://abacus.example.com/oidc/" + user.TenantID,
			ExpiresAt: seen.Unix() + 900, IssuedAt: seen.Unix(), Claims: map[string]any{"org": "org_01jbx7p6w8y0a2c4e6g8j0l2np", "org_role": "owner"}},
		AuthResult{AccessToken: tokens.AccessToken, RefreshToken: tokens.RefreshToken, TokenType: "Bearer", ExpiresIn: 900, SessionID: sess.ID, User: &user},
		SignUpBody{Email: "ada@example.com", Password: "correct horse battery staple", Name: name},
		SignInBody{Email: "ada@example.com", Password: "correct horse battery staple", Scopes: []string{"openid", "email"}},
		MFABody{MFAToken: "mfa_3kq9m4r8t6v3w5y0z1abcdefghjkmnpqrstvwxyz0123456789ab", Code: "492039"},
		RefreshTokenBody{RefreshToken: tokens.RefreshToken},
		SignOutBody{RefreshToken: tokens.RefreshToken},
		EmailBody{Email: "ada@example.com"},
		LinkTokenBody{Token: "eul_3kq9m4r8t6v3w5y0z1abcdefghjkmnpqrstvwxyz0123456789ab"},
		ResetBody{Token: "eul_3kq9m4r8t6v3w5y0z1abcdefghjkmnpqrstvwxyz0123456789ab", Password: "a new long passphrase 42"},
		ChangePasswordBody{CurrentPassword: "correct horse battery staple", NewPassword: "a new long passphrase 42"},
		CodeSignInBody{Email: "ada@example.com", Code: "492039"},
		ProfileBody{Name: &name},
		CodeBody{Code: "492039"},
		DisableMFABody{Password: "correct horse battery staple"},
		RecoveryCodes{RecoveryCodes: []string{"k3q9-m4r8-t6v3", "w5y0-z1ab-cdef"}},
		MySession{Session: sess, Current: true},
		MailSent{Status: "sent"},
		SignedOut{Revoked: 3},
		TOTPEnrollment{Secret: "JBSWY3DPEHPK3PXP", URI: "otpauth://totp/Acme:ada%40example.com?secret=JBSWY3DPEHPK3PXP&issuer=Acme"},
		abacus.ListOf([]Session{sess}, ""),
		SigningKeys{Keys: []KeyInfo{{ID: "key_01jbx7q9a1c3e5g7j9l1n3q5s7", Alg: AlgRS256, CreatedAt: at}, {ID: "key_01jbx7qa2d4f6h8k0m2p4r6t8v", Alg: AlgEdDSA, CreatedAt: at}}},
	}
}
