// Package jsonlogic compiles and evaluates JsonLogic (jsonlogic.com) with
// the semantics of the reference implementation, the npm package
// json-logic-js 2.0.5: JavaScript's loose equality, relational
// comparison, number parsing and truthiness (an empty array is false).
// Its tests run the reference implementation on the same rules and data,
// generated ones included, and the shared test suite of jsonlogic.com.
//
// A rule is compiled once into a tree of closures (no reflection, no
// parsing per evaluation) and its cost is bounded twice: at compile time
// by Limits (size, depth, operations), at evaluation time by a step
// budget (map, filter and reduce over data can multiply work); a rule
// over budget fails with ErrBudget instead of spinning.
//
// Operations: var, missing, missing_some, if, ?:, ==, ===, !=, !==, !, !!,
// or, and, >, >=, <, <=, max, min, +, -, *, /, %, in, cat, substr, merge,
// map, filter, reduce, all, none, some, log. Anything else is refused when
// compiling.
package jsonlogic

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
)

// Limits bound what one rule may cost.
type Limits struct {
	MaxBytes int // the rule's JSON
	MaxDepth int // nesting of operations and arrays
	MaxNodes int // operations, literals and array elements
	MaxSteps int // operations evaluated per evaluation
}

// DefaultLimits are generous for hand-written rules and keep any rule
// well under a millisecond.
var DefaultLimits = Limits{MaxBytes: 16 << 10, MaxDepth: 32, MaxNodes: 2_000, MaxSteps: 20_000}

// ErrBudget is the evaluation error of a rule that ran out of steps.
var ErrBudget = errors.New("the rule ran out of its evaluation budget (map, filter or reduce over too much data)")

// Error is a compile error: Path is where in the rule (e.g.
// "and[1].>[0].var"), Message what is wrong.
type Error struct {
	Path    string
	Message string
}

func (e *Error) Error() string {
	if e.Path == "" {
		return e.Message
	}
	return e.Path + ": " + e.Message
}

// VarCheck is called for every variable name a rule reads outside map,
// filter, reduce, all, none and some (whose variables name the items);
// an error refuses the rule at that place.
type VarCheck func(name string) error

// Options configure Compile.
type Options struct {
	Limits Limits
	// Check, when set, vets every variable name, and names must then be
	// literal strings (so every variable a rule reads is known).
	Check VarCheck
}

// Rule is a compiled rule; safe for concurrent use.
type Rule struct {
	root     node
	vars     []string
	maxSteps int
}

// Vars returns the literal variable names the rule reads (outside scoped
// operations), sorted, each once.
func (r *Rule) Vars() []string { return r.vars }

type state struct {
	steps, max int
}

type node func(s *state, data any) any

type budgetPanic struct{}

// Eval applies the rule to data (a decoded JSON value: nil, bool,
// float64, string, []any, map[string]any). The result is a JSON value;
// NaN and ±Infinity may occur, as in JavaScript.
func (r *Rule) Eval(data any) (result any, err error) {
	s := state{max: r.maxSteps}
	defer func() {
		if p := recover(); p != nil {
			if _, ok := p.(budgetPanic); ok {
				result, err = nil, ErrBudget
				return
			}
			panic(p)
		}
	}()
	if data == nil {
		data = map[string]any{}
	}
	return r.root(&s, data), nil
}

// Match applies the rule and reports whether its result is truthy.
func (r *Rule) Match(data any) (bool, error) {
	v, err := r.Eval(data)
	return Truthy(v), err
}

func (s *state) step() {
	if s.steps++; s.steps > s.max {
		panic(budgetPanic{})
	}
}

// Decode reads JSON as Eval takes it (numbers as float64).
func Decode(b []byte) (any, error) {
	var v any
	d := json.NewDecoder(bytes.NewReader(b))
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	if d.More() {
		return nil, errors.New("trailing data after the JSON value")
	}
	return v, nil
}

