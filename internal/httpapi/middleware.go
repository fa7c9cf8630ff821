package httpapi

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/abacusbilling/abacus"
)

// Handler returns the server with its middleware, outermost first:
// observe (request id, recover, log, metrics; identify reads the
// credentials) → CORS → body limit → authenticate (refuses bad
// credentials) → idempotency → routes.
func (s *Server) Handler() http.Handler {
	var h http.Handler = http.HandlerFunc(s.route)
	h = s.idem.wrap(h)
	h = s.authenticate(h)
	h = s.limitBody(h)
	h = s.cors(h)
	return s.observe(h)
}

// route dispatches to the mux, which matches the route once per request
// (its catch-all answers unknown routes), and records the matched pattern
// for the metrics and the access log.
func (s *Server) route(w http.ResponseWriter, r *http.Request) {
	s.mux.ServeHTTP(w, r)
	if x := exchangeFrom(r.Context()); x != nil {
		x.pattern = r.Pattern // set by the mux on r
	}
}

// notFound is the mux's catch-all: unknown routes get problem+json
// instead of the mux's plain text, and a known path asked with another
// method a 405 listing the methods it has in Allow.
func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	if s.pages != nil && isPageNavigation(r) {
		s.pages.ServeHTTP(w, r)
		return
	}
	if allow := s.allowedMethods(r); len(allow) > 0 {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		WriteProblem(w, r, newProblem(http.StatusMethodNotAllowed, "method_not_allowed",
			fmt.Sprintf("%s does not take %s; use %s", r.URL.Path, r.Method, strings.Join(allow, ", "))))
		return
	}
	WriteProblem(w, r, newProblem(http.StatusNotFound, "route_not_found",
		fmt.Sprintf("no route for %s %s; see /docs for the API", r.Method, r.URL.Path)))
}

// isPageNavigation reports whether r is a browser asking for a page (GET or
// HEAD accepting text/html) at a path outside the API's namespaces, which
// always answer problem+json.
func isPageNavigation(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	for _, p := range []string{"/api/", "/oauth/", "/.well-known/"} {
		if strings.HasPrefix(r.URL.Path, p) {
			return false
		}
	}
	return strings.Contains(r.Header.Get("Accept"), "text/html")
}

// allowedMethods returns the methods whose routes match r's path. Only
// requests that matched no route pay for it.
func (s *Server) allowedMethods(r *http.Request) []string {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		if m == r.Method {
			continue
		}
		probe := &http.Request{Method: m, URL: r.URL, Host: r.Host, Header: http.Header{}}
		if _, pattern := s.mux.Handler(probe); pattern != "" && pattern != catchAll {
			allow = append(allow, m)
		}
	}
	return allow
}

// catchAll is the pattern of notFound; metrics label it "unmatched".
const catchAll = "/"

// exchange is what observe keeps about one request, in one allocation: the
// request id, the principal identify found (so the access log line
// names the tenant), the pattern the mux matched and the response
// recorder.
type exchange struct {
	id      string
	p       *abacus.Principal
	refuse  func(http.ResponseWriter, *http.Request) // bad credentials: answers the request
	pattern string
	rec     recorder
	idValue [1]string // backs the X-Request-Id header value
}

type exchangeKey struct{}

func exchangeFrom(ctx context.Context) *exchange {
	x, _ := ctx.Value(exchangeKey{}).(*exchange)
	return x
}

// RequestID returns the request id on ctx, or "".
func RequestID(ctx context.Context) string {
	if x := exchangeFrom(ctx); x != nil {
		return x.id
	}
	return ""
}

func newRequestID() string {
	const prefix = "req_"
	var b [12]byte
	_, _ = rand.Read(b[:])
	var out [len(prefix) + 2*len(b)]byte
	copy(out[:], prefix)
	hex.Encode(out[len(prefix):], b[:])
	return string(out[:])
}

// validRequestID accepts a caller's id only if it is short and plain, so a
// log line cannot be forged through it.
func validRequestID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
	// body, when set, receives a copy of what is written.
	body *bytes.Buffer
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	if r.body != nil {
		r.body.Write(b)
	}
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func (r *recorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (s *Server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		x := &exchange{id: r.Header.Get("X-Request-Id")}
		if !validRequestID(x.id) {
			x.id = newRequestID()
		}
		x.idValue[0] = x.id
		w.Header()["X-Request-Id"] = x.idValue[:]
		ctx := context.WithValue(r.Context(), exchangeKey{}, x)
		r = r.WithContext(s.identify(ctx, r, x))
		rec := &x.rec
		rec.ResponseWriter = w
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.ErrorContext(r.Context(), "panic serving request", "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				if rec.status == 0 {
					WriteProblem(rec, r, newProblem(http.StatusInternalServerError, "internal", "an internal error occurred; it has been logged with this request id"))
				}
			}
			s.record(r, x, time.Since(start))
		}()
		next.ServeHTTP(rec, r)
	})
}

