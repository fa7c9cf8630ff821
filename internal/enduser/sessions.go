package enduser

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/identity/throttle"
)

// Session revocation reasons.
const (
	ReasonSignOut    = "sign_out"
	ReasonRevoked    = "revoked"        // by the user or staff
	ReasonReuse      = "refresh_reused" // a rotated refresh token came back
	ReasonEvicted    = "device_limit"   // signed out to make room for a new device
	ReasonDisabled   = "user_disabled"
	ReasonDeleted    = "user_deleted"
	ReasonPassword   = "password_changed"
	ReasonEverywhere = "sign_out_everywhere"
)

var (
	errBadSignIn = &abacus.Error{Kind: abacus.KindUnauthorized, Code: "invalid_credentials",
		Message: "the e-mail or password is wrong; check both, or reset your password"}
	errDisabled = &abacus.Error{Kind: abacus.KindForbidden, Code: "end_user_disabled",
		Message: "this account is disabled; contact the app's support"}
)

const sessionColumns = `id, tenant_id, user_id, app_id, device_name, user_agent, ip, mfa, created_at, last_seen_at, expires_at, revoked_at, revoked_reason`

func scanSession(r rowScanner) (Session, error) {
	var s Session
	dest, finish := sessionDest(&s)
	if err := r.Scan(dest...); err != nil {
		return Session{}, err
	}
	finish()
	return s, nil
}

// sessionDest returns Scan destinations for sessionColumns and a function
// that fills s from them after the scan.
func sessionDest(s *Session) ([]any, func()) {
	var mfa int64
	var created, seen, expires db.Time
	var revoked db.NullTime
	var reason sql.NullString
	return []any{&s.ID, &s.TenantID, &s.UserID, &s.AppID, &s.DeviceName, &s.UserAgent, &s.IP, &mfa,
			&created, &seen, &expires, &revoked, &reason}, func() {
			s.MFA, s.CreatedAt, s.LastSeenAt, s.ExpiresAt = mfa == 1, created.Time, seen.Time, expires.Time
			s.RevokedAt, s.RevokedReason = revoked.Ptr(), reason.String
		}
}

// signInKeys name one attempt in the throttles; the tenant is part of the
// account, since the same e-mail in two tenants is two people.
type signInKeys struct{ account, pair, ip string }

func keysFor(tenant, email, ip string) signInKeys {
	acct := "t:" + tenant + "|acct:" + email
	return signInKeys{account: acct, pair: acct + "|ip:" + ip, ip: "ip:" + ip}
}

func (s *Service) checkThrottle(k signInKeys) error {
	if wait, ok := s.ipFails.Peek(k.ip); !ok && !s.known.Has(k.pair) {
		return throttle.TooManyAttempts(wait)
	}
	if wait, ok := s.account.Check(k.account); !ok {
		return throttle.TooManyAttempts(wait)
	}
	if wait, ok := s.backoff.Check(k.pair); !ok {
		return throttle.TooManyAttempts(wait)
	}
	return nil
}

func (s *Service) failThrottle(k signInKeys) {
	s.backoff.Fail(k.pair)
	s.account.Fail(k.account)
	s.ipFails.Allow(k.ip)
}

func (s *Service) passThrottle(k signInKeys) {
	s.backoff.Succeed(k.pair)
	s.account.Succeed(k.account)
	s.known.Remember(k.pair)
}

// SignIn checks an end user's e-mail and password at tenantID and starts
// a session for the device in the app appID. An unknown e-mail, a user
// without a password and a wrong password all answer invalid_credentials
// after the same hashing work. Failures slow down per account, per
// (account, IP) and, past a burst, per IP (too_many_attempts, 429). When
// the user has MFA, SignIn returns a *MFARequired error carrying the
// challenge for SignInMFA. Other errors: invalid_email, end_user_disabled
// and email_not_verified (when the tenant requires it; both only once the
// password was right), and whatever an OnSessionStart hook refuses with.
func (s *Service) SignIn(ctx context.Context, tenantID string, email, pw string, dev Device, appID string) (Session, User, error) {
	ctx = systemCtx(ctx, tenantID)
	keys := keysFor(tenantID, normEmail(email), dev.IP)
	if err := s.checkThrottle(keys); err != nil {
		return Session{}, User{}, err
	}
	u, err := s.userByEmail(ctx, s.db, tenantID, email)
	if err != nil && abacus.ErrorKind(err) != abacus.KindNotFound {
		return Session{}, User{}, err
	}
	ok, rehash, err := s.verifyPassword(ctx, pw, u.hash)
	if err != nil {
		return Session{}, User{}, fmt.Errorf("verifying password: %w", err)
	}
	if !ok {
		s.failThrottle(keys)
		s.recordFailure(ctx, tenantID, u.ID, "password", dev, appID)
		return Session{}, User{}, errBadSignIn
	}
	s.passThrottle(keys)
	if rehash {
		s.rehash(ctx, tenantID, u.ID, pw)
	}
	if !u.EmailVerified {
		set, err := s.settings(ctx, tenantID)
		if err != nil {
			return Session{}, User{}, err
		}
		if set.RequireVerifiedEmail {
			return Session{}, User{}, errNotVerified
		}
	}
	return s.finishSignIn(ctx, u.User, dev, appID, false)
}