// Compile compiles a rule given as JSON.
func Compile(logic []byte, o Options) (*Rule, error) {
	if o.Limits == (Limits{}) {
		o.Limits = DefaultLimits
	}
	if len(logic) > o.Limits.MaxBytes {
		return nil, &Error{Message: fmt.Sprintf("the rule is %d bytes; at most %d are allowed", len(logic), o.Limits.MaxBytes)}
	}
	v, err := Decode(logic)
	if err != nil {
		return nil, &Error{Message: "is not valid JSON: " + err.Error()}
	}
	return CompileValue(v, o)
}

// CompileValue compiles a decoded rule.
func CompileValue(v any, o Options) (*Rule, error) {
	if o.Limits == (Limits{}) {
		o.Limits = DefaultLimits
	}
	c := compiler{o: o, vars: map[string]bool{}}
	root, err := c.compile(v, "", 0, false)
	if err != nil {
		return nil, err
	}
	if c.nodes > o.Limits.MaxNodes {
		return nil, &Error{Message: fmt.Sprintf("the rule has %d operations and values; at most %d are allowed", c.nodes, o.Limits.MaxNodes)}
	}
	r := &Rule{root: root, maxSteps: o.Limits.MaxSteps}
	for k := range c.vars {
		r.vars = append(r.vars, k)
	}
	sort.Strings(r.vars)
	return r, nil
}

type compiler struct {
	o     Options
	nodes int
	vars  map[string]bool
}

func join(path, part string) string {
	if path == "" {
		return part
	}
	if strings.HasPrefix(part, "[") {
		return path + part
	}
	return path + "." + part
}

func (c *compiler) compile(v any, path string, depth int, scoped bool) (node, error) {
	if c.nodes++; c.nodes > c.o.Limits.MaxNodes {
		return nil, &Error{Path: path, Message: fmt.Sprintf("the rule has more than %d operations and values", c.o.Limits.MaxNodes)}
	}
	if depth > c.o.Limits.MaxDepth {
		return nil, &Error{Path: path, Message: fmt.Sprintf("the rule nests deeper than %d levels", c.o.Limits.MaxDepth)}
	}
	switch x := v.(type) {
	case []any:
		items := make([]node, len(x))
		for i, e := range x {
			n, err := c.compile(e, join(path, "["+strconv.Itoa(i)+"]"), depth+1, scoped)
			if err != nil {
				return nil, err
			}
			items[i] = n
		}
		return func(s *state, data any) any {
			out := make([]any, len(items))
			for i, n := range items {
				out[i] = n(s, data)
			}
			return out
		}, nil
	case map[string]any:
		if len(x) != 1 {
			// Not logic: json-logic-js hands such an object back as it is.
			return func(*state, any) any { return x }, nil
		}
		for op, args := range x {
			return c.operation(op, args, join(path, op), depth, scoped)
		}
	}
	return func(*state, any) any { return v }, nil
}

// argList is json-logic-js's `if (!Array.isArray(values)) values = [values]`.
func argList(args any) []any {
	if a, ok := args.([]any); ok {
		return a
	}
	return []any{args}
}

func (c *compiler) args(args []any, path string, depth int, scoped bool) ([]node, error) {
	out := make([]node, len(args))
	for i, a := range args {
		p := path
		if len(args) > 1 || isArray(a) {
			p = join(path, "["+strconv.Itoa(i)+"]")
		}
		n, err := c.compile(a, p, depth+1, scoped)
		if err != nil {
			return nil, err
		}
		out[i] = n
	}
	return out, nil
}

func isArray(v any) bool { _, ok := v.([]any); return ok }

func evalAll(s *state, ns []node, data any) []any {
	out := make([]any, len(ns))
	for i, n := range ns {
		out[i] = n(s, data)
	}
	return out
}

