package enduser

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/httpapi"
)

// The end users' own routes, called by the tenant's front-end. They are
// public in the scope sense: a flow without a session names its app by the
// publishable client id (header Abacus-Client-Id, not a secret), a flow of
// a signed-in user sends the user's access token as a bearer token.

// ClientHeader names the app of an unauthenticated end-user request.
const ClientHeader = "Abacus-Client-Id"

// ClientInput is the app and request details of a public flow.
type ClientInput struct {
	RequestInfo
	ClientID string `header:"Abacus-Client-Id" required:"true" maxLength:"64" doc:"the app's client_id (publishable)"`
}

// AuthResult is what a sign-in step answers: tokens and the user, or the
// second step it needs.
type AuthResult struct {
	AccessToken      string     `json:"access_token,omitempty"`
	RefreshToken     string     `json:"refresh_token,omitempty"`
	IDToken          string     `json:"id_token,omitempty"`
	TokenType        string     `json:"token_type,omitempty"`
	ExpiresIn        int        `json:"expires_in,omitempty"`
	SessionID        string     `json:"session_id,omitempty"`
	User             *User      `json:"user,omitempty"`
	VerificationSent bool       `json:"verification_sent,omitempty" doc:"a verification link was mailed"`
	MFARequired      bool       `json:"mfa_required,omitempty" doc:"send mfa_token and a code to /api/v1/end-user/sign-in/mfa"`
	MFAToken         string     `json:"mfa_token,omitempty"`
	MFAExpiresAt     *time.Time `json:"mfa_expires_at,omitempty"`
}

// SignUpBody is POST /api/v1/end-user/sign-up.
type SignUpBody struct {
	Email    string `json:"email" maxLength:"254"`
	Password string `json:"password" maxLength:"1024" doc:"8 to 128 characters, not a common password"`
	Name     string `json:"name,omitempty" maxLength:"200"`
	Locale   string `json:"locale,omitempty" maxLength:"35"`
	TimeZone string `json:"time_zone,omitempty" maxLength:"64"`
}

// SignInBody is POST /api/v1/end-user/sign-in.
type SignInBody struct {
	Email    string   `json:"email" maxLength:"254"`
	Password string   `json:"password" maxLength:"1024"`
	Scopes   []string `json:"scopes,omitempty" maxItems:"20" doc:"include openid for an ID token"`
}

// MFABody is POST /api/v1/end-user/sign-in/mfa.
type MFABody struct {
	MFAToken string `json:"mfa_token" maxLength:"200"`
	Code     string `json:"code" maxLength:"64" doc:"the authenticator app's current code, or a recovery code"`
}

// RefreshTokenBody carries a refresh token.
type RefreshTokenBody struct {
	RefreshToken string `json:"refresh_token" maxLength:"200"`
}

// SignOutBody is POST /api/v1/end-user/sign-out: the refresh token, or
// nothing with a bearer access token.
type SignOutBody struct {
	RefreshToken string `json:"refresh_token,omitempty" maxLength:"200"`
}

// EmailBody carries an e-mail address.
type EmailBody struct {
	Email string `json:"email" maxLength:"254"`
}

// LinkTokenBody carries an e-mailed token.
type LinkTokenBody struct {
	Token string `json:"token" maxLength:"200"`
}

// ResetBody is POST /api/v1/end-user/password/reset.
type ResetBody struct {
	Token    string `json:"token" maxLength:"200"`
	Password string `json:"password" maxLength:"1024"`
}

// ChangePasswordBody is POST /api/v1/end-user/password/change.
type ChangePasswordBody struct {
	CurrentPassword string `json:"current_password,omitempty" maxLength:"1024" doc:"omit only when the account has no password yet"`
	NewPassword     string `json:"new_password" maxLength:"1024"`
}

// CodeSignInBody is POST /api/v1/end-user/code/sign-in.
type CodeSignInBody struct {
	Email string `json:"email" maxLength:"254"`
	Code  string `json:"code" maxLength:"12" doc:"the 6-digit code mailed with the magic link"`
}

