package webhooks

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/outbox"
)

// Why an endpoint was disabled by Abacus (DisabledReason).
const (
	ReasonGone    = "gone"    // it answered 410 Gone
	ReasonFailing = "failing" // every attempt failed for FailingDisableAfter
)

// Endpoint is a tenant's webhook receiver.
type Endpoint struct {
	ID             string     `json:"id"`
	URL            string     `json:"url"`
	Description    string     `json:"description"`
	EventTypes     []string   `json:"event_types" doc:"the domain event types sent; empty: every type"`
	Enabled        bool       `json:"enabled"`
	DisabledReason string     `json:"disabled_reason,omitempty" enum:"gone,failing" doc:"why Abacus disabled the endpoint"`
	RateLimit      int        `json:"rate_limit" doc:"deliveries per second at most; 0: no limit"`
	FailingSince   *time.Time `json:"failing_since,omitempty" doc:"first failed attempt since the last success"`
	CreatedAt      time.Time  `json:"created_at"`
	UpdatedAt      time.Time  `json:"updated_at"`
}

// EndpointWithSecret is an endpoint as created or after a rotation: the
// only answers that show the secret.
type EndpointWithSecret struct {
	Endpoint
	Secret string `json:"secret" doc:"whsec_… signing secret; shown once"`
}

// EndpointInput creates an endpoint.
type EndpointInput struct {
	URL         string   `json:"url" doc:"http(s) URL receiving POSTs"`
	EventTypes  []string `json:"event_types,omitempty" doc:"domain event types to send (GET /api/v1/webhook-event-types); absent: every type"`
	Description string   `json:"description,omitempty" maxLength:"500"`
	Enabled     *bool    `json:"enabled,omitempty" doc:"default true"`
	RateLimit   int      `json:"rate_limit,omitempty" minimum:"0" doc:"deliveries per second at most; 0: no limit"`
}

// EndpointPatch changes the fields given.
type EndpointPatch struct {
	URL         *string   `json:"url,omitempty"`
	EventTypes  *[]string `json:"event_types,omitempty" doc:"[] for every type"`
	Description *string   `json:"description,omitempty" maxLength:"500"`
	Enabled     *bool     `json:"enabled,omitempty" doc:"true re-enables an endpoint Abacus disabled"`
	RateLimit   *int      `json:"rate_limit,omitempty" minimum:"0"`
}

// maxEndpoints bounds a tenant's endpoints: each event fans out to all.
const maxEndpoints = 100

func (s *Service) validate(ctx context.Context, url string, types []string, description string, rate int) error {
	var v abacus.Validation
	if msg := s.guard.checkURL(ctx, url); msg != "" {
		v.Add("url", "%s", msg)
	}
	if len(types) > 500 {
		v.Add("event_types", "has %d types; at most 500 are allowed", len(types))
	}
	for i, t := range types {
		if _, ok := outbox.LookupType(t, 0); !ok {
			v.Add(fmt.Sprintf("event_types[%d]", i), "unknown event type %q; GET /api/v1/webhook-event-types lists them", t)
		} else if slices.Index(types, t) < i {
			v.Add(fmt.Sprintf("event_types[%d]", i), "duplicate event type %q", t)
		}
	}
	if len(description) > 500 {
		v.Add("description", "must be at most 500 characters")
	}
	if rate < 0 {
		v.Add("rate_limit", "must be 0 (no limit) or more")
	}
	return v.Err("invalid_webhook_endpoint")
}

// CreateEndpoint creates an endpoint with a new secret, which only this
// answer shows. It returns invalid_webhook_endpoint naming each bad field
// (a URL that is not http(s), that reaches a private address, an unknown
// event type).
func (s *Service) CreateEndpoint(ctx context.Context, in EndpointInput) (EndpointWithSecret, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return EndpointWithSecret{}, err
	}
	in.URL = strings.TrimSpace(in.URL)
	if err := s.validate(ctx, in.URL, in.EventTypes, in.Description, in.RateLimit); err != nil {
		return EndpointWithSecret{}, err
	}
	now := s.clock.Now()
	e := Endpoint{ID: abacus.NewID("whep"), URL: in.URL, Description: in.Description, EventTypes: in.EventTypes,
		Enabled: in.Enabled == nil || *in.Enabled, RateLimit: in.RateLimit, CreatedAt: now, UpdatedAt: now}
	if e.EventTypes == nil {
		e.EventTypes = []string{}
	}
	secret := newSecret()
	err = s.db.InTx(ctx, func(tx *db.Tx) error {
		n, err := countEndpoints(ctx, tx, tenant)
		if err != nil {
			return err
		}
		if n >= maxEndpoints {
			return abacus.Conflict("too_many_webhook_endpoints", "a tenant may have %d webhook endpoints; delete one first", maxEndpoints)
		}
		return insertEndpoint(ctx, tx, tenant, e, s.sealer.seal(e.ID, secret))
	})
	if err != nil {
		return EndpointWithSecret{}, err
	}
	return EndpointWithSecret{Endpoint: e, Secret: secret}, nil
}

