package jsonlogic

import (
	"math"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf16"
)

// The helpers below reproduce the JavaScript semantics json-logic-js
// relies on (abstract equality, relational comparison, ToNumber,
// ToString, parseFloat), on the values a decoded JSON document holds:
// nil, bool, float64, string, []any and map[string]any.

// Truthy is JsonLogic's truthiness: JavaScript's, except that an empty
// array is false.
func Truthy(v any) bool {
	switch x := v.(type) {
	case nil:
		return false
	case bool:
		return x
	case float64:
		return x != 0 && !math.IsNaN(x)
	case string:
		return x != ""
	case []any:
		return len(x) > 0
	default:
		return true
	}
}

// jsFalsy is JavaScript's !v (an empty array is truthy).
func jsFalsy(v any) bool {
	if a, ok := v.([]any); ok {
		_ = a
		return false
	}
	return !Truthy(v)
}

// toPrimitive is ToPrimitive with hint number for arrays and objects.
func toPrimitive(v any) any {
	switch v.(type) {
	case []any, map[string]any:
		return toString(v)
	}
	return v
}

// toNumber is JavaScript's ToNumber.
func toNumber(v any) float64 {
	switch x := v.(type) {
	case nil:
		return 0
	case bool:
		if x {
			return 1
		}
		return 0
	case float64:
		return x
	case string:
		return stringToNumber(x)
	case []any, map[string]any:
		return toNumber(toPrimitive(v))
	}
	return math.NaN()
}

// jsSpace reports the characters JavaScript's trim removes (the common ones).
func jsSpace(r rune) bool {
	switch r {
	case ' ', '\t', '\n', '\v', '\f', '\r', 0xa0, 0xfeff, 0x2028, 0x2029, 0x1680, 0x202f, 0x205f, 0x3000:
		return true
	}
	return r >= 0x2000 && r <= 0x200a
}

func stringToNumber(s string) float64 {
	s = strings.TrimFunc(s, jsSpace)
	if s == "" {
		return 0
	}
	if len(s) > 2 && s[0] == '0' {
		base := 0
		switch s[1] {
		case 'x', 'X':
			base = 16
		case 'o', 'O':
			base = 8
		case 'b', 'B':
			base = 2
		}
		if base != 0 {
			var f float64
			for _, c := range s[2:] {
				d := digitVal(c)
				if d < 0 || d >= base {
					return math.NaN()
				}
				f = f*float64(base) + float64(d)
			}
			return f
		}
	}
	switch s {
	case "Infinity", "+Infinity":
		return math.Inf(1)
	case "-Infinity":
		return math.Inf(-1)
	}
	if n := decimalPrefix(s); n != len(s) || n == 0 {
		return math.NaN()
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
			return f // ±Inf or 0, as JavaScript rounds
		}
		return math.NaN()
	}
	return f
}

func digitVal(c rune) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// decimalPrefix returns the length of the longest prefix of s that is a
// StrDecimalLiteral without "Infinity": [+-] digits [. digits] [e [+-] digits].
func decimalPrefix(s string) int {
	i := 0
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		i++
	}
	digits := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
		digits++
	}
	if i < len(s) && s[i] == '.' {
		j := i + 1
		frac := 0
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
			frac++
		}
		if digits+frac > 0 {
			i = j
			digits += frac
		}
	}
	if digits == 0 {
		return 0
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		j := i + 1
		if j < len(s) && (s[j] == '+' || s[j] == '-') {
			j++
		}
		k := j
		for k < len(s) && s[k] >= '0' && s[k] <= '9' {
			k++
		}
		if k > j {
			i = k
		}
	}
	return i
}

// parseFloat is JavaScript's global parseFloat: the longest decimal
// prefix of String(v) after leading white space, or NaN.
func parseFloat(v any) float64 {
	if f, ok := v.(float64); ok {
		return f
	}
	s := strings.TrimLeftFunc(toString(v), jsSpace)
	for _, inf := range []string{"Infinity", "+Infinity"} {
		if strings.HasPrefix(s, inf) {
			return math.Inf(1)
		}
	}
	if strings.HasPrefix(s, "-Infinity") {
		return math.Inf(-1)
	}
	n := decimalPrefix(s)
	if n == 0 {
		return math.NaN()
	}
	f, err := strconv.ParseFloat(s[:n], 64)
	if err != nil {
		if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
			return f
		}
		return math.NaN()
	}
	return f
}

// toString is JavaScript's String(v).
func toString(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case bool:
		if x {
			return "true"
		}
		return "false"
	case float64:
		return numberToString(x)
	case string:
		return x
	case []any:
		var b strings.Builder
		for i, e := range x {
			if i > 0 {
				b.WriteByte(',')
			}
			if e != nil {
				b.WriteString(toString(e))
			}
		}
		return b.String()
	case map[string]any:
		return "[object Object]"
	}
	return ""
}

