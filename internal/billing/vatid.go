package billing

import (
	"regexp"
	"strings"
)

// vatIDFormats is the format of an EU VAT identification number after its
// country prefix, per prefix (the European Commission's VIES format
// table). Greece uses the prefix EL, Northern Ireland (goods only) XI.
var vatIDFormats = map[string]*regexp.Regexp{}

func init() {
	for prefix, format := range map[string]string{
		"AT": `U\d{8}`, "BE": `[01]\d{9}`, "BG": `\d{9,10}`, "CY": `\d{8}[A-Z]`, "CZ": `\d{8,10}`, "DE": `\d{9}`,
		"DK": `\d{8}`, "EE": `\d{9}`, "EL": `\d{9}`, "ES": `[A-Z0-9]\d{7}[A-Z0-9]`, "FI": `\d{8}`,
		"FR": `[A-HJ-NP-Z0-9]{2}\d{9}`, "HR": `\d{11}`, "HU": `\d{8}`, "IE": `(\d{7}[A-W][A-IW]?|\d[A-Z+*]\d{5}[A-W])`,
		"IT": `\d{11}`, "LT": `(\d{9}|\d{12})`, "LU": `\d{8}`, "LV": `\d{11}`, "MT": `\d{8}`, "NL": `\d{9}B\d{2}`,
		"PL": `\d{10}`, "PT": `\d{9}`, "RO": `[1-9]\d{1,9}`, "SE": `\d{10}01`, "SI": `\d{8}`, "SK": `\d{10}`,
		"XI": `(\d{9}|\d{12}|GD[0-4]\d{2}|HA[5-9]\d{2})`,
	} {
		vatIDFormats[prefix] = regexp.MustCompile(`^` + format + `$`)
	}
}

// vatPrefix is the VAT id prefix of an EU country: its ISO code, but EL for
// Greece.
func vatPrefix(country string) string {
	if country == "GR" {
		return "EL"
	}
	return country
}

// vatIDSeparators are dropped from a VAT id before its format is checked
// (built once: validLookingVATID runs for every invoice).
var vatIDSeparators = strings.NewReplacer(" ", "", ".", "", "-", "")

// validLookingVATID reports whether id reads as a VAT id of an EU country:
// the country's prefix, then that country's format. Spaces, dots and
// dashes are ignored. Nothing is looked up (VIES is not asked), so a
// well-formed id that was never issued passes.
func validLookingVATID(id, country string) bool {
	id = vatIDSeparators.Replace(strings.ToUpper(id))
	prefix := vatPrefix(country)
	format, ok := vatIDFormats[prefix]
	return ok && strings.HasPrefix(id, prefix) && format.MatchString(id[len(prefix):])
}