// finishSignIn refuses disabled users, asks for the second factor when
// the user has one (unless it was just given) and starts the session.
func (s *Service) finishSignIn(ctx context.Context, u User, dev Device, appID string, mfaDone bool) (Session, User, error) {
	if u.Status != StatusActive {
		s.recordFailure(ctx, u.TenantID, u.ID, "disabled", dev, appID)
		return Session{}, User{}, errDisabled
	}
	if u.MFAEnabled && !mfaDone {
		return Session{}, User{}, s.mfaChallenge(ctx, u, appID)
	}
	var sess Session
	err := s.db.InTx(ctx, func(tx *db.Tx) error {
		var err error
		sess, err = s.StartSession(ctx, tx, u, dev, appID)
		if err == nil && mfaDone {
			_, err = tx.ExecContext(ctx, `UPDATE end_user_sessions SET mfa = 1 WHERE id = $1`, sess.ID)
			sess.MFA = true
		}
		return err
	})
	if err != nil {
		return Session{}, User{}, err
	}
	return sess, u, nil
}

func (s *Service) rehash(ctx context.Context, tenant, id, pw string) {
	h, err := s.hashPassword(ctx, pw)
	if err == nil {
		_, err = s.db.ExecContext(ctx, `UPDATE end_users SET password_hash = $1 WHERE tenant_id = $2 AND id = $3`, h, tenant, id)
	}
	if err != nil {
		s.log.WarnContext(ctx, "re-hashing end-user password", "end_user_id", id, "err", err)
	}
}

// StartSession creates a session for u on the device, in tx, and runs the
// OnSessionStart hooks after it (an error from one refuses the sign-in:
// the caller rolls tx back). appID may be empty for a session not tied to
// an app.
func (s *Service) StartSession(ctx context.Context, tx *db.Tx, u User, dev Device, appID string) (Session, error) {
	now := s.clock.Now()
	sess := Session{
		ID: abacus.NewID("ses"), TenantID: u.TenantID, UserID: u.ID, AppID: appID,
		DeviceName: deviceName(dev.UserAgent), UserAgent: truncate(dev.UserAgent, 512), IP: dev.IP,
		CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(s.opt.session),
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO end_user_sessions (id, tenant_id, user_id, app_id, device_name, user_agent, ip, created_at, last_seen_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9)`, sess.ID, sess.TenantID, sess.UserID, sess.AppID, sess.DeviceName,
		sess.UserAgent, sess.IP, db.TimeOf(now), db.TimeOf(sess.ExpiresAt))
	if err != nil {
		return Session{}, fmt.Errorf("starting session: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE end_users SET last_seen_at = $1 WHERE tenant_id = $2 AND id = $3`,
		db.TimeOf(now), u.TenantID, u.ID); err != nil {
		return Session{}, fmt.Errorf("touching end user: %w", err)
	}
	s.hookMu.RLock()
	hooks := s.onSession
	s.hookMu.RUnlock()
	for _, h := range hooks {
		if err := h(ctx, tx, u, sess); err != nil {
			return Session{}, err
		}
	}
	return sess, s.announceSignIn(ctx, tx, u, sess)
}

type methodKey struct{}

// withMethod names how the sign-in that starts a session was made, for
// end_user.signed_in (default "password").
func withMethod(ctx context.Context, m string) context.Context {
	return context.WithValue(ctx, methodKey{}, m)
}

