package webhooks

import (
	"time"
)

// Examples are the values the API reference shows for the webhooks
// module's bodies (httpapi.Server.Example).
func Examples() []any {
	at := time.Date(2026, 11, 2, 9, 30, 0, 0, time.UTC)
	next := at.Add(5 * time.Second)
	enabled := true
	url, desc := "https://hooks.example.com/abacus", "Billing events for the ERP"
	types := []string{"invoice.finalized", "subscription.created"}
	ep := Endpoint{ID: "whep_01jbx7k2q9m4r8t6v3w5y0z1ab", URL: url, Description: desc, EventTypes: types,
		Enabled: true, RateLimit: 50, CreatedAt: at, UpdatedAt: at}
	return []any{
		EndpointInput{URL: url, EventTypes: types, Description: desc, Enabled: &enabled, RateLimit: 50},
		EndpointPatch{Enabled: &enabled},
		ep,
		EndpointWithSecret{Endpoint: ep, Secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"},
		Message{ID: "msg_01jbx7m0d4f6h8j0k2m4n6p8qr", EventID: "evt_01jbx7m0c1e3g5i7k9m1o3q5st", EventType: "invoice.finalized",
			Status: StatusPending, NextAttemptAt: &next, CreatedAt: at, Attempts: []Attempt{{Attempt: 1, At: at, StatusCode: 503,
				LatencyMS: 42.5, Response: `{"error":"maintenance"}`, NextAttemptAt: &next}}},
		ReplayInput{Since: at.Add(-24 * time.Hour)},
		Replayed{Queued: 12},
	}
}
