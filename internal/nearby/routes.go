package nearby

import (
	"context"
	"net/http"
	"strconv"

	"github.com/danielgtaylor/huma/v2"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/httpapi"
)

// searchInput is the query of the nearby routes. Coordinates are read as
// text so that NaN and infinities are refused by name.
type searchInput struct {
	Lat      string   `query:"lat" required:"true" doc:"degrees, -90 to 90" example:"52.52"`
	Lon      string   `query:"lon" required:"true" doc:"degrees, -180 to 180" example:"13.405"`
	RadiusKm string   `query:"radius_km" required:"true" doc:"more than 0, at most 1000" example:"5"`
	Kind     string   `query:"kind" maxLength:"64" doc:"only end_user, or only places of this kind"`
	Tag      []string `query:"tag" maxItems:"10" doc:"only those with every one of these tags"`
	Limit    int      `query:"limit" minimum:"0" maximum:"100" doc:"page size (default 20)"`
	Cursor   string   `query:"cursor" doc:"next_cursor of the previous page"`
}

func (in *searchInput) query() (Query, error) {
	var v abacus.Validation
	num := func(field, s string) *float64 {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			v.Add("query."+field, "must be a number")
			return nil
		}
		return &f
	}
	q := Query{Lat: num("lat", in.Lat), Lon: num("lon", in.Lon), Kind: in.Kind, Tags: in.Tag, Limit: in.Limit, Cursor: in.Cursor}
	if r := num("radius_km", in.RadiusKm); r != nil {
		q.RadiusKm = *r
	}
	return q, v.Err("nearby_query_invalid")
}

type userPath struct {
	ID string `path:"id" maxLength:"128" doc:"end user id"`
}

func endUser(ctx context.Context) (*abacus.Principal, error) {
	p := abacus.PrincipalFrom(ctx)
	if p == nil {
		return nil, abacus.Errorf(abacus.KindUnauthorized, "unauthenticated", "send Authorization: Bearer <end user access token>")
	}
	if p.Kind != TypeEndUser {
		return nil, abacus.Errorf(abacus.KindForbidden, "not_an_end_user", "this route is for end users' access tokens; staff use /api/v1/nearby and /api/v1/end-users/{id}/location")
	}
	return p, nil
}