// announceSignIn records end_user.signed_in and, when the device is new
// to a user who had signed in before, mails end_user.new_device.
func (s *Service) announceSignIn(ctx context.Context, tx *db.Tx, u User, sess Session) error {
	method, _ := ctx.Value(methodKey{}).(string)
	if method == "" {
		method = "password"
	}
	var before, sameDevice int
	err := tx.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(SUM(CASE WHEN device_name = $3 THEN 1 ELSE 0 END), 0)
		FROM end_user_sessions WHERE tenant_id = $1 AND user_id = $2 AND id <> $4`, u.TenantID, u.ID, sess.DeviceName, sess.ID).Scan(&before, &sameDevice)
	if err != nil {
		return fmt.Errorf("reading earlier sessions: %w", err)
	}
	ev := SignInEvent{EndUserID: u.ID, SessionID: sess.ID, AppID: sess.AppID, Method: method, DeviceName: sess.DeviceName,
		UserAgent: sess.UserAgent, IP: sess.IP, NewDevice: sameDevice == 0}
	if _, err := SignedIn.Record(ctx, tx, u.TenantID, u.ID, sess.CreatedAt, ev); err != nil {
		return err
	}
	if before == 0 || sameDevice > 0 || u.Email == "" {
		return nil
	}
	data, err := s.mailData(ctx, tx, u, sess.AppID, time.Time{})
	if err != nil {
		return err
	}
	data["device"] = map[string]any{"name": sess.DeviceName, "ip": sess.IP, "user_agent": sess.UserAgent,
		"signed_in_at": sess.CreatedAt.UTC().Format(time.RFC3339)}
	return s.send(ctx, tx, Mail{TenantID: u.TenantID, To: u.Email, Name: u.Name, Locale: u.Locale, Template: MailNewDevice, Data: data})
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// Session returns session id of tenantID, whatever its state. Errors:
// session_not_found.
func (s *Service) Session(ctx context.Context, tenantID, id string) (Session, error) {
	return s.sessionIn(ctx, s.db, tenantID, id)
}

func (s *Service) sessionIn(ctx context.Context, q db.Querier, tenantID, id string) (Session, error) {
	sess, err := scanSession(q.QueryRowContext(ctx, `SELECT `+sessionColumns+` FROM end_user_sessions
		WHERE tenant_id = $1 AND id = $2`, tenantID, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Session{}, abacus.NotFound("session", id)
	}
	if err != nil {
		return Session{}, fmt.Errorf("reading session %s: %w", id, err)
	}
	return sess, nil
}

// RevokeSession signs session id of tenantID out: its refresh tokens stop
// working and its access tokens fail VerifyAccessToken. Revoking a revoked
// session is not an error. Errors: session_not_found.
func (s *Service) RevokeSession(ctx context.Context, tenantID, id string) error {
	return s.db.InTx(ctx, func(tx *db.Tx) error {
		if _, err := s.sessionIn(ctx, tx, tenantID, id); err != nil {
			return err
		}
		return s.revokeSessions(ctx, tx, tenantID, []string{id}, ReasonRevoked)
	})
}

// revokeSessions marks the active ones among ids revoked for reason and
// records end_user.session_revoked for each.
func (s *Service) revokeSessions(ctx context.Context, tx *db.Tx, tenantID string, ids []string, reason string) error {
	if len(ids) == 0 {
		return nil
	}
	args := []any{tenantID}
	for _, id := range ids {
		args = append(args, id)
	}
	rows, err := tx.QueryContext(ctx, `SELECT id, user_id FROM end_user_sessions
		WHERE tenant_id = $1 AND revoked_at IS NULL AND id IN (`+db.Placeholders(2, len(ids))+`)`, args...)
	if err != nil {
		return fmt.Errorf("reading sessions: %w", err)
	}
	var live [][2]string
	for rows.Next() {
		var id, user string
		if err := rows.Scan(&id, &user); err != nil {
			rows.Close()
			return err
		}
		live = append(live, [2]string{id, user})
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	now := s.clock.Now()
	for _, l := range live {
		if _, err := tx.ExecContext(ctx, `UPDATE end_user_sessions SET revoked_at = $1, revoked_reason = $2 WHERE id = $3 AND revoked_at IS NULL`,
			db.TimeOf(now), reason, l[0]); err != nil {
			return fmt.Errorf("revoking session: %w", err)
		}
		ev := SessionRevokedEvent{EndUserID: l[1], SessionID: l[0], Reason: reason, Actor: actorOf(ctx, l[1])}
		if _, err := SessionRevoked.Record(ctx, tx, tenantID, l[1], now, ev); err != nil {
			return err
		}
		if err := s.auditStaff(ctx, tx, tenantID, SessionRevoked.Type().Name, ev.Actor, l[1], map[string]any{"session_id": l[0], "reason": reason}); err != nil {
			return err
		}
	}
	return nil
}

// RevokeUserSessions signs every session of the user out except keep
// (empty: all), returning how many it revoked.
func (s *Service) RevokeUserSessions(ctx context.Context, tx *db.Tx, tenantID, userID, keep, reason string) (int, error) {
	rows, err := tx.QueryContext(ctx, `SELECT id FROM end_user_sessions
		WHERE tenant_id = $1 AND user_id = $2 AND revoked_at IS NULL AND id <> $3`, tenantID, userID, keep)
	if err != nil {
		return 0, fmt.Errorf("reading sessions: %w", err)
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return 0, err
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	return len(ids), s.revokeSessions(ctx, tx, tenantID, ids, reason)
}

// ListSessions returns the active sessions (devices) of end user userID
// of the tenant on ctx, most recently used first.
func (s *Service) ListSessions(ctx context.Context, userID string) ([]Session, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return nil, err
	}
	now := s.clock.Now()
	rows, err := s.db.QueryContext(ctx, `SELECT `+sessionColumns+` FROM end_user_sessions
		WHERE tenant_id = $1 AND user_id = $2 AND revoked_at IS NULL AND expires_at > $3 AND last_seen_at > $4
		ORDER BY last_seen_at DESC, id DESC LIMIT 500`, tenant, userID, db.TimeOf(now), db.TimeOf(now.Add(-s.opt.refresh)))
	if err != nil {
		return nil, fmt.Errorf("listing sessions: %w", err)
	}
	defer rows.Close()
	out := []Session{}
	for rows.Next() {
		sess, err := scanSession(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, sess)
	}
	return out, rows.Err()
}

// activeClause selects sessions that still count as a connected device:
// not revoked, not past their absolute end, used within the refresh
// lifetime (an idle session whose refresh token expired is gone).
const activeClause = `revoked_at IS NULL AND expires_at > $2 AND last_seen_at > $3`

func (s *Service) activeArgs(tenantID string, userIDs []string) []any {
	now := s.clock.Now()
	args := []any{tenantID, db.TimeOf(now), db.TimeOf(now.Add(-s.opt.refresh))}
	for _, id := range userIDs {
		args = append(args, id)
	}
	return args
}

// CountActiveSessions counts the active sessions (connected devices) of
// the given end users of tenantID: what "max devices" limits. q may be
// the transaction of OnSessionStart, where the new session already counts.
func (s *Service) CountActiveSessions(ctx context.Context, q db.Querier, tenantID string, userIDs []string) (int, error) {
	if len(userIDs) == 0 {
		return 0, nil
	}
	var n int
	err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM end_user_sessions WHERE tenant_id = $1 AND `+activeClause+`
		AND user_id IN (`+db.Placeholders(4, len(userIDs))+`)`, s.activeArgs(tenantID, userIDs)...).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("counting sessions: %w", err)
	}
	return n, nil
}

