// Package nearby is "who and what is within R km of me": end users publish
// their location (opting in; it expires after a TTL), tenants publish
// places (events, service providers…), and queries return them nearest
// first on both engines.
//
// A location is stored snapped to the centre of an S2 cell of about the
// configured precision — never the exact point — with the S2 leaf cell id
// of that centre as an indexed column. A query covers its circle with at
// most 12 S2 cells (ranges of that column), then keeps the points whose
// great-circle (haversine) distance is within the radius; S2 has no seam
// at the antimeridian and none at the poles. Distances are shown rounded
// up to the precision, so a moving querier learns no more than the
// snapped cell (no trilateration below it). Queries are rate-limited per
// user or key.
package nearby

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
)

// Config configures the service; zero fields take defaults.
type Config struct {
	PrecisionM       int           // snapping and rounding (default 200 m)
	TTL              time.Duration // end users' locations (default 30 min)
	QueriesPerMinute int           // per user or key (default 30)
}

// WithDefaults fills zero fields.
func (c Config) WithDefaults() Config {
	if c.PrecisionM <= 0 {
		c.PrecisionM = 200
	}
	if c.TTL <= 0 {
		c.TTL = 30 * time.Minute
	}
	if c.QueriesPerMinute <= 0 {
		c.QueriesPerMinute = 30
	}
	return c
}

// Users is the end-user directory's read API.
type Users interface {
	// Exists returns nil when the end user exists in the tenant on ctx,
	// else a not_found *abacus.Error.
	Exists(ctx context.Context, id string) error
}

// Service is the nearby module.
type Service struct {
	db    *db.DB
	clock abacus.Clock
	log   *slog.Logger
	cfg   Config
	grid  grid
	users Users

	mu      sync.Mutex
	buckets map[string]*bucket
}

// New returns the service; users may be nil (no existence check).
func New(d *db.DB, clock abacus.Clock, log *slog.Logger, cfg Config, users Users) *Service {
	cfg = cfg.WithDefaults()
	return &Service{db: d, clock: clock, log: log, cfg: cfg, grid: newGrid(cfg.PrecisionM), users: users, buckets: map[string]*bucket{}}
}

// Subject types.
const (
	TypeEndUser = "end_user"
	TypePlace   = "place"
)

// LocationInput is a location to publish.
type LocationInput struct {
	Lat  *float64 `json:"lat" required:"true" doc:"degrees, -90 to 90" example:"52.52"`
	Lon  *float64 `json:"lon" required:"true" doc:"degrees, -180 to 180" example:"13.405"`
	Tags []string `json:"tags,omitempty" maxItems:"10" doc:"what the user can be found by (filter with tag=)"`
}

// Location is a published location, as stored: snapped.
type Location struct {
	EndUserID string     `json:"end_user_id,omitempty"`
	PlaceID   string     `json:"place_id,omitempty"`
	Lat       float64    `json:"lat" doc:"snapped to the precision, not the point sent"`
	Lon       float64    `json:"lon"`
	Tags      []string   `json:"tags"`
	ExpiresAt *time.Time `json:"expires_at,omitempty" doc:"after this it is not shown (end users only)"`
	UpdatedAt time.Time  `json:"updated_at"`
}

func checkPoint(v *abacus.Validation, prefix string, lat, lon *float64) {
	if lat == nil {
		v.Add(prefix+"lat", "is required")
	} else if math.IsNaN(*lat) || *lat < -90 || *lat > 90 {
		v.Add(prefix+"lat", "must be a latitude from -90 to 90 degrees")
	}
	if lon == nil {
		v.Add(prefix+"lon", "is required")
	} else if math.IsNaN(*lon) || *lon < -180 || *lon > 180 {
		v.Add(prefix+"lon", "must be a longitude from -180 to 180 degrees")
	}
}

func checkTags(v *abacus.Validation, field string, tags []string) {
	if len(tags) > 10 {
		v.Add(field, "at most 10 tags")
	}
	for _, t := range tags {
		if t == "" || len(t) > 64 {
			v.Add(field, "each tag must have 1 to 64 bytes")
			break
		}
	}
}

