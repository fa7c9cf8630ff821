package prefs

import (
	"context"
	"net/http"

	"github.com/abacusbilling/abacus/internal/httpapi"
	"github.com/abacusbilling/abacus/internal/notifications/inapp"
)

type putInput struct{ Body Preferences }

// RegisterRoutes adds GET and PUT /api/v1/me/notification-preferences.
func RegisterRoutes(s *httpapi.Server, st *Store) {
	s.Example(Preferences{Preferences: []Preference{{Category: "usage", Channel: "email", Mode: ModeDigest, DigestSeconds: 3600},
		{Category: "general", Channel: "push", Mode: ModeOff}}, QuietHours: &QuietHours{Start: "22:00", End: "07:00", TimeZone: "Europe/Vienna"}})
	for _, m := range inapp.Mounts {
		registerAt(s, st, m)
	}
}

func registerAt(s *httpapi.Server, st *Store, m inapp.Mount) {
	const doc = "Critical notifications ignore these settings; security and billing cannot be turned off (400 preference_locked)."
	httpapi.Register(s, m.Op("get-my-notification-preferences", http.MethodGet, "/notification-preferences",
		"Get my notification preferences and quiet hours", doc),
		m.Scope, func(ctx context.Context, _ *struct{}) (*httpapi.Body[Preferences], error) {
			me, err := inapp.Me(ctx)
			if err != nil {
				return nil, err
			}
			return httpapi.Reply(st.Get(ctx, me))
		})
	httpapi.Register(s, m.Op("put-my-notification-preferences", http.MethodPut, "/notification-preferences",
		"Replace my notification preferences and quiet hours", doc),
		m.Scope, func(ctx context.Context, in *putInput) (*httpapi.Body[Preferences], error) {
			me, err := inapp.Me(ctx)
			if err != nil {
				return nil, err
			}
			return httpapi.Reply(st.Put(ctx, me, in.Body))
		})
}
