package identity

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/httpapi"
)

// Meta captures what identity needs of the HTTP request besides the body:
// the TCP peer and forwarding headers (the client IP is resolved from
// them, honouring the headers only from trusted proxies: WithClientIP),
// the User-Agent, and the session of a user's access token.
type Meta struct {
	req     request
	session string
	secure  bool // the request came over TLS: cookies set in answer are Secure
}

// Resolve implements huma.Resolver.
func (m *Meta) Resolve(ctx huma.Context) []error {
	h := http.Header{}
	ctx.EachHeader(func(name, value string) {
		if k := http.CanonicalHeaderKey(name); slices.Contains(forwardingHeaders, k) {
			h.Add(k, value)
		}
	})
	m.req = newRequest(ctx.RemoteAddr(), h, ctx.Header("User-Agent"))
	if h := ctx.Header("Authorization"); len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		m.session = sessionOfJWT(strings.TrimSpace(h[7:]))
	} else if c, err := http.ParseCookie(ctx.Header("Cookie")); err == nil {
		// a browser session (browser.go): the access token is a cookie
		for _, k := range c {
			if k.Name == httpapi.AccessCookie {
				m.session = sessionOfJWT(k.Value)
			}
		}
	}
	m.secure = ctx.TLS() != nil || strings.EqualFold(ctx.Header("X-Forwarded-Proto"), "https")
	return nil
}

func (m *Meta) ctx(ctx context.Context) context.Context {
	ctx = withRequest(ctx, m.req)
	return context.WithValue(ctx, sessionKey{}, m.session)
}

// sessionOfJWT reads the session id from an (already verified) access
// token's jti, "<session>.<jti>".
func sessionOfJWT(tok string) string {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return ""
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return ""
	}
	var c struct {
		JTI string `json:"jti"`
	}
	_ = json.Unmarshal(b, &c)
	s, _, _ := strings.Cut(c.JTI, ".")
	if !strings.HasPrefix(s, "ses_") {
		return ""
	}
	return s
}

type refreshBody struct {
	RefreshToken string `json:"refresh_token" maxLength:"200"`
}

type tokenBody struct {
	Token string `json:"token" maxLength:"200" doc:"the token from the e-mailed link"`
}

type out[T any] struct{ Body T }

func body[T any](v T) *out[T] { return &out[T]{Body: v} }

type idPath struct {
	Meta
	ID string `path:"id"`
}

type userPath struct {
	Meta
	UserID string `path:"user_id" doc:"the member's user id (usr_…)"`
}

