package metering

import (
	"encoding/json"
	"fmt"
	"unicode/utf16"
	"unicode/utf8"
)

// maxDepth bounds nesting inside event data so a hostile body cannot make
// the validator recurse without limit.
const maxDepth = 128

// syntaxError is a JSON syntax problem at a byte offset of the input.
type syntaxError struct {
	off int
	msg string
}

func (e *syntaxError) Error() string { return fmt.Sprintf("at byte %d: %s", e.off, e.msg) }

// scanner walks JSON bytes. It validates as it goes and never allocates on
// the success path except when a string holds escapes (or an object has
// more than inlineKeys keys).
type scanner struct {
	b []byte
	i int
	// dup is the path, relative to the value being skipped, of the first
	// key skipValue found twice in one object ("" when none): a decoder
	// that kept either value would count something the sender may not
	// have meant. Keys are compared as sent, escapes included.
	dup string
}

// inlineKeys is how many keys of one object are compared pairwise before
// a map takes over, so a huge object cannot make the check quadratic.
const inlineKeys = 16

// keySet holds the keys of one object as spans of the scanner's bytes.
type keySet struct {
	inline [inlineKeys][2]int
	n      int
	big    map[string]struct{}
}

// add records b[start:end] and reports whether it was there already.
func (k *keySet) add(b []byte, start, end int) bool {
	key := b[start:end]
	if k.big != nil {
		if _, ok := k.big[string(key)]; ok {
			return true
		}
		k.big[string(key)] = struct{}{}
		return false
	}
	for _, sp := range k.inline[:k.n] {
		if string(b[sp[0]:sp[1]]) == string(key) {
			return true
		}
	}
	if k.n < inlineKeys {
		k.inline[k.n] = [2]int{start, end}
		k.n++
		return false
	}
	k.big = make(map[string]struct{}, 2*inlineKeys)
	for _, sp := range k.inline {
		k.big[string(b[sp[0]:sp[1]])] = struct{}{}
	}
	k.big[string(key)] = struct{}{}
	return false
}

// joinPath puts outer (a key or "[i]") before a path inside its value.
func joinPath(outer, inner string) string {
	if inner[0] == '[' {
		return outer + inner
	}
	return outer + "." + inner
}
func (s *scanner) errf(format string, args ...any) *syntaxError {
	return &syntaxError{off: s.i, msg: fmt.Sprintf(format, args...)}
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// peek returns the next non-space byte without consuming it, or 0 at EOF.
func (s *scanner) peek() byte {
	s.ws()
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

func describe(c byte) string {
	switch {
	case c == 0:
		return "end of input"
	case c >= 0x20 && c < 0x7f:
		return fmt.Sprintf("%q", rune(c))
	default:
		return fmt.Sprintf("byte 0x%02x", c)
	}
}

// kindOf names the JSON type starting with c, for error messages.
func kindOf(c byte) string {
	switch c {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	default:
		return "number"
	}
}

// stringSpan consumes a JSON string and returns the byte span of its
// contents (without quotes) and whether it holds escapes.
func (s *scanner) stringSpan() (start, end int, escaped bool, err *syntaxError) {
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return 0, 0, false, s.errf("expected a string, found %s", describe(s.at()))
	}
	s.i++
	start = s.i
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			end = s.i
			s.i++
			return start, end, escaped, nil
		case c == '\\':
			escaped = true
			if s.i+1 >= len(s.b) {
				s.i++
				return 0, 0, false, s.errf("unterminated escape in string")
			}
			switch s.b[s.i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i += 2
			case 'u':
				if s.i+6 > len(s.b) || !isHex4(s.b[s.i+2:s.i+6]) {
					return 0, 0, false, s.errf(`invalid \u escape in string`)
				}
				s.i += 6
			default:
				return 0, 0, false, s.errf("invalid escape %s in string", describe(s.b[s.i+1]))
			}
		case c < 0x20:
			return 0, 0, false, s.errf("control character %s in string; escape it", describe(c))
		default:
			s.i++
		}
	}
	return 0, 0, false, s.errf("unterminated string")
}

