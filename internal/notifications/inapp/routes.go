package inapp

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/httpapi"
)

// Tag groups the inbox routes in the reference.
var Tag = []string{"Inbox"}

// Mount is where one kind of person finds their routes.
type Mount struct {
	Path  string       // e.g. /api/v1/me
	Scope abacus.Scope // what the scope check asks for
	OpID  string       // prefix of the operation ids
	Doc   string       // who may call
}

// Mounts: staff under /api/v1/me (scope read, like their other own
// routes); end users under /api/v1/end-user/me, public at the scope check
// because an end user's token carries no scope. Either way Me answers only
// to a person's token, and each person reaches only their own data.
var Mounts = []Mount{
	{Path: "/api/v1/me", Scope: abacus.ScopeRead, Doc: "A staff member's own notifications (a staff access token)."},
	{Path: "/api/v1/end-user/me", Scope: httpapi.ScopePublic, OpID: "end-user-",
		Doc: "The signed-in end user's own notifications (an end user's access token, issued by the tenant's OIDC provider)."},
}

// Op returns op mounted at m: path appended to m.Path, the id prefixed.
func (m Mount) Op(id, method, path, summary, desc string) huma.Operation {
	return huma.Operation{OperationID: m.OpID + id, Method: method, Path: m.Path + path, Summary: summary,
		Description: strings.TrimSpace(m.Doc + " " + desc), Tags: Tag}
}

type listInput struct {
	State  string `query:"state" enum:"inbox,unread,archived,all" doc:"inbox (default): not archived; unread; archived; all"`
	Limit  int    `query:"limit" minimum:"0" maximum:"100" doc:"page size (default 20)"`
	Cursor string `query:"cursor" doc:"next_cursor of the previous page"`
}

type idInput struct {
	ID string `path:"id" maxLength:"64"`
}

type updateInput struct {
	ID   string `path:"id" maxLength:"64"`
	Body InboxChange
}

// ReadAllResult says how many items mark-all-read changed.
type InboxReadAll struct {
	Updated int `json:"updated" example:"3"`
}

// RegisterRoutes adds the inbox routes at every mount.
func RegisterRoutes(s *httpapi.Server, svc *Service) {
	registerExamples(s)
	for _, m := range Mounts {
		registerAt(s, svc, m)
		registerStream(s, svc, m)
	}
}

func registerAt(s *httpapi.Server, svc *Service, m Mount) {
	httpapi.Register(s, m.Op("list-my-notifications", http.MethodGet, "/notifications", "List my notifications (newest first)", ""),
		m.Scope, func(ctx context.Context, in *listInput) (*httpapi.Body[abacus.List[InboxItem]], error) {
			me, err := Me(ctx)
			if err != nil {
				return nil, err
			}
			return httpapi.Reply(svc.List(ctx, me, Filter{State: in.State, Limit: in.Limit, Cursor: in.Cursor}))
		})
	httpapi.Register(s, m.Op("count-my-notifications", http.MethodGet, "/notifications/counts", "Count my unread and unseen notifications", ""),
		m.Scope, func(ctx context.Context, _ *struct{}) (*httpapi.Body[InboxCounts], error) {
			me, err := Me(ctx)
			if err != nil {
				return nil, err
			}
			return httpapi.Reply(svc.Counts(ctx, me))
		})
	httpapi.Register(s, m.Op("get-my-notification", http.MethodGet, "/notifications/{id}", "Get one of my notifications", ""),
		m.Scope, func(ctx context.Context, in *idInput) (*httpapi.Body[InboxItem], error) {
			me, err := Me(ctx)
			if err != nil {
				return nil, err
			}
			return httpapi.Reply(svc.Item(ctx, me, in.ID))
		})
	httpapi.Register(s, m.Op("update-my-notification", http.MethodPatch, "/notifications/{id}",
		"Mark one of my notifications seen, read or archived (or undo)", "Reading marks it seen too."),
		m.Scope, func(ctx context.Context, in *updateInput) (*httpapi.Body[InboxItem], error) {
			me, err := Me(ctx)
			if err != nil {
				return nil, err
			}
			return httpapi.Reply(svc.Update(ctx, me, in.ID, in.Body))
		})
	httpapi.Register(s, m.Op("read-all-my-notifications", http.MethodPost, "/notifications/read-all", "Mark all my notifications read", ""),
		m.Scope, func(ctx context.Context, _ *struct{}) (*httpapi.Body[InboxReadAll], error) {
			me, err := Me(ctx)
			if err != nil {
				return nil, err
			}
			n, err := svc.ReadAll(ctx, me)
			return httpapi.Reply(InboxReadAll{Updated: n}, err)
		})
}

func registerStream(s *httpapi.Server, svc *Service, m Mount) {
	path := m.Path + "/notifications/stream"
	log := s.Logger()
	httpapi.HandleOp[InboxItem](s, huma.Operation{OperationID: m.OpID + "stream-my-notifications", Method: http.MethodGet, Path: path,
		Summary: "Receive my new notifications live (server-sent events)", Tags: Tag,
		Description: m.Doc + " Answers `text/event-stream`: each new notification is an event `notification` whose id is " +
			"the item id and whose data is the item; a comment line is sent every 15 s. Reconnect with `Last-Event-ID` " +
			"(or `last_event_id`) to be sent what was missed first. A client that falls more than 64 events behind is " +
			"disconnected and should reconnect the same way.",
		Parameters: []*huma.Param{{Name: "last_event_id", In: "query", Description: "resume after this item id (as the Last-Event-ID header)",
			Schema: &huma.Schema{Type: "string"}}},
		Errors: []int{http.StatusUnauthorized, http.StatusForbidden}},
		m.Scope, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			me, err := Me(r.Context())
			if err != nil {
				httpapi.WriteOpError(w, r, log, err)
				return
			}
			svc.ServeStream(w, r, me)
		}))
	if op := s.API.OpenAPI().Paths[path]; op != nil && op.Get != nil {
		op.Get.Responses["200"].Content = map[string]*huma.MediaType{"text/event-stream": {
			Schema:  &huma.Schema{Type: "string", Description: "server-sent events"},
			Example: "id: itm_01jd6z8q4m7x2v3b9n5k1c0abc\nevent: notification\ndata: {\"id\":\"itm_01jd6z8q4m7x2v3b9n5k1c0abc\",…}\n\n"}}
	}
}

func registerExamples(s *httpapi.Server) {
	at := time.Date(2026, 11, 2, 9, 30, 0, 0, time.UTC)
	item := InboxItem{ID: "itm_01jd6z8q4m7x2v3b9n5k1c0abc", NotificationID: "ntf_01jd6z8q4m7x2v3b9n5k1c0abc", Category: "usage",
		Template: "usage.threshold_reached", Title: "You have used 80 % of your API calls",
		Body: "Your plan includes 10,000 calls a month; 8,000 are used.", Data: map[string]any{"percent": 80}, CreatedAt: at, SeenAt: &at}
	read := true
	s.Example(item, InboxCounts{Unread: 3, Unseen: 1}, InboxChange{Read: &read}, InboxReadAll{Updated: 3})
}
