package metering

import (
	"bytes"
	"strings"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/abacusbilling/abacus"
)

// The media types ingestion accepts.
const (
	MediaTypeCloudEvent      = "application/cloudevents+json"       // one event
	MediaTypeCloudEventBatch = "application/cloudevents-batch+json" // an array of events
	MediaTypeJSON            = "application/json"                   // one event or an array
)

type shape int

const (
	shapeOne shape = iota + 1
	shapeMany
	shapeEither
)

// parseMediaType maps a Content-Type header to the body shape it allows.
// Parameters are accepted; a charset other than UTF-8 is refused because
// the body is read as UTF-8.
func parseMediaType(ct string) (shape, error) {
	base, params, _ := strings.Cut(ct, ";")
	base = strings.TrimSpace(base)
	var sh shape
	switch {
	case strings.EqualFold(base, MediaTypeCloudEvent):
		sh = shapeOne
	case strings.EqualFold(base, MediaTypeCloudEventBatch):
		sh = shapeMany
	case strings.EqualFold(base, MediaTypeJSON):
		sh = shapeEither
	default:
		return 0, unsupportedMediaType(
			"Content-Type %q is not accepted; use %s, %s or %s", ct, MediaTypeCloudEvent, MediaTypeCloudEventBatch, MediaTypeJSON)
	}
	for params != "" {
		var p string
		p, params, _ = strings.Cut(params, ";")
		k, val, _ := strings.Cut(p, "=")
		if !strings.EqualFold(strings.TrimSpace(k), "charset") {
			continue
		}
		val = strings.Trim(strings.TrimSpace(val), `"`)
		if !strings.EqualFold(val, "utf-8") && !strings.EqualFold(val, "utf8") && !strings.EqualFold(val, "us-ascii") {
			return 0, unsupportedMediaType("charset %q is not accepted; send UTF-8", val)
		}
	}
	return sh, nil
}

// unsupportedMediaType is a 415 naming the header, as every route answers it.
func unsupportedMediaType(format string, args ...any) error {
	return abacus.Errorf(abacus.KindUnsupportedMediaType, CodeUnsupportedMediaType, format, args...).
		WithField("header.Content-Type", "unsupported media type")
}

// isJSONMediaType reports whether a datacontenttype names JSON.
func isJSONMediaType(ct string) bool {
	base, _, _ := strings.Cut(ct, ";")
	base = strings.ToLower(strings.TrimSpace(base))
	return base == "application/json" || base == "text/json" || strings.HasSuffix(base, "+json")
}

// DecodeEvents decodes and validates an ingestion request body.
//
// contentType is the request's Content-Type: application/cloudevents+json
// (one event), application/cloudevents-batch+json (an array) or
// application/json (either), case-insensitive, parameters allowed. Events
// without a time get now; every event's ReceivedAt is now; TenantID is
// left for the caller to set.
//
// The whole body is accepted or refused: on any problem no events are
// returned. Errors are *abacus.Error:
//   - unsupported_media_type (unsupported_media_type, 415): another
//     Content-Type or charset;
//   - invalid_utf8 (invalid): the body is not UTF-8;
//   - invalid_json (invalid): the body is not JSON, with byte, line and
//     column; or the body's shape does not fit the media type;
//   - payload_too_large, batch_too_large (too_large): over MaxBatchBytes or
//     MaxBatchEvents;
//   - event_too_large (too_large): some event over MaxEventBytes; Fields
//     also carry any other problems;
//   - invalid_event (invalid): Fields list every problem of every event,
//     with Index set to the event's position in the batch; a key given
//     twice in one object (an attribute, or a key inside data, e.g. field
//     data.a[1].b) is one of them.
//
// Duplicate ids are not an error (see DedupBatch). The returned events
// share one private copy of body; their strings and Data stay valid
// after body is reused.
func DecodeEvents(contentType string, body []byte, now time.Time, limits Limits) ([]Event, error) {
	return DecodeEventsChecked(contentType, body, now, limits, nil)
}

// DataCheck validates an event's data beyond the CloudEvents rules (the
// tenant's JSON Schema for its type, see Schemas). It adds each problem to
// v at index i.
type DataCheck func(i int, ev *Event, v *abacus.Validation)