// ProfileBody is PATCH /api/v1/end-user/me.
type ProfileBody struct {
	Name      *string `json:"name,omitempty" maxLength:"200"`
	Locale    *string `json:"locale,omitempty" maxLength:"35"`
	TimeZone  *string `json:"time_zone,omitempty" maxLength:"64"`
	AvatarURL *string `json:"avatar_url,omitempty" maxLength:"2048"`
}

// CodeBody carries a TOTP code.
type CodeBody struct {
	Code string `json:"code" maxLength:"64"`
}

// DisableMFABody is POST /api/v1/end-user/me/mfa/totp/disable.
type DisableMFABody struct {
	Password string `json:"password,omitempty" maxLength:"1024"`
	Code     string `json:"code,omitempty" maxLength:"64" doc:"for an account without a password: a current or recovery code"`
}

// RecoveryCodes are shown once, when MFA is turned on.
type RecoveryCodes struct {
	RecoveryCodes []string `json:"recovery_codes"`
}

// MySession is a session in the signed-in user's own list.
type MySession struct {
	Session
	Current bool `json:"current" doc:"the session of the token making this request"`
}

// MailSent acknowledges a request that mails something (or, to stay
// enumeration-safe, answers as if it had).
type MailSent struct {
	Status string `json:"status" example:"sent"`
}

// SignedOut says how many sessions a sign-out ended.
type SignedOut struct {
	Revoked int `json:"revoked"`
}

// signedIn turns a sign-in step's outcome into tokens for app.
func (s *Service) signedIn(ctx context.Context, app App, sess Session, u User, scopes []string, err error) (*httpapi.Body[AuthResult], error) {
	var mfa *MFARequired
	if errors.As(err, &mfa) {
		exp := mfa.ExpiresAt
		return &httpapi.Body[AuthResult]{Body: AuthResult{MFARequired: true, MFAToken: mfa.Challenge, MFAExpiresAt: &exp}}, nil
	}
	if err != nil {
		return nil, err
	}
	tok, err := s.IssueTokens(ctx, sess, app, scopes, "")
	if err != nil {
		return nil, err
	}
	return &httpapi.Body[AuthResult]{Body: AuthResult{AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken, IDToken: tok.IDToken,
		TokenType: tok.TokenType, ExpiresIn: tok.ExpiresIn, SessionID: sess.ID, User: &u}}, nil
}

// appFor returns the app a public request names, and its tenant on ctx.
func (s *Service) appFor(ctx context.Context, clientID string) (context.Context, App, error) {
	a, err := s.AppForClient(ctx, clientID)
	if err != nil {
		return ctx, App{}, err
	}
	return systemCtx(ctx, a.TenantID), a, nil
}

type clientRequest interface{ clientID() string }

func (c ClientInput) clientID() string { return c.ClientID }

// forApp adapts the handler of a flow to a route: it finds the app the
// request names (Abacus-Client-Id) and puts its tenant on ctx.
func forApp[I clientRequest, O any](svc *Service, h func(ctx context.Context, app App, in I) (*O, error)) func(context.Context, I) (*O, error) {
	return func(ctx context.Context, in I) (*O, error) {
		ctx, app, err := svc.appFor(ctx, in.clientID())
		if err != nil {
			return nil, err
		}
		return h(ctx, app, in)
	}
}

// asUser adapts the handler of a signed-in end user's route: it refuses
// requests without an end user's access token.
func asUser[I, O any](h func(ctx context.Context, tenant, user string, in I) (*O, error)) func(context.Context, I) (*O, error) {
	return func(ctx context.Context, in I) (*O, error) {
		tenant, user, err := signedInUser(ctx)
		if err != nil {
			return nil, err
		}
		return h(ctx, tenant, user, in)
	}
}

// RegisterPublicRoutes adds the end users' own routes under
// /api/v1/end-user/.
func RegisterPublicRoutes(s *httpapi.Server, svc *Service) {
	registerSignInRoutes(s, svc)
	registerLinkRoutes(s, svc)
	registerMeRoutes(s, svc)
}

func publicOp(id, method, path, summary string, status int, desc string) huma.Operation {
	return huma.Operation{OperationID: id, Method: method, Path: path, Summary: summary, Description: desc,
		Tags: []string{"End-user sign-in"}, DefaultStatus: status,
		Errors: []int{http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden, http.StatusTooManyRequests}}
}

