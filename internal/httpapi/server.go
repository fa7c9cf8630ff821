// Package httpapi is the HTTP edge of Abacus: a huma v2 API on net/http
// that generates OpenAPI 3.1 from Go types, with the middleware every route
// shares — request ids, logs and metrics, body limits, CORS, bearer
// authentication, scope checks, Idempotency-Key — and one error shape,
// RFC 9457 problem+json, for every failure including unknown routes.
//
// Modules add routes with Register (a huma operation plus the scope it
// needs), Handle (a raw handler for hot paths) or HandleOp (a raw handler
// documented as the huma operation it stands for). The scope on each route is
// the permission table: there is no route without one, public routes say
// so explicitly with ScopePublic.
package httpapi

import (
	"context"
	_ "embed"
	"fmt"
	"log/slog"
	"net/http"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
)

// ScopePublic marks a route that needs no credentials.
const ScopePublic abacus.Scope = ""

// Authenticator turns a bearer token into a principal. It returns an
// *abacus.Error of kind unauthorized for a bad, expired or revoked token.
type Authenticator func(ctx context.Context, token string) (*abacus.Principal, error)

// Authorizer refines the scope check for principals with narrower rights
// (e.g. a billing-only role): called after the principal was found to
// carry the route's scope, it returns nil to allow or an *abacus.Error
// (kind forbidden) to refuse. route.Path is the registered pattern.
type Authorizer func(ctx context.Context, p *abacus.Principal, route Route) error

// Config configures the server.
type Config struct {
	Version      string
	MaxBodyBytes int64
	CORSOrigins  []string
}

// Server is the HTTP API.
type Server struct {
	API huma.API

	cfg      Config
	mux      *http.ServeMux
	log      *slog.Logger
	registry *prometheus.Registry
	auth     Authenticator
	authz    Authorizer
	idem     *idempotency

	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec

	metricsMu sync.RWMutex
	metrics   map[metricKey]routeMetrics // children of requests and latency, looked up once

	mu     sync.Mutex
	checks map[string]func(context.Context) error
	routes map[string]abacus.Scope // "METHOD /pattern" → scope

	pages http.Handler // see SetPageFallback

	examples   map[reflect.Type]any // see Example; under mu
	opExamples map[string][2]any    // "METHOD /path" → request, response; see OperationExample; under mu
}

// New returns a server. d stores Idempotency-Key responses; auth may be
// set later with SetAuthenticator.
func New(cfg Config, d *db.DB, log *slog.Logger, reg *prometheus.Registry) *Server {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 16 << 20
	}
	mux := http.NewServeMux()
	hc := huma.DefaultConfig("Abacus API", cfg.Version)
	hc.Info.Description = intro
	hc.DocsPath = ""     // served by us, bundled, without a CDN
	hc.CreateHooks = nil // no $schema links injected into response bodies
	hc.Formats = map[string]huma.Format{"application/json": jsonFormat, "json": jsonFormat}
	hc.Components.SecuritySchemes = map[string]*huma.SecurityScheme{
		"bearer": {Type: "http", Scheme: "bearer", Description: "An API key (abk_…) or an access token (JWT)."},
	}
	s := &Server{
		cfg: cfg, mux: mux, log: log, registry: reg,
		checks:  map[string]func(context.Context) error{},
		routes:  map[string]abacus.Scope{},
		metrics: map[metricKey]routeMetrics{},
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "abacus_http_requests_total", Help: "HTTP requests by route, method and status.",
		}, []string{"route", "method", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "abacus_http_request_duration_seconds", Help: "HTTP request latency by route.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"route", "method"}),
	}
	if reg != nil {
		reg.MustRegister(s.requests, s.latency)
	}
	s.idem = &idempotency{db: d, log: log}
	s.examples, s.opExamples = map[reflect.Type]any{}, map[string][2]any{}
	s.API = humago.New(mux, hc)
	s.API.UseMiddleware(s.checkScope, s.checkInput)
	s.routes["GET /openapi.json"] = ScopePublic
	s.routes["GET /openapi.yaml"] = ScopePublic

	mux.HandleFunc(catchAll, s.notFound)
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.HandleFunc("GET /docs", serveDocs)
	mux.HandleFunc("GET /docs/redoc.standalone.js", serveRedoc)
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	for _, r := range []string{"GET /healthz", "GET /readyz", "GET /docs", "GET /docs/redoc.standalone.js", "GET /metrics"} {
		s.routes[r] = ScopePublic
	}
	return s
}

