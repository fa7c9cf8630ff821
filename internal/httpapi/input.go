package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/danielgtaylor/huma/v2"

	"github.com/abacusbilling/abacus"
)

// MetaOwnCursor, set to true in an operation's Metadata, says the route
// decodes and checks its own cursor format; otherwise a cursor must be the
// id of the last item of a page, as every id-ordered list returns it.
const MetaOwnCursor = "own_cursor"

// idCursor is the shape of an id cursor: a type prefix and a ULID.
var idCursor = regexp.MustCompile(`^[a-z]{1,8}_[0-9a-z]{26}$`)

// checkInput is huma middleware refusing what the operation cannot mean to
// accept before its input is decoded: query parameters it does not
// declare, a cursor it never returned, a media type it does not take, a
// JSON body with invalid UTF-8 or a key given twice. Decoders that keep
// the last of two keys or replace bad bytes would otherwise store
// something the caller did not send.
func (s *Server) checkInput(ctx huma.Context, next func(huma.Context)) {
	op := ctx.Operation()
	u := ctx.URL()
	if err := checkQuery(op, u.Query()); err != nil {
		s.writeHumaError(ctx, err)
		return
	}
	if op.RequestBody == nil {
		next(ctx)
		return
	}
	ct, isJSONBody, err := acceptedMediaType(op, ctx.Header("Content-Type"))
	if err != nil {
		s.writeHumaError(ctx, err)
		return
	}
	body, err := readBody(ctx.BodyReader())
	if err != nil {
		s.writeHumaError(ctx, err)
		return
	}
	if isJSONBody {
		if err := CheckJSON(body); err != nil {
			s.writeHumaError(ctx, err)
			return
		}
	}
	next(&checkedContext{humaContext: ctx, body: body, contentType: ct})
}

// humaContext names the embedded context apart from its Context method.
type humaContext = huma.Context

// checkedContext hands huma the body checkInput already read, and the
// media type it decodes it as.
type checkedContext struct {
	humaContext
	body        []byte
	contentType string
}

func (c *checkedContext) BodyReader() io.Reader { return bytes.NewReader(c.body) }

// SetReadDeadline ignores the deadline huma sets before it reads the body
// (the operation's BodyReadTimeout, 5 s by default). checkInput has read
// the body already, under the server's ReadTimeout, so net/http is now
// reading the connection in the background to notice a client that goes
// away; a deadline on the connection would end that read after 5 s and
// net/http would cancel the request's context, and a handler still busy
// (a password hash on a loaded machine) would answer 499 client_closed to
// a client that was waiting for it.
func (c *checkedContext) SetReadDeadline(time.Time) error { return nil }

func (c *checkedContext) Header(name string) string {
	if http.CanonicalHeaderKey(name) == "Content-Type" && c.contentType != "" {
		return c.contentType
	}
	return c.humaContext.Header(name)
}

func (s *Server) writeHumaError(ctx huma.Context, err error) {
	s.writeHumaProblem(ctx, ProblemFrom(ctx.Context(), s.log, err))
}

// writeHumaProblem answers p from huma middleware, as WriteProblem does.
func (s *Server) writeHumaProblem(ctx huma.Context, p *Problem) {
	p.finish(ctx.Context())
	for k, v := range p.GetHeaders() {
		ctx.SetHeader(k, v[0])
	}
	ctx.SetHeader("Content-Type", "application/problem+json")
	ctx.SetStatus(p.Status)
	_ = jsonFormat.Marshal(ctx.BodyWriter(), p)
}

