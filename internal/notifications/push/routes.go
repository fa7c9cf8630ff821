package push

import (
	"context"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/httpapi"
	"github.com/abacusbilling/abacus/internal/notifications/inapp"
)

const meDoc = "Needs a person's access token: an end user's or a staff member's."

type subscribeInput struct{ Body NewSubscription }

type idInput struct {
	ID string `path:"id" maxLength:"64"`
}

// RegisterRoutes adds the push routes: the tenant's public key and the
// signed-in person's device subscriptions.
func RegisterRoutes(s *httpapi.Server, svc *Service) {
	at := time.Date(2026, 11, 2, 9, 30, 0, 0, time.UTC)
	s.Example(PublicKey{PublicKey: "BDd3_hVL9fZi9Ybo2UUzA284WG5FZR30_95YeZJsiApwXKpNcF1rRPF3foIiBHXRdJI2Qhumhf6_LFTeZaNndIo"},
		Subscription{ID: "psub_01jd6z8q4m7x2v3b9n5k1c0abc", Provider: ProviderWeb, Endpoint: "https://fcm.googleapis.com/fcm/send/c1KrmpTuRm",
			UserAgent: "Mozilla/5.0", CreatedAt: at},
		NewSubscription{Endpoint: "https://fcm.googleapis.com/fcm/send/c1KrmpTuRm"})
	httpapi.Register(s, huma.Operation{OperationID: "get-push-key", Method: http.MethodGet, Path: "/api/v1/me/push-key",
		Summary: "Get the VAPID key to subscribe a browser with", Description: meDoc, Tags: inapp.Tag},
		httpapi.ScopePublic, func(ctx context.Context, _ *struct{}) (*httpapi.Body[PublicKey], error) {
			me, err := inapp.Me(ctx)
			if err != nil {
				return nil, err
			}
			k, err := svc.VAPIDKeys(ctx, me.TenantID)
			return httpapi.Reply(PublicKey{PublicKey: k.PublicKey}, err)
		})
	httpapi.Register(s, huma.Operation{OperationID: "create-push-subscription", Method: http.MethodPost, Path: "/api/v1/me/push-subscriptions",
		Summary: "Register a device for push", Description: meDoc + " For a browser, send PushSubscription.toJSON().",
		Tags: inapp.Tag, DefaultStatus: http.StatusCreated},
		httpapi.ScopePublic, func(ctx context.Context, in *subscribeInput) (*httpapi.Body[Subscription], error) {
			me, err := inapp.Me(ctx)
			if err != nil {
				return nil, err
			}
			return httpapi.Reply(svc.Subscribe(ctx, me, in.Body))
		})
	httpapi.Register(s, huma.Operation{OperationID: "list-push-subscriptions", Method: http.MethodGet, Path: "/api/v1/me/push-subscriptions",
		Summary: "List my devices registered for push", Description: meDoc, Tags: inapp.Tag},
		httpapi.ScopePublic, func(ctx context.Context, _ *struct{}) (*httpapi.Body[abacus.List[Subscription]], error) {
			me, err := inapp.Me(ctx)
			if err != nil {
				return nil, err
			}
			subs, err := svc.Subscriptions(ctx, me)
			return httpapi.Reply(abacus.ListOf(subs, ""), err)
		})
	httpapi.Register(s, huma.Operation{OperationID: "delete-push-subscription", Method: http.MethodDelete, Path: "/api/v1/me/push-subscriptions/{id}",
		Summary: "Unregister a device", Description: meDoc, Tags: inapp.Tag, DefaultStatus: http.StatusNoContent},
		httpapi.ScopePublic, func(ctx context.Context, in *idInput) (*struct{}, error) {
			me, err := inapp.Me(ctx)
			if err != nil {
				return nil, err
			}
			return nil, svc.Unsubscribe(ctx, me, in.ID)
		})
}
