package metering

import (
	"time"

	"github.com/abacusbilling/abacus"
)

// Event is one validated CloudEvents 1.0 usage event. An event is
// identified by (TenantID, Source, ID) for its whole retention.
type Event struct {
	TenantID        string // set by the caller from the authenticated principal
	ID              string
	Source          string
	SpecVersion     string // always "1.0" once validated
	Type            string
	Subject         string
	Time            time.Time // the event's time; the receive time when the client sent none
	DataContentType string    // optional; empty or a JSON media type
	DataSchema      string    // optional URI, kept as sent
	// Data is the raw JSON object the client sent, or nil when it sent no
	// data (or null). It is read-only: decoded events share one buffer.
	Data       []byte
	ReceivedAt time.Time // when the server accepted the event
	// TimeAssigned is set when the client sent no time and Time is the
	// server's receive time. A retry then carries another time, so such
	// events are deduplicated by (tenant, source, id) alone (slower path).
	TimeAssigned bool
}

// Limits bounds what ingestion accepts. A zero field takes its default
// (see DefaultLimits).
type Limits struct {
	MaxEventBytes  int           // size of one event's JSON object; default 64 KiB
	MaxBatchEvents int           // events in one request; default 10,000
	MaxBatchBytes  int           // size of one request body; default 16 MiB
	LateWindow     time.Duration // how old an event's time may be; default 35 days
	FutureSkew     time.Duration // how far an event's time may be ahead of now; default 5 minutes
}

// DefaultLimits returns the documented ingestion limits.
func DefaultLimits() Limits {
	return Limits{
		MaxEventBytes:  64 << 10,
		MaxBatchEvents: 10_000,
		MaxBatchBytes:  16 << 20,
		LateWindow:     35 * 24 * time.Hour,
		FutureSkew:     5 * time.Minute,
	}
}

// WithDefaults returns l with every zero field set to its default.
func (l Limits) WithDefaults() Limits {
	d := DefaultLimits()
	if l.MaxEventBytes <= 0 {
		l.MaxEventBytes = d.MaxEventBytes
	}
	if l.MaxBatchEvents <= 0 {
		l.MaxBatchEvents = d.MaxBatchEvents
	}
	if l.MaxBatchBytes <= 0 {
		l.MaxBatchBytes = d.MaxBatchBytes
	}
	if l.LateWindow <= 0 {
		l.LateWindow = d.LateWindow
	}
	if l.FutureSkew <= 0 {
		l.FutureSkew = d.FutureSkew
	}
	return l
}

// Error codes returned by decoding and validation.
const (
	CodeInvalidEvent         = "invalid_event"          // one or more events fail validation; Fields lists each
	CodeInvalidJSON          = "invalid_json"           // the body is not JSON
	CodeInvalidUTF8          = "invalid_utf8"           // the body is not UTF-8
	CodeUnsupportedMediaType = "unsupported_media_type" // Content-Type is not one of the three accepted
	CodePayloadTooLarge      = "payload_too_large"      // the body exceeds MaxBatchBytes
	CodeBatchTooLarge        = "batch_too_large"        // the batch exceeds MaxBatchEvents
	CodeEventTooLarge        = "event_too_large"        // an event exceeds MaxEventBytes; Fields lists which
)

// field bits mark attributes already reported, so one bad attribute yields
// one problem, not a type error and then a "required" error.
const (
	bitID uint16 = 1 << iota
	bitSource
	bitSpec
	bitType
	bitSubject
	bitTime
	bitData
	bitDCT
	bitSchema
)

// Validate checks events built in code (DecodeEvents already validates
// what it returns). It reports every problem of every event at once as a
// KindInvalid *abacus.Error with code invalid_event and one field error per
// problem (Index is the event's position), or KindTooLarge batch_too_large
// when there are more than MaxBatchEvents events. Duplicate ids are not an
// error; see DedupBatch.
func Validate(events []Event, now time.Time, limits Limits) error {
	l := limits.WithDefaults()
	if len(events) > l.MaxBatchEvents {
		return abacus.Errorf(abacus.KindTooLarge, CodeBatchTooLarge,
			"the batch holds %d events; send at most %d per request", len(events), l.MaxBatchEvents)
	}
	var v abacus.Validation
	for i := range events {
		checkEvent(&v, i, &events[i], 0, false, now, l)
	}
	return v.Err(CodeInvalidEvent)
}