// SetAuthenticator sets how bearer tokens are checked.
func (s *Server) SetAuthenticator(a Authenticator) { s.auth = a }

// SetAuthorizer sets the check that runs after the scope check on every
// authenticated route.
func (s *Server) SetAuthorizer(a Authorizer) { s.authz = a }

// SetPageFallback sets the handler for browser navigations that match no
// route (GET or HEAD accepting text/html, outside /api/, /oauth/ and
// /.well-known/): a single-page app answers its own client-side routes
// with it. Every other unmatched request still gets 404 route_not_found.
// Call it before the server starts serving.
func (s *Server) SetPageFallback(h http.Handler) { s.pages = h }

// Logger returns the server's logger.
func (s *Server) Logger() *slog.Logger { return s.log }

// AddReadyCheck adds a check /readyz runs; a non-nil error makes it 503.
func (s *Server) AddReadyCheck(name string, check func(context.Context) error) {
	s.mu.Lock()
	s.checks[name] = check
	s.mu.Unlock()
}

// RemoveReadyCheck removes a check (when a role stops).
func (s *Server) RemoveReadyCheck(name string) {
	s.mu.Lock()
	delete(s.checks, name)
	s.mu.Unlock()
}

// Register adds a huma operation that needs scope (ScopePublic for none).
// Errors the handler returns become problem+json: *abacus.Error keeps its
// code, anything else is logged and shown as internal.
func Register[I, O any](s *Server, op huma.Operation, scope abacus.Scope, h func(context.Context, *I) (*O, error)) {
	if op.Metadata == nil {
		op.Metadata = map[string]any{}
	}
	op.Metadata["scope"] = scope
	if scope != ScopePublic {
		op.Security = []map[string][]string{{"bearer": {}}}
		op.Description = strings.TrimSpace(op.Description + "\n\nRequires scope `" + string(scope) + "`.")
		if op.Errors == nil {
			op.Errors = []int{http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden}
		}
	}
	mustNotHideParams(reflect.TypeFor[I](), op.OperationID)
	s.mu.Lock()
	s.routes[op.Method+" "+op.Path] = scope
	s.mu.Unlock()
	huma.Register(s.API, op, func(ctx context.Context, in *I) (*O, error) {
		out, err := h(ctx, in)
		if err != nil {
			return nil, ProblemFrom(ctx, s.log, err)
		}
		return out, nil
	})
	s.addExamples(op.Method, op.Path, bodyType(reflect.TypeFor[I]()), bodyType(reflect.TypeFor[O]()))
}

// mustNotHideParams panics when an input embeds a struct of an unexported
// type: huma skips such a field, so its query, path and header parameters
// vanish from the route (undocumented, and refused as unknown) with no
// error. The analytics series lost from, to and interval that way.
func mustNotHideParams(t reflect.Type, id string) {
	if t.Kind() != reflect.Struct {
		return
	}
	for f := range t.Fields() {
		if f.Anonymous && !f.IsExported() {
			panic(fmt.Sprintf("httpapi: the input of %s embeds %s, whose type is unexported: huma ignores its parameters; export the type", id, f.Type))
		}
	}
}

