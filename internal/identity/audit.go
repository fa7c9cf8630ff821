package identity

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
)

// AuditEvent is one security-relevant action in a tenant: sign-ins (and
// failures), refresh-token reuse, membership and role changes, key and
// client creation and revocation, password and MFA changes.
type AuditEvent struct {
	ID         string         `json:"id"`
	Action     string         `json:"action" doc:"e.g. auth.login_succeeded, auth.refresh_reused, member.role_changed"`
	ActorType  string         `json:"actor_type" doc:"user, api_key, client, operator or anonymous"`
	ActorID    string         `json:"actor_id"`
	TargetType string         `json:"target_type"`
	TargetID   string         `json:"target_id"`
	IP         string         `json:"ip"`
	Data       map[string]any `json:"data,omitempty"`
	CreatedAt  time.Time      `json:"created_at"`
}

// request is what identity knows of the HTTP request beyond its body.
type request struct {
	// peer is the TCP peer (RemoteAddr) and fwd its forwarding headers;
	// Service.clientIP resolves them to the client's address.
	peer      string
	fwd       http.Header
	UserAgent string
	// actorType/actorID name who acts when no principal does (sign-in).
	actorType, actorID string
}

type requestKey struct{}

func withRequest(ctx context.Context, r request) context.Context {
	return context.WithValue(ctx, requestKey{}, r)
}

func requestFrom(ctx context.Context) request {
	r, _ := ctx.Value(requestKey{}).(request)
	return r
}

// forwardingHeaders are the headers a proxy may name the client in.
var forwardingHeaders = []string{"X-Forwarded-For", "Forwarded"}

// newRequest captures what identity needs of an HTTP request: the peer,
// the forwarding headers and the User-Agent.
func newRequest(remoteAddr string, h http.Header, userAgent string) request {
	fwd := http.Header{}
	for _, k := range forwardingHeaders {
		if v := h.Values(k); len(v) > 0 {
			fwd[k] = v
		}
	}
	return request{peer: remoteAddr, fwd: fwd, UserAgent: userAgent}
}

// clientIP is the address of the client behind ctx's request: the TCP
// peer, or what a trusted proxy says it forwarded (WithClientIP).
func (s *Service) clientIP(ctx context.Context) string {
	r := requestFrom(ctx)
	return s.a.opt.clientIP.Resolve(r.peer, r.fwd)
}

// withActor names the actor of audit events written under ctx when there
// is no principal (a user signing in, resetting a password…).
func withActor(ctx context.Context, typ, id string) context.Context {
	r := requestFrom(ctx)
	r.actorType, r.actorID = typ, id
	return withRequest(ctx, r)
}

// Audit records action on a target in tenant's audit log inside q, with
// the principal on ctx as the actor: for modules whose staff actions
// belong in the log (enduser: staff disabling or deleting an end user).
func (s *Service) Audit(ctx context.Context, q db.Querier, tenant, action, targetType, targetID string, data map[string]any) error {
	return s.audit(ctx, q, tenant, action, targetType, targetID, data)
}

// audit records an event for tenant inside q (a transaction when the
// change it describes has one, so both commit together).
func (s *Service) audit(ctx context.Context, q db.Querier, tenant, action, targetType, targetID string, data map[string]any) error {
	r := requestFrom(ctx)
	actorType, actorID := "anonymous", ""
	if p := abacus.PrincipalFrom(ctx); p != nil {
		actorType, actorID = p.Kind, p.ID
	} else if r.actorType != "" {
		actorType, actorID = r.actorType, r.actorID
	}
	if data == nil {
		data = map[string]any{}
	}
	b, err := json.Marshal(data)
	if err != nil {
		return fmt.Errorf("encoding audit data: %w", err)
	}
	_, err = q.ExecContext(ctx, `INSERT INTO audit_events (id, tenant_id, action, actor_type, actor_id, target_type, target_id, ip, data, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		abacus.NewID("aud"), tenant, action, actorType, actorID, targetType, targetID, s.clientIP(ctx), string(b), db.TimeOf(s.clock.Now()))
	if err != nil {
		return fmt.Errorf("recording audit event %s: %w", action, err)
	}
	return nil
}

// AuditFilter narrows ListAuditEvents. Empty fields do not filter.
type AuditFilter struct {
	Action   string
	ActorID  string
	TargetID string
	Since    time.Time
	Until    time.Time
	Limit    int
	Cursor   string
}

// ListAuditEvents returns the tenant's audit events, newest first, and the
// cursor of the next page ("" when this is the last).
func (s *Service) ListAuditEvents(ctx context.Context, f AuditFilter) ([]AuditEvent, string, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return nil, "", err
	}
	limit := clampLimit(f.Limit)
	q := `SELECT id, action, actor_type, actor_id, target_type, target_id, ip, data, created_at
		FROM audit_events WHERE tenant_id = $1`
	args := []any{tenant}
	add := func(cond string, v any) {
		args = append(args, v)
		q += fmt.Sprintf(" AND "+cond, len(args))
	}
	if f.Action != "" {
		add("action = $%d", f.Action)
	}
	if f.ActorID != "" {
		add("actor_id = $%d", f.ActorID)
	}
	if f.TargetID != "" {
		add("target_id = $%d", f.TargetID)
	}
	if !f.Since.IsZero() {
		add("created_at >= $%d", db.TimeOf(f.Since))
	}
	if !f.Until.IsZero() {
		add("created_at < $%d", db.TimeOf(f.Until))
	}
	if f.Cursor != "" {
		add("id < $%d", f.Cursor)
	}
	q += fmt.Sprintf(" ORDER BY id DESC LIMIT %d", limit+1)
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, "", fmt.Errorf("listing audit events: %w", err)
	}
	defer rows.Close()
	out := []AuditEvent{}
	for rows.Next() {
		var e AuditEvent
		var data string
		var at db.Time
		if err := rows.Scan(&e.ID, &e.Action, &e.ActorType, &e.ActorID, &e.TargetType, &e.TargetID, &e.IP, &data, &at); err != nil {
			return nil, "", err
		}
		e.CreatedAt = at.Time
		_ = json.Unmarshal([]byte(data), &e.Data)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, "", err
	}
	return page(out, limit, func(e AuditEvent) string { return e.ID })
}

// clampLimit turns a requested page size into 1…200, default 50.
func clampLimit(n int) int {
	switch {
	case n <= 0:
		return 50
	case n > 200:
		return 200
	}
	return n
}

// page trims items fetched with limit+1 and returns the next cursor.
func page[T any](items []T, limit int, id func(T) string) ([]T, string, error) {
	if len(items) <= limit {
		return items, "", nil
	}
	items = items[:limit]
	return items, id(items[limit-1]), nil
}
