// Package abacus holds the few types every module shares: the error type
// with its codes, the clock and ID sources, and the caller's identity on a
// request context. Domain packages live under internal/; this package
// depends on nothing but the standard library.
package abacus

import (
	"errors"
	"fmt"
	"net/http"
)

// Kind is the category of an error. Each kind maps to one HTTP status in
// one place (Status), so domain code never thinks in status codes.
type Kind string

const (
	KindInvalid       Kind = "invalid"       // 400: the request is malformed or fails validation
	KindUnauthorized  Kind = "unauthorized"  // 401: no or bad credentials
	KindForbidden     Kind = "forbidden"     // 403: authenticated, but not allowed
	KindNotFound      Kind = "not_found"     // 404: no such object (or not visible to this tenant)
	KindConflict      Kind = "conflict"      // 409: the object's state forbids the change
	KindTooLarge      Kind = "too_large"     // 413: body or batch above the documented limit
	KindGone          Kind = "gone"          // 410: it existed, and is no longer to be had (an expired link)
	KindUnprocessable Kind = "unprocessable" // 422: well-formed but semantically refused
	KindRateLimited   Kind = "rate_limited"  // 429: slow down; see RetryAfter
	KindUnavailable   Kind = "unavailable"   // 503: try again later; see RetryAfter
	KindInternal      Kind = "internal"      // 500: a bug or an unexpected fault; details are logged, not shown
)

// KindUnsupportedMediaType is a 415: the body's Content-Type is not one the
// route takes.
const KindUnsupportedMediaType Kind = "unsupported_media_type"

// Status returns the HTTP status for the kind.
func (k Kind) Status() int {
	switch k {
	case KindInvalid:
		return http.StatusBadRequest
	case KindUnauthorized:
		return http.StatusUnauthorized
	case KindForbidden:
		return http.StatusForbidden
	case KindNotFound:
		return http.StatusNotFound
	case KindConflict:
		return http.StatusConflict
	case KindTooLarge:
		return http.StatusRequestEntityTooLarge
	case KindGone:
		return http.StatusGone
	case KindUnsupportedMediaType:
		return http.StatusUnsupportedMediaType
	case KindUnprocessable:
		return http.StatusUnprocessableEntity
	case KindRateLimited:
		return http.StatusTooManyRequests
	case KindUnavailable:
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

// FieldError names one bad input field. Index is set for items of a batch.
type FieldError struct {
	Index   *int   `json:"index,omitempty"`
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Error is an error meant for the caller. Code is stable and specific
// (e.g. "meter_not_found"); Kind decides the HTTP status; Message tells the
// caller what to change. Errors that are not *Error are internal: they are
// logged at the edge and shown as a generic message.
type Error struct {
	Kind       Kind
	Code       string
	Message    string
	Fields     []FieldError
	RetryAfter int // seconds, for rate_limited and unavailable
}

func (e *Error) Error() string {
	if len(e.Fields) == 0 {
		return fmt.Sprintf("%s: %s", e.Code, e.Message)
	}
	return fmt.Sprintf("%s: %s (%d field errors)", e.Code, e.Message, len(e.Fields))
}

// Errorf returns an *Error of the given kind and code.
func Errorf(kind Kind, code, format string, args ...any) *Error {
	return &Error{Kind: kind, Code: code, Message: fmt.Sprintf(format, args...)}
}

// Invalid returns a KindInvalid error whose code is "invalid_<field-less code>".
func Invalid(code, format string, args ...any) *Error {
	return Errorf(KindInvalid, code, format, args...)
}

// NotFound returns a KindNotFound error, e.g. NotFound("meter", "mtr_1").
func NotFound(what, id string) *Error {
	return Errorf(KindNotFound, what+"_not_found", "%s %q does not exist", what, id)
}

// Conflict returns a KindConflict error.
func Conflict(code, format string, args ...any) *Error {
	return Errorf(KindConflict, code, format, args...)
}

// WithField adds a field error and returns e.
func (e *Error) WithField(field, message string) *Error {
	e.Fields = append(e.Fields, FieldError{Field: field, Message: message})
	return e
}

// AsError returns the *Error in err's chain, if any.
func AsError(err error) (*Error, bool) {
	var e *Error
	if errors.As(err, &e) {
		return e, true
	}
	return nil, false
}

// ErrorKind returns the kind of err: its *Error's kind, or KindInternal.
func ErrorKind(err error) Kind {
	if e, ok := AsError(err); ok {
		return e.Kind
	}
	return KindInternal
}

// Validation collects field errors so a caller sees every problem at once.
type Validation struct {
	Fields []FieldError
}

// Add records a problem with field.
func (v *Validation) Add(field, format string, args ...any) {
	v.Fields = append(v.Fields, FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
}

// AddAt records a problem with field of batch item index.
func (v *Validation) AddAt(index int, field, format string, args ...any) {
	i := index
	v.Fields = append(v.Fields, FieldError{Index: &i, Field: field, Message: fmt.Sprintf(format, args...)})
}

// Err returns nil when nothing was added, else a KindInvalid *Error with
// the given code whose message summarises the first problem.
func (v *Validation) Err(code string) error {
	if len(v.Fields) == 0 {
		return nil
	}
	f := v.Fields[0]
	msg := fmt.Sprintf("%s: %s", f.Field, f.Message)
	if len(v.Fields) > 1 {
		msg = fmt.Sprintf("%s (and %d more problems)", msg, len(v.Fields)-1)
	}
	return &Error{Kind: KindInvalid, Code: code, Message: msg, Fields: v.Fields}
}