// record counts the request in the metrics and writes the access log line.
func (s *Server) record(r *http.Request, x *exchange, elapsed time.Duration) {
	status := x.rec.status
	if status == 0 {
		status = http.StatusOK
	}
	route := x.pattern
	if route == "" {
		// Refused before routing (credentials, body size, CORS preflight)
		// or panicked: match now, so the label still names the route.
		_, route = s.mux.Handler(r)
	}
	if route == "" || route == catchAll {
		route = "unmatched"
	}
	m := s.metricsFor(route, r.Method, status)
	m.requests.Inc()
	m.latency.Observe(elapsed.Seconds())
	level := slog.LevelDebug
	switch {
	case status == http.StatusServiceUnavailable:
		// Back-pressure and draining are answered on purpose, with
		// Retry-After; under load there is one per refused request, so an
		// error line each would bury real errors.
		level = slog.LevelWarn
	case status >= 500:
		level = slog.LevelError
	case status >= 400:
		level = slog.LevelInfo
	}
	ctx := r.Context()
	if !s.log.Enabled(ctx, level) {
		return // the attributes below would be built for nothing
	}
	// request_id and tenant_id are added by ContextHandler.
	s.log.LogAttrs(ctx, level, "http request", slog.String("method", r.Method), slog.String("route", route),
		slog.Int("status", status), slog.Float64("duration_ms", float64(elapsed.Microseconds())/1000))
}

func (s *Server) cors(next http.Handler) http.Handler {
	if len(s.cfg.CORSOrigins) == 0 {
		return next
	}
	any := slices.Contains(s.cfg.CORSOrigins, "*")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin != "" && (any || slices.Contains(s.cfg.CORSOrigins, origin)) {
			h := w.Header()
			h.Set("Access-Control-Allow-Origin", origin)
			h.Add("Vary", "Origin")
			h.Set("Access-Control-Expose-Headers", "X-Request-Id, Retry-After, Idempotent-Replayed")
			if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
				h.Set("Access-Control-Allow-Methods", "GET, POST, PUT, PATCH, DELETE")
				h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Idempotency-Key, X-Request-Id, Abacus-Client-Id") // Abacus-Client-Id: end users' apps (enduser)
				h.Set("Access-Control-Max-Age", "600")
				w.WriteHeader(http.StatusNoContent)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > s.cfg.MaxBodyBytes {
			WriteProblem(w, r, newProblem(http.StatusRequestEntityTooLarge, "body_too_large",
				fmt.Sprintf("the request body is %d bytes; the limit is %d", r.ContentLength, s.cfg.MaxBodyBytes)))
			return
		}
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
		}
		next.ServeHTTP(w, r)
	})
}

// identify authenticates a bearer token, once per request and before the
// other middleware, so the request's context carrying both the exchange
// and the principal is made with one copy of the request. It returns ctx
// with the principal when the token is valid; a bad token is kept in x
// and refused by authenticate, in its place in the chain. A missing token
// is left to the route's scope check, so public routes work without one.
func (s *Server) identify(ctx context.Context, r *http.Request, x *exchange) context.Context {
	h := r.Header.Get("Authorization")
	if h == "" {
		return s.identifyCookie(ctx, r, x)
	}
	scheme, token, ok := strings.Cut(h, " ")
	if ok && strings.EqualFold(scheme, "Basic") {
		// HTTP Basic carries OAuth2 client credentials to POST
		// /oauth/token (RFC 6749 §2.3.1); that route reads it itself.
		// Everywhere else it authenticates nothing.
		return ctx
	}
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		x.refuse = func(w http.ResponseWriter, r *http.Request) {
			WriteProblem(w, r, newProblem(http.StatusUnauthorized, "invalid_authorization",
				"the Authorization header must be `Bearer <api key or access token>`"))
		}
		return ctx
	}
	if s.auth == nil {
		x.refuse = func(w http.ResponseWriter, r *http.Request) {
			WriteProblem(w, r, newProblem(http.StatusUnauthorized, "invalid_credentials", "no authenticator is configured"))
		}
		return ctx
	}
	p, err := s.auth(ctx, strings.TrimSpace(token))
	if err != nil {
		x.refuse = func(w http.ResponseWriter, r *http.Request) { WriteError(w, r, s.log, err) }
		return ctx
	}
	x.p = p // lets the access log line name the tenant
	return abacus.WithPrincipal(ctx, p)
}