func registerSignInRoutes(s *httpapi.Server, svc *Service) {
	pub := httpapi.ScopePublic
	httpapi.Register(s, publicOp("end-user-sign-up", "POST", "/api/v1/end-user/sign-up", "Sign up", 201,
		"Creates an end user in the app's tenant when its policy allows, mails a verification link and signs in."),
		pub, forApp(svc, func(ctx context.Context, app App, in *struct {
			ClientInput
			Body SignUpBody
		}) (*httpapi.Body[AuthResult], error) {
			sess, u, err := svc.SignUp(ctx, app, SignUpInput(in.Body), svc.device(in.RequestInfo))
			if errors.Is(err, ErrVerifyEmail) {
				return &httpapi.Body[AuthResult]{Body: AuthResult{User: &u, VerificationSent: true}}, nil
			}
			out, err := svc.signedIn(ctx, app, sess, u, nil, err)
			if out != nil {
				out.Body.VerificationSent = true
			}
			return out, err
		}))
	httpapi.Register(s, publicOp("end-user-sign-in", "POST", "/api/v1/end-user/sign-in", "Sign in with e-mail and password", 200,
		"Answers tokens, or mfa_required with an mfa_token when the account has two-factor authentication."),
		pub, forApp(svc, func(ctx context.Context, app App, in *struct {
			ClientInput
			Body SignInBody
		}) (*httpapi.Body[AuthResult], error) {
			sess, u, err := svc.SignIn(ctx, app.TenantID, in.Body.Email, in.Body.Password, svc.device(in.RequestInfo), app.ID)
			return svc.signedIn(ctx, app, sess, u, in.Body.Scopes, err)
		}))
	httpapi.Register(s, publicOp("end-user-sign-in-mfa", "POST", "/api/v1/end-user/sign-in/mfa", "Finish a sign-in with a second factor", 200, ""),
		pub, forApp(svc, func(ctx context.Context, app App, in *struct {
			ClientInput
			Body MFABody
		}) (*httpapi.Body[AuthResult], error) {
			sess, u, err := svc.SignInMFA(ctx, app.TenantID, in.Body.MFAToken, in.Body.Code, svc.device(in.RequestInfo))
			return svc.signedIn(ctx, app, sess, u, nil, err)
		}))
	httpapi.Register(s, publicOp("end-user-refresh", "POST", "/api/v1/end-user/token/refresh", "Refresh the tokens", 200,
		"Rotates the refresh token. A refresh token used twice signs its session out (refresh_token_reused)."),
		pub, forApp(svc, func(ctx context.Context, app App, in *struct {
			ClientInput
			Body RefreshTokenBody
		}) (*httpapi.Body[Tokens], error) {
			return httpapi.Reply(svc.Refresh(ctx, app.TenantID, in.Body.RefreshToken, app.ClientID))
		}))
	httpapi.Register(s, publicOp("end-user-sign-out", "POST", "/api/v1/end-user/sign-out", "Sign out", 204,
		"Ends the session of the refresh token given, or of the bearer access token."),
		pub, func(ctx context.Context, in *struct {
			RequestInfo
			ClientID string       `header:"Abacus-Client-Id" maxLength:"64" doc:"the app's client_id; needed with a refresh token"`
			Body     *SignOutBody `required:"false"`
		}) (*struct{}, error) {
			if tenant, _, err := signedInUser(ctx); err == nil {
				return nil, svc.SignOut(ctx, tenant, in.sid)
			}
			if in.Body == nil || in.Body.RefreshToken == "" {
				return nil, abacus.Invalid("refresh_token_required", "send the refresh token, or the access token as a bearer token").
					WithField("refresh_token", "required without a bearer token")
			}
			ctx, app, err := svc.appFor(ctx, in.ClientID)
			if err != nil {
				return nil, err
			}
			return nil, svc.SignOutRefresh(ctx, app.TenantID, in.Body.RefreshToken)
		})
	httpapi.Register(s, publicOp("end-user-sign-out-everywhere", "POST", "/api/v1/end-user/sign-out-everywhere", "Sign out on every device", 200, ""),
		pub, asUser(func(ctx context.Context, tenant, user string, _ *struct{}) (*httpapi.Body[SignedOut], error) {
			n, err := svc.SignOutEverywhere(ctx, tenant, user)
			return httpapi.Reply(SignedOut{Revoked: n}, err)
		}))
}