func registerAuthRoutes(s *httpapi.Server, svc *Service) {
	pub, self, admin := httpapi.ScopePublic, abacus.ScopeRead, abacus.ScopeAdmin
	tags := []string{"Authentication"}
	op := func(id, method, path, summary string, status int, tags []string, desc string) huma.Operation {
		return huma.Operation{OperationID: id, Method: method, Path: path, Summary: summary, Tags: tags, DefaultStatus: status, Description: desc}
	}

	httpapi.Register(s, op("signup", "POST", "/api/v1/auth/signup", "Sign up", 201, tags,
		"Creates a user and an organization (tenant) with the user as owner, and e-mails a verification link; with invitation_token, "+
			"joins the inviting organization instead. identity.signup may restrict it to invitations (403 signup_invite_only) or close it (403 signup_closed). Rate-limited per client IP."),
		pub, func(ctx context.Context, in *struct {
			Meta
			Body SignupInput
		}) (*out[SignupResult], error) {
			r, err := svc.Signup(in.ctx(ctx), in.Body)
			return body(r), err
		})
	httpapi.Register(s, op("login", "POST", "/api/v1/auth/login", "Sign in", 200, tags,
		"Checks e-mail and password (and totp_code when MFA is on) and returns an access token (JWT, 15 minutes) and a refresh token. "+
			"Failed attempts slow down progressively per account and per IP: 429 with Retry-After, never a permanent lockout."),
		pub, func(ctx context.Context, in *struct {
			Meta
			Body LoginInput
		}) (*out[Tokens], error) {
			t, err := svc.Login(in.ctx(ctx), in.Body)
			return body(t), err
		})
	httpapi.Register(s, op("refresh", "POST", "/api/v1/auth/refresh", "Refresh tokens", 200, tags,
		"Exchanges a refresh token for new tokens; the presented refresh token stops working. Presenting it again revokes the whole session."),
		pub, func(ctx context.Context, in *struct {
			Meta
			Body refreshBody
		}) (*out[Tokens], error) {
			t, err := svc.Refresh(in.ctx(ctx), in.Body.RefreshToken)
			return body(t), err
		})
	httpapi.Register(s, op("logout", "POST", "/api/v1/auth/logout", "Sign out", 204, tags, "Ends the refresh token's session. Idempotent."),
		pub, func(ctx context.Context, in *struct {
			Meta
			Body refreshBody
		}) (*struct{}, error) {
			return nil, svc.Logout(in.ctx(ctx), in.Body.RefreshToken)
		})
	httpapi.Register(s, op("forgot-password", "POST", "/api/v1/auth/password/forgot", "Ask for a password reset link", 202, tags,
		"E-mails a reset link (valid 1 hour) if an account has this address. The answer is the same either way."),
		pub, func(ctx context.Context, in *struct {
			Meta
			Body struct {
				Email string `json:"email" maxLength:"254"`
			}
		}) (*out[map[string]string], error) {
			if err := svc.ForgotPassword(in.ctx(ctx), in.Body.Email); err != nil {
				return nil, err
			}
			return body(map[string]string{"status": "if an account has this address, a reset link is on its way"}), nil
		})
	httpapi.Register(s, op("reset-password", "POST", "/api/v1/auth/password/reset", "Reset the password", 204, tags,
		"Sets a new password with the e-mailed token and signs the account out everywhere."),
		pub, func(ctx context.Context, in *struct {
			Meta
			Body struct {
				Token    string `json:"token" maxLength:"200"`
				Password string `json:"password" maxLength:"1024"`
			}
		}) (*struct{}, error) {
			return nil, svc.ResetPassword(in.ctx(ctx), in.Body.Token, in.Body.Password)
		})
	httpapi.Register(s, op("verify-email", "POST", "/api/v1/auth/verify-email", "Verify the e-mail address", 200, tags,
		"Marks the address verified with the e-mailed token (single use, 48 hours)."),
		pub, func(ctx context.Context, in *struct {
			Meta
			Body tokenBody
		}) (*out[User], error) {
			u, err := svc.VerifyEmail(in.ctx(ctx), in.Body.Token)
			return body(u), err
		})
	httpapi.Register(s, op("resend-verification", "POST", "/api/v1/auth/verify-email/resend", "Resend the verification e-mail", 202, tags,
		"Mails a new verification link to the signed-in user."),
		self, func(ctx context.Context, in *struct{ Meta }) (*out[map[string]string], error) {
			if err := svc.ResendVerification(in.ctx(ctx)); err != nil {
				return nil, err
			}
			return body(map[string]string{"status": "sent"}), nil
		})

	// The caller's own account.
	me := []string{"My account"}
	httpapi.Register(s, op("me", "GET", "/api/v1/me", "Who am I", 200, me, "The caller: a user with their memberships, or an API key or client with its scopes."),
		self, func(ctx context.Context, in *struct{ Meta }) (*out[Me], error) {
			m, err := svc.Me(in.ctx(ctx))
			return body(m), err
		})
	httpapi.Register(s, op("list-sessions", "GET", "/api/v1/me/sessions", "List my sessions", 200, me, "The signed-in user's active sessions in every tenant."),
		self, func(ctx context.Context, in *struct{ Meta }) (*out[abacus.List[Session]], error) {
			ss, err := svc.ListSessions(in.ctx(ctx))
			return body(abacus.ListOf(ss, "")), err
		})
	httpapi.Register(s, op("revoke-session", "DELETE", "/api/v1/me/sessions/{id}", "Revoke one of my sessions", 204, me, ""),
		self, func(ctx context.Context, in *idPath) (*struct{}, error) {
			return nil, svc.RevokeSession(in.ctx(ctx), in.ID)
		})
	httpapi.Register(s, op("revoke-all-sessions", "POST", "/api/v1/me/sessions/revoke-all", "Sign out everywhere", 200, me,
		"Ends every session of the signed-in user, this one included; access tokens stop working within 10 seconds."),
		self, func(ctx context.Context, in *struct{ Meta }) (*out[map[string]int], error) {
			n, err := svc.RevokeAllSessions(in.ctx(ctx))
			return body(map[string]int{"revoked": n}), err
		})
	httpapi.Register(s, op("enroll-totp", "POST", "/api/v1/me/mfa/totp/enroll", "Start TOTP enrolment", 200, me,
		"Returns a new secret and its otpauth:// provisioning URI. MFA is on only after confirming with a code."),
		self, func(ctx context.Context, in *struct{ Meta }) (*out[TOTPEnrollment], error) {
			e, err := svc.EnrollTOTP(in.ctx(ctx))
			return body(e), err
		})
	httpapi.Register(s, op("confirm-totp", "POST", "/api/v1/me/mfa/totp/confirm", "Confirm TOTP and turn MFA on", 200, me,
		"Checks a code from the app and returns 10 single-use recovery codes, shown only in this response."),
		self, func(ctx context.Context, in *struct {
			Meta
			Body struct {
				Code string `json:"code" maxLength:"16"`
			}
		}) (*out[map[string][]string], error) {
			codes, err := svc.ConfirmTOTP(in.ctx(ctx), in.Body.Code)
			return body(map[string][]string{"recovery_codes": codes}), err
		})
	httpapi.Register(s, op("disable-totp", "POST", "/api/v1/me/mfa/totp/disable", "Turn MFA off", 204, me, "Requires the current password."),
		self, func(ctx context.Context, in *struct {
			Meta
			Body struct {
				Password string `json:"password" maxLength:"1024"`
			}
		}) (*struct{}, error) {
			return nil, svc.DisableTOTP(in.ctx(ctx), in.Body.Password)
		})

	// Members and invitations (admin).
	mem := []string{"Members"}
	httpapi.Register(s, op("list-members", "GET", "/api/v1/members", "List members", 200, mem, ""),
		admin, func(ctx context.Context, in *struct{ Meta }) (*out[abacus.List[Member]], error) {
			ms, err := svc.ListMembers(in.ctx(ctx))
			return body(abacus.ListOf(ms, "")), err
		})
	httpapi.Register(s, op("update-member", "PATCH", "/api/v1/members/{user_id}", "Change a member's role", 200, mem,
		"Only an owner may grant the owner role or change an owner; the last owner cannot be demoted (409 last_owner)."),
		admin, func(ctx context.Context, in *struct {
			Meta
			UserID string `path:"user_id" doc:"the member's user id (usr_…)"`
			Body   struct {
				Role Role `json:"role" enum:"owner,admin,member,viewer,billing"`
			}
		}) (*out[Member], error) {
			m, err := svc.UpdateMemberRole(in.ctx(ctx), in.UserID, in.Body.Role)
			return body(m), err
		})
	httpapi.Register(s, op("remove-member", "DELETE", "/api/v1/members/{user_id}", "Remove a member", 204, mem,
		"Ends the member's sessions in this tenant. The last owner cannot be removed (409 last_owner)."),
		admin, func(ctx context.Context, in *userPath) (*struct{}, error) {
			return nil, svc.RemoveMember(in.ctx(ctx), in.UserID)
		})
	httpapi.Register(s, op("create-invitation", "POST", "/api/v1/invitations", "Invite someone", 201, mem,
		"E-mails a single-use link valid for 7 days that adds the invitee with the role."),
		admin, func(ctx context.Context, in *struct {
			Meta
			Body InvitationInput
		}) (*out[Invitation], error) {
			inv, err := svc.CreateInvitation(in.ctx(ctx), in.Body)
			return body(inv), err
		})
	httpapi.Register(s, op("list-invitations", "GET", "/api/v1/invitations", "List invitations", 200, mem, ""),
		admin, func(ctx context.Context, in *struct{ Meta }) (*out[abacus.List[Invitation]], error) {
			is, err := svc.ListInvitations(in.ctx(ctx))
			return body(abacus.ListOf(is, "")), err
		})
	httpapi.Register(s, op("revoke-invitation", "DELETE", "/api/v1/invitations/{id}", "Revoke an invitation", 200, mem, ""),
		admin, func(ctx context.Context, in *idPath) (*out[Invitation], error) {
			inv, err := svc.RevokeInvitation(in.ctx(ctx), in.ID)
			return body(inv), err
		})
	httpapi.Register(s, op("accept-invitation", "POST", "/api/v1/invitations/accept", "Accept an invitation", 200, mem,
		"Creates the membership; creates the account too (with password) when the invitee has none. Rate-limited per client IP."),
		pub, func(ctx context.Context, in *struct {
			Meta
			Body AcceptInput
		}) (*out[Accepted], error) {
			a, err := svc.AcceptInvitation(in.ctx(ctx), in.Body)
			return body(a), err
		})

	// OAuth2 clients (admin) and the token endpoint.
	oa := []string{"OAuth clients"}
	httpapi.Register(s, op("create-oauth-client", "POST", "/api/v1/oauth-clients", "Create an OAuth client", 201, oa,
		"A machine credential for POST /oauth/token (client credentials). The secret is in this response only."),
		admin, func(ctx context.Context, in *struct {
			Meta
			Body ClientInput
		}) (*out[createdClient], error) {
			c, secret, err := svc.CreateClient(in.ctx(ctx), in.Body)
			return body(createdClient{Client: c, ClientSecret: secret}), err
		})
	httpapi.Register(s, op("list-oauth-clients", "GET", "/api/v1/oauth-clients", "List OAuth clients", 200, oa, ""),
		admin, func(ctx context.Context, in *struct{ Meta }) (*out[abacus.List[Client]], error) {
			cs, err := svc.ListClients(in.ctx(ctx))
			return body(abacus.ListOf(cs, "")), err
		})
	httpapi.Register(s, op("get-oauth-client", "GET", "/api/v1/oauth-clients/{id}", "Get an OAuth client", 200, oa, ""),
		admin, func(ctx context.Context, in *idPath) (*out[Client], error) {
			c, err := svc.GetClient(in.ctx(ctx), in.ID)
			return body(c), err
		})
	httpapi.Register(s, op("revoke-oauth-client", "DELETE", "/api/v1/oauth-clients/{id}", "Revoke an OAuth client", 200, oa,
		"Its tokens stop working within 10 seconds."),
		admin, func(ctx context.Context, in *idPath) (*out[Client], error) {
			c, err := svc.RevokeClient(in.ctx(ctx), in.ID)
			return body(c), err
		})
	s.Handle("POST /oauth/token", pub, http.HandlerFunc(svc.tokenHandler))
	s.Handle("GET /.well-known/jwks.json", pub, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := svc.JWKS(r.Context())
		if err != nil {
			httpapi.WriteError(w, r, svc.log, err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age=300")
		_, _ = w.Write(b)
	}))

	// Audit log and mail outbox (admin).
	httpapi.Register(s, op("list-audit-events", "GET", "/api/v1/audit-events", "List audit events", 200, []string{"Audit"},
		"Newest first. Filter by action, actor_id, target_id and time; page with limit and cursor."),
		admin, func(ctx context.Context, in *struct {
			Meta
			Action   string    `query:"action"`
			ActorID  string    `query:"actor_id"`
			TargetID string    `query:"target_id"`
			Since    time.Time `query:"since" doc:"RFC 3339; inclusive"`
			Until    time.Time `query:"until" doc:"RFC 3339; exclusive"`
			Limit    int       `query:"limit" minimum:"0" maximum:"200"`
			Cursor   string    `query:"cursor"`
		}) (*out[abacus.List[AuditEvent]], error) {
			es, next, err := svc.ListAuditEvents(in.ctx(ctx), AuditFilter{Action: in.Action, ActorID: in.ActorID, TargetID: in.TargetID,
				Since: in.Since, Until: in.Until, Limit: in.Limit, Cursor: in.Cursor})
			return body(abacus.ListOf(es, next)), err
		})
	httpapi.Register(s, op("list-mail-outbox", "GET", "/api/v1/mail-outbox", "List outgoing mail", 200, []string{"Audit"},
		"Mail identity sent or queued. Without smtp.url (development) messages are only kept here, with their links, so a developer can finish every flow."),
		admin, func(ctx context.Context, in *struct {
			Meta
			Limit  int    `query:"limit" minimum:"0" maximum:"200"`
			Cursor string `query:"cursor"`
		}) (*out[abacus.List[MailMessage]], error) {
			ms, next, err := svc.ListMail(in.ctx(ctx), in.Limit, in.Cursor)
			return body(abacus.ListOf(ms, next)), err
		})
}

type createdClient struct {
	Client
	ClientSecret string `json:"client_secret" doc:"shown only in this response; store it now"`
}
