package metering

import (
	"fmt"
	"regexp"
	"regexp/syntax"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/abacusbilling/abacus"
)

// Bounds on what one schema may cost. The compiler's time grows far faster
// than linearly with nesting (measured on 2 cores: depth 256 ~80 ms, 512
// ~0.9 s, 3,200 ~42 s) and with the number of subschemas (21,000 `{}` in
// one anyOf: 2.7 s of CPU), and validation grows with every $ref
// expansion, so each is refused before any expensive step runs.
const (
	// MaxSchemaDepth is how deeply a schema document may nest objects and
	// arrays; 64 JSON levels hold about 30 levels of event data.
	MaxSchemaDepth = 64
	// MaxSchemaNodes bounds the objects and booleans (possible
	// subschemas) a document holds, and the subschemas one value can be
	// checked against with $refs expanded. 64 KiB of properties like
	// "p1":{"type":"string"} hold about 3,500; compiling 5,000 takes about
	// 0.15 s of CPU.
	MaxSchemaNodes = 5_000
	// MaxPatternSize bounds a pattern's compiled program (instructions).
	// Matching costs the string's length times this, per event; a
	// pattern like ^[a-z0-9-]{1,64}$ takes about 200.
	MaxPatternSize = 2_000
	// MaxCheckWork bounds the checks one event's data may cost: its values
	// times the most subschemas one value meets (in place: allOf, anyOf,
	// oneOf, not, if/then/else, $ref). A failed check costs about 1.2 µs,
	// so an event costs at most about a second; ordinary events (100
	// values, 10 subschemas each) are far below.
	MaxCheckWork = 500_000
)

// checkShape refuses a document nested deeper than MaxSchemaDepth, naming
// the first place that is too deep ("schema/items/items/…"), or holding
// more than MaxSchemaNodes objects and booleans.
func checkShape(v any) error {
	var path []string
	nodes := 0
	var deep func(v any, depth int) bool
	deep = func(v any, depth int) bool {
		switch x := v.(type) {
		case bool:
			nodes++
		case map[string]any:
			if nodes++; depth > MaxSchemaDepth {
				return true
			}
			for k, c := range x {
				if path = append(path, k); deep(c, depth+1) {
					return true
				}
				path = path[:len(path)-1]
			}
		case []any:
			if depth > MaxSchemaDepth {
				return true
			}
			for i, c := range x {
				if path = append(path, fmt.Sprint(i)); deep(c, depth+1) {
					return true
				}
				path = path[:len(path)-1]
			}
		}
		return false
	}
	if !deep(v, 1) {
		if nodes > MaxSchemaNodes {
			return abacus.Invalid(CodeInvalidEventSchema, "the schema holds %d objects and booleans (each a possible subschema); at most %d are allowed", nodes, MaxSchemaNodes).
				WithField("schema", fmt.Sprintf("holds more than %d subschemas", MaxSchemaNodes))
		}
		return nil
	}
	at := "schema" + pointer(path)
	return abacus.Invalid(CodeInvalidEventSchema, "the schema nests more than %d levels deep at %s", MaxSchemaDepth, at).
		WithField(at, fmt.Sprintf("is nested more than %d levels deep", MaxSchemaDepth))
}

// boundedRegexp is the compiler's regexp engine: Go's (linear time, no
// backreferences) with programs of at most MaxPatternSize instructions.
func boundedRegexp(s string) (jsonschema.Regexp, error) {
	re, err := syntax.Parse(s, syntax.Perl)
	if err != nil {
		return nil, err
	}
	prog, err := syntax.Compile(re.Simplify())
	if err != nil {
		return nil, err
	}
	if n := len(prog.Inst); n > MaxPatternSize {
		return nil, fmt.Errorf("pattern compiles to %d instructions; at most %d are allowed (use smaller repetition counts)", n, MaxPatternSize)
	}
	return regexp.Compile(s)
}

