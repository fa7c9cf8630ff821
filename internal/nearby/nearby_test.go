package nearby

import (
	"context"
	"log/slog"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
)

func as(tenant, kind, id string) context.Context {
	return abacus.WithPrincipal(context.Background(), &abacus.Principal{TenantID: tenant, Kind: kind, ID: id, Scopes: []abacus.Scope{abacus.ScopeWrite}})
}

func f(v float64) *float64 { return &v }

// chordKm is an independent great-circle distance: the chord between unit
// vectors, turned into an arc (not the haversine formula the service uses).
func chordKm(lat1, lon1, lat2, lon2 float64) float64 {
	vec := func(lat, lon float64) [3]float64 {
		la, lo := lat*math.Pi/180, lon*math.Pi/180
		return [3]float64{math.Cos(la) * math.Cos(lo), math.Cos(la) * math.Sin(lo), math.Sin(la)}
	}
	a, b := vec(lat1, lon1), vec(lat2, lon2)
	dx, dy, dz := a[0]-b[0], a[1]-b[1], a[2]-b[2]
	chord := math.Sqrt(dx*dx + dy*dy + dz*dz)
	return 2 * math.Asin(min(1, chord/2)) * EarthRadiusKm
}

// seed stores n random end users: a third spread over the globe, the rest
// in clusters at the poles, across the antimeridian and in a city.
func seed(t *testing.T, s *Service, d *db.DB, tenant string, n int, rng *rand.Rand) {
	t.Helper()
	clusters := [][2]float64{{89.95, 0}, {-89.9, 120}, {0.5, 179.97}, {-20, -179.98}, {52.52, 13.40}, {66.5, 180}}
	now := s.clock.Now()
	exp := now.Add(s.cfg.TTL)
	rows := make([][]any, 0, n)
	for i := range n {
		var lat, lon float64
		if i%3 == 0 {
			lat, lon = math.Asin(2*rng.Float64()-1)*180/math.Pi, rng.Float64()*360-180
		} else {
			c := clusters[i%len(clusters)]
			lat = math.Max(-90, math.Min(90, c[0]+rng.NormFloat64()*0.3))
			lon = c[1] + rng.NormFloat64()*0.6
			lon = math.Mod(lon+540, 360) - 180
		}
		slat, slon, cell := s.grid.snap(lat, lon)
		tags := "[]"
		if i%2 == 0 {
			tags = `["even"]`
		}
		rows = append(rows, []any{tenant, TypeEndUser, "eu_" + string(rune('a'+i%26)) + itoa(i), TypeEndUser, "", tags, cell, slat, slon,
			db.TimeOf(now), db.NullTimeOf(&exp)})
	}
	// One multi-row insert: a round trip per row cost about a second on
	// PostgreSQL.
	err := d.InTx(context.Background(), func(tx *db.Tx) error {
		return tx.InsertRows(context.Background(), `INSERT INTO nearby_locations (tenant_id, subject_type, subject_id, kind, name, tags, cell, lat, lon, updated_at, expires_at)`, "", rows)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func itoa(i int) string {
	const digits = "0123456789"
	if i < 10 {
		return digits[i : i+1]
	}
	return itoa(i/10) + digits[i%10:i%10+1]
}

// TestRadiusAgreesWithBruteForce compares every query with a scan of all
// stored points measured by an independent formula: random centres and
// radii, and centres at the poles and on the antimeridian.
func TestRadiusAgreesWithBruteForce(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		clock := abacus.NewFakeClock(time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC))
		s := New(d, clock, slog.New(slog.DiscardHandler), Config{QueriesPerMinute: 100_000}, nil)
		rng := rand.New(rand.NewPCG(17, 42))
		seed(t, s, d, "ten_a", 3000, rng)
		seed(t, s, d, "ten_b", 300, rng) // another tenant's points never appear
		type pt struct {
			id       string
			lat, lon float64
		}
		var all []pt
		rows, err := d.QueryContext(context.Background(), `SELECT subject_id, lat, lon FROM nearby_locations WHERE tenant_id = 'ten_a'`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var p pt
			if err := rows.Scan(&p.id, &p.lat, &p.lon); err != nil {
				t.Fatal(err)
			}
			all = append(all, p)
		}
		rows.Close()
		type q struct{ lat, lon, r float64 }
		queries := []q{{90, 0, 50}, {89.99, -170, 30}, {-90, 0, 40}, {-89.95, 60, 25}, {0.5, 180, 20}, {0.5, -180, 20}, {0.4, 179.99, 35},
			{-20, 179.9, 40}, {66.5, -179.95, 60}, {52.52, 13.4, 10}, {52.52, 13.4, 1}, {10, 10, 1000}}
		for range 20 {
			queries = append(queries, q{math.Asin(2*rng.Float64()-1) * 180 / math.Pi, rng.Float64()*360 - 180, 1 + rng.Float64()*600})
		}
		ctx := as("ten_a", "api_key", "key_1")
		checked := 0
		for _, qu := range queries {
			var want []string
			for _, p := range all {
				dd := chordKm(qu.lat, qu.lon, p.lat, p.lon)
				if math.Abs(dd-qu.r) < 1e-6 {
					continue // on the boundary to rounding: either answer is right
				}
				if dd <= qu.r {
					want = append(want, p.id)
				}
			}
			var got []string
			var prev float64
			cur := ""
			for {
				page, err := s.Search(ctx, Query{Lat: f(qu.lat), Lon: f(qu.lon), RadiusKm: qu.r, Limit: 100, Cursor: cur})
				if err != nil {
					t.Fatal(err)
				}
				for _, h := range page.Data {
					if h.exact < prev {
						t.Fatalf("query %+v: not nearest first", qu)
					}
					prev = h.exact
					if h.DistanceKm < h.exact || h.DistanceKm-h.exact > s.grid.stepKm+1e-9 {
						t.Fatalf("shown distance %v for %v: not rounded up to the %v km step", h.DistanceKm, h.exact, s.grid.stepKm)
					}
					if math.Abs(h.exact-qu.r) >= 1e-6 {
						got = append(got, h.EndUserID)
					}
				}
				if page.NextCursor == "" {
					break
				}
				cur = page.NextCursor
			}
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("query %+v: %d hits, brute force %d", qu, len(got), len(want))
			}
			checked += len(want)
		}
		if checked < 500 {
			t.Fatalf("only %d hits checked in all: the queries prove little", checked)
		}
	})
}