// GetEndpoint returns an endpoint of the caller's tenant, or
// webhook_endpoint_not_found.
func (s *Service) GetEndpoint(ctx context.Context, id string) (Endpoint, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return Endpoint{}, err
	}
	r, err := loadEndpoint(ctx, s.db, tenant, id)
	return r.Endpoint, err
}

// ListEndpoints pages through the tenant's endpoints by id.
func (s *Service) ListEndpoints(ctx context.Context, limit int, cursor string) (abacus.List[Endpoint], error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return abacus.List[Endpoint]{}, err
	}
	limit = pageSize(limit)
	items, err := listEndpoints(ctx, s.db, tenant, cursor, limit+1)
	return page(items, err, limit, func(e Endpoint) string { return e.ID })
}

func pageSize(limit int) int {
	if limit <= 0 {
		return 20
	}
	return min(limit, 100)
}

// page cuts items, read with one more than limit, to a page whose cursor
// is the id of its last item when more follow.
func page[T any](items []T, err error, limit int, id func(T) string) (abacus.List[T], error) {
	if err != nil {
		return abacus.List[T]{}, err
	}
	next := ""
	if len(items) > limit {
		items = items[:limit]
		next = id(items[limit-1])
	}
	return abacus.ListOf(items, next), nil
}

// UpdateEndpoint changes the fields given. Enabling an endpoint Abacus
// disabled clears the reason and its failure streak.
func (s *Service) UpdateEndpoint(ctx context.Context, id string, p EndpointPatch) (Endpoint, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return Endpoint{}, err
	}
	var out Endpoint
	err = s.db.InTx(ctx, func(tx *db.Tx) error {
		r, err := loadEndpoint(ctx, tx, tenant, id)
		if err != nil {
			return err
		}
		e := r.Endpoint
		if p.URL != nil {
			e.URL = strings.TrimSpace(*p.URL)
		}
		if p.EventTypes != nil {
			e.EventTypes = *p.EventTypes
		}
		if p.Description != nil {
			e.Description = *p.Description
		}
		if p.RateLimit != nil {
			e.RateLimit = *p.RateLimit
		}
		if p.Enabled != nil {
			if *p.Enabled && !e.Enabled {
				e.DisabledReason, e.FailingSince = "", nil
			}
			e.Enabled = *p.Enabled
		}
		if err := s.validate(ctx, e.URL, e.EventTypes, e.Description, e.RateLimit); err != nil {
			return err
		}
		e.UpdatedAt = s.clock.Now()
		out = e
		return updateEndpoint(ctx, tx, tenant, e)
	})
	if err == nil {
		s.wake()
	}
	return out, err
}

// DeleteEndpoint deletes an endpoint with its messages and their log.
func (s *Service) DeleteEndpoint(ctx context.Context, id string) error {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return err
	}
	return s.db.InTx(ctx, func(tx *db.Tx) error { return deleteEndpoint(ctx, tx, tenant, id) })
}

// RotateSecret gives the endpoint a new secret and keeps the current one
// signing beside it for RotationOverlap, so a receiver can switch without
// losing a delivery. Only this answer shows the new secret.
func (s *Service) RotateSecret(ctx context.Context, id string) (EndpointWithSecret, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return EndpointWithSecret{}, err
	}
	secret := newSecret()
	var out Endpoint
	err = s.db.InTx(ctx, func(tx *db.Tx) error {
		r, err := loadEndpoint(ctx, tx, tenant, id)
		if err != nil {
			return err
		}
		out = r.Endpoint
		out.UpdatedAt = s.clock.Now()
		return rotateSecret(ctx, tx, tenant, id, s.sealer.seal(id, secret), r.secret, out.UpdatedAt.Add(RotationOverlap), out.UpdatedAt)
	})
	if err != nil {
		return EndpointWithSecret{}, err
	}
	return EndpointWithSecret{Endpoint: out, Secret: secret}, nil
}

// matches reports whether the endpoint takes events of type t.
func (e Endpoint) matches(t string) bool {
	return len(e.EventTypes) == 0 || slices.Contains(e.EventTypes, t)
}