func registerLinkRoutes(s *httpapi.Server, svc *Service) {
	pub := httpapi.ScopePublic
	httpapi.Register(s, publicOp("end-user-verify-email", "POST", "/api/v1/end-user/verify-email", "Verify the e-mail address", 200,
		"With the token of the e-mailed link (single use, 48 hours)."),
		pub, forApp(svc, func(ctx context.Context, app App, in *struct {
			ClientInput
			Body LinkTokenBody
		}) (*httpapi.Body[User], error) {
			return httpapi.Reply(svc.VerifyEmail(ctx, app.TenantID, in.Body.Token))
		}))
	httpapi.Register(s, publicOp("end-user-resend-verification", "POST", "/api/v1/end-user/verify-email/resend", "Resend the verification e-mail", 202, ""),
		pub, asUser(func(ctx context.Context, tenant, user string, in *struct{ RequestInfo }) (*httpapi.Body[MailSent], error) {
			return httpapi.Reply(MailSent{Status: "sent"}, svc.ResendVerification(ctx, tenant, user, in.sid))
		}))
	httpapi.Register(s, publicOp("end-user-forgot-password", "POST", "/api/v1/end-user/password/forgot", "Ask for a password reset link", 202,
		"Mails a reset link when the address has an account; the answer is the same when it has none."),
		pub, forApp(svc, func(ctx context.Context, app App, in *struct {
			ClientInput
			Body EmailBody
		}) (*httpapi.Body[MailSent], error) {
			return httpapi.Reply(MailSent{Status: "sent"}, svc.ForgotPassword(ctx, app, in.Body.Email, svc.device(in.RequestInfo)))
		}))
	httpapi.Register(s, publicOp("end-user-reset-password", "POST", "/api/v1/end-user/password/reset", "Set a new password with a reset link", 200,
		"Signs every session out."),
		pub, forApp(svc, func(ctx context.Context, app App, in *struct {
			ClientInput
			Body ResetBody
		}) (*httpapi.Body[User], error) {
			return httpapi.Reply(svc.ResetPassword(ctx, app.TenantID, in.Body.Token, in.Body.Password))
		}))
	httpapi.Register(s, publicOp("end-user-magic-link", "POST", "/api/v1/end-user/magic-link", "Mail a magic sign-in link and code", 202,
		"Mails a link and a 6-digit code (15 minutes, single use) when the address has an account; the answer is the same when it has none."),
		pub, forApp(svc, func(ctx context.Context, app App, in *struct {
			ClientInput
			Body EmailBody
		}) (*httpapi.Body[MailSent], error) {
			return httpapi.Reply(MailSent{Status: "sent"}, svc.StartPasswordless(ctx, app, in.Body.Email, svc.device(in.RequestInfo)))
		}))
	httpapi.Register(s, publicOp("end-user-magic-link-sign-in", "POST", "/api/v1/end-user/magic-link/sign-in", "Sign in with a magic link", 200, ""),
		pub, forApp(svc, func(ctx context.Context, app App, in *struct {
			ClientInput
			Body LinkTokenBody
		}) (*httpapi.Body[AuthResult], error) {
			sess, u, err := svc.SignInWithLink(ctx, app.TenantID, in.Body.Token, svc.device(in.RequestInfo))
			if err == nil && sess.AppID != app.ID {
				app, err = svc.App(ctx, sess.AppID)
			}
			return svc.signedIn(ctx, app, sess, u, nil, err)
		}))
	httpapi.Register(s, publicOp("end-user-code-sign-in", "POST", "/api/v1/end-user/code/sign-in", "Sign in with a one-time code", 200, ""),
		pub, forApp(svc, func(ctx context.Context, app App, in *struct {
			ClientInput
			Body CodeSignInBody
		}) (*httpapi.Body[AuthResult], error) {
			sess, u, err := svc.SignInWithCode(ctx, app, in.Body.Email, in.Body.Code, svc.device(in.RequestInfo))
			return svc.signedIn(ctx, app, sess, u, nil, err)
		}))
}

