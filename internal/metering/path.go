package metering

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/shopspring/decimal"
)

// segment is one step of a JSONPath: an object key or an array index.
type segment struct {
	key   string
	index int // used when isIdx
	isIdx bool
}

// path is a compiled JSONPath of the supported subset:
// $.a.b, $.a["x y"], $['x'], $.a[0] and combinations.
type path []segment

var errPathSyntax = errors.New(`must be a JSONPath such as $.tokens, $.usage["input tokens"] or $.items[0]`)

// parsePath compiles the JSONPath subset. Its errors are meant for API
// callers and say what is wrong and where.
func parsePath(p string) (path, error) {
	if len(p) < 2 || p[0] != '$' || (p[1] != '.' && p[1] != '[') {
		return nil, errPathSyntax
	}
	var out path
	i := 1
	bad := func(msg string) error { return fmt.Errorf("%w (%s at character %d)", errPathSyntax, msg, i+1) }
	for i < len(p) {
		switch p[i] {
		case '.':
			i++
			st := i
			for i < len(p) && isIdentByte(p[i]) {
				i++
			}
			if i == st {
				return nil, bad("a property name is expected after '.'")
			}
			out = append(out, segment{key: p[st:i]})
		case '[':
			i++
			if i >= len(p) {
				return nil, bad("unclosed '['")
			}
			if q := p[i]; q == '"' || q == '\'' {
				i++
				var key []byte
				for ; i < len(p) && p[i] != q; i++ {
					if p[i] == '\\' && i+1 < len(p) {
						i++
					}
					key = append(key, p[i])
				}
				if i >= len(p) {
					return nil, bad("unterminated quoted name")
				}
				i++
				out = append(out, segment{key: string(key)})
			} else {
				st := i
				for i < len(p) && p[i] >= '0' && p[i] <= '9' {
					i++
				}
				n, err := strconv.Atoi(p[st:i])
				if i == st || err != nil || n > 1<<20 {
					return nil, bad("an array index or a quoted name is expected after '['")
				}
				out = append(out, segment{index: n, isIdx: true})
			}
			if i >= len(p) || p[i] != ']' {
				return nil, bad("']' expected")
			}
			i++
		default:
			return nil, bad("'.' or '[' expected")
		}
	}
	return out, nil
}

func isIdentByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// lookup returns the raw JSON value at p in data, or false when data has
// no value there (or is not valid JSON along the way). When an object
// repeats a key, the first occurrence wins.
func (p path) lookup(data []byte) ([]byte, bool) {
	s := scanner{b: data}
	for _, seg := range p {
		c := s.peek()
		if seg.isIdx {
			if c != '[' {
				return nil, false
			}
			s.i++
			if s.peek() == ']' {
				return nil, false
			}
			for n := 0; n < seg.index; n++ {
				if s.skipValue(0) != nil || s.peek() != ',' {
					return nil, false
				}
				s.i++
			}
			continue
		}
		if c != '{' {
			return nil, false
		}
		s.i++
		if s.peek() == '}' {
			return nil, false
		}
		for {
			s.ws()
			ks, ke, esc, err := s.stringSpan()
			if err != nil || s.peek() != ':' {
				return nil, false
			}
			s.i++
			var match bool
			if esc {
				match = unescape(s.b[ks:ke]) == seg.key
			} else {
				match = string(s.b[ks:ke]) == seg.key
			}
			if match {
				break
			}
			if s.skipValue(0) != nil || s.peek() != ',' {
				return nil, false
			}
			s.i++
		}
	}
	s.ws()
	st := s.i
	if s.skipValue(0) != nil {
		return nil, false
	}
	return s.b[st:s.i], true
}

// maxExp bounds the decimal exponent of accepted values: 1e30 is fine,
// 1e999999999 would make later arithmetic allocate without limit.
const maxExp = 64

// maxNumberLen bounds the text of one value so parsing stays cheap.
const maxNumberLen = 100

// parseNumber reads a meter value from raw JSON: a number, or a string
// holding a JSON number. It never goes through float64.
func parseNumber(raw []byte) (decimal.Decimal, bool) {
	if len(raw) > 0 && raw[0] == '"' {
		if len(raw) < 2 {
			return decimal.Decimal{}, false
		}
		raw = raw[1 : len(raw)-1]
	}
	if len(raw) == 0 || len(raw) > maxNumberLen {
		return decimal.Decimal{}, false
	}
	// Fast path: small integers, the common case for usage quantities.
	if len(raw) <= 18 {
		neg := raw[0] == '-'
		digits := raw
		if neg {
			digits = raw[1:]
		}
		if len(digits) > 0 && (digits[0] != '0' || len(digits) == 1) {
			var n int64
			ok := true
			for _, c := range digits {
				if c < '0' || c > '9' {
					ok = false
					break
				}
				n = n*10 + int64(c-'0')
			}
			if ok {
				if neg {
					n = -n
				}
				return decimal.New(n, 0), true
			}
		}
	}
	s := scanner{b: raw}
	if s.number() != nil || s.i != len(raw) {
		return decimal.Decimal{}, false
	}
	d, err := decimal.NewFromString(string(raw))
	if err != nil || d.Exponent() > maxExp || d.Exponent() < -maxExp {
		return decimal.Decimal{}, false
	}
	return d, true
}

// appendText appends the group-key form of a raw JSON value: a string's
// decoded contents; numbers, booleans, objects and arrays as their JSON
// text. It returns false for null, which counts as missing.
func appendText(dst, raw []byte) ([]byte, bool) {
	if len(raw) == 0 {
		return dst, false
	}
	switch raw[0] {
	case 'n':
		return dst, false
	case '"':
		inner := raw[1 : len(raw)-1]
		for _, c := range inner {
			if c == '\\' {
				return append(dst, unescape(inner)...), true
			}
		}
		return append(dst, inner...), true
	default:
		return append(dst, raw...), true
	}
}
