package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/danielgtaylor/huma/v2"

	"github.com/abacusbilling/abacus"
)

// Problem is an RFC 9457 problem details body. Code is stable and
// machine-readable; Detail tells the caller what to change.
type Problem struct {
	Type      string              `json:"type"`
	Title     string              `json:"title"`
	Status    int                 `json:"status"`
	Detail    string              `json:"detail,omitempty"`
	Code      string              `json:"code"`
	RequestID string              `json:"request_id,omitempty"`
	Errors    []abacus.FieldError `json:"errors,omitempty"`

	retryAfter int
}

func (p *Problem) Error() string  { return p.Code + ": " + p.Detail }
func (p *Problem) GetStatus() int { return p.Status }

// ContentType makes huma send application/problem+json.
func (p *Problem) ContentType(string) string { return "application/problem+json" }

// GetHeaders adds Retry-After for rate-limited and unavailable answers.
func (p *Problem) GetHeaders() http.Header {
	h := http.Header{}
	if p.retryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(p.retryAfter))
	}
	return h
}

// ProblemTypeBase prefixes the code to form the problem type URI.
const ProblemTypeBase = "https://abacus.dev/problems/"

func newProblem(status int, code, detail string) *Problem {
	return &Problem{Type: ProblemTypeBase + code, Title: http.StatusText(status), Status: status, Code: code, Detail: detail}
}

// ProblemFrom maps any error to a Problem: *abacus.Error keeps its code
// and message; anything else is internal, logged here with the request id,
// and shown without details.
func ProblemFrom(ctx context.Context, log *slog.Logger, err error) *Problem {
	p := problemFrom(ctx, log, err)
	p.finish(ctx)
	return p
}

// statusClientClosed answers a request whose context ended before its
// handler did (nginx's 499 Client Closed Request).
const statusClientClosed = 499

func problemFrom(ctx context.Context, log *slog.Logger, err error) *Problem {
	if p, ok := err.(*Problem); ok {
		return p
	}
	if e, ok := abacus.AsError(err); ok {
		p := newProblem(e.Kind.Status(), e.Code, e.Message)
		p.Errors = slices.Clone(e.Fields) // finish fills in fields; the error may be shared
		p.retryAfter = e.RetryAfter
		return p
	}
	if clientClosed(ctx, err) {
		p := newProblem(statusClientClosed, "client_closed", "the client closed the request")
		p.Title = "Client Closed Request"
		return p
	}
	log.ErrorContext(ctx, "internal error", "err", err)
	return newProblem(http.StatusInternalServerError, "internal", "an internal error occurred; it has been logged with this request id")
}

// clientClosed reports whether err is the request's own cancellation:
// the request's context was cancelled without a cause of its own (what
// net/http does when the client goes away), and err is, or wraps, that
// cancellation. A deadline or a cause set by the server is the server's
// doing, and an error that merely says "context canceled" may come from
// anywhere (another request, a remote service): those stay 5xx, logged.
func clientClosed(ctx context.Context, err error) bool {
	return ctx.Err() != nil && context.Cause(ctx) == context.Canceled && errors.Is(err, context.Canceled)
}

// finish completes p before it is written, wherever it was made: it
// carries the request id, and each field error names its field ("body"
// when the problem is the body as a whole).
func (p *Problem) finish(ctx context.Context) {
	if p.RequestID == "" {
		p.RequestID = RequestID(ctx)
	}
	for i := range p.Errors {
		if p.Errors[i].Field == "" {
			p.Errors[i].Field = "body"
		}
	}
}

// WriteProblem writes p as the response, encoded as a Register route
// answers it (the huma format, without HTML escaping). Every problem a
// raw handler or middleware answers goes through here.
func WriteProblem(w http.ResponseWriter, r *http.Request, p *Problem) {
	p.finish(r.Context())
	w.Header().Set("Content-Type", "application/problem+json")
	if p.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(p.retryAfter))
	}
	w.WriteHeader(p.Status)
	_ = jsonFormat.Marshal(w, p)
}