// identifyCookie authenticates a browser session: without an
// Authorization header, the access token may come in AccessCookie (set by
// identity's browser sign-in). A cookie is sent by the browser whoever
// made the page, so a state-changing request carrying a session cookie
// must prove it comes from the dashboard (CSRFProblem).
func (s *Server) identifyCookie(ctx context.Context, r *http.Request, x *exchange) context.Context {
	if p := CSRFProblem(r); p != nil {
		x.refuse = func(w http.ResponseWriter, r *http.Request) { WriteProblem(w, r, p) }
		return ctx
	}
	c, err := r.Cookie(AccessCookie)
	if err != nil || c.Value == "" || s.auth == nil {
		return ctx
	}
	p, err := s.auth(ctx, c.Value)
	if err != nil {
		x.refuse = func(w http.ResponseWriter, r *http.Request) { WriteError(w, r, s.log, err) }
		return ctx
	}
	x.p = p
	return abacus.WithPrincipal(ctx, p)
}

// Cookies of a browser session (see identity's /api/v1/auth/session).
const (
	AccessCookie  = "abacus_access"  // the access token; HttpOnly
	RefreshCookie = "abacus_refresh" // the refresh token; HttpOnly, sent to /api/v1/auth/session only
	CSRFCookie    = "abacus_csrf"    // readable by the dashboard, which echoes it in CSRFHeader
	CSRFHeader    = "X-CSRF-Token"
	// PortalCookie is a customer portal session (internal/portal); HttpOnly,
	// sent to /api/v1/portal/ only, CSRF-checked like the others.
	PortalCookie = "abacus_portal"
)

// CSRFProblem returns a 403 csrf_failed problem for a state-changing
// request (not GET, HEAD or OPTIONS) that carries a session cookie (staff
// or customer portal) and no
// Authorization header, unless it repeats the CSRFCookie value in
// CSRFHeader (double submit: another site can make the browser send the
// cookies but can neither read them nor set the header) and, when the
// browser names the page's Origin, that origin is this host. Nil otherwise.
func CSRFProblem(r *http.Request) *Problem {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return nil
	}
	if r.Header.Get("Authorization") != "" || (!hasCookie(r, AccessCookie) && !hasCookie(r, RefreshCookie) && !hasCookie(r, PortalCookie)) {
		return nil
	}
	c, err := r.Cookie(CSRFCookie)
	sent := r.Header.Get(CSRFHeader)
	if err != nil || len(c.Value) < 16 || subtle.ConstantTimeCompare([]byte(c.Value), []byte(sent)) != 1 {
		return newProblem(http.StatusForbidden, "csrf_failed",
			"this request carries the session cookie but not its "+CSRFHeader+" header; reload the dashboard and try again")
	}
	if o := r.Header.Get("Origin"); o != "" {
		if u, err := url.Parse(o); err != nil || u.Host != r.Host {
			return newProblem(http.StatusForbidden, "csrf_failed", "this request comes from another site ("+o+"); it was refused")
		}
	}
	return nil
}

func hasCookie(r *http.Request, name string) bool {
	c, err := r.Cookie(name)
	return err == nil && c.Value != ""
}

// authenticate refuses a request whose credentials identify found bad.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if x := exchangeFrom(r.Context()); x != nil && x.refuse != nil {
			x.refuse(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func jsonEncode(w io.Writer, v any) error {
	return json.NewEncoder(w).Encode(v)
}

// ReadBody reads a request body, turning the body limit into a problem.
func ReadBody(r *http.Request) ([]byte, error) { return readBody(r.Body) }

func readBody(body io.Reader) ([]byte, error) {
	b, err := io.ReadAll(body)
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return nil, abacus.Errorf(abacus.KindTooLarge, "body_too_large",
			"the request body is over the limit of %d bytes", tooLarge.Limit).WithField("body", "too large")
	}
	if err != nil {
		return nil, abacus.Invalid("unreadable_body", "the request body could not be read: %v", err).WithField("body", "unreadable")
	}
	return b, nil
}
