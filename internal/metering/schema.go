package metering

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/abacusbilling/abacus"
)

// Limits of event-type schemas and tenant metering settings.
const (
	MaxSchemaBytes        = 64 << 10             // one schema document
	MaxSchemasPerTenant   = 100                  // event types with a schema, per tenant
	MaxEventTypeLen       = 255                  // an event type named in the schemas API
	MinLateWindow         = time.Hour            // shortest late-event window a tenant may choose
	MaxLateWindow         = 366 * 24 * time.Hour // longest late-event window
	maxSchemaErrorsPerEvt = 10                   // data problems reported per event
)

// Error codes of schemas and settings.
const (
	CodeInvalidEventSchema = "invalid_event_schema" // a schema document cannot be used; Fields say where
	CodeInvalidEventType   = "invalid_event_type"   // an event type is empty or too long
	CodeInvalidSettings    = "invalid_metering_settings"
)

// Schema is a compiled JSON Schema for the data of one event type.
type Schema struct {
	s     *jsonschema.Schema
	width int // most subschemas one value is checked against (checkWork)
}

// noLoader refuses every external reference: a tenant's schema must be
// self-contained, and the server never reads files or URLs on its behalf.
type noLoader struct{}

// schemaURL names the document being compiled; messages show it as "".
const schemaURL = "abacus:///event-type.schema.json"

func (noLoader) Load(url string) (any, error) {
	return nil, fmt.Errorf("external references are not allowed; inline the definition under $defs")
}

// CompileSchema compiles a JSON Schema document (draft 2020-12 unless it
// names another draft in $schema; formats are asserted). Errors are
// KindInvalid invalid_event_schema whose Fields name the problem's place:
// "schema" for the document as a whole, "schema/<JSON pointer>" for a
// keyword that breaks the draft's metaschema.
func CompileSchema(doc []byte) (*Schema, error) {
	if len(doc) > MaxSchemaBytes {
		return nil, abacus.Invalid(CodeInvalidEventSchema, "the schema is %d bytes; at most %d are allowed", len(doc), MaxSchemaBytes).
			WithField("schema", "is too large")
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		return nil, abacus.Invalid(CodeInvalidEventSchema, "the schema is not valid JSON: %v", err).
			WithField("schema", "is not valid JSON: "+err.Error())
	}
	switch x := v.(type) {
	case map[string]any, bool:
		if m, ok := x.(map[string]any); (ok && len(m) == 0) || x == true {
			// Storing it would cost a validation per event for nothing.
			return nil, abacus.Invalid(CodeInvalidEventSchema, "the schema accepts every event; to stop checking this event type, delete its schema").
				WithField("schema", "constrains nothing")
		}
	default:
		return nil, abacus.Invalid(CodeInvalidEventSchema, "a JSON Schema is a JSON object (or true/false)").
			WithField("schema", "must be a JSON object")
	}
	if err := checkShape(v); err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	c.UseLoader(noLoader{})
	c.UseRegexpEngine(boundedRegexp)
	if err := c.AddResource(schemaURL, v); err != nil {
		return nil, schemaError(err)
	}
	s, err := c.Compile(schemaURL)
	if err != nil {
		return nil, schemaError(err)
	}
	width, err := checkNodes(s)
	if err != nil {
		return nil, err
	}
	// A $ref cycle that consumes no data would refuse every event that
	// reaches it; the ones reached from the top are found by probing.
	for _, probe := range []any{nil, map[string]any{}, []any{}} {
		var ve *jsonschema.ValidationError
		if errors.As(s.Validate(probe), &ve) {
			if msg, ok := refCycle(ve); ok {
				return nil, abacus.Invalid(CodeInvalidEventSchema, "the schema has a reference cycle: %s", msg).
					WithField("schema", "has a reference cycle: "+msg)
			}
		}
	}
	return &Schema{s: s, width: width}, nil
}

// refCycle finds a reference cycle among a validation error's causes.
func refCycle(e *jsonschema.ValidationError) (string, bool) {
	if _, ok := e.ErrorKind.(*kind.RefCycle); ok {
		return firstLine(e.ErrorKind.LocalizedString(printer)), true
	}
	for _, c := range e.Causes {
		if msg, ok := refCycle(c); ok {
			return msg, true
		}
	}
	return "", false
}

// schemaError turns a compile error into invalid_event_schema with a field
// per metaschema violation.
func schemaError(err error) error {
	e := abacus.Invalid(CodeInvalidEventSchema, "the schema cannot be used: %s", firstLine(err.Error()))
	var sv *jsonschema.SchemaValidationError
	var ve *jsonschema.ValidationError
	if errors.As(err, &sv) && errors.As(sv.Err, &ve) {
		e.Message = "the schema does not follow the JSON Schema metaschema; see errors"
		for _, u := range leafErrors(ve, 50) {
			e.WithField("schema"+u.at, u.msg)
		}
		return e
	}
	return e.WithField("schema", firstLine(err.Error()))
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return strings.ReplaceAll(s, schemaURL, "")
}