func (c *compiler) operation(op string, raw any, path string, depth int, scoped bool) (node, error) {
	list := argList(raw)
	switch op {
	case "var":
		return c.variable(list, path, depth, scoped)
	case "if", "?:":
		ns, err := c.args(list, path, depth, scoped)
		if err != nil {
			return nil, err
		}
		return func(s *state, data any) any {
			s.step()
			i := 0
			for ; i < len(ns)-1; i += 2 {
				if Truthy(ns[i](s, data)) {
					return ns[i+1](s, data)
				}
			}
			if len(ns) == i+1 {
				return ns[i](s, data)
			}
			return nil
		}, nil
	case "and", "or":
		ns, err := c.args(list, path, depth, scoped)
		if err != nil {
			return nil, err
		}
		and := op == "and"
		return func(s *state, data any) any {
			s.step()
			var cur any
			for _, n := range ns {
				cur = n(s, data)
				if Truthy(cur) != and {
					return cur
				}
			}
			return cur
		}, nil
	case "filter", "map", "all", "none", "some", "reduce":
		return c.scoped(op, list, path, depth, scoped)
	case "missing", "missing_some":
		ns, err := c.args(list, path, depth, scoped)
		if err != nil {
			return nil, err
		}
		some := op == "missing_some"
		return func(s *state, data any) any {
			s.step()
			vals := evalAll(s, ns, data)
			if some {
				need := arg(vals, 0)
				options, _ := arg(vals, 1).([]any)
				miss := missingOf(data, options)
				if ge(float64(len(options)-len(miss)), need) {
					return []any{}
				}
				return miss
			}
			keys := vals
			if len(vals) > 0 {
				if a, ok := vals[0].([]any); ok {
					keys = a
				}
			}
			return missingOf(data, keys)
		}, nil
	}
	f, ok := ops[op]
	if !ok {
		return nil, &Error{Path: path, Message: fmt.Sprintf("unknown operation %q", op)}
	}
	if op == "*" && len(list) == 0 {
		return nil, &Error{Path: path, Message: `"*" needs at least one argument`}
	}
	ns, err := c.args(list, path, depth, scoped)
	if err != nil {
		return nil, err
	}
	if f2, ok := binaryOps[op]; ok && len(ns) == 2 {
		// The usual comparison, without a slice of arguments per
		// evaluation; the same function ops calls, the same order.
		x, y := ns[0], ns[1]
		return func(s *state, data any) any {
			s.step()
			return f2(x(s, data), y(s, data))
		}, nil
	}
	return func(s *state, data any) any {
		s.step()
		return f(evalAll(s, ns, data))
	}, nil
}

// variable compiles var: [name, default]. Literal names are split once.
func (c *compiler) variable(list []any, path string, depth int, scoped bool) (node, error) {
	if len(list) > 0 {
		if name, ok := literalName(list[0]); ok {
			if !scoped && name != "" {
				if c.o.Check != nil {
					if err := c.o.Check(name); err != nil {
						return nil, &Error{Path: path, Message: err.Error()}
					}
				}
				c.vars[name] = true
			}
			var def node
			if len(list) > 1 {
				d, err := c.compile(list[1], join(path, "[1]"), depth+1, scoped)
				if err != nil {
					return nil, err
				}
				def = d
			}
			var parts []string
			if name != "" {
				parts = strings.Split(name, ".")
			}
			return func(s *state, data any) any {
				s.step()
				var notFound any
				if def != nil {
					notFound = def(s, data)
				}
				if parts == nil {
					return data
				}
				return lookup(data, parts, notFound)
			}, nil
		}
		if c.o.Check != nil && !scoped {
			return nil, &Error{Path: path, Message: "a variable's name must be a literal string such as \"event.amount\""}
		}
	}
	ns, err := c.args(list, path, depth, scoped)
	if err != nil {
		return nil, err
	}
	return func(s *state, data any) any {
		s.step()
		vals := evalAll(s, ns, data)
		var notFound any
		if len(vals) > 1 {
			notFound = vals[1]
		}
		if len(vals) == 0 || vals[0] == nil || vals[0] == "" {
			return data
		}
		return lookup(data, strings.Split(toString(vals[0]), "."), notFound)
	}, nil
}

// literalName returns a var's name when it is a literal (a string, a
// number, or null/"" for the whole data).
func literalName(v any) (string, bool) {
	switch x := v.(type) {
	case nil:
		return "", true
	case string:
		return x, true
	case float64:
		return numberToString(x), true
	}
	return "", false
}