// RevokeLeastRecentlyUsed signs out the least recently used active
// sessions of the given end users of tenantID until at most keep remain,
// and returns the revoked sessions. In OnSessionStart the new session is
// the most recently used, so it stays.
func (s *Service) RevokeLeastRecentlyUsed(ctx context.Context, tx *db.Tx, tenantID string, userIDs []string, keep int) ([]Session, error) {
	if len(userIDs) == 0 {
		return nil, nil
	}
	rows, err := tx.QueryContext(ctx, `SELECT `+sessionColumns+` FROM end_user_sessions WHERE tenant_id = $1 AND `+activeClause+`
		AND user_id IN (`+db.Placeholders(4, len(userIDs))+`) ORDER BY last_seen_at DESC, id DESC`, s.activeArgs(tenantID, userIDs)...)
	if err != nil {
		return nil, fmt.Errorf("listing sessions: %w", err)
	}
	var all []Session
	for rows.Next() {
		sess, err := scanSession(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		all = append(all, sess)
	}
	rows.Close()
	if err := rows.Err(); err != nil || len(all) <= keep {
		return nil, err
	}
	evict := all[max(keep, 0):]
	ids := make([]string, len(evict))
	now := s.clock.Now()
	for i := range evict {
		ids[i] = evict[i].ID
		evict[i].RevokedAt, evict[i].RevokedReason = &now, ReasonEvicted
	}
	return evict, s.revokeSessions(ctx, tx, tenantID, ids, ReasonEvicted)
}

// sessionLive reports whether session id of tenantID is active at now.
func (s *Service) sessionLive(ctx context.Context, tenantID, id string, now time.Time) (bool, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM end_user_sessions WHERE tenant_id = $1 AND id = $2
		AND revoked_at IS NULL AND expires_at > $3`, tenantID, id, db.TimeOf(now)).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("reading session: %w", err)
	}
	return n == 1, nil
}
