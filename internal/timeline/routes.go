package timeline

import (
	"context"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/httpapi"
)

// RegisterRoutes adds GET /api/v1/customers/{id}/timeline and POST
// /api/v1/timeline/rebuild.
func RegisterRoutes(s *httpapi.Server, svc *Service) {
	s.Example(exampleEntry(), TimelineRebuild{Events: 1843, Indexed: 1290, DurationMS: 412})
	httpapi.Register(s, huma.Operation{OperationID: "list-customer-timeline", Method: http.MethodGet,
		Path: "/api/v1/customers/{id}/timeline", Summary: "List a customer's timeline", Tags: []string{"Customers"},
		Description: "The domain events that name the customer, newest first, each with a short sentence and the object it is " +
			"about: subscription changes and usage thresholds, usage spikes (risk.usage_anomaly), invoices, credit notes, coupons, " +
			"payments, disputes, payment methods, dunning and the customer's organization. Kept by the timeline role from the events stream, so an event shows here " +
			"moments after its change commits. Filter by type (exact types or families such as invoice.*, comma-separated) and time."},
		abacus.ScopeRead, func(ctx context.Context, in *struct {
			ID     string    `path:"id" doc:"customer id or external id"`
			Type   []string  `query:"type" maxItems:"50" doc:"only these event types, comma-separated; a family as invoice.* (payment.*, subscription.*, risk.*…)"`
			Since  time.Time `query:"since" doc:"RFC 3339; inclusive"`
			Until  time.Time `query:"until" doc:"RFC 3339; exclusive"`
			Limit  int       `query:"limit" minimum:"0" maximum:"100" doc:"page size (default 20)"`
			Cursor string    `query:"cursor" doc:"next_cursor of the previous page"`
		}) (*httpapi.Body[abacus.List[TimelineEntry]], error) {
			return httpapi.Reply(svc.List(ctx, in.ID, Filter{Types: in.Type, Since: in.Since, Until: in.Until, Limit: in.Limit, Cursor: in.Cursor}))
		})
	httpapi.Register(s, huma.Operation{OperationID: "rebuild-timeline", Method: http.MethodPost, Path: "/api/v1/timeline/rebuild",
		Summary: "Rebuild the customers' timelines", Tags: []string{"Customers"},
		Description: "Indexes again the tenant's domain events the events stream still holds (seven days), writing each entry afresh: " +
			"entries lost from the index come back, and older entries are read again the current way. The timeline role keeps " +
			"indexing new events meanwhile. Answers when done."},
		abacus.ScopeAdmin, func(ctx context.Context, _ *struct{}) (*httpapi.Body[TimelineRebuild], error) {
			return httpapi.Reply(svc.Rebuild(ctx))
		})
}

func exampleEntry() TimelineEntry {
	return TimelineEntry{EventID: "evt_01JE5V7M0000000000000000", Type: "invoice.finalized",
		OccurredAt: time.Date(2026, 12, 1, 0, 0, 5, 0, time.UTC), Summary: "Invoice INV-0042 finalized: EUR 119.00 due.",
		Object: TimelineObject{Type: "invoice", ID: "inv_01JE5V7M0000000000000000"},
		Data: map[string]string{"number": "INV-0042", "currency": "EUR", "total": "119", "amount_due": "119", "status": "open",
			"subscription_id": "sub_01JE5V7M0000000000000000"}}
}
