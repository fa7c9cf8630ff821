package nearby

import (
	"math"

	"github.com/golang/geo/s1"
	"github.com/golang/geo/s2"
)

// EarthRadiusKm is the mean Earth radius (IUGG) every distance uses.
const EarthRadiusKm = 6371.0088

// Haversine returns the great-circle distance in km between two points
// given in degrees.
func Haversine(lat1, lon1, lat2, lon2 float64) float64 {
	const rad = math.Pi / 180
	p1, p2 := lat1*rad, lat2*rad
	dp, dl := (lat2-lat1)*rad, (lon2-lon1)*rad
	a := math.Sin(dp/2)*math.Sin(dp/2) + math.Cos(p1)*math.Cos(p2)*math.Sin(dl/2)*math.Sin(dl/2)
	return 2 * EarthRadiusKm * math.Asin(math.Sqrt(min(1, a)))
}

// grid snaps points to S2 cells of one level and covers query circles.
type grid struct {
	level  int
	stepKm float64 // distances are rounded up to this
}

func newGrid(precisionM int) grid {
	level := s2.AvgEdgeMetric.ClosestLevel(float64(precisionM) / 1000 / EarthRadiusKm)
	return grid{level: level, stepKm: float64(precisionM) / 1000}
}

// snap returns the centre of the level cell holding the point, and the
// leaf cell id of that centre (the indexed column).
func (g grid) snap(lat, lon float64) (slat, slon float64, cell int64) {
	c := s2.CellIDFromLatLng(s2.LatLngFromDegrees(lat, lon)).Parent(g.level)
	ll := c.LatLng()
	leaf := s2.CellIDFromLatLng(ll)
	return ll.Lat.Degrees(), ll.Lng.Degrees(), int64(leaf)
}

// cellRange is an inclusive range of leaf cell ids (as stored).
type cellRange struct{ lo, hi int64 }

// cover returns leaf ranges whose union holds every point within
// radiusKm of the centre (a superset: the exact distance filters after).
func (g grid) cover(lat, lon, radiusKm float64) []cellRange {
	angle := s1.Angle(radiusKm/EarthRadiusKm) + 1e-9
	c := s2.CapFromCenterAngle(s2.PointFromLatLng(s2.LatLngFromDegrees(lat, lon)), angle)
	rc := &s2.RegionCoverer{MinLevel: 0, MaxLevel: g.level, MaxCells: 12}
	var out []cellRange
	for _, id := range rc.Covering(c) {
		lo, hi := int64(id.RangeMin()), int64(id.RangeMax())
		if n := len(out); n > 0 && out[n-1].hi+1 == lo && lo > 0 == (out[n-1].hi > 0) {
			out[n-1].hi = hi // adjacent: one range
			continue
		}
		out = append(out, cellRange{lo, hi})
	}
	return out
}

// round rounds a distance up to the grid's step: never finer than the
// precision locations are stored at.
func (g grid) round(km float64) float64 {
	n := math.Ceil(km/g.stepKm - 1e-9)
	if n < 1 {
		n = 1
	}
	return math.Round(n*g.stepKm*1000) / 1000
}