func registerMeRoutes(s *httpapi.Server, svc *Service) {
	pub := httpapi.ScopePublic
	httpapi.Register(s, publicOp("end-user-me", "GET", "/api/v1/end-user/me", "Who am I", 200, "The signed-in end user."),
		pub, asUser(func(ctx context.Context, tenant, user string, _ *struct{}) (*httpapi.Body[User], error) {
			u, err := svc.userIn(ctx, svc.db, tenant, user)
			return httpapi.Reply(u.User, err)
		}))
	httpapi.Register(s, publicOp("end-user-update-me", "PATCH", "/api/v1/end-user/me", "Update my profile", 200, ""),
		pub, asUser(func(ctx context.Context, tenant, user string, in *struct{ Body ProfileBody }) (*httpapi.Body[User], error) {
			return httpapi.Reply(svc.UpdateProfile(ctx, tenant, user, ProfilePatch(in.Body)))
		}))
	httpapi.Register(s, publicOp("end-user-my-sessions", "GET", "/api/v1/end-user/me/sessions", "List my sessions (devices)", 200, ""),
		pub, asUser(func(ctx context.Context, tenant, user string, in *struct{ RequestInfo }) (*httpapi.Body[abacus.List[MySession]], error) {
			list, err := svc.ListSessions(systemCtx(ctx, tenant), user)
			out := make([]MySession, len(list))
			for i, sess := range list {
				out[i] = MySession{Session: sess, Current: sess.ID == in.sid}
			}
			return httpapi.Reply(abacus.ListOf(out, ""), err)
		}))
	httpapi.Register(s, publicOp("end-user-revoke-my-session", "DELETE", "/api/v1/end-user/me/sessions/{id}", "Sign one of my sessions out", 204, ""),
		pub, asUser(func(ctx context.Context, tenant, user string, in *IDPath) (*struct{}, error) {
			return nil, svc.RevokeUserSession(systemCtx(ctx, tenant), user, in.ID)
		}))
	httpapi.Register(s, publicOp("end-user-change-password", "POST", "/api/v1/end-user/password/change", "Change my password", 204,
		"Signs every other session out."),
		pub, asUser(func(ctx context.Context, tenant, user string, in *struct {
			RequestInfo
			Body ChangePasswordBody
		}) (*struct{}, error) {
			return nil, svc.ChangePassword(ctx, tenant, user, in.sid, in.Body.CurrentPassword, in.Body.NewPassword, svc.device(in.RequestInfo))
		}))
	registerMFARoutes(s, svc)
}

func registerMFARoutes(s *httpapi.Server, svc *Service) {
	pub := httpapi.ScopePublic
	httpapi.Register(s, publicOp("end-user-enroll-totp", "POST", "/api/v1/end-user/me/mfa/totp/enroll", "Start TOTP enrolment", 200,
		"A new secret for the authenticator app; MFA is on once confirmed."),
		pub, asUser(func(ctx context.Context, tenant, user string, _ *struct{}) (*httpapi.Body[TOTPEnrollment], error) {
			return httpapi.Reply(svc.EnrollTOTP(ctx, tenant, user))
		}))
	httpapi.Register(s, publicOp("end-user-confirm-totp", "POST", "/api/v1/end-user/me/mfa/totp/confirm", "Confirm TOTP and turn MFA on", 200,
		"Answers 10 recovery codes, shown once."),
		pub, asUser(func(ctx context.Context, tenant, user string, in *struct{ Body CodeBody }) (*httpapi.Body[RecoveryCodes], error) {
			codes, err := svc.ConfirmTOTP(ctx, tenant, user, in.Body.Code)
			return httpapi.Reply(RecoveryCodes{RecoveryCodes: codes}, err)
		}))
	httpapi.Register(s, publicOp("end-user-disable-totp", "POST", "/api/v1/end-user/me/mfa/totp/disable", "Turn MFA off", 204,
		"Needs the password (or, without one, a current or recovery code)."),
		pub, asUser(func(ctx context.Context, tenant, user string, in *struct {
			RequestInfo
			Body DisableMFABody
		}) (*struct{}, error) {
			return nil, svc.DisableTOTP(ctx, tenant, user, in.Body.Password, in.Body.Code, svc.device(in.RequestInfo))
		}))
}