// lookup follows parts into data as json-logic-js's var does.
func lookup(data any, parts []string, notFound any) any {
	for _, p := range parts {
		if data == nil {
			return notFound
		}
		var next any
		found := false
		switch x := data.(type) {
		case map[string]any:
			next, found = x[p]
		case []any:
			if p == "length" {
				next, found = float64(len(x)), true
			} else if i, ok := arrayIndex(p); ok && i < len(x) {
				next, found = x[i], true
			}
		case string:
			if p == "length" {
				next, found = float64(utf16Len(x)), true
			} else if i, ok := arrayIndex(p); ok && i < utf16Len(x) {
				next, found = substr(x, float64(i), 1.0, true), true
			}
		}
		if !found {
			return notFound
		}
		data = next
	}
	return data
}

func arrayIndex(p string) (int, bool) {
	if p == "" || (len(p) > 1 && p[0] == '0') {
		return 0, false
	}
	n := 0
	for _, c := range p {
		if c < '0' || c > '9' || n > 1<<30 {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// scoped compiles the operations whose second argument runs per item.
func (c *compiler) scoped(op string, list []any, path string, depth int, scoped bool) (node, error) {
	get := func(i int, sc bool) (node, error) {
		if i >= len(list) {
			return func(*state, any) any { return nil }, nil
		}
		return c.compile(list[i], join(path, "["+strconv.Itoa(i)+"]"), depth+1, sc)
	}
	src, err := get(0, scoped)
	if err != nil {
		return nil, err
	}
	fn, err := get(1, true)
	if err != nil {
		return nil, err
	}
	switch op {
	case "filter", "map":
		return func(s *state, data any) any {
			s.step()
			items, ok := src(s, data).([]any)
			if !ok {
				return []any{}
			}
			out := make([]any, 0, len(items))
			for _, it := range items {
				v := fn(s, it)
				if op == "map" {
					out = append(out, v)
				} else if Truthy(v) {
					out = append(out, it)
				}
			}
			return out
		}, nil
	case "all", "none", "some":
		// json-logic-js: a non-array or empty array is false for all and
		// some, true for none; items short-circuit.
		return func(s *state, data any) any {
			s.step()
			items, ok := src(s, data).([]any)
			if !ok || len(items) == 0 {
				return op == "none"
			}
			for _, it := range items {
				t := Truthy(fn(s, it))
				switch {
				case op == "all" && !t:
					return false
				case op == "none" && t:
					return false
				case op == "some" && t:
					return true
				}
			}
			return op != "some"
		}, nil
	default: // reduce
		init, err := get(2, scoped)
		if err != nil {
			return nil, err
		}
		return func(s *state, data any) any {
			s.step()
			acc := init(s, data)
			items, ok := src(s, data).([]any)
			if !ok {
				return acc
			}
			for _, it := range items {
				acc = fn(s, map[string]any{"current": it, "accumulator": acc})
			}
			return acc
		}, nil
	}
}

type opFunc func(a []any) any

func arg(a []any, i int) any {
	if i < len(a) {
		return a[i]
	}
	return nil
}

var ops map[string]opFunc

// binaryOps are the operations of two arguments: ops calls them with its
// first two, and operation calls them directly when a rule gives two.
var binaryOps = map[string]func(x, y any) any{
	"==":  func(x, y any) any { return looseEqual(x, y) },
	"===": func(x, y any) any { return strictEqual(x, y) },
	"!=":  func(x, y any) any { return !looseEqual(x, y) },
	"!==": func(x, y any) any { return !strictEqual(x, y) },
	">":   func(x, y any) any { return gt(x, y) },
	">=":  func(x, y any) any { return ge(x, y) },
	"<":   func(x, y any) any { return lt(x, y) },
	"<=":  func(x, y any) any { return le(x, y) },
	"/":   func(x, y any) any { return toNumber(x) / toNumber(y) },
	"%":   func(x, y any) any { return math.Mod(toNumber(x), toNumber(y)) },
	"in":  func(x, y any) any { return in(x, y) },
}

// binary is op of binaryOps over a's first two arguments.
func binary(op string) opFunc {
	f := binaryOps[op]
	return func(a []any) any { return f(arg(a, 0), arg(a, 1)) }
}

// in is json-logic-js's in: a substring of a string or an element of an
// array.
func in(x, b any) bool {
	if jsFalsy(b) {
		return false
	}
	switch y := b.(type) {
	case string:
		return strings.Contains(y, toString(x))
	case []any:
		for _, e := range y {
			if strictEqual(e, x) {
				return true
			}
		}
	}
	return false
}

func init() {
	ops = map[string]opFunc{
		"==":  binary("=="),
		"===": binary("==="),
		"!=":  binary("!="),
		"!==": binary("!=="),
		"!":   func(a []any) any { return !Truthy(arg(a, 0)) },
		"!!":  func(a []any) any { return Truthy(arg(a, 0)) },
		">":   binary(">"),
		">=":  binary(">="),
		"<": func(a []any) any {
			if len(a) < 3 {
				return lt(arg(a, 0), arg(a, 1))
			}
			return lt(a[0], a[1]) && lt(a[1], a[2])
		},
		"<=": func(a []any) any {
			if len(a) < 3 {
				return le(arg(a, 0), arg(a, 1))
			}
			return le(a[0], a[1]) && le(a[1], a[2])
		},
		"max": func(a []any) any {
			m := math.Inf(-1)
			for _, v := range a {
				f := toNumber(v)
				if math.IsNaN(f) {
					return math.NaN()
				}
				m = math.Max(m, f)
			}
			return m
		},
		"min": func(a []any) any {
			m := math.Inf(1)
			for _, v := range a {
				f := toNumber(v)
				if math.IsNaN(f) {
					return math.NaN()
				}
				m = math.Min(m, f)
			}
			return m
		},
		"+": func(a []any) any {
			sum := 0.0
			for _, v := range a {
				sum += parseFloat(v)
			}
			return sum
		},
		"*": func(a []any) any {
			if len(a) == 1 {
				return a[0]
			}
			p := parseFloat(a[0])
			for _, v := range a[1:] {
				p *= parseFloat(v)
			}
			return p
		},
		"-": func(a []any) any {
			if len(a) == 0 {
				return math.NaN()
			}
			if len(a) < 2 {
				return -toNumber(a[0])
			}
			return toNumber(a[0]) - toNumber(a[1])
		},
		"/": binary("/"),
		"%": binary("%"),
		"in": func(a []any) any {
			if len(a) < 2 {
				return false
			}
			return in(a[0], a[1])
		},
		"cat": func(a []any) any { // Array.prototype.join: null is ""
			var b strings.Builder
			for _, v := range a {
				if v != nil {
					b.WriteString(toString(v))
				}
			}
			return b.String()
		},
		"substr": func(a []any) any {
			src := toString(arg(a, 0))
			if len(a) > 2 && lessThan(a[2], 0.0) == 1 {
				t := substr(src, arg(a, 1), nil, false)
				return substr(t, 0.0, float64(utf16Len(t))+toNumber(a[2]), true)
			}
			return substr(src, arg(a, 1), arg(a, 2), len(a) > 2)
		},
		"merge": func(a []any) any {
			out := []any{}
			for _, v := range a {
				if arr, ok := v.([]any); ok {
					out = append(out, arr...)
				} else {
					out = append(out, v)
				}
			}
			return out
		},
		"log": func(a []any) any { return arg(a, 0) },
	}
}

// missingOf is json-logic-js's missing: the keys whose var is null or "".
func missingOf(data any, keys []any) []any {
	out := []any{}
	for _, k := range keys {
		var v any
		if k == nil || k == "" {
			v = data
		} else {
			v = lookup(data, strings.Split(toString(k), "."), nil)
		}
		if v == nil || v == "" {
			out = append(out, k)
		}
	}
	return out
}
