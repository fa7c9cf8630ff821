package enduser

import (
	"context"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/outbox"
)

// UserEvent is the payload of the events about an end user's account.
// It never carries a secret.
type UserEvent struct {
	EndUserID     string `json:"end_user_id"`
	Email         string `json:"email,omitempty" doc:"absent once the user's personal data is erased"`
	Name          string `json:"name,omitempty"`
	EmailVerified bool   `json:"email_verified"`
	Status        string `json:"status" enum:"active,disabled,deleted"`
	Actor         Actor  `json:"actor"`
}

// Actor is who made a change: the end user themself, or the tenant's
// staff (a user or an API key) through the management API, or the system.
type Actor struct {
	Type string `json:"type" enum:"end_user,user,api_key,client,system"`
	ID   string `json:"id"`
}

// SignInEvent is the payload of end_user.signed_in: the new session and
// its device.
type SignInEvent struct {
	EndUserID  string `json:"end_user_id"`
	SessionID  string `json:"session_id"`
	AppID      string `json:"app_id,omitempty"`
	Method     string `json:"method" enum:"password,mfa,magic_link,code,sign_up,oidc"`
	DeviceName string `json:"device_name"`
	UserAgent  string `json:"user_agent"`
	IP         string `json:"ip"`
	NewDevice  bool   `json:"new_device" doc:"no earlier session of the user had this device name"`
}

// SignInFailedEvent is the payload of end_user.sign_in_failed; it is
// recorded only for e-mails that belong to an end user.
type SignInFailedEvent struct {
	EndUserID string `json:"end_user_id"`
	Reason    string `json:"reason" enum:"password,mfa,disabled"`
	AppID     string `json:"app_id,omitempty"`
	UserAgent string `json:"user_agent"`
	IP        string `json:"ip"`
}

// SessionRevokedEvent is the payload of end_user.session_revoked.
type SessionRevokedEvent struct {
	EndUserID string `json:"end_user_id"`
	SessionID string `json:"session_id"`
	Reason    string `json:"reason" enum:"sign_out,revoked,refresh_reused,device_limit,user_disabled,user_deleted,password_changed,sign_out_everywhere"`
	Actor     Actor  `json:"actor"`
}

// End-user domain events (see outbox.Define).
var (
	SignedUp        = outbox.Define[UserEvent]("end_user.signed_up", 1, "end_user", "An end user signed up, or staff created one.")
	SignedIn        = outbox.Define[SignInEvent]("end_user.signed_in", 1, "end_user", "An end user signed in: a new session on a device.")
	SignInFailed    = outbox.Define[SignInFailedEvent]("end_user.sign_in_failed", 1, "end_user", "A sign-in to an existing end user's account failed.")
	PasswordChanged = outbox.Define[UserEvent]("end_user.password_changed", 1, "end_user", "An end user changed or reset their password.")
	MFAEnabled      = outbox.Define[UserEvent]("end_user.mfa_enabled", 1, "end_user", "An end user turned on two-factor authentication.")
	MFADisabled     = outbox.Define[UserEvent]("end_user.mfa_disabled", 1, "end_user", "An end user's two-factor authentication was turned off.")
	Disabled        = outbox.Define[UserEvent]("end_user.disabled", 1, "end_user", "Staff disabled an end user: every session is signed out.")
	Enabled         = outbox.Define[UserEvent]("end_user.enabled", 1, "end_user", "Staff enabled a disabled end user again.")
	Deleted         = outbox.Define[UserEvent]("end_user.deleted", 1, "end_user", "An end user was deleted and their personal data erased.")
	SessionRevoked  = outbox.Define[SessionRevokedEvent]("end_user.session_revoked", 1, "end_user", "An end user's session was signed out.")
)

// actorOf names who is calling from the principal on ctx; public flows
// (a system principal) act as the end user.
func actorOf(ctx context.Context, userID string) Actor {
	p := abacus.PrincipalFrom(ctx)
	if p == nil || p.Kind == "system" || p.Kind == "end_user" {
		return Actor{Type: "end_user", ID: userID}
	}
	return Actor{Type: p.Kind, ID: p.ID}
}

func userEvent(ctx context.Context, u User) UserEvent {
	return UserEvent{EndUserID: u.ID, Email: u.Email, Name: u.Name, EmailVerified: u.EmailVerified, Status: u.Status, Actor: actorOf(ctx, u.ID)}
}

// recordUser records a UserEvent kind about u in tx, and in the audit log
// when staff did it.
func (s *Service) recordUser(ctx context.Context, tx *db.Tx, k outbox.Kind[UserEvent], u User, at time.Time) error {
	ev := userEvent(ctx, u)
	if _, err := k.Record(ctx, tx, u.TenantID, u.ID, at, ev); err != nil {
		return err
	}
	return s.auditStaff(ctx, tx, u.TenantID, k.Type().Name, ev.Actor, u.ID, map[string]any{"email": u.Email})
}

// auditStaff records action on end user id in identity's audit log when
// actor is staff (a user or an API key), not the end user.
func (s *Service) auditStaff(ctx context.Context, tx *db.Tx, tenant, action string, actor Actor, id string, data map[string]any) error {
	if s.opt.audit == nil || actor.Type == "end_user" {
		return nil
	}
	return s.opt.audit(ctx, tx, tenant, action, "end_user", id, data)
}