// checkNodes refuses a compiled schema that would check one value against
// more than MaxSchemaNodes subschemas with its references expanded, and
// returns its width: the most subschemas one value meets in place.
func checkNodes(s *jsonschema.Schema) (int, error) {
	w := nodeCounter{memo: map[*jsonschema.Schema]int{}, open: map[*jsonschema.Schema]bool{}}
	if n := w.count(s); n > MaxSchemaNodes {
		return 0, abacus.Invalid(CodeInvalidEventSchema,
			"the schema expands to more than %d subschemas through its references; refer to shared definitions fewer times", MaxSchemaNodes).
			WithField("schema", fmt.Sprintf("expands to more than %d subschemas", MaxSchemaNodes))
	}
	in := nodeCounter{memo: map[*jsonschema.Schema]int{}, open: map[*jsonschema.Schema]bool{}, inPlace: true}
	width := 1
	for r := range w.memo { // every subschema reachable from s
		width = max(width, in.count(r))
	}
	return width, nil
}

// countValues counts the values of a decoded JSON document.
func countValues(v any) int {
	n := 1
	switch x := v.(type) {
	case map[string]any:
		for _, c := range x {
			n += countValues(c)
		}
	case []any:
		for _, c := range x {
			n += countValues(c)
		}
	}
	return n
}

// nodeCounter counts a schema's subschemas with references expanded,
// each shared subschema computed once. A reference back to a schema being
// counted adds one: recursion consumes data, and a cycle that consumes
// none is refused by CompileSchema's probe.
type nodeCounter struct {
	memo    map[*jsonschema.Schema]int
	open    map[*jsonschema.Schema]bool
	inPlace bool // count only subschemas applied to the same value
}

func (w nodeCounter) count(s *jsonschema.Schema) int {
	if s == nil {
		return 0
	}
	if n, ok := w.memo[s]; ok {
		return n
	}
	if w.open[s] {
		return 1
	}
	w.open[s] = true
	n := 1
	cs := children(s)
	if w.inPlace {
		cs = inPlace(s)
	}
	for _, c := range cs {
		// Saturate: fan-out can exceed any integer within 64 KiB.
		if n += w.count(c); n > MaxSchemaNodes {
			n = MaxSchemaNodes + 1
			break
		}
	}
	delete(w.open, s)
	w.memo[s] = n
	return n
}

// children lists every subschema s applies, references included: those
// applied to the value itself, then those applied to its members.
func children(s *jsonschema.Schema) []*jsonschema.Schema {
	cs := append(inPlace(s), s.PropertyNames, s.UnevaluatedProperties, s.Contains, s.Items2020, s.UnevaluatedItems, s.ContentSchema)
	cs = append(cs, s.PrefixItems...)
	for _, c := range s.Properties {
		cs = append(cs, c)
	}
	for _, c := range s.PatternProperties {
		cs = append(cs, c)
	}
	return appendSchema(appendSchema(appendSchema(cs, s.AdditionalProperties), s.Items), s.AdditionalItems)
}

// inPlace lists the subschemas s applies to the value it checks itself.
func inPlace(s *jsonschema.Schema) []*jsonschema.Schema {
	cs := []*jsonschema.Schema{s.Ref, s.RecursiveRef, s.Not, s.If, s.Then, s.Else}
	if s.DynamicRef != nil {
		cs = append(cs, s.DynamicRef.Ref)
	}
	cs = append(cs, s.AllOf...)
	cs = append(cs, s.AnyOf...)
	cs = append(cs, s.OneOf...)
	for _, c := range s.DependentSchemas {
		cs = append(cs, c)
	}
	for _, d := range s.Dependencies {
		cs = appendSchema(cs, d)
	}
	return cs
}

// appendSchema appends v when it is a schema or a list of schemas (the
// keywords whose value may also be a bool or a list of names).
func appendSchema(cs []*jsonschema.Schema, v any) []*jsonschema.Schema {
	switch x := v.(type) {
	case *jsonschema.Schema:
		cs = append(cs, x)
	case []*jsonschema.Schema:
		cs = append(cs, x...)
	}
	return cs
}
