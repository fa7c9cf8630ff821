package httpapi

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
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
	if p, ok := err.(*Problem); ok {
		return p
	}
	if e, ok := abacus.AsError(err); ok {
		p := newProblem(e.Kind.Status(), e.Code, e.Message)
		p.Errors = e.Fields
		p.retryAfter = e.RetryAfter
		p.RequestID = RequestID(ctx)
		return p
	}
	if ctx.Err() != nil && (err == context.Canceled || strings.Contains(err.Error(), "context canceled")) {
		p := newProblem(499, "client_closed", "the client closed the request")
		p.Title = "Client Closed Request"
		return p
	}
	log.ErrorContext(ctx, "internal error", "err", err)
	p := newProblem(http.StatusInternalServerError, "internal", "an internal error occurred; it has been logged with this request id")
	p.RequestID = RequestID(ctx)
	return p
}

// WriteProblem writes p as the response.
func WriteProblem(w http.ResponseWriter, r *http.Request, p *Problem) {
	if p.RequestID == "" {
		p.RequestID = RequestID(r.Context())
	}
	w.Header().Set("Content-Type", "application/problem+json")
	if p.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(p.retryAfter))
	}
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

// WriteOpError writes err as a problem exactly as a Register route
// answers it (encoded by the huma format, so without HTML escaping), for
// raw routes added with HandleOp.
func WriteOpError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	p := ProblemFrom(r.Context(), log, err)
	w.Header().Set("Content-Type", "application/problem+json")
	if p.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(p.retryAfter))
	}
	w.WriteHeader(p.Status)
	_ = jsonFormat.Marshal(w, p)
}

// WriteError writes err as a problem.
func WriteError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	WriteProblem(w, r, ProblemFrom(r.Context(), log, err))
}

func init() {
	// huma's own errors (request validation, unparsable bodies, content
	// negotiation) become Problems too, so every error has one shape.
	huma.NewError = func(status int, msg string, errs ...error) huma.StatusError {
		code := "invalid_request"
		switch {
		case status == http.StatusUnprocessableEntity || status == http.StatusBadRequest:
			status = http.StatusBadRequest // bad input is a 400 everywhere in Abacus
		case status == http.StatusRequestEntityTooLarge:
			code = "body_too_large"
		case status == http.StatusUnsupportedMediaType:
			code = "unsupported_media_type"
			msg = "send the body as JSON with Content-Type: application/json"
			errs = nil
		case status == http.StatusNotAcceptable:
			code = "not_acceptable"
		case status >= 500:
			code = "internal"
		default:
			code = strings.ReplaceAll(strings.ToLower(http.StatusText(status)), " ", "_")
		}
		p := newProblem(status, code, msg)
		for _, e := range errs {
			if e == nil {
				continue
			}
			fe := abacus.FieldError{Message: e.Error()}
			if d, ok := e.(huma.ErrorDetailer); ok {
				det := d.ErrorDetail()
				fe.Field = strings.TrimPrefix(strings.TrimPrefix(det.Location, "body."), "body")
				fe.Message = det.Message
				if det.Value != nil {
					if b, err := json.Marshal(det.Value); err == nil && len(b) < 200 {
						fe.Message += " (got " + string(b) + ")"
					}
				}
			}
			p.Errors = append(p.Errors, fe)
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
}