// Handle adds a raw handler for pattern ("POST /api/v1/events") that needs
// scope. For hot paths where huma's reflection-based decoding costs too
// much; document such a route with a huma operation that has Hidden set
// to false and the same path, or describe it in the API description.
func (s *Server) Handle(pattern string, scope abacus.Scope, h http.Handler) {
	s.mu.Lock()
	s.routes[pattern] = scope
	s.mu.Unlock()
	s.mux.Handle(pattern, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		method, path, _ := strings.Cut(pattern, " ")
		if p := s.scopeProblem(r.Context(), scope, method, path); p != nil {
			WriteProblem(w, r, p)
			return
		}
		h.ServeHTTP(w, r)
	}))
}

// HandleOp adds a raw handler h for op's method and path, documented in
// the OpenAPI document as Register would document op with output body O:
// scope, security, path parameters, the response schema and the error
// responses. For hot routes that must answer exactly what a huma operation
// would, without its reflection-based decoding and encoding per request.
func HandleOp[O any](s *Server, op huma.Operation, scope abacus.Scope, h http.Handler) {
	s.Handle(op.Method+" "+op.Path, scope, s.checkRawQuery(&op, h))
	if scope != ScopePublic {
		op.Security = []map[string][]string{{"bearer": {}}}
		op.Description = strings.TrimSpace(op.Description + "\n\nRequires scope `" + string(scope) + "`.")
		if op.Errors == nil {
			op.Errors = []int{http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden}
		}
	}
	for rest := op.Path; ; {
		_, after, ok := strings.Cut(rest, "{")
		if !ok {
			break
		}
		name, tail, _ := strings.Cut(after, "}")
		rest = tail
		if !slices.ContainsFunc(op.Parameters, func(p *huma.Param) bool { return p.In == "path" && p.Name == name }) {
			op.Parameters = append(op.Parameters, &huma.Param{Name: name, In: "path", Required: true, Schema: &huma.Schema{Type: "string"}})
		}
	}
	reg := s.API.OpenAPI().Components.Schemas
	status := op.DefaultStatus
	if status == 0 {
		status = http.StatusOK
	}
	if op.Responses == nil {
		op.Responses = map[string]*huma.Response{}
	}
	out := reflect.TypeFor[O]()
	op.Responses[strconv.Itoa(status)] = &huma.Response{Description: http.StatusText(status), Content: map[string]*huma.MediaType{
		"application/json": {Schema: reg.Schema(out, true, out.Name())}}}
	if len(op.Errors) > 0 { // as huma adds them
		if strings.Contains(op.Path, "{") {
			op.Errors = append(op.Errors, http.StatusUnprocessableEntity)
		}
		op.Errors = append(op.Errors, http.StatusInternalServerError)
	}
	problem := reg.Schema(reflect.TypeFor[Problem](), true, "Problem")
	for _, code := range op.Errors {
		op.Responses[strconv.Itoa(code)] = &huma.Response{Description: http.StatusText(code), Content: map[string]*huma.MediaType{
			"application/problem+json": {Schema: problem}}}
	}
	s.API.OpenAPI().AddOperation(&op)
	s.addExamples(op.Method, op.Path, nil, out)
}

// Routes returns every registered route ("METHOD /path") and its scope,
// sorted; the isolation and permission tests walk it.
func (s *Server) Routes() []Route {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Route, 0, len(s.routes))
	for k, v := range s.routes {
		method, path, _ := strings.Cut(k, " ")
		out = append(out, Route{Method: method, Path: path, Scope: v})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Path != out[j].Path {
			return out[i].Path < out[j].Path
		}
		return out[i].Method < out[j].Method
	})
	return out
}

// Route is one registered route.
type Route struct {
	Method string
	Path   string
	Scope  abacus.Scope
}

// checkScope is huma middleware enforcing the operation's scope.
func (s *Server) checkScope(ctx huma.Context, next func(huma.Context)) {
	op := ctx.Operation()
	scope, _ := op.Metadata["scope"].(abacus.Scope)
	if p := s.scopeProblem(ctx.Context(), scope, op.Method, op.Path); p != nil {
		s.writeHumaProblem(ctx, p)
		return
	}
	next(ctx)
}