// Publish stores an end user's location (publishing is the user's
// opt-in; Withdraw removes it). Errors: invalid (lat, lon, tags),
// end_user_not_found, forbidden (an end user publishing for another).
func (s *Service) Publish(ctx context.Context, user string, in LocationInput) (Location, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return Location{}, err
	}
	if p := abacus.PrincipalFrom(ctx); p.Kind == TypeEndUser && p.ID != user {
		return Location{}, abacus.Errorf(abacus.KindForbidden, "forbidden", "an end user publishes only their own location")
	}
	var v abacus.Validation
	checkPoint(&v, "body.", in.Lat, in.Lon)
	checkTags(&v, "body.tags", in.Tags)
	if err := v.Err("location_invalid"); err != nil {
		return Location{}, err
	}
	if s.users != nil {
		if err := s.users.Exists(ctx, user); err != nil {
			return Location{}, err
		}
	}
	now := s.clock.Now()
	exp := now.Add(s.cfg.TTL)
	lat, lon, cell := s.grid.snap(*in.Lat, *in.Lon)
	r := row{Type: TypeEndUser, ID: user, Kind: TypeEndUser, Tags: normTags(in.Tags), Cell: cell, Lat: lat, Lon: lon, UpdatedAt: now, ExpiresAt: &exp}
	if err := s.db.InTx(ctx, func(tx *db.Tx) error { return upsert(ctx, tx, tenant, r) }); err != nil {
		return Location{}, fmt.Errorf("publishing a location: %w", err)
	}
	return r.location(), nil
}

// Withdraw removes an end user's location (opting out). Errors:
// forbidden (another end user).
func (s *Service) Withdraw(ctx context.Context, user string) error {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return err
	}
	if p := abacus.PrincipalFrom(ctx); p.Kind == TypeEndUser && p.ID != user {
		return abacus.Errorf(abacus.KindForbidden, "forbidden", "an end user withdraws only their own location")
	}
	return s.db.InTx(ctx, func(tx *db.Tx) error { return remove(ctx, tx, tenant, TypeEndUser, user) })
}

func normTags(tags []string) []string {
	out := make([]string, 0, len(tags))
	for _, t := range tags {
		t = strings.ToLower(strings.TrimSpace(t))
		if t != "" && !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	slices.Sort(out)
	return out
}

// Query is a radius search.
type Query struct {
	Lat, Lon *float64
	RadiusKm float64
	Kind     string   // end_user, or a place kind; empty: all
	Tags     []string // every one must match
	Limit    int      // default 20, at most 100
	Cursor   string
	// Exclude leaves one end user out (the one asking).
	Exclude string
}

// Hit is one result.
type Hit struct {
	Type       string   `json:"type" enum:"end_user,place"`
	EndUserID  string   `json:"end_user_id,omitempty"`
	PlaceID    string   `json:"place_id,omitempty"`
	Name       string   `json:"name,omitempty"`
	Kind       string   `json:"kind" doc:"end_user, or the place's kind"`
	Tags       []string `json:"tags"`
	DistanceKm float64  `json:"distance_km" doc:"rounded up to the precision locations are stored at"`
	exact      float64
	rawTags    string // JSON, decoded only for the hits a page returns
}

// MaxRadiusKm bounds a query's radius.
const MaxRadiusKm = 1000

// Search returns what lies within q.RadiusKm of the point, nearest first
// (ties by type and id), paged. Errors: invalid (every bad field),
// rate_limited (with RetryAfter) past Config.QueriesPerMinute.
func (s *Service) Search(ctx context.Context, q Query) (abacus.List[Hit], error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return abacus.List[Hit]{}, err
	}
	var v abacus.Validation
	checkPoint(&v, "query.", q.Lat, q.Lon)
	if math.IsNaN(q.RadiusKm) || q.RadiusKm <= 0 || q.RadiusKm > MaxRadiusKm {
		v.Add("query.radius_km", "must be more than 0 and at most %d km", MaxRadiusKm)
	}
	if q.Limit < 0 || q.Limit > 100 {
		v.Add("query.limit", "must be 0 to 100")
	}
	checkTags(&v, "query.tag", q.Tags)
	var after *cursor
	if q.Cursor != "" {
		c, err := parseCursor(q.Cursor)
		if err != nil {
			v.Add("query.cursor", "is not a cursor this API returned")
		}
		after = &c
	}
	if err := v.Err("nearby_query_invalid"); err != nil {
		return abacus.List[Hit]{}, err
	}
	if err := s.allow(tenant, abacus.PrincipalFrom(ctx)); err != nil {
		return abacus.List[Hit]{}, err
	}
	limit := q.Limit
	if limit == 0 {
		limit = 20
	}
	hits, err := s.nearest(ctx, tenant, *q.Lat, *q.Lon, q.RadiusKm, q.Kind, normTags(q.Tags), q.Exclude, after, limit+1)
	if err != nil {
		return abacus.List[Hit]{}, err
	}
	out := abacus.List[Hit]{Data: hits}
	if len(hits) > limit {
		out.Data = hits[:limit]
		last := hits[limit-1]
		out.NextCursor = cursor{d: last.exact, typ: last.Type, id: last.EndUserID + last.PlaceID}.String()
	}
	if out.Data == nil {
		out.Data = []Hit{}
	}
	for i := range out.Data {
		if out.Data[i].Tags == nil {
			out.Data[i].Tags = decodeTags(out.Data[i].rawTags)
		}
	}
	return out, nil
}

