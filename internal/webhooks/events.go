package webhooks

import (
	"time"

	"github.com/abacusbilling/abacus/internal/outbox"
)

// EndpointDisabledEvent is the payload of webhook_endpoint.disabled.
type EndpointDisabledEvent struct {
	EndpointID   string     `json:"endpoint_id"`
	URL          string     `json:"url"`
	Reason       string     `json:"reason" enum:"gone,failing" doc:"gone: it answered 410; failing: every attempt failed for 5 days"`
	FailingSince *time.Time `json:"failing_since,omitempty"`
	DisabledAt   time.Time  `json:"disabled_at"`
}

// EndpointDisabled tells the tenant that Abacus stopped delivering to an
// endpoint; PATCH enabled=true resumes it.
var EndpointDisabled = outbox.Define[EndpointDisabledEvent]("webhook_endpoint.disabled", 1, "webhook_endpoint",
	"A webhook endpoint was disabled: it answered 410 Gone, or every delivery failed for 5 days.")
