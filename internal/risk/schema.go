package risk

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/abacusbilling/abacus"
)

// eventSchemaJSON is the built-in JSON Schema of a risk event: the
// fields every type shares, and per type what it needs (amount and
// currency for money events; the status values Abacus's own feeds send).
//
//go:embed event.schema.json
var eventSchemaJSON []byte

// MaxSchemaBytes bounds a tenant's event schema; MaxSchemaNodes the
// objects in it (each a possible subschema).
const (
	MaxSchemaBytes = 32 << 10
	MaxSchemaNodes = 1_000
	maxSchemaDepth = 32
	// maxFieldErrors bounds the problems reported per event.
	maxFieldErrors = 20
)

var builtinSchema = mustCompile("abacus:///risk-event.schema.json", eventSchemaJSON)

func mustCompile(url string, doc []byte) *jsonschema.Schema {
	s, err := compileSchema(url, doc)
	if err != nil {
		panic(err)
	}
	return s
}

type noLoader struct{}

func (noLoader) Load(string) (any, error) {
	return nil, errors.New("external references are not allowed; inline the definition under $defs")
}

func compileSchema(url string, doc []byte) (*jsonschema.Schema, error) {
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	c.UseLoader(noLoader{})
	if err := c.AddResource(url, v); err != nil {
		return nil, err
	}
	return c.Compile(url)
}

// CompileTenantSchema compiles a tenant's JSON Schema for one event type.
// It is checked against the whole event (the same document the built-in
// schema sees), so it can require properties or constrain any field.
// Errors are invalid_event_schema naming "schema" and the problem.
func CompileTenantSchema(doc []byte) (*jsonschema.Schema, error) {
	bad := func(format string, args ...any) error {
		return abacus.Invalid("invalid_event_schema", format, args...).WithField("schema", fmt.Sprintf(format, args...))
	}
	if len(doc) > MaxSchemaBytes {
		return nil, bad("the schema is %d bytes; at most %d are allowed", len(doc), MaxSchemaBytes)
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		return nil, bad("is not valid JSON: %v", err)
	}
	if _, ok := v.(map[string]any); !ok {
		return nil, bad("a JSON Schema here is a JSON object")
	}
	nodes := 0
	var walk func(v any, depth int) bool
	walk = func(v any, depth int) bool {
		if depth > maxSchemaDepth {
			return false
		}
		switch x := v.(type) {
		case map[string]any:
			nodes++
			for _, c := range x {
				if !walk(c, depth+1) {
					return false
				}
			}
		case []any:
			for _, c := range x {
				if !walk(c, depth+1) {
					return false
				}
			}
		}
		return true
	}
	if !walk(v, 0) {
		return nil, bad("the schema nests deeper than %d levels", maxSchemaDepth)
	}
	if nodes > MaxSchemaNodes {
		return nil, bad("the schema holds %d objects; at most %d are allowed", nodes, MaxSchemaNodes)
	}
	s, err := compileSchema("abacus:///tenant-event.schema.json", doc)
	if err != nil {
		return nil, bad("cannot be used: %s", firstLine(err.Error()))
	}
	return s, nil
}

var printer = message.NewPrinter(language.English)

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return strings.ReplaceAll(strings.ReplaceAll(s, "abacus:///tenant-event.schema.json", ""), "abacus:///risk-event.schema.json", "")
}

// schemaProblems validates inst against s and adds each problem to v at
// index i (when batch) with its field path (amount, shipping_address.country,
// properties.items[0]); suffix follows each message.
func schemaProblems(s *jsonschema.Schema, inst any, batch bool, i int, suffix string, v *abacus.Validation) {
	err := s.Validate(inst)
	if err == nil {
		return
	}
	add := func(field, msg string) {
		if len(v.Fields) >= maxFieldErrors*(i+1) {
			return
		}
		if field == "" {
			field = "body"
		}
		if batch {
			v.AddAt(i, field, "%s%s", msg, suffix)
		} else {
			v.Add(field, "%s%s", msg, suffix)
		}
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		add("", firstLine(err.Error()))
		return
	}
	type leaf struct{ at, msg string }
	var ls []leaf
	seen := map[string]int{}
	put := func(at, msg string) {
		if j, ok := seen[at]; ok {
			if !strings.Contains(ls[j].msg, msg) {
				ls[j].msg += "; or " + msg
			}
			return
		}
		seen[at] = len(ls)
		ls = append(ls, leaf{at, msg})
	}
	visited := 0
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if visited++; visited > 1000 {
			return
		}
		if len(e.Causes) > 0 {
			for _, c := range e.Causes {
				walk(c)
			}
			return
		}
		at := fieldPath(e.InstanceLocation)
		switch k := e.ErrorKind.(type) {
		case *kind.Required:
			for _, m := range k.Missing {
				put(joinField(at, m), "is required")
			}
			return
		case *kind.AdditionalProperties:
			for _, p := range k.Properties {
				put(joinField(at, p), "is not a field of a risk event; put your own data under properties")
			}
			return
		case *kind.FalseSchema:
			put(at, "is not allowed here")
			return
		}
		put(at, firstLine(e.ErrorKind.LocalizedString(printer)))
	}
	walk(ve)
	sort.SliceStable(ls, func(a, b int) bool { return ls[a].at < ls[b].at })
	for _, l := range ls {
		add(l.at, l.msg)
	}
}

func joinField(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// fieldPath writes an instance location the way problems name fields:
// a.b[0].c.
func fieldPath(tokens []string) string {
	var b strings.Builder
	for _, t := range tokens {
		if _, err := strconv.Atoi(t); err == nil && b.Len() > 0 {
			b.WriteString("[" + t + "]")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(t)
	}
	return b.String()
}
