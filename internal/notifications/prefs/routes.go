package prefs

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/abacusbilling/abacus/internal/httpapi"
	"github.com/abacusbilling/abacus/internal/notifications/inapp"
)

type putInput struct{ Body Settings }

// RegisterRoutes adds GET and PUT /api/v1/me/notification-preferences.
func RegisterRoutes(s *httpapi.Server, st *Store) {
	s.Example(Settings{Preferences: []Preference{{Category: "usage", Channel: "email", Mode: ModeDigest, DigestSeconds: 3600},
		{Category: "general", Channel: "push", Mode: ModeOff}}, QuietHours: &QuietHours{Start: "22:00", End: "07:00", TimeZone: "Europe/Vienna"}})
	const doc = "Needs a person's access token: an end user's or a staff member's. Critical notifications ignore these settings; " +
		"security and billing cannot be turned off (400 preference_locked)."
	httpapi.Register(s, huma.Operation{OperationID: "get-my-notification-preferences", Method: http.MethodGet,
		Path: "/api/v1/me/notification-preferences", Summary: "Get my notification preferences and quiet hours", Description: doc, Tags: inapp.Tag},
		httpapi.ScopePublic, func(ctx context.Context, _ *struct{}) (*httpapi.Body[Settings], error) {
			me, err := inapp.Me(ctx)
			if err != nil {
				return nil, err
			}
			return httpapi.Reply(st.Get(ctx, me))
		})
	httpapi.Register(s, huma.Operation{OperationID: "put-my-notification-preferences", Method: http.MethodPut,
		Path: "/api/v1/me/notification-preferences", Summary: "Replace my notification preferences and quiet hours", Description: doc, Tags: inapp.Tag},
		httpapi.ScopePublic, func(ctx context.Context, in *putInput) (*httpapi.Body[Settings], error) {
			me, err := inapp.Me(ctx)
			if err != nil {
				return nil, err
			}
			return httpapi.Reply(st.Put(ctx, me, in.Body))
		})
}
