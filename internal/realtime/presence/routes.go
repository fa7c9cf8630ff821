package presence

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/httpapi"
	"github.com/abacusbilling/abacus/internal/realtime"
)

// UserPresence is one user's presence as the cluster sees it.
type UserPresence struct {
	UserID  string `json:"user_id" example:"user_ada"`
	Online  bool   `json:"online" doc:"a connection is live on some node"`
	Devices int    `json:"devices" doc:"live connections on every node" example:"2"`
}

// PresenceQuery names the users to look up.
type PresenceQuery struct {
	UserIDs []string `query:"user_id" maxItems:"100" doc:"users to look up, comma-separated (at most 100)"`
}

// ConnectionsQuery names the user whose connections to list.
type ConnectionsQuery struct {
	UserID string `query:"user_id" maxLength:"128" doc:"the user's id (required)"`
}

// Examples are the values the API reference shows for presence bodies.
func Examples() []any {
	return []any{
		UserPresence{UserID: "user_ada", Online: true, Devices: 2},
		abacus.ListOf([]UserPresence{{UserID: "user_ada", Online: true, Devices: 2}, {UserID: "user_bob"}}, ""),
		abacus.ListOf([]realtime.ConnInfo{{ID: "rtc_01jd6z8q4m7x2v3b9n5k1c0abc", UserID: "user_ada", Node: "rt-1",
			Since: time.Date(2026, 11, 2, 9, 30, 0, 0, time.UTC), UserAgent: "Mozilla/5.0", RemoteAddr: "203.0.113.7:52114", Auth: "token"}}, ""),
	}
}

// RegisterRoutes adds the staff routes of presence: who is online, and a
// user's live connections on every node.
func RegisterRoutes(s *httpapi.Server, t *Tracker) {
	s.Example(Examples()...)
	tags := []string{"Realtime"}
	httpapi.Register(s, huma.Operation{OperationID: "get-realtime-presence", Method: http.MethodGet, Path: "/api/v1/realtime/presence",
		Summary: "Look up users' presence", Tags: tags,
		Description: "Whether each user has a live connection on any realtime node, and how many. A node that died takes its users offline within a few seconds (docs/realtime.md, Presence)."},
		abacus.ScopeRead, func(ctx context.Context, in *PresenceQuery) (*httpapi.Body[abacus.List[UserPresence]], error) {
			tenant, err := abacus.TenantFrom(ctx)
			if err != nil {
				return nil, err
			}
			var v abacus.Validation
			if len(in.UserIDs) == 0 {
				v.Add("query.user_id", "give at least one user_id")
			}
			if err := v.Err("invalid_query"); err != nil {
				return nil, err
			}
			out := make([]UserPresence, 0, len(in.UserIDs))
			for _, u := range in.UserIDs {
				n := t.Devices(tenant, []string{u})
				out = append(out, UserPresence{UserID: u, Online: n > 0, Devices: n})
			}
			return &httpapi.Body[abacus.List[UserPresence]]{Body: abacus.ListOf(out, "")}, nil
		})
	httpapi.Register(s, huma.Operation{OperationID: "list-realtime-user-connections", Method: http.MethodGet, Path: "/api/v1/realtime/connections",
		Summary: "List a user's live connections", Tags: tags,
		Description: "Every live WebSocket connection of the user on every realtime node: node, since, user agent, remote address. For debugging a user's \"I get no messages\"."},
		abacus.ScopeRead, func(ctx context.Context, in *ConnectionsQuery) (*httpapi.Body[abacus.List[realtime.ConnInfo]], error) {
			tenant, err := abacus.TenantFrom(ctx)
			if err != nil {
				return nil, err
			}
			if in.UserID == "" {
				var v abacus.Validation
				v.Add("query.user_id", "is required")
				return nil, v.Err("invalid_query")
			}
			raw, err := t.GatherConnections(ctx, tenant, in.UserID)
			if err != nil {
				return nil, err
			}
			out := make([]realtime.ConnInfo, 0, len(raw))
			for _, r := range raw {
				var c realtime.ConnInfo
				if json.Unmarshal(r, &c) == nil {
					out = append(out, c)
				}
			}
			return &httpapi.Body[abacus.List[realtime.ConnInfo]]{Body: abacus.ListOf(out, "")}, nil
		})
}

// LocalConnections adapts a realtime service to ServeConnections: the
// user's connections on this node, as JSON.
func LocalConnections(svc *realtime.Service) func(tenant, user string) []json.RawMessage {
	return func(tenant, user string) []json.RawMessage {
		var out []json.RawMessage
		for _, c := range svc.LocalConnections() {
			if c.TenantID == tenant && c.UserID == user {
				b, _ := json.Marshal(c)
				out = append(out, b)
			}
		}
		return out
	}
}