// numberToString is Number.prototype.toString() for base 10.
func numberToString(f float64) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	case f == 0:
		return "0"
	}
	a := math.Abs(f)
	if a >= 1e21 || a < 1e-6 {
		s := strconv.FormatFloat(f, 'e', -1, 64) // 1.5e+21, 1e-07
		mant, exp, _ := strings.Cut(s, "e")
		sign := exp[0]
		exp = strings.TrimLeft(exp[1:], "0")
		return mant + "e" + string(sign) + exp
	}
	return strconv.FormatFloat(f, 'f', -1, 64)
}

// same reports whether two arrays or objects are the same reference.
func same(a, b any) bool {
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	if va.Kind() != vb.Kind() {
		return false
	}
	switch va.Kind() {
	case reflect.Slice:
		return va.Len() == vb.Len() && va.Len() > 0 && va.Pointer() == vb.Pointer()
	case reflect.Map:
		return va.Pointer() == vb.Pointer()
	}
	return false
}

// strictEqual is JavaScript's ===.
func strictEqual(a, b any) bool {
	switch x := a.(type) {
	case nil:
		return b == nil
	case bool:
		y, ok := b.(bool)
		return ok && x == y
	case float64:
		y, ok := b.(float64)
		return ok && x == y
	case string:
		y, ok := b.(string)
		return ok && x == y
	}
	return same(a, b)
}

func isObject(v any) bool {
	switch v.(type) {
	case []any, map[string]any:
		return true
	}
	return false
}

// looseEqual is JavaScript's == (IsLooselyEqual).
func looseEqual(a, b any) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	switch x := a.(type) {
	case float64:
		switch y := b.(type) {
		case float64:
			return x == y
		case string:
			return x == stringToNumber(y)
		case bool:
			return x == toNumber(y)
		default:
			return looseEqual(a, toPrimitive(b))
		}
	case string:
		switch y := b.(type) {
		case string:
			return x == y
		case float64:
			return stringToNumber(x) == y
		case bool:
			return stringToNumber(x) == toNumber(y)
		default:
			return looseEqual(a, toPrimitive(b))
		}
	case bool:
		return looseEqual(toNumber(x), b)
	}
	// a is an array or object
	if isObject(b) {
		return same(a, b)
	}
	if _, ok := b.(bool); ok {
		return looseEqual(a, toNumber(b))
	}
	return looseEqual(toPrimitive(a), b)
}

// lessThan is IsLessThan(a, b): 1 true, 0 false, -1 undefined (a NaN).
func lessThan(a, b any) int {
	pa, pb := toPrimitive(a), toPrimitive(b)
	if sa, ok := pa.(string); ok {
		if sb, ok := pb.(string); ok {
			if compareUTF16(sa, sb) < 0 {
				return 1
			}
			return 0
		}
	}
	x, y := toNumber(pa), toNumber(pb)
	if math.IsNaN(x) || math.IsNaN(y) {
		return -1
	}
	if x < y {
		return 1
	}
	return 0
}

// compareUTF16 compares strings by UTF-16 code units, as JavaScript does.
func compareUTF16(a, b string) int {
	ascii := true
	for i := 0; i < len(a) && ascii; i++ {
		ascii = a[i] < 0x80
	}
	for i := 0; i < len(b) && ascii; i++ {
		ascii = b[i] < 0x80
	}
	if ascii {
		return strings.Compare(a, b)
	}
	ua, ub := utf16.Encode([]rune(a)), utf16.Encode([]rune(b))
	for i := 0; i < len(ua) && i < len(ub); i++ {
		if ua[i] != ub[i] {
			if ua[i] < ub[i] {
				return -1
			}
			return 1
		}
	}
	return len(ua) - len(ub)
}

func lt(a, b any) bool { return lessThan(a, b) == 1 }
func gt(a, b any) bool { return lessThan(b, a) == 1 }
func le(a, b any) bool { return lessThan(b, a) == 0 }
func ge(a, b any) bool { return lessThan(a, b) == 0 }

// toIntegerOrInfinity is ToIntegerOrInfinity(ToNumber(v)).
func toIntegerOrInfinity(v any) float64 {
	f := toNumber(v)
	if math.IsNaN(f) {
		return 0
	}
	return math.Trunc(f)
}

// substr is String.prototype.substr(start, length) on UTF-16 code units;
// length nil means to the end.
func substr(s string, start any, length any, hasLength bool) string {
	u := utf16.Encode([]rune(s))
	size := float64(len(u))
	st := toIntegerOrInfinity(start)
	if math.IsInf(st, -1) {
		st = 0
	} else if st < 0 {
		st = math.Max(size+st, 0)
	}
	st = math.Min(st, size)
	n := size
	if hasLength {
		n = toIntegerOrInfinity(length)
	}
	end := math.Min(st+n, size)
	if n <= 0 || st >= end {
		return ""
	}
	return string(utf16.Decode(u[int(st):int(end)]))
}

// utf16Len is a string's length in UTF-16 code units.
func utf16Len(s string) int {
	n := 0
	for _, r := range s {
		if r >= 0x10000 {
			n += 2
		} else {
			n++
		}
	}
	return n
}