// checkRawQuery is checkQuery for a raw handler documented as op.
func (s *Server) checkRawQuery(op *huma.Operation, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.RawQuery != "" {
			if err := checkQuery(op, r.URL.Query()); err != nil {
				WriteError(w, r, s.log, err)
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}

// checkQuery refuses query parameters op does not declare, and a
// malformed cursor.
func checkQuery(op *huma.Operation, q map[string][]string) error {
	if len(q) == 0 {
		return nil
	}
	var unknown []string
	for name := range q {
		if !declaresQuery(op, name) {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		e := abacus.Invalid("unknown_query_parameter", "unknown query parameter %s; %s",
			strings.Join(unknown, ", "), knownQuery(op))
		for _, name := range unknown {
			e.WithField("query."+name, "is not a parameter of this route")
		}
		return e
	}
	if own, _ := op.Metadata[MetaOwnCursor].(bool); !own {
		if c := firstValue(q, "cursor"); c != "" && !idCursor.MatchString(c) {
			return abacus.Invalid("invalid_cursor", "cursor is not one this API returned; pass next_cursor of the previous page, or start again without it").
				WithField("query.cursor", "malformed")
		}
	}
	return nil
}

func firstValue(q map[string][]string, name string) string {
	if v := q[name]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func declaresQuery(op *huma.Operation, name string) bool {
	return slices.ContainsFunc(op.Parameters, func(p *huma.Param) bool {
		return p.In == "query" && (p.Name == name ||
			p.Style == "deepObject" && strings.HasPrefix(name, p.Name+"["))
	})
}

func knownQuery(op *huma.Operation) string {
	var names []string
	for _, p := range op.Parameters {
		if p.In == "query" {
			names = append(names, p.Name)
		}
	}
	if len(names) == 0 {
		return "this route takes none"
	}
	return "this route takes " + strings.Join(names, ", ")
}

// acceptedMediaType checks contentType against the media types op
// documents; where it documents JSON, application/json and any
// application/*+json are accepted too. It returns the media type huma
// should decode the body as ("" to keep the header) and whether the body
// is JSON. An absent Content-Type is taken as the operation's own.
func acceptedMediaType(op *huma.Operation, contentType string) (string, bool, error) {
	documented := make([]string, 0, len(op.RequestBody.Content))
	takesJSON, takesXML := false, false
	for ct := range op.RequestBody.Content {
		documented = append(documented, ct)
		takesJSON = takesJSON || isJSON(ct)
		takesXML = takesXML || isXML(ct)
	}
	sort.Strings(documented)
	if contentType == "" {
		return "", takesJSON, nil
	}
	mt, params, err := mime.ParseMediaType(contentType)
	if err == nil {
		if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") && !strings.EqualFold(cs, "utf8") {
			return "", false, unsupportedMediaType("charset %q is not accepted; send UTF-8", cs)
		}
		switch {
		case takesJSON && isJSON(mt):
			if _, ok := op.RequestBody.Content[mt]; ok {
				return "", true, nil
			}
			return "application/json", true, nil // one JSON decoder serves every +json type
		case slices.Contains(documented, mt), takesXML && isXML(mt): // XML's types name one format (RFC 7303)
			return "", false, nil
		}
	}
	return "", false, unsupportedMediaType("Content-Type %q is not accepted here; send %s", contentType, strings.Join(documented, " or "))
}

func unsupportedMediaType(format string, args ...any) error {
	return abacus.Errorf(abacus.KindUnsupportedMediaType, "unsupported_media_type", format, args...).
		WithField("header.Content-Type", "unsupported media type")
}

// isJSON reports whether a media type (without parameters) is JSON.
func isJSON(mt string) bool {
	mt = strings.ToLower(mt)
	return mt == "application/json" || strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json")
}

// isXML reports whether a media type (without parameters) is XML.
func isXML(mt string) bool {
	mt = strings.ToLower(mt)
	return mt == "application/xml" || mt == "text/xml" || strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+xml")
}

// CheckJSON refuses a JSON body holding invalid UTF-8 (invalid_utf8) or an
// object with the same key twice (duplicate_key), naming the field path
// where it is. Syntax errors are left to the decoder that follows.
func CheckJSON(body []byte) error {
	bad := -1
	if !utf8.Valid(body) {
		bad = firstInvalidUTF8(body)
	}
	path, dup, err := walkJSON(body, bad)
	switch {
	case bad >= 0:
		return abacus.Invalid("invalid_utf8", "the body is not valid UTF-8 (byte %d); send text as UTF-8", bad).
			WithField(path, "holds bytes that are not UTF-8")
	case err != nil:
		return nil // the decoder reports syntax errors with their position
	case dup:
		return abacus.Invalid("duplicate_key", "%s appears more than once in its object; send each key once", path).
			WithField(path, "appears more than once")
	}
	return nil
}

func firstInvalidUTF8(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n == 1 {
			return i
		}
		i += n
	}
	return -1
}

// frame is one open object or array of walkJSON.
type frame struct {
	object  bool
	keys    map[string]struct{}
	wantKey bool   // the object's next token is a key
	key     string // the object's current key
	index   int    // the array's next index
	path    string
}

// child returns the path of the frame's next value (f nil: the body).
func (f *frame) child() string {
	switch {
	case f == nil:
		return "body"
	case f.object:
		f.wantKey = true
		if f.path == "body" {
			return f.key
		}
		return f.path + "." + f.key
	}
	f.index++
	return f.path + "[" + strconv.Itoa(f.index-1) + "]"
}

// walkJSON walks body's tokens. With stop >= 0 it returns the path of the
// value holding byte stop; otherwise the path of the first duplicate key
// and dup true, or "" when every object's keys are distinct. Only
// management routes pay for it: the ingest decoder has its own checks.
func walkJSON(body []byte, stop int) (path string, dup bool, err error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	var stack []*frame
	past := func() bool { return stop >= 0 && int(dec.InputOffset()) > stop }
	for {
		tok, err := dec.Token()
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = nil
			}
			if top == nil {
				return "body", false, err
			}
			return top.path, false, err
		}
		if d, ok := tok.(json.Delim); ok && (d == '}' || d == ']') {
			stack = stack[:len(stack)-1]
			if past() {
				return top.path, false, nil
			}
			continue
		}
		if top != nil && top.wantKey {
			key, _ := tok.(string)
			top.wantKey, top.key = false, key
			if _, seen := top.keys[key]; seen {
				return top.child(), true, nil
			}
			top.keys[key] = struct{}{}
			if past() {
				return top.child(), false, nil
			}
			continue
		}
		path := top.child()
		if d, ok := tok.(json.Delim); ok {
			stack = append(stack, &frame{object: d == '{', wantKey: d == '{', keys: map[string]struct{}{}, path: path})
		}
		if past() {
			return path, false, nil
		}
	}
}

// CheckMediaType refuses a Content-Type op's request body does not take
// (415 unsupported_media_type), as Register's routes do; for raw routes
// added with HandleOp that read their own body.
func CheckMediaType(op *huma.Operation, contentType string) error {
	_, _, err := acceptedMediaType(op, contentType)
	return err
}