// nearest returns the hits within radius after the cursor, nearest
// first: at least need of them, or all there are. Only the nearest need
// matter, and they lie within the smallest circle holding need hits; so
// it searches circles growing 4× from radius/16 (at least 1 km, and past
// the cursor) up to radius, and stops at the first that holds enough. A
// page of a large radius in a dense area then reads a few hundred
// locations, not every one in the radius; a sparse area costs one or two
// small queries more.
func (s *Service) nearest(ctx context.Context, tenant string, lat, lon, radius float64, kind string, tags []string, exclude string,
	after *cursor, need int) ([]Hit, error) {
	r := max(radius/16, 1)
	if after != nil {
		r = max(r, 2*after.d)
	}
	for {
		r = min(r, radius)
		hits, err := s.search(ctx, tenant, lat, lon, r, kind, tags, exclude)
		if err != nil {
			return nil, err
		}
		if after != nil {
			i, found := slices.BinarySearchFunc(hits, *after, func(h Hit, c cursor) int { return -c.compareHit(h) })
			if found {
				i++
			}
			hits = hits[i:]
		}
		if len(hits) >= need || r == radius {
			return hits, nil
		}
		r *= 4
	}
}

// search returns every hit within radius, sorted.
func (s *Service) search(ctx context.Context, tenant string, lat, lon, radius float64, kind string, tags []string, exclude string) ([]Hit, error) {
	rows, err := candidates(ctx, s.db, tenant, s.grid.cover(lat, lon, radius), kind, s.clock.Now())
	if err != nil {
		return nil, fmt.Errorf("searching nearby: %w", err)
	}
	hits := make([]Hit, 0, len(rows))
	for _, r := range rows {
		if r.Type == TypeEndUser && r.ID == exclude {
			continue
		}
		d := Haversine(lat, lon, r.Lat, r.Lon)
		if d > radius {
			continue
		}
		h := Hit{Type: r.Type, Kind: r.Kind, Name: r.Name, DistanceKm: s.grid.round(d), exact: d, rawTags: r.Tags}
		if len(tags) > 0 {
			if h.Tags = decodeTags(r.Tags); !hasAll(h.Tags, tags) {
				continue
			}
		}
		if r.Type == TypeEndUser {
			h.EndUserID = r.ID
		} else {
			h.PlaceID = r.ID
		}
		hits = append(hits, h)
	}
	slices.SortFunc(hits, func(a, b Hit) int { return cursor{d: a.exact, typ: a.Type, id: a.EndUserID + a.PlaceID}.compareHit(b) })
	return hits, nil
}

func hasAll(have, want []string) bool {
	for _, t := range want {
		if !slices.Contains(have, t) {
			return false
		}
	}
	return true
}

// cursor is the position after the last hit of a page.
type cursor struct {
	d       float64
	typ, id string
}

// compareHit orders the cursor against h: -1 when the cursor comes first.
func (c cursor) compareHit(h Hit) int {
	switch {
	case c.d < h.exact:
		return -1
	case c.d > h.exact:
		return 1
	}
	if n := strings.Compare(c.typ, h.Type); n != 0 {
		return n
	}
	return strings.Compare(c.id, h.EndUserID+h.PlaceID)
}

func (c cursor) String() string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatUint(math.Float64bits(c.d), 16) + "|" + c.typ + "|" + c.id))
}

func parseCursor(s string) (cursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return cursor{}, err
	}
	parts := strings.SplitN(string(b), "|", 3)
	if len(parts) != 3 {
		return cursor{}, fmt.Errorf("malformed cursor")
	}
	bits, err := strconv.ParseUint(parts[0], 16, 64)
	if err != nil {
		return cursor{}, err
	}
	return cursor{d: math.Float64frombits(bits), typ: parts[1], id: parts[2]}, nil
}

// bucket is a token bucket refilled at QueriesPerMinute.
type bucket struct {
	tokens float64
	at     time.Time
}