// DecodeEventsChecked is DecodeEvents that also runs check, when not nil,
// on every event whose type and data are otherwise valid, so one answer
// lists the CloudEvents problems and the data problems of every event.
func DecodeEventsChecked(contentType string, body []byte, now time.Time, limits Limits, check DataCheck) ([]Event, error) {
	l := limits.WithDefaults()
	sh, err := parseMediaType(contentType)
	if err != nil {
		return nil, err
	}
	if len(body) > l.MaxBatchBytes {
		return nil, abacus.Errorf(abacus.KindTooLarge, CodePayloadTooLarge,
			"the body is %d bytes; send at most %d bytes per request", len(body), l.MaxBatchBytes)
	}
	if !utf8.Valid(body) {
		return nil, abacus.Invalid(CodeInvalidUTF8, "the body is not valid UTF-8; send text as UTF-8").WithField("body", "holds bytes that are not UTF-8")
	}
	// One private copy serves as both the strings and the Data bytes of
	// every event: a single allocation instead of one per attribute. The
	// copy is never written after this point, so viewing it as a string
	// is safe.
	buf := bytes.Clone(body)
	d := decoder{sc: scanner{b: buf}, now: now, l: l, check: check}
	if len(buf) > 0 {
		d.str = unsafe.String(&buf[0], len(buf))
	}
	var events []Event
	switch c := d.sc.peek(); c {
	case '{':
		if sh == shapeMany {
			return nil, abacus.Invalid(CodeInvalidJSON, "%s needs a JSON array of events; send [ {...} ] or use %s", MediaTypeCloudEventBatch, MediaTypeCloudEvent).
				WithField("body", "must be an array")
		}
		events = make([]Event, 1)
		if serr := d.event(0, &events[0]); serr != nil {
			return nil, d.syntax(serr, -1)
		}
	case '[':
		if sh == shapeOne {
			return nil, abacus.Invalid(CodeInvalidJSON, "%s needs a single JSON object; send a batch as %s", MediaTypeCloudEvent, MediaTypeCloudEventBatch).
				WithField("body", "must be an object")
		}
		var serr *syntaxError
		var idx int
		events, idx, serr = d.batch()
		if serr != nil {
			return nil, d.syntax(serr, idx)
		}
		if d.tooMany {
			return nil, abacus.Errorf(abacus.KindTooLarge, CodeBatchTooLarge,
				"the batch holds more than %d events; split it into smaller batches", l.MaxBatchEvents)
		}
		if len(events) == 0 {
			return nil, abacus.Invalid(CodeInvalidEvent, "the batch holds no events; send at least one").WithField("body", "is empty")
		}
	default:
		return nil, d.syntax(d.sc.errf("expected a JSON object or array, found %s", describe(c)), -1)
	}
	if d.sc.peek() != 0 {
		return nil, d.syntax(d.sc.errf("unexpected %s after the JSON value", describe(d.sc.at())), -1)
	}
	if err := d.v.Err(CodeInvalidEvent); err != nil {
		if d.tooLarge {
			e, _ := abacus.AsError(err)
			e.Kind, e.Code = abacus.KindTooLarge, CodeEventTooLarge
		}
		return nil, err
	}
	return events, nil
}

type decoder struct {
	sc       scanner
	str      string // the same bytes as sc.b
	now      time.Time
	l        Limits
	v        abacus.Validation
	tooLarge bool
	tooMany  bool
	check    DataCheck
}

// syntax turns a scanner error into invalid_json with the position a
// person can find in their payload.
func (d *decoder) syntax(e *syntaxError, idx int) error {
	line, col := 1, 1
	for _, c := range d.sc.b[:min(e.off, len(d.sc.b))] {
		if c == '\n' {
			line++
			col = 1
		} else {
			col++
		}
	}
	where := ""
	if idx >= 0 {
		where = " (in event " + itoa(idx) + ")"
	}
	return abacus.Invalid(CodeInvalidJSON, "the body is not valid JSON%s: %s at byte %d (line %d, column %d)", where, e.msg, e.off, line, col).
		WithField("body", "is not valid JSON")
}

// batch decodes a JSON array of events. On a syntax error it returns the
// index of the event being read.
func (d *decoder) batch() ([]Event, int, *syntaxError) {
	s := &d.sc
	s.i++ // '['
	if s.peek() == ']' {
		s.i++
		return nil, 0, nil
	}
	// Estimate the count from the size so a typical batch allocates once.
	events := make([]Event, 0, min(len(s.b)/128+1, d.l.MaxBatchEvents))
	for idx := 0; ; idx++ {
		if idx >= d.l.MaxBatchEvents {
			d.tooMany = true
			return nil, idx, nil
		}
		if c := s.peek(); c == '{' {
			events = append(events, Event{})
			if err := d.event(idx, &events[idx]); err != nil {
				return nil, idx, err
			}
		} else {
			events = append(events, Event{})
			if c != 0 && c != ']' && c != ',' {
				d.v.AddAt(idx, "", "each event must be a JSON object, got %s", kindOf(c))
			}
			if err := s.skipValue(0); err != nil {
				return nil, idx, err
			}
			s.dup = "" // the item is refused as a whole already
		}
		switch s.peek() {
		case ',':
			s.i++
		case ']':
			s.i++
			return events, idx, nil
		default:
			return nil, idx, s.errf("expected ',' or ']' after event, found %s", describe(s.at()))
		}
	}
}

