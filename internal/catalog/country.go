package catalog

import "github.com/abacusbilling/abacus/internal/country"

// ValidCountry reports whether code is an ISO 3166-1 alpha-2 code (upper case).
func ValidCountry(code string) bool { return country.Valid(code) }