func (s *Service) allow(tenant string, p *abacus.Principal) error {
	if p == nil {
		return nil
	}
	key := tenant + "/" + p.Kind + "/" + p.ID
	now := s.clock.Now()
	rate := float64(s.cfg.QueriesPerMinute) / 60
	burst := float64(s.cfg.QueriesPerMinute)
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.buckets) > 100_000 {
		clear(s.buckets)
	}
	b, ok := s.buckets[key]
	if !ok {
		b = &bucket{tokens: burst, at: now}
		s.buckets[key] = b
	}
	b.tokens = min(burst, b.tokens+now.Sub(b.at).Seconds()*rate)
	b.at = now
	if b.tokens < 1 {
		e := abacus.Errorf(abacus.KindRateLimited, "rate_limited", "at most %d nearby queries a minute; retry later", s.cfg.QueriesPerMinute)
		e.RetryAfter = int(math.Ceil((1 - b.tokens) / rate))
		return e
	}
	b.tokens--
	return nil
}

// PlaceInput is a place to publish.
type PlaceInput struct {
	Name string   `json:"name" minLength:"1" maxLength:"200" example:"Farmers' market"`
	Kind string   `json:"kind" minLength:"1" maxLength:"64" example:"event" doc:"event, service_provider, or the tenant's own kind (not end_user)"`
	Tags []string `json:"tags,omitempty" maxItems:"10"`
	Lat  *float64 `json:"lat" required:"true"`
	Lon  *float64 `json:"lon" required:"true"`
}

// Place is a published place.
type Place struct {
	ID        string    `json:"id" example:"plc_01JE5V7M0000000000000000"`
	Name      string    `json:"name"`
	Kind      string    `json:"kind"`
	Tags      []string  `json:"tags"`
	Lat       float64   `json:"lat" doc:"snapped to the precision"`
	Lon       float64   `json:"lon"`
	UpdatedAt time.Time `json:"updated_at"`
}

// CreatePlace publishes a place (no TTL). Errors: invalid.
func (s *Service) CreatePlace(ctx context.Context, in PlaceInput) (Place, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return Place{}, err
	}
	var v abacus.Validation
	if strings.TrimSpace(in.Name) == "" || len(in.Name) > 200 {
		v.Add("body.name", "must have 1 to 200 bytes")
	}
	if in.Kind == "" || len(in.Kind) > 64 || in.Kind == TypeEndUser {
		v.Add("body.kind", "must have 1 to 64 bytes and not be end_user")
	}
	checkPoint(&v, "body.", in.Lat, in.Lon)
	checkTags(&v, "body.tags", in.Tags)
	if err := v.Err("place_invalid"); err != nil {
		return Place{}, err
	}
	now := s.clock.Now()
	lat, lon, cell := s.grid.snap(*in.Lat, *in.Lon)
	r := row{Type: TypePlace, ID: abacus.NewID("plc"), Kind: in.Kind, Name: in.Name, Tags: normTags(in.Tags), Cell: cell, Lat: lat, Lon: lon, UpdatedAt: now}
	if err := s.db.InTx(ctx, func(tx *db.Tx) error { return upsert(ctx, tx, tenant, r) }); err != nil {
		return Place{}, fmt.Errorf("creating a place: %w", err)
	}
	return r.place(), nil
}

// ListPlaces lists the tenant's places by id.
func (s *Service) ListPlaces(ctx context.Context, limit int, after string) (abacus.List[Place], error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return abacus.List[Place]{}, err
	}
	if limit <= 0 {
		limit = 50
	}
	rows, err := listPlaces(ctx, s.db, tenant, after, limit+1)
	if err != nil {
		return abacus.List[Place]{}, err
	}
	out := abacus.List[Place]{Data: make([]Place, 0, len(rows))}
	for i, r := range rows {
		if i == limit {
			out.NextCursor = rows[i-1].ID
			break
		}
		out.Data = append(out.Data, r.place())
	}
	return out, nil
}

// DeletePlace removes a place. Errors: place_not_found.
func (s *Service) DeletePlace(ctx context.Context, id string) error {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return err
	}
	return s.db.InTx(ctx, func(tx *db.Tx) error {
		n, err := removeN(ctx, tx, tenant, TypePlace, id)
		if err == nil && n == 0 {
			return abacus.NotFound("place", id)
		}
		return err
	})
}

func tagsJSON(t []string) string {
	b, _ := json.Marshal(t)
	return string(b)
}