// RegisterRoutes adds the nearby routes.
func RegisterRoutes(s *httpapi.Server, svc *Service) {
	s.Example(Examples()...)
	tags := []string{"Nearby"}
	publish := "Publishing is the user's opt-in (DELETE withdraws it). The location is stored snapped to the configured precision " +
		"(nearby.precision_m), never the point sent, and is shown for nearby.ttl after it was published."
	httpapi.Register(s, huma.Operation{OperationID: "put-end-user-location", Method: http.MethodPut, Path: "/api/v1/end-users/{id}/location", Tags: tags,
		Summary: "Publish an end user's location", Description: publish},
		abacus.ScopeWrite, func(ctx context.Context, in *struct {
			ID   string `path:"id" maxLength:"128" doc:"end user id"`
			Body LocationInput
		}) (*httpapi.Body[Location], error) {
			return httpapi.Reply(svc.Publish(ctx, in.ID, in.Body))
		})
	httpapi.Register(s, huma.Operation{OperationID: "delete-end-user-location", Method: http.MethodDelete, Path: "/api/v1/end-users/{id}/location", Tags: tags,
		Summary: "Withdraw an end user's location", DefaultStatus: http.StatusNoContent},
		abacus.ScopeWrite, func(ctx context.Context, in *userPath) (*struct{}, error) {
			if svc.users != nil {
				if err := svc.users.Exists(ctx, in.ID); err != nil {
					return nil, err
				}
			}
			return nil, svc.Withdraw(ctx, in.ID)
		})
	httpapi.Register(s, huma.Operation{OperationID: "put-my-location", Method: http.MethodPut, Path: "/api/v1/end-user/me/location", Tags: tags,
		Summary: "Publish my location (end user)", Description: publish, Errors: []int{http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden}},
		httpapi.ScopePublic, func(ctx context.Context, in *struct{ Body LocationInput }) (*httpapi.Body[Location], error) {
			p, err := endUser(ctx)
			if err != nil {
				return nil, err
			}
			return httpapi.Reply(svc.Publish(ctx, p.ID, in.Body))
		})
	httpapi.Register(s, huma.Operation{OperationID: "delete-my-location", Method: http.MethodDelete, Path: "/api/v1/end-user/me/location", Tags: tags,
		Summary: "Withdraw my location (end user)", DefaultStatus: http.StatusNoContent, Errors: []int{http.StatusUnauthorized, http.StatusForbidden}},
		httpapi.ScopePublic, func(ctx context.Context, _ *struct{}) (*struct{}, error) {
			p, err := endUser(ctx)
			if err != nil {
				return nil, err
			}
			return nil, svc.Withdraw(ctx, p.ID)
		})
	search := "Nearest first (ties by type and id). distance_km is rounded up to the precision locations are stored at. " +
		"Rate-limited per user or key (nearby.queries_per_minute): 429 rate_limited with Retry-After."
	httpapi.Register(s, huma.Operation{OperationID: "search-nearby", Method: http.MethodGet, Path: "/api/v1/nearby", Tags: tags,
		Summary: "Who and what is within radius_km of a point", Description: search},
		abacus.ScopeRead, func(ctx context.Context, in *searchInput) (*httpapi.Body[abacus.List[Hit]], error) {
			q, err := in.query()
			if err != nil {
				return nil, err
			}
			return httpapi.Reply(svc.Search(ctx, q))
		})
	httpapi.Register(s, huma.Operation{OperationID: "search-nearby-me", Method: http.MethodGet, Path: "/api/v1/end-user/nearby", Tags: tags,
		Summary: "Who and what is near me (end user)", Description: search + " The caller is left out.",
		Errors: []int{http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden, http.StatusTooManyRequests}},
		httpapi.ScopePublic, func(ctx context.Context, in *searchInput) (*httpapi.Body[abacus.List[Hit]], error) {
			p, err := endUser(ctx)
			if err != nil {
				return nil, err
			}
			q, err := in.query()
			if err != nil {
				return nil, err
			}
			q.Exclude = p.ID
			return httpapi.Reply(svc.Search(ctx, q))
		})
	httpapi.Register(s, huma.Operation{OperationID: "create-place", Method: http.MethodPost, Path: "/api/v1/places", Tags: tags,
		Summary: "Publish a place (an event, a service provider…)", DefaultStatus: http.StatusCreated,
		Description: "Found by GET /api/v1/nearby (kind, tag filters). Stored snapped like end users' locations; places do not expire."},
		abacus.ScopeWrite, func(ctx context.Context, in *httpapi.Body[PlaceInput]) (*httpapi.Body[Place], error) {
			return httpapi.Reply(svc.CreatePlace(ctx, in.Body))
		})
	httpapi.Register(s, huma.Operation{OperationID: "list-places", Method: http.MethodGet, Path: "/api/v1/places", Tags: tags, Summary: "List places"},
		abacus.ScopeRead, func(ctx context.Context, in *struct {
			Limit  int    `query:"limit" minimum:"0" maximum:"100" doc:"page size (default 50)"`
			Cursor string `query:"cursor" doc:"next_cursor of the previous page"`
		}) (*httpapi.Body[abacus.List[Place]], error) {
			return httpapi.Reply(svc.ListPlaces(ctx, in.Limit, in.Cursor))
		})
	httpapi.Register(s, huma.Operation{OperationID: "delete-place", Method: http.MethodDelete, Path: "/api/v1/places/{id}", Tags: tags,
		Summary: "Delete a place", DefaultStatus: http.StatusNoContent},
		abacus.ScopeWrite, func(ctx context.Context, in *struct {
			ID string `path:"id" maxLength:"64" doc:"place id (plc_…)"`
		}) (*struct{}, error) {
			return nil, svc.DeletePlace(ctx, in.ID)
		})
}