func (s *Server) scopeProblem(ctx context.Context, scope abacus.Scope, method, path string) *Problem {
	if scope == ScopePublic {
		return nil
	}
	p := abacus.PrincipalFrom(ctx)
	if p == nil {
		return newProblem(http.StatusUnauthorized, "unauthenticated",
			"this route needs credentials: send Authorization: Bearer <api key or access token>")
	}
	if !p.Has(scope) {
		return newProblem(http.StatusForbidden, "insufficient_scope",
			"these credentials lack the "+string(scope)+" scope this route needs; use a key or token that has it")
	}
	if s.authz != nil {
		if err := s.authz(ctx, p, Route{Method: method, Path: path, Scope: scope}); err != nil {
			return ProblemFrom(ctx, s.log, err)
		}
	}
	return nil
}

type metricKey struct {
	route, method string
	status        int
}

type routeMetrics struct {
	requests prometheus.Counter
	latency  prometheus.Observer
}

// maxMetricKeys bounds the lookup cache: methods are whatever clients send.
const maxMetricKeys = 4096

// metricsFor returns the request counter and latency histogram of a route,
// method and status, from a cache: the vectors' own lookup hashes and
// validates the label values on every call.
func (s *Server) metricsFor(route, method string, status int) routeMetrics {
	k := metricKey{route, method, status}
	s.metricsMu.RLock()
	m, ok := s.metrics[k]
	s.metricsMu.RUnlock()
	if ok {
		return m
	}
	m = routeMetrics{
		requests: s.requests.WithLabelValues(route, method, strconv.Itoa(status)),
		latency:  s.latency.WithLabelValues(route, method),
	}
	s.metricsMu.Lock()
	if len(s.metrics) < maxMetricKeys {
		s.metrics[k] = m
	}
	s.metricsMu.Unlock()
	return m
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{"status":"ok"}` + "\n"))
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	s.mu.Lock()
	names := make([]string, 0, len(s.checks))
	for n := range s.checks {
		names = append(names, n)
	}
	checks := make(map[string]func(context.Context) error, len(s.checks))
	for n, c := range s.checks {
		checks[n] = c
	}
	s.mu.Unlock()
	sort.Strings(names)
	status := map[string]string{}
	var failed []abacus.FieldError
	for _, n := range names {
		if err := checks[n](ctx); err != nil {
			status[n] = err.Error()
			failed = append(failed, abacus.FieldError{Field: n, Message: err.Error()})
		} else {
			status[n] = "ok"
		}
	}
	if len(failed) > 0 {
		p := newProblem(http.StatusServiceUnavailable, "not_ready", "not ready: "+failed[0].Field+": "+failed[0].Message)
		p.Errors = failed
		WriteProblem(w, r, p)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = jsonEncode(w, map[string]any{"status": "ready", "checks": status})
}

//go:embed docs/redoc.standalone.js
var redocJS []byte

// intro opens the reference at /docs (Redoc renders the OpenAPI
// description as Markdown): what Abacus is, then getting started with
// curl, from the bootstrap API key to the first invoice.
//
//go:embed docs/intro.md
var intro string

const docsPage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Abacus API reference</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{margin:0}</style></head>
<body><redoc spec-url="/openapi.json"></redoc>
<script src="/docs/redoc.standalone.js"></script></body></html>
`

func serveDocs(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write([]byte(docsPage))
}

func serveRedoc(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/javascript")
	w.Header().Set("Cache-Control", "public, max-age=86400")
	_, _ = w.Write(redocJS)
}

// Body is an operation input or output whose whole HTTP body is T.
type Body[T any] struct{ Body T }

// Reply returns v as an operation's output body, or err when it is not nil:
// handlers end with `return httpapi.Reply(svc.Do(ctx, …))`.
func Reply[T any](v T, err error) (*Body[T], error) {
	if err != nil {
		return nil, err
	}
	return &Body[T]{Body: v}, nil
}
