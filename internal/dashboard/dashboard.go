// Package dashboard serves the staff web UI: a Vue single-page app built
// from web/dashboard into dist/ (committed, so `go run ./cmd/abacus serve`
// needs no Node.js step) and embedded in the binary.
//
//	GET /                 index.html
//	GET /assets/{file...} the hashed build outputs, cached for a year
//	GET /portal, /portal/… portal.html: the customer portal, a second
//	                      entry of the same build (internal/portal)
//	GET /customers, …     index.html for any other browser navigation
//	                      outside /api (httpapi.Server.SetPageFallback):
//	                      the app routes on the client
//
// Every answer carries a Content-Security-Policy that allows scripts and
// styles from the dashboard's own origin only (no inline script, no CDN),
// so the UI makes no request anywhere but to this server.
package dashboard

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/httpapi"
)

//go:embed all:dist
var dist embed.FS

// CSP is the Content-Security-Policy of every dashboard answer. Vue sets
// styles through the CSSOM, which style-src does not restrict, so no
// 'unsafe-inline' is needed for either scripts or styles. frame-src 'self'
// lets the invoice page show the API's PDF in the page; img-src https:
// lets the portal show the tenant's logo (an https URL of its settings).
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: https:; font-src 'self'; " +
	"connect-src 'self'; frame-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// file is one embedded file, ready to send: gzip is kept beside the plain
// bytes when it saves space.
type file struct {
	body, gz []byte
	ctype    string
	etag     string
}

// Handler answers the dashboard's routes from the embedded build.
type Handler struct {
	files  map[string]*file // "index.html", "assets/index-….js"
	index  *file
	portal *file // portal.html
}

// New reads the embedded build. It fails when the build has no index.html
// (dist was not built: run `npm ci && npm run build` in web/dashboard).
func New() (*Handler, error) {
	return newHandler(dist)
}

func newHandler(fsys fs.FS) (*Handler, error) {
	h := &Handler{files: map[string]*file{}}
	err := fs.WalkDir(fsys, "dist", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		h.files[strings.TrimPrefix(p, "dist/")] = newFile(p, b)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading the dashboard build: %w", err)
	}
	if h.index = h.files["index.html"]; h.index == nil {
		return nil, fmt.Errorf("the dashboard build has no index.html; run `npm ci && npm run build` in web/dashboard")
	}
	if h.portal = h.files["portal.html"]; h.portal == nil {
		return nil, fmt.Errorf("the dashboard build has no portal.html; run `npm ci && npm run build` in web/dashboard")
	}
	return h, nil
}

func newFile(name string, b []byte) *file {
	sum := sha256.Sum256(b)
	f := &file{body: b, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
	f.ctype = mime.TypeByExtension(path.Ext(name))
	if f.ctype == "" {
		f.ctype = "application/octet-stream"
	}
	if strings.HasPrefix(f.ctype, "text/") && !strings.Contains(f.ctype, "charset") {
		f.ctype += "; charset=utf-8"
	}
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	_, _ = zw.Write(b)
	_ = zw.Close()
	if buf.Len() < len(b)*9/10 {
		f.gz = buf.Bytes()
	}
	return f
}

// Register adds the dashboard's routes to s and makes it answer browser
// navigations that match no API route.
func Register(s *httpapi.Server, h *Handler) {
	s.Handle("GET /{$}", httpapi.ScopePublic, http.HandlerFunc(h.serveIndex))
	s.Handle("GET /assets/{file...}", httpapi.ScopePublic, http.HandlerFunc(h.serveAsset))
	s.SetPageFallback(http.HandlerFunc(h.serveIndex))
}

// serveIndex sends the app's page, or the portal's under /portal. It is
// never cached, so a new build is picked up at the next load; the assets
// it names are.
func (h *Handler) serveIndex(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-cache")
	if r.URL.Path == "/portal" || strings.HasPrefix(r.URL.Path, "/portal/") {
		h.send(w, r, h.portal)
		return
	}
	h.send(w, r, h.index)
}

func (h *Handler) serveAsset(w http.ResponseWriter, r *http.Request) {
	f := h.files["assets/"+r.PathValue("file")]
	if f == nil {
		httpapi.WriteError(w, r, nil, abacus.NotFound("asset", r.URL.Path))
		return
	}
	// Asset names carry a hash of their content: a name never changes meaning.
	w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	h.send(w, r, f)
}

func (h *Handler) send(w http.ResponseWriter, r *http.Request, f *file) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", CSP)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "same-origin")
	hd.Set("Content-Type", f.ctype)
	hd.Set("Vary", "Accept-Encoding")
	body, etag := f.body, f.etag
	if f.gz != nil && acceptsGzip(r) {
		hd.Set("Content-Encoding", "gzip")
		body, etag = f.gz, strings.TrimSuffix(f.etag, `"`)+`-gz"`
	}
	hd.Set("ETag", etag)
	if r.Header.Get("If-None-Match") == etag {
		hd.Del("Content-Encoding")
		w.WriteHeader(http.StatusNotModified)
		return
	}
	hd.Set("Content-Length", fmt.Sprint(len(body)))
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(body)
}

func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		enc, q, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(enc), "gzip") && strings.ReplaceAll(q, " ", "") != "q=0" {
			return true
		}
	}
	return false
}
