package inapp

import (
	"context"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/httpapi"
)

// Tag groups the inbox routes in the reference.
var Tag = []string{"Inbox"}

// Routes are public at the scope check (an end user's token carries no
// scope) and answer only to a person's token (Me): each person reaches
// only their own inbox.
const meDoc = "Needs a person's access token: an end user's (issued by the tenant's OIDC provider) or a staff member's."

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
	Body Change
}

// ReadAllResult says how many items mark-all-read changed.
type ReadAllResult struct {
	Updated int `json:"updated" example:"3"`
}

// RegisterRoutes adds the inbox routes.
func RegisterRoutes(s *httpapi.Server, svc *Service) {
	registerExamples(s)
	httpapi.Register(s, huma.Operation{OperationID: "list-my-notifications", Method: http.MethodGet,
		Path: "/api/v1/me/notifications", Summary: "List my notifications (newest first)", Description: meDoc, Tags: Tag},
		httpapi.ScopePublic, func(ctx context.Context, in *listInput) (*httpapi.Body[abacus.List[Item]], error) {
			me, err := Me(ctx)
			if err != nil {
				return nil, err
			}
			return httpapi.Reply(svc.List(ctx, me, Filter{State: in.State, Limit: in.Limit, Cursor: in.Cursor}))
		})
	httpapi.Register(s, huma.Operation{OperationID: "count-my-notifications", Method: http.MethodGet,
		Path: "/api/v1/me/notifications/counts", Summary: "Count my unread and unseen notifications", Description: meDoc, Tags: Tag},
		httpapi.ScopePublic, func(ctx context.Context, _ *struct{}) (*httpapi.Body[Counts], error) {
			me, err := Me(ctx)
			if err != nil {
				return nil, err
			}
			return httpapi.Reply(svc.Counts(ctx, me))
		})
	httpapi.Register(s, huma.Operation{OperationID: "get-my-notification", Method: http.MethodGet,
		Path: "/api/v1/me/notifications/{id}", Summary: "Get one of my notifications", Description: meDoc, Tags: Tag},
		httpapi.ScopePublic, func(ctx context.Context, in *idInput) (*httpapi.Body[Item], error) {
			me, err := Me(ctx)
			if err != nil {
				return nil, err
			}
			return httpapi.Reply(svc.Item(ctx, me, in.ID))
		})
	httpapi.Register(s, huma.Operation{OperationID: "update-my-notification", Method: http.MethodPatch,
		Path: "/api/v1/me/notifications/{id}", Summary: "Mark one of my notifications seen, read or archived (or undo)", Description: meDoc, Tags: Tag},
		httpapi.ScopePublic, func(ctx context.Context, in *updateInput) (*httpapi.Body[Item], error) {
			me, err := Me(ctx)
			if err != nil {
				return nil, err
			}
			return httpapi.Reply(svc.Update(ctx, me, in.ID, in.Body))
		})
	httpapi.Register(s, huma.Operation{OperationID: "read-all-my-notifications", Method: http.MethodPost,
		Path: "/api/v1/me/notifications/read-all", Summary: "Mark all my notifications read", Description: meDoc, Tags: Tag},
		httpapi.ScopePublic, func(ctx context.Context, _ *struct{}) (*httpapi.Body[ReadAllResult], error) {
			me, err := Me(ctx)
			if err != nil {
				return nil, err
			}
			n, err := svc.ReadAll(ctx, me)
			return httpapi.Reply(ReadAllResult{Updated: n}, err)
		})
	registerStream(s, svc)
}

func registerStream(s *httpapi.Server, svc *Service) {
	const path = "/api/v1/me/notifications/stream"
	log := s.Logger()
	httpapi.HandleOp[Item](s, huma.Operation{OperationID: "stream-my-notifications", Method: http.MethodGet, Path: path,
		Summary: "Receive my new notifications live (server-sent events)", Tags: Tag,
		Description: meDoc + " Answers `text/event-stream`: each new notification is an event `notification` whose id is " +
			"the item id and whose data is the item; a comment line is sent every 15 s. Reconnect with `Last-Event-ID` " +
			"(or `last_event_id`) to be sent what was missed first. A client that falls more than 64 events behind is " +
			"disconnected and should reconnect the same way.",
		Parameters: []*huma.Param{{Name: "last_event_id", In: "query", Description: "resume after this item id (as the Last-Event-ID header)",
			Schema: &huma.Schema{Type: "string"}}},
		Errors: []int{http.StatusUnauthorized, http.StatusForbidden}},
		httpapi.ScopePublic, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
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
	item := Item{ID: "itm_01jd6z8q4m7x2v3b9n5k1c0abc", NotificationID: "ntf_01jd6z8q4m7x2v3b9n5k1c0abc", Category: "usage",
		Template: "usage.threshold_reached", Title: "You have used 80 % of your API calls",
		Body: "Your plan includes 10,000 calls a month; 8,000 are used.", Data: map[string]any{"percent": 80}, CreatedAt: at, SeenAt: &at}
	read := true
	s.Example(item, Counts{Unread: 3, Unseen: 1}, Change{Read: &read}, ReadAllResult{Updated: 3})
}