func TestPublishTTLFiltersAndRateLimit(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		clock := abacus.NewFakeClock(time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC))
		s := New(d, clock, slog.New(slog.DiscardHandler), Config{PrecisionM: 500, TTL: 10 * time.Minute, QueriesPerMinute: 5}, nil)
		staff := as("ten_a", "api_key", "key_1")
		loc, err := s.Publish(staff, "eu_1", LocationInput{Lat: f(52.520008), Lon: f(13.404954), Tags: []string{"Cycling"}})
		if err != nil {
			t.Fatal(err)
		}
		if loc.Lat == 52.520008 || Haversine(loc.Lat, loc.Lon, 52.520008, 13.404954) > 0.5 {
			t.Fatalf("stored %v,%v: must be snapped, within the precision", loc.Lat, loc.Lon)
		}
		if _, err := s.CreatePlace(staff, PlaceInput{Name: "Market", Kind: "event", Tags: []string{"food"}, Lat: f(52.53), Lon: f(13.41)}); err != nil {
			t.Fatal(err)
		}
		for _, bad := range []LocationInput{{Lat: f(90.1), Lon: f(0)}, {Lat: f(0), Lon: f(-180.5)}, {Lat: f(math.NaN()), Lon: f(0)}, {Lon: f(1)}} {
			if _, err := s.Publish(staff, "eu_1", bad); abacus.ErrorKind(err) != abacus.KindInvalid {
				t.Errorf("Publish(%v) = %v", bad, err)
			}
		}
		if _, err := s.Publish(as("ten_a", "end_user", "eu_2"), "eu_1", LocationInput{Lat: f(1), Lon: f(1)}); abacus.ErrorKind(err) != abacus.KindForbidden {
			t.Fatalf("an end user publishing for another: %v", err)
		}
		search := func(kind string, tags ...string) []Hit {
			t.Helper()
			l, err := s.Search(staff, Query{Lat: f(52.52), Lon: f(13.40), RadiusKm: 5, Kind: kind, Tags: tags})
			if err != nil {
				t.Fatal(err)
			}
			return l.Data
		}
		if h := search(""); len(h) != 2 || h[0].EndUserID != "eu_1" || h[1].PlaceID == "" {
			t.Fatalf("all = %+v", h)
		}
		if h := search("event"); len(h) != 1 || h[0].Name != "Market" {
			t.Fatalf("events = %+v", h)
		}
		if h := search("", "cycling"); len(h) != 1 || h[0].EndUserID != "eu_1" {
			t.Fatalf("tag cycling = %+v", h)
		}
		clock.Advance(11 * time.Minute) // the user's location expired; the place stays
		if h := search(""); len(h) != 1 || h[0].PlaceID == "" {
			t.Fatalf("after the TTL = %+v", h)
		}
		for i := range 4 { // the bucket refilled during the 11 minutes: 5 a minute
			if _, err := s.Search(staff, Query{Lat: f(52.52), Lon: f(13.40), RadiusKm: 5}); err != nil {
				t.Fatalf("query %d: %v", i, err)
			}
		}
		_, err = s.Search(staff, Query{Lat: f(52.52), Lon: f(13.40), RadiusKm: 5})
		if e, ok := abacus.AsError(err); !ok || e.Kind != abacus.KindRateLimited || e.RetryAfter < 1 {
			t.Fatalf("6th query in a minute = %v", err)
		}
		if _, err := s.Search(as("ten_a", "end_user", "eu_9"), Query{Lat: f(52.52), Lon: f(13.40), RadiusKm: 5}); err != nil {
			t.Fatalf("another user is not limited by the first: %v", err)
		}
		for _, bad := range []Query{{Lat: f(0), Lon: f(0), RadiusKm: 0}, {Lat: f(0), Lon: f(0), RadiusKm: 40000}, {Lat: f(math.NaN()), Lon: f(0), RadiusKm: 1},
			{Lat: f(0), Lon: f(0), RadiusKm: math.NaN()}, {Lat: f(0), Lon: f(0), RadiusKm: 1, Cursor: "zz"}} {
			if _, err := s.Search(as("ten_a", "end_user", "eu_8"), bad); abacus.ErrorKind(err) != abacus.KindInvalid {
				t.Errorf("Search(%+v) = %v", bad, err)
			}
		}
		if err := s.Withdraw(staff, "eu_1"); err != nil {
			t.Fatal(err)
		}
	})
}
