package metering

import (
	"regexp"
	"sort"
	"time"

	"github.com/abacusbilling/abacus"
)

// Aggregation is how a meter combines the values of its events.
type Aggregation string

// The aggregations, named as in OpenMeter.
const (
	AggCount       Aggregation = "COUNT"        // number of events; needs no valueProperty
	AggSum         Aggregation = "SUM"          // decimal sum of values
	AggMin         Aggregation = "MIN"          // smallest value
	AggMax         Aggregation = "MAX"          // largest value
	AggAvg         Aggregation = "AVG"          // sum / count, rounded to AvgScale places
	AggUniqueCount Aggregation = "UNIQUE_COUNT" // number of distinct values (exact)
	AggLatest      Aggregation = "LATEST"       // value of the newest event by event time
)

// Valid reports whether a is a known aggregation.
func (a Aggregation) Valid() bool {
	switch a {
	case AggCount, AggSum, AggMin, AggMax, AggAvg, AggUniqueCount, AggLatest:
		return true
	}
	return false
}

// Meter turns events of one type into a usage quantity. JSON field names
// follow OpenMeter's API so its clients work unchanged.
type Meter struct {
	ID          string      `json:"id,omitempty"`
	Slug        string      `json:"slug"`
	Name        string      `json:"name,omitempty"`
	Description string      `json:"description,omitempty"`
	EventType   string      `json:"eventType"`
	Aggregation Aggregation `json:"aggregation"`
	// ValueProperty is a JSONPath into data ("$.tokens"); required for
	// every aggregation but COUNT.
	ValueProperty string `json:"valueProperty,omitempty"`
	// GroupBy maps a group name to a JSONPath into data.
	GroupBy map[string]string `json:"groupBy,omitempty"`
	// EventFrom, when set, makes the meter ignore events whose time is
	// earlier.
	EventFrom *time.Time `json:"eventFrom,omitempty"`
	// Filters must all match for an event to count.
	Filters []Filter `json:"filters,omitempty"`
}

// Filter keeps only events whose value at Path equals Equals. Values are
// compared in their group-key form: strings as they are, numbers and
// booleans as their JSON text ("10", "true"). A missing value never matches.
type Filter struct {
	Path   string `json:"path"`
	Equals string `json:"equals"`
}

// Meter limits.
const (
	MaxSlugLen    = 63
	MaxGroupBy    = 20
	MaxFilters    = 20
	maxNameLen    = 200
	maxDescLen    = 2000
	maxGroupKeyLn = 63
)

var (
	slugRE     = regexp.MustCompile(`^[a-z0-9]+(?:[_-][a-z0-9]+)*$`)
	groupKeyRE = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
)

// CodeInvalidMeter is the code of every meter validation error.
const CodeInvalidMeter = "invalid_meter"

// Validate checks the meter definition and returns a KindInvalid
// *abacus.Error with code invalid_meter whose Fields name every bad field
// (groupBy entries as "groupBy.<key>", filters as "filters[i].path").
func (m *Meter) Validate() error {
	var v abacus.Validation
	switch {
	case m.Slug == "":
		v.Add("slug", "is required")
	case len(m.Slug) > MaxSlugLen:
		v.Add("slug", "is %d characters; at most %d are allowed", len(m.Slug), MaxSlugLen)
	case !slugRE.MatchString(m.Slug):
		v.Add("slug", "must be lowercase letters and digits separated by single '_' or '-', e.g. \"api_requests\"")
	}
	if len(m.Name) > maxNameLen {
		v.Add("name", "is longer than %d characters", maxNameLen)
	}
	if len(m.Description) > maxDescLen {
		v.Add("description", "is longer than %d characters", maxDescLen)
	}
	if m.EventType == "" {
		v.Add("eventType", "is required; set the CloudEvents type this meter counts")
	}
	switch {
	case m.Aggregation == "":
		v.Add("aggregation", "is required; one of COUNT, SUM, MIN, MAX, AVG, UNIQUE_COUNT, LATEST")
	case !m.Aggregation.Valid():
		v.Add("aggregation", "must be one of COUNT, SUM, MIN, MAX, AVG, UNIQUE_COUNT, LATEST, got %q", m.Aggregation)
	}
	switch {
	case m.ValueProperty == "" && m.Aggregation != AggCount && m.Aggregation.Valid():
		v.Add("valueProperty", "is required for %s; set a JSONPath into data such as \"$.tokens\"", m.Aggregation)
	case m.ValueProperty != "" && m.Aggregation == AggCount:
		v.Add("valueProperty", "must be empty for COUNT, which counts events")
	case m.ValueProperty != "":
		if _, err := parsePath(m.ValueProperty); err != nil {
			v.Add("valueProperty", "%s", err.Error())
		}
	}
	if len(m.GroupBy) > MaxGroupBy {
		v.Add("groupBy", "has %d entries; at most %d are allowed", len(m.GroupBy), MaxGroupBy)
	}
	for _, k := range sortedKeys(m.GroupBy) {
		switch {
		case k == "subject":
			v.Add("groupBy."+k, "\"subject\" is reserved; events are always grouped by subject")
		case len(k) > maxGroupKeyLn || !groupKeyRE.MatchString(k):
			v.Add("groupBy."+k, "key must be an identifier (letters, digits, '_', not starting with a digit) of at most %d characters", maxGroupKeyLn)
		}
		if _, err := parsePath(m.GroupBy[k]); err != nil {
			v.Add("groupBy."+k, "%s", err.Error())
		}
	}
	if len(m.Filters) > MaxFilters {
		v.Add("filters", "has %d entries; at most %d are allowed", len(m.Filters), MaxFilters)
	}
	for i, f := range m.Filters {
		if _, err := parsePath(f.Path); err != nil {
			v.Add("filters["+itoa(i)+"].path", "%s", err.Error())
		}
	}
	if m.EventFrom != nil && m.EventFrom.IsZero() {
		v.Add("eventFrom", "must be an RFC 3339 time or absent")
	}
	return v.Err(CodeInvalidMeter)
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// ValidateMeterList checks meters listed in the configuration file under
// key: each valid (Validate), without an id, slugs unique. The error is
// invalid_meter whose fields are configuration keys such as
// "metering.meters[2].valueProperty".
func ValidateMeterList(key string, meters []Meter) error {
	var v abacus.Validation
	seen := map[string]int{}
	for i, m := range meters {
		k := key + "[" + itoa(i) + "]"
		if m.ID != "" {
			v.Add(k+".id", "must not be set; a configured meter is known by its slug")
		}
		if err := m.Validate(); err != nil {
			if e, ok := abacus.AsError(err); ok {
				for _, f := range e.Fields {
					v.Add(k+"."+f.Field, "%s", f.Message)
				}
			}
		}
		if j, dup := seen[m.Slug]; dup && m.Slug != "" {
			v.Add(k+".slug", "%q is also the slug of %s[%d]; slugs must be unique", m.Slug, key, j)
		} else {
			seen[m.Slug] = i
		}
	}
	return v.Err(CodeInvalidMeter)
}