// checkEvent adds every semantic problem of ev to v, skipping attributes
// whose bit is set in reported. dataChecked says Data is known to be a
// syntactically valid JSON object already.
func checkEvent(v *abacus.Validation, i int, ev *Event, reported uint16, dataChecked bool, now time.Time, l Limits) {
	required := func(bit uint16, field, val, hint string) {
		if reported&bit == 0 && val == "" {
			v.AddAt(i, field, "is required; %s", hint)
		}
	}
	required(bitID, "id", ev.ID, "set a string unique for this source, e.g. a UUID")
	required(bitSource, "source", ev.Source, "set the system that produced the event, e.g. \"api-gateway\"")
	required(bitType, "type", ev.Type, "set the event type your meters match, e.g. \"api_request\"")
	required(bitSubject, "subject", ev.Subject, "set the customer or subject the usage belongs to")
	if reported&bitSpec == 0 {
		switch ev.SpecVersion {
		case "1.0":
		case "":
			v.AddAt(i, "specversion", `is required; set it to "1.0"`)
		default:
			v.AddAt(i, "specversion", `must be "1.0", got %q`, ev.SpecVersion)
		}
	}
	if reported&bitTime == 0 {
		switch {
		case ev.Time.IsZero():
			v.AddAt(i, "time", "is required when building events in code")
		case ev.Time.After(now.Add(l.FutureSkew)):
			v.AddAt(i, "time", "is %s ahead of the server clock; at most %s is allowed",
				ev.Time.Sub(now).Round(time.Second), l.FutureSkew)
		case ev.Time.Before(now.Add(-l.LateWindow)):
			v.AddAt(i, "time", "is older than the late-event window of %s; events before %s are refused",
				humanDuration(l.LateWindow), now.Add(-l.LateWindow).UTC().Format(time.RFC3339))
		}
	}
	if reported&bitDCT == 0 && ev.DataContentType != "" && !isJSONMediaType(ev.DataContentType) {
		v.AddAt(i, "datacontenttype", "must be application/json (or absent), got %q: data must be a JSON object", ev.DataContentType)
	}
	if reported&bitData == 0 && ev.Data != nil && !dataChecked {
		s := scanner{b: ev.Data}
		switch c := s.peek(); {
		case c != '{':
			v.AddAt(i, "data", "must be a JSON object, got %s", kindOf(c))
		default:
			if err := s.skipValue(0); err != nil {
				v.AddAt(i, "data", "is not valid JSON: %s", err.msg)
			} else if s.peek() != 0 {
				v.AddAt(i, "data", "has data after the JSON object")
			}
		}
	}
}

func humanDuration(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		n := int(d / (24 * time.Hour))
		if n == 1 {
			return "1 day"
		}
		return itoa(n) + " days"
	}
	return d.String()
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	neg := n < 0
	if neg {
		n = -n
	}
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	if neg {
		i--
		b[i] = '-'
	}
	return string(b[i:])
}

type eventKey struct{ tenant, source, id string }

// DedupBatch removes events that repeat the (TenantID, Source, ID) of an
// earlier event in the same batch, keeping the first, as a retry would be
// deduplicated later anyway. It returns the kept events (reusing the
// backing array of events) and the original indexes of the dropped ones,
// so the API can report them as duplicates rather than errors.
func DedupBatch(events []Event) (kept []Event, duplicates []int) {
	if len(events) < 2 {
		return events, nil
	}
	seen := make(map[eventKey]struct{}, len(events))
	kept = events[:0]
	for i := range events {
		k := eventKey{events[i].TenantID, events[i].Source, events[i].ID}
		if _, dup := seen[k]; dup {
			duplicates = append(duplicates, i)
			continue
		}
		seen[k] = struct{}{}
		if len(kept) < i {
			kept = append(kept, events[i])
		} else {
			kept = kept[:i+1] // no duplicate yet: the event is already in place
		}
	}
	return kept, duplicates
}