type leaf struct{ at, msg string }

// leafErrors flattens a validation error into its innermost problems,
// each with its instance location as a JSON pointer ("" for the root),
// sorted by location, at most n.
func leafErrors(ve *jsonschema.ValidationError, n int) []leaf {
	var ls []leaf
	seen := map[string]int{} // location → index in ls
	visited := 0
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		// Formatting every leaf of a huge failure costs more than the
		// validation; the first maxLeaves give the n problems shown.
		if visited++; visited > maxLeaves {
			return
		}
		if len(e.Causes) > 0 {
			for _, c := range e.Causes {
				walk(c)
			}
			return
		}
		at, msg := pointer(e.InstanceLocation), firstLine(e.ErrorKind.LocalizedString(printer))
		if i, ok := seen[at]; ok { // alternatives (anyOf, oneOf) at one place: one problem
			if !strings.Contains(ls[i].msg, msg) {
				ls[i].msg += "; or " + msg
			}
			return
		}
		seen[at] = len(ls)
		ls = append(ls, leaf{at: at, msg: msg})
	}
	walk(ve)
	sort.SliceStable(ls, func(i, j int) bool { return ls[i].at < ls[j].at })
	if len(ls) > n {
		ls = ls[:n]
	}
	return ls
}

var printer = message.NewPrinter(language.English)

// maxLeaves bounds the problems leafErrors looks at.
const maxLeaves = 1000

// pointerEscaper escapes a JSON pointer token; built once, as building a
// Replacer costs more than using it.
var pointerEscaper = strings.NewReplacer("~", "~0", "/", "~1")

// pointer writes a location as a JSON pointer (RFC 6901).
func pointer(tokens []string) string {
	var b strings.Builder
	for _, t := range tokens {
		b.WriteByte('/')
		b.WriteString(pointerEscaper.Replace(t))
	}
	return b.String()
}

// Check validates ev's data (null when it has none) and adds each problem
// to v at index i, with the field "data" followed by the JSON pointer of
// the offending value ("data/tokens", "data/items/0").
func (s *Schema) Check(i int, ev *Event, v *abacus.Validation) {
	var inst any
	if ev.Data != nil {
		// Our scanner builds the tree at about half the cost of
		// encoding/json (the library's UnmarshalJSON).
		sc := scanner{b: ev.Data}
		var serr *syntaxError
		inst, serr = sc.value(0)
		if serr != nil { // decoding already checked the syntax
			v.AddAt(i, "data", "is not valid JSON: %s", serr.msg)
			return
		}
	}
	if n := countValues(inst); n*s.width > MaxCheckWork {
		v.AddAt(i, "data", "has %d values, each checked against up to %d subschemas of the event type %q schema: more than the %d checks allowed per event; send less data per event or simplify the schema",
			n, s.width, ev.Type, MaxCheckWork)
		return
	}
	err := s.s.Validate(inst)
	if err == nil {
		return
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		v.AddAt(i, "data", "%s", firstLine(err.Error()))
		return
	}
	ls := leafErrors(ve, maxSchemaErrorsPerEvt)
	for _, l := range ls {
		v.AddAt(i, "data"+l.at, "%s (event type %q schema)", l.msg, ev.Type)
	}
}

// Schemas maps event types to compiled schemas: one tenant's rules.
type Schemas map[string]*Schema

// Check is a DataCheck: it validates events whose type has a schema.
func (ss Schemas) Check(i int, ev *Event, v *abacus.Validation) {
	if s := ss[ev.Type]; s != nil {
		s.Check(i, ev, v)
	}
}

// ValidateEventType checks an event type named in the schemas API.
func ValidateEventType(t string) error {
	switch {
	case t == "":
		return abacus.Invalid(CodeInvalidEventType, "the event type is empty").WithField("type", "is required")
	case len(t) > MaxEventTypeLen:
		return abacus.Invalid(CodeInvalidEventType, "the event type is %d bytes; at most %d are allowed", len(t), MaxEventTypeLen).
			WithField("type", "is too long")
	}
	return nil
}

// ValidateLateWindow checks a late-event window against the bounds.
func ValidateLateWindow(d time.Duration) error {
	if d < MinLateWindow || d > MaxLateWindow || d%time.Second != 0 {
		return abacus.Invalid(CodeInvalidSettings, "lateEventWindow must be whole seconds between %s and %s (%s), got %s",
			FormatWindow(MinLateWindow), FormatWindow(MaxLateWindow), humanDuration(MaxLateWindow), FormatWindow(d)).
			WithField("lateEventWindow", "is out of bounds")
	}
	return nil
}

// FormatWindow writes a window as Go duration text without zero minutes
// and seconds: "840h", "90m", "1h30m".
func FormatWindow(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