// WriteOpError writes err as a problem exactly as a Register route
// answers it, for raw routes added with HandleOp.
func WriteOpError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	WriteError(w, r, log, err)
}

// WriteError writes err as a problem.
func WriteError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	WriteProblem(w, r, ProblemFrom(r.Context(), log, err))
}

func init() {
	// huma's own errors (request validation, unparsable bodies, content
	// negotiation) become Problems too, so every error has one shape.
	huma.NewError = func(status int, msg string, errs ...error) huma.StatusError {
		return newHumaProblem(status, msg, errs...)
	}
	huma.NewErrorWithContext = func(ctx huma.Context, status int, msg string, errs ...error) huma.StatusError {
		p := newHumaProblem(status, msg, errs...)
		if ctx != nil {
			p.finish(ctx.Context())
		}
		return p
	}
}

func newHumaProblem(status int, msg string, errs ...error) *Problem {
	code := "invalid_request"
	switch {
	case status == http.StatusUnprocessableEntity || status == http.StatusBadRequest:
		status = http.StatusBadRequest // bad input is a 400 everywhere in Abacus
	case status == http.StatusRequestEntityTooLarge:
		code = "body_too_large"
	case status == http.StatusUnsupportedMediaType:
		code = "unsupported_media_type"
		msg = "send the body as JSON with Content-Type: application/json"
		errs = []error{&huma.ErrorDetail{Location: "header.Content-Type", Message: "unsupported media type"}}
	case status == http.StatusNotAcceptable:
		code = "not_acceptable"
	case status >= 500:
		code = "internal"
	default:
		code = strings.ReplaceAll(strings.ToLower(http.StatusText(status)), " ", "_")
	}
	p := newProblem(status, code, msg)
	for _, e := range errs {
		if e != nil {
			p.Errors = append(p.Errors, fieldError(e))
		}
	}
	if len(p.Errors) > 0 && (msg == "validation failed" || msg == "") {
		f := p.Errors[0]
		p.Detail = strings.TrimSpace(f.Field + ": " + f.Message)
		if len(p.Errors) > 1 {
			p.Detail += " (and " + strconv.Itoa(len(p.Errors)-1) + " more problems)"
		}
	}
	return p
}

// fieldError turns one of huma's errors into a field error named by its
// path: a body field bare (email, items[0].amount), another location with
// its prefix (query.limit, path.id), the body as a whole "body". The
// offending value is shown only when it is a short scalar of a field
// that is not secret: never a whole body or object, never a password.
func fieldError(e error) abacus.FieldError {
	d, ok := e.(huma.ErrorDetailer)
	if !ok {
		return abacus.FieldError{Field: "body", Message: e.Error()}
	}
	det := d.ErrorDetail()
	fe := abacus.FieldError{Field: strings.TrimPrefix(det.Location, "body."), Message: det.Message}
	if fe.Field == "" {
		fe.Field = "body"
	}
	// A missing property is reported at its object; name the property.
	if name, ok := strings.CutPrefix(det.Message, "expected required property "); ok {
		if name, ok = strings.CutSuffix(name, " to be present"); ok {
			fe.Field = strings.TrimPrefix(strings.TrimPrefix(fe.Field+"."+name, "body."), "body")
			fe.Message = "is required"
		}
	}
	if fe.Field != "body" && !secretField(fe.Field) {
		fe.Message += shownValue(det.Value)
	}
	return fe
}

// shownValue is " (got v)" for a short scalar v, else "".
func shownValue(v any) string {
	switch x := v.(type) {
	case string:
		if len(x) > 64 {
			return ""
		}
	case bool, float64, int, int64, json.Number:
	default:
		return ""
	}
	b, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	return " (got " + string(b) + ")"
}

// secretWords mark a field whose value must never be shown back.
var secretWords = []string{"password", "passphrase", "secret", "token", "key", "credential", "otp", "code", "authorization"}

// secretField reports whether a field path's last name looks secret.
func secretField(path string) bool {
	name := strings.ToLower(path[strings.LastIndexAny(path, ".]")+1:])
	for _, w := range secretWords {
		if strings.Contains(name, w) {
			return true
		}
	}
	return false
}
