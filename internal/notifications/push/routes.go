package push

import (
	"context"
	"net/http"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/httpapi"
	"github.com/abacusbilling/abacus/internal/notifications/inapp"
)

type subscribeInput struct{ Body NewDevice }

type idInput struct {
	ID string `path:"id" maxLength:"64"`
}

// RegisterRoutes adds the push routes: the tenant's public key and the
// signed-in person's device subscriptions.
func RegisterRoutes(s *httpapi.Server, svc *Service) {
	at := time.Date(2026, 11, 2, 9, 30, 0, 0, time.UTC)
	s.Example(ServerKey{PublicKey: "BDd3_hVL9fZi9Ybo2UUzA284WG5FZR30_95YeZJsiApwXKpNcF1rRPF3foIiBHXRdJI2Qhumhf6_LFTeZaNndIo"},
		Device{ID: "psub_01jd6z8q4m7x2v3b9n5k1c0abc", Provider: ProviderWeb, Endpoint: "https://fcm.googleapis.com/fcm/send/c1KrmpTuRm",
			UserAgent: "Mozilla/5.0", CreatedAt: at},
		NewDevice{Endpoint: "https://fcm.googleapis.com/fcm/send/c1KrmpTuRm"})
	for _, m := range inapp.Mounts {
		registerAt(s, svc, m)
	}
}

func registerAt(s *httpapi.Server, svc *Service, m inapp.Mount) {
	httpapi.Register(s, m.Op("get-push-key", http.MethodGet, "/push-key", "Get the VAPID key to subscribe a browser with", ""),
		m.Scope, func(ctx context.Context, _ *struct{}) (*httpapi.Body[ServerKey], error) {
			me, err := inapp.Me(ctx)
			if err != nil {
				return nil, err
			}
			k, err := svc.VAPIDKeys(ctx, me.TenantID)
			return httpapi.Reply(ServerKey{PublicKey: k.PublicKey}, err)
		})
	op := m.Op("create-push-subscription", http.MethodPost, "/push-subscriptions", "Register a device for push",
		"For a browser, send PushSubscription.toJSON().")
	op.DefaultStatus = http.StatusCreated
	httpapi.Register(s, op, m.Scope, func(ctx context.Context, in *subscribeInput) (*httpapi.Body[Device], error) {
		me, err := inapp.Me(ctx)
		if err != nil {
			return nil, err
		}
		return httpapi.Reply(svc.Subscribe(ctx, me, in.Body))
	})
	httpapi.Register(s, m.Op("list-push-subscriptions", http.MethodGet, "/push-subscriptions", "List my devices registered for push", ""),
		m.Scope, func(ctx context.Context, _ *struct{}) (*httpapi.Body[abacus.List[Device]], error) {
			me, err := inapp.Me(ctx)
			if err != nil {
				return nil, err
			}
			subs, err := svc.Subscriptions(ctx, me)
			return httpapi.Reply(abacus.ListOf(subs, ""), err)
		})
	op = m.Op("delete-push-subscription", http.MethodDelete, "/push-subscriptions/{id}", "Unregister a device", "")
	op.DefaultStatus = http.StatusNoContent
	httpapi.Register(s, op, m.Scope, func(ctx context.Context, in *idInput) (*struct{}, error) {
		me, err := inapp.Me(ctx)
		if err != nil {
			return nil, err
		}
		return nil, svc.Unsubscribe(ctx, me, in.ID)
	})
}
