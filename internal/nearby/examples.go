package nearby

import "time"

// Examples are the nearby module's example values for the API reference.
func Examples() []any {
	at := time.Date(2026, 12, 1, 9, 30, 0, 0, time.UTC)
	exp := at.Add(30 * time.Minute)
	lat, lon := 52.52, 13.405
	return []any{
		LocationInput{Lat: &lat, Lon: &lon, Tags: []string{"cycling"}},
		PlaceInput{Name: "Farmers' market", Kind: "event", Tags: []string{"food"}, Lat: &lat, Lon: &lon},
		Location{EndUserID: "eu_01JE5V7M0000000000000000", Lat: 52.5201, Lon: 13.4049, Tags: []string{"cycling"}, ExpiresAt: &exp, UpdatedAt: at},
		Hit{Type: TypeEndUser, EndUserID: "eu_01JE5V7M0000000000000000", Kind: TypeEndUser, Tags: []string{"cycling"}, DistanceKm: 1.4},
		Place{ID: "plc_01JE5V7M0000000000000000", Name: "Farmers' market", Kind: "event", Tags: []string{"food"}, Lat: 52.5201, Lon: 13.4049, UpdatedAt: at},
	}
}