// event decodes one CloudEvents object at the scanner's '{' into ev and
// records its problems under index idx.
func (d *decoder) event(idx int, ev *Event) *syntaxError {
	s := &d.sc
	start := s.i
	s.i++ // '{'
	var seen, reported uint16
	var timeSet bool
	var extensions keySet
	if s.peek() == '}' {
		s.i++
	} else {
		for {
			s.ws()
			ks, ke, kesc, err := s.stringSpan()
			if err != nil {
				return err
			}
			key := d.str[ks:ke]
			if kesc {
				key = unescape(s.b[ks:ke])
			}
			if s.peek() != ':' {
				return s.errf("expected ':' after object key, found %s", describe(s.at()))
			}
			s.i++
			var bit uint16
			var dst *string
			switch key {
			case "id":
				bit, dst = bitID, &ev.ID
			case "source":
				bit, dst = bitSource, &ev.Source
			case "specversion":
				bit, dst = bitSpec, &ev.SpecVersion
			case "type":
				bit, dst = bitType, &ev.Type
			case "subject":
				bit, dst = bitSubject, &ev.Subject
			case "datacontenttype":
				bit, dst = bitDCT, &ev.DataContentType
			case "dataschema":
				bit, dst = bitSchema, &ev.DataSchema
			case "time":
				bit = bitTime
			case "data":
				bit = bitData
			case "data_base64":
				d.v.AddAt(idx, "data_base64", "is not supported; send data as a JSON object in \"data\"")
			}
			if bit != 0 {
				if seen&bit != 0 {
					d.v.AddAt(idx, key, "appears more than once; send each attribute once")
					reported |= bit
				}
				seen |= bit
			}
			switch {
			case dst != nil || bit == bitTime:
				c := s.peek()
				if c != '"' {
					d.v.AddAt(idx, key, "must be a string, got %s", kindOf(c))
					reported |= bit
					if err := s.skipValue(0); err != nil {
						return err
					}
					break
				}
				vs, ve, vesc, err := s.stringSpan()
				if err != nil {
					return err
				}
				val := d.str[vs:ve]
				if vesc {
					val = unescape(s.b[vs:ve])
				}
				if dst != nil {
					*dst = val
					break
				}
				t, perr := time.Parse(time.RFC3339, val)
				if perr != nil {
					d.v.AddAt(idx, "time", "must be an RFC 3339 timestamp such as 2026-01-02T15:04:05Z, got %q", val)
					reported |= bitTime
					break
				}
				ev.Time, timeSet = t, true
			case bit == bitData:
				switch c := s.peek(); c {
				case '{':
					ds := s.i
					if err := s.skipValue(0); err != nil {
						return err
					}
					ev.Data = s.b[ds:s.i:s.i]
				case 'n':
					if err := s.literal("null"); err != nil {
						return err
					}
				default:
					d.v.AddAt(idx, "data", "must be a JSON object, got %s", kindOf(c))
					reported |= bitData
					if err := s.skipValue(0); err != nil {
						return err
					}
				}
			default: // extension attributes are accepted and ignored
				if extensions.add(s.b, ks, ke) {
					d.v.AddAt(idx, key, "appears more than once; send each attribute once")
				}
				if err := s.skipValue(0); err != nil {
					return err
				}
			}
			if s.dup != "" { // a key twice in one object of the value, e.g. in data
				d.v.AddAt(idx, joinPath(key, s.dup), "appears more than once in its object; send each key once")
				s.dup = ""
			}
			switch s.peek() {
			case ',':
				s.i++
				continue
			case '}':
				s.i++
			default:
				return s.errf("expected ',' or '}' after attribute, found %s", describe(s.at()))
			}
			break
		}
	}
	if n := s.i - start; n > d.l.MaxEventBytes {
		d.v.AddAt(idx, "", "the event is %d bytes; the limit is %d bytes per event", n, d.l.MaxEventBytes)
		d.tooLarge = true
	}
	if !timeSet && reported&bitTime == 0 {
		ev.Time, ev.TimeAssigned = d.now, true
	}
	ev.ReceivedAt = d.now
	checkEvent(&d.v, idx, ev, reported, true, d.now, d.l)
	if d.check != nil && reported&(bitType|bitData) == 0 && ev.Type != "" {
		d.check(idx, ev, &d.v)
	}
	return nil
}