func (s *scanner) at() byte {
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

func isHex4(b []byte) bool {
	for _, c := range b[:4] {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

func hexVal(b []byte) rune {
	var r rune
	for _, c := range b[:4] {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		default:
			r |= rune(c - 'A' + 10)
		}
	}
	return r
}

// unescape decodes the contents of a JSON string that stringSpan accepted.
// Lone surrogates become U+FFFD, as encoding/json does.
func unescape(raw []byte) string {
	out := make([]byte, 0, len(raw))
	for i := 0; i < len(raw); {
		c := raw[i]
		if c != '\\' {
			out = append(out, c)
			i++
			continue
		}
		switch raw[i+1] {
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r := hexVal(raw[i+2:])
			i += 6
			if utf16.IsSurrogate(r) {
				r2 := rune(-1)
				if i+6 <= len(raw) && raw[i] == '\\' && raw[i+1] == 'u' {
					r2 = hexVal(raw[i+2:])
				}
				if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
					i += 6
					r = d
				} else {
					r = utf8.RuneError
				}
			}
			out = utf8.AppendRune(out, r)
			continue
		default: // '"', '\\', '/'
			out = append(out, raw[i+1])
		}
		i += 2
	}
	return string(out)
}

// skipValue consumes and validates one JSON value of any type.
func (s *scanner) skipValue(depth int) *syntaxError {
	switch c := s.peek(); c {
	case '{':
		if depth >= maxDepth {
			return s.errf("nesting deeper than %d levels", maxDepth)
		}
		s.i++
		if s.peek() == '}' {
			s.i++
			return nil
		}
		var keys keySet
		for {
			s.ws()
			ks, ke, _, err := s.stringSpan()
			if err != nil {
				return err
			}
			if keys.add(s.b, ks, ke) && s.dup == "" {
				s.dup = string(s.b[ks:ke])
			}
			if s.peek() != ':' {
				return s.errf("expected ':' after object key, found %s", describe(s.at()))
			}
			s.i++
			had := s.dup != ""
			if err := s.skipValue(depth + 1); err != nil {
				return err
			}
			if !had && s.dup != "" {
				s.dup = joinPath(string(s.b[ks:ke]), s.dup)
			}
			switch s.peek() {
			case ',':
				s.i++
			case '}':
				s.i++
				return nil
			default:
				return s.errf("expected ',' or '}' after object member, found %s", describe(s.at()))
			}
		}
	case '[':
		if depth >= maxDepth {
			return s.errf("nesting deeper than %d levels", maxDepth)
		}
		s.i++
		if s.peek() == ']' {
			s.i++
			return nil
		}
		for n := 0; ; n++ {
			had := s.dup != ""
			if err := s.skipValue(depth + 1); err != nil {
				return err
			}
			if !had && s.dup != "" {
				s.dup = joinPath("["+itoa(n)+"]", s.dup)
			}
			switch s.peek() {
			case ',':
				s.i++
			case ']':
				s.i++
				return nil
			default:
				return s.errf("expected ',' or ']' after array element, found %s", describe(s.at()))
			}
		}
	case '"':
		_, _, _, err := s.stringSpan()
		return err
	case 't':
		return s.literal("true")
	case 'f':
		return s.literal("false")
	case 'n':
		return s.literal("null")
	default:
		if c == '-' || c >= '0' && c <= '9' {
			return s.number()
		}
		return s.errf("expected a JSON value, found %s", describe(c))
	}
}

func (s *scanner) literal(lit string) *syntaxError {
	if len(s.b)-s.i >= len(lit) && string(s.b[s.i:s.i+len(lit)]) == lit {
		s.i += len(lit)
		return nil
	}
	return s.errf("invalid literal; expected %s", lit)
}

// number consumes a JSON number per RFC 8259.
func (s *scanner) number() *syntaxError {
	b, i := s.b, s.i
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	default:
		s.i = i
		return s.errf("invalid number")
	}
	if i < len(b) && b[i] == '.' {
		i++
		d := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == d {
			s.i = i
			return s.errf("invalid number: digits expected after '.'")
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		d := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == d {
			s.i = i
			return s.errf("invalid number: digits expected in exponent")
		}
	}
	s.i = i
	return nil
}

// value consumes one JSON value and returns it as encoding/json would
// decode it into an any with UseNumber: map[string]any, []any, string,
// json.Number, bool or nil. Duplicate object keys keep the last value.
func (s *scanner) value(depth int) (any, *syntaxError) {
	switch c := s.peek(); c {
	case '{':
		if depth >= maxDepth {
			return nil, s.errf("nesting deeper than %d levels", maxDepth)
		}
		s.i++
		m := map[string]any{}
		if s.peek() == '}' {
			s.i++
			return m, nil
		}
		for {
			s.ws()
			ks, ke, esc, err := s.stringSpan()
			if err != nil {
				return nil, err
			}
			key := string(s.b[ks:ke])
			if esc {
				key = unescape(s.b[ks:ke])
			}
			if s.peek() != ':' {
				return nil, s.errf("expected ':' after object key, found %s", describe(s.at()))
			}
			s.i++
			v, err := s.value(depth + 1)
			if err != nil {
				return nil, err
			}
			m[key] = v
			switch s.peek() {
			case ',':
				s.i++
			case '}':
				s.i++
				return m, nil
			default:
				return nil, s.errf("expected ',' or '}' after object member, found %s", describe(s.at()))
			}
		}
	case '[':
		if depth >= maxDepth {
			return nil, s.errf("nesting deeper than %d levels", maxDepth)
		}
		s.i++
		a := []any{}
		if s.peek() == ']' {
			s.i++
			return a, nil
		}
		for {
			v, err := s.value(depth + 1)
			if err != nil {
				return nil, err
			}
			a = append(a, v)
			switch s.peek() {
			case ',':
				s.i++
			case ']':
				s.i++
				return a, nil
			default:
				return nil, s.errf("expected ',' or ']' after array element, found %s", describe(s.at()))
			}
		}
	case '"':
		vs, ve, esc, err := s.stringSpan()
		if err != nil {
			return nil, err
		}
		if esc {
			return unescape(s.b[vs:ve]), nil
		}
		return string(s.b[vs:ve]), nil
	case 't':
		return true, s.literal("true")
	case 'f':
		return false, s.literal("false")
	case 'n':
		return nil, s.literal("null")
	default:
		start := s.i
		if err := s.number(); err != nil {
			return nil, err
		}
		return json.Number(s.b[start:s.i]), nil
	}
}
