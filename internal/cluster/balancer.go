package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/http/httputil"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Route sends the requests whose path starts with Prefix to Backends
// (base URLs such as http://127.0.0.1:8081). The longest matching prefix
// wins; the empty prefix matches everything.
type Route struct {
	Prefix   string
	Backends []string
}

// BalancerConfig configures a Balancer. Zero fields take defaults.
type BalancerConfig struct {
	Routes []Route
	// CheckInterval is how often each backend's /readyz is polled; default 200ms.
	CheckInterval time.Duration
	// Attempts is how many backends one request may try; default 4.
	Attempts int
	// MaxRetryBody is the largest request body kept to be sent again; a
	// larger one is sent once. Default 16 MiB.
	MaxRetryBody int64
	// Wait is how long a request waits for a ready backend when none is;
	// default 5s.
	Wait time.Duration
}

func (c BalancerConfig) withDefaults() BalancerConfig {
	if c.CheckInterval <= 0 {
		c.CheckInterval = 200 * time.Millisecond
	}
	if c.Attempts <= 0 {
		c.Attempts = 4
	}
	if c.MaxRetryBody <= 0 {
		c.MaxRetryBody = 16 << 20
	}
	if c.Wait <= 0 {
		c.Wait = 5 * time.Second
	}
	return c
}

// Balancer is an HTTP load balancer for Abacus nodes: round robin over the
// backends whose /readyz answers 200, retrying a request on another
// backend when that is safe (see the package doc). WebSocket upgrades are
// proxied to one ready backend without retry.
type Balancer struct {
	cfg    BalancerConfig
	log    *slog.Logger
	routes []*pool
	client *http.Transport
	check  *http.Client

	retries, failures atomic.Int64
}

type pool struct {
	prefix   string
	backends []*backend
	next     atomic.Uint64
}

type backend struct {
	url   *url.URL
	ready atomic.Bool
	proxy *httputil.ReverseProxy
}

// NewBalancer returns a balancer; Run polls the backends, ServeHTTP serves.
func NewBalancer(cfg BalancerConfig, log *slog.Logger) (*Balancer, error) {
	cfg = cfg.withDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	b := &Balancer{cfg: cfg, log: log,
		client: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConnsPerHost: 256, IdleConnTimeout: 30 * time.Second, ResponseHeaderTimeout: 60 * time.Second,
		},
		check: &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}},
	}
	if len(cfg.Routes) == 0 {
		return nil, errors.New("balancer: no routes")
	}
	for _, r := range cfg.Routes {
		if len(r.Backends) == 0 {
			return nil, fmt.Errorf("balancer: route %q has no backends", r.Prefix)
		}
		p := &pool{prefix: r.Prefix}
		for _, s := range r.Backends {
			u, err := url.Parse(s)
			if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
				return nil, fmt.Errorf("balancer: backend %q of route %q is not an http:// URL", s, r.Prefix)
			}
			be := &backend{url: u, proxy: httputil.NewSingleHostReverseProxy(u)}
			p.backends = append(p.backends, be)
		}
		b.routes = append(b.routes, p)
	}
	sort.SliceStable(b.routes, func(i, j int) bool { return len(b.routes[i].prefix) > len(b.routes[j].prefix) })
	return b, nil
}

// Run polls every backend's /readyz until ctx ends.
func (b *Balancer) Run(ctx context.Context) error {
	t := time.NewTicker(b.cfg.CheckInterval)
	defer t.Stop()
	for {
		b.poll(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (b *Balancer) poll(ctx context.Context) {
	var wg sync.WaitGroup
	for _, p := range b.routes {
		for _, be := range p.backends {
			wg.Go(func() {
				ok := false
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, be.url.String()+"/readyz", nil)
				if resp, err := b.check.Do(req); err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					ok = resp.StatusCode == http.StatusOK
				}
				if was := be.ready.Swap(ok); was != ok {
					b.log.Info("backend readiness changed", "backend", be.url.Host, "ready", ok)
				}
			})
		}
	}
	wg.Wait()
}

// Ready reports the backends and whether each is ready, for status pages.
func (b *Balancer) Ready() map[string]bool {
	out := map[string]bool{}
	for _, p := range b.routes {
		for _, be := range p.backends {
			out[be.url.Host] = be.ready.Load()
		}
	}
	return out
}

// Retries is how many requests were sent again to another backend.
func (b *Balancer) Retries() int64 { return b.retries.Load() }

// Failures is how many requests the balancer answered 502 or 503 itself.
func (b *Balancer) Failures() int64 { return b.failures.Load() }

func (b *Balancer) route(path string) *pool {
	for _, p := range b.routes {
		if strings.HasPrefix(path, p.prefix) {
			return p
		}
	}
	return nil
}

// pick returns the next ready backend not in tried, waiting up to the
// configured time for one to become ready.
func (b *Balancer) pick(ctx context.Context, p *pool, tried map[*backend]bool) *backend {
	deadline := time.Now().Add(b.cfg.Wait)
	for {
		n := uint64(len(p.backends))
		start := p.next.Add(1)
		for i := uint64(0); i < n; i++ {
			be := p.backends[(start+i)%n]
			if be.ready.Load() && !tried[be] {
				return be
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// idempotent tells whether sending r twice has the effect of sending it
// once: the methods HTTP defines so, and a request carrying an
// Idempotency-Key (Abacus stores its first answer).
func idempotent(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodPut, http.MethodDelete:
		return true
	}
	return r.Header.Get("Idempotency-Key") != ""
}

// hopHeaders are not forwarded (RFC 9110 §7.6.1).
var hopHeaders = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

// ServeHTTP proxies r to a ready backend of its route.
func (b *Balancer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := b.route(r.URL.Path)
	if p == nil {
		http.Error(w, "no route", http.StatusNotFound)
		return
	}
	if strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		be := b.pick(r.Context(), p, nil)
		if be == nil {
			b.failures.Add(1)
			http.Error(w, "no ready backend", http.StatusServiceUnavailable)
			return
		}
		be.proxy.ServeHTTP(w, r)
		return
	}
	var body []byte
	replayable := true
	if r.Body != nil && r.Body != http.NoBody {
		var err error
		body, err = io.ReadAll(io.LimitReader(r.Body, b.cfg.MaxRetryBody+1))
		if err != nil {
			http.Error(w, "reading the request body: "+err.Error(), http.StatusBadRequest)
			return
		}
		replayable = int64(len(body)) <= b.cfg.MaxRetryBody
	}
	tried := map[*backend]bool{}
	for attempt := 0; attempt < b.cfg.Attempts; attempt++ {
		be := b.pick(r.Context(), p, tried)
		if be == nil {
			break
		}
		tried[be] = true
		var rd io.Reader = bytes.NewReader(body)
		if !replayable {
			rd = io.MultiReader(bytes.NewReader(body), r.Body)
		}
		out, err := http.NewRequestWithContext(r.Context(), r.Method, be.url.String()+r.URL.RequestURI(), rd)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		out.Header = r.Header.Clone()
		for _, h := range hopHeaders {
			out.Header.Del(h)
		}
		if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
			if prior := r.Header.Get("X-Forwarded-For"); prior != "" {
				host = prior + ", " + host
			}
			out.Header.Set("X-Forwarded-For", host)
		}
		out.ContentLength = int64(len(body))
		if !replayable {
			out.ContentLength = r.ContentLength
		}
		out.Host = r.Host
		var wrote atomic.Bool
		out = out.WithContext(httptrace.WithClientTrace(out.Context(), &httptrace.ClientTrace{
			WroteHeaders: func() { wrote.Store(true) },
		}))
		resp, err := b.client.RoundTrip(out)
		sent := wrote.Load()
		if err != nil {
			if r.Context().Err() != nil {
				return
			}
			// Not sent (refused, reset before writing): safe for any request.
			// Sent and failed: only an idempotent one may go again.
			if replayable && (!sent || idempotent(r)) {
				be.ready.Store(false) // until the next poll says otherwise
				b.retries.Add(1)
				b.log.Debug("retrying on another backend", "backend", be.url.Host, "method", r.Method, "path", r.URL.Path, "sent", sent, "err", err)
				continue
			}
			b.failures.Add(1)
			http.Error(w, "backend failed: "+err.Error(), http.StatusBadGateway)
			return
		}
		if resp.StatusCode == http.StatusServiceUnavailable && replayable && idempotent(r) && attempt+1 < b.cfg.Attempts &&
			resp.Header.Get("Retry-After") == "" {
			// A node shutting down or not ready yet; another may answer.
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			b.retries.Add(1)
			continue
		}
		copyResponse(w, resp)
		return
	}
	b.failures.Add(1)
	http.Error(w, "no ready backend", http.StatusServiceUnavailable)
}

func copyResponse(w http.ResponseWriter, resp *http.Response) {
	defer resp.Body.Close()
	for _, h := range hopHeaders {
		resp.Header.Del(h)
	}
	for k, vs := range resp.Header {
		w.Header()[k] = vs
	}
	w.WriteHeader(resp.StatusCode)
	if f, ok := w.(http.Flusher); ok && strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		buf := make([]byte, 4096)
		for {
			n, err := resp.Body.Read(buf)
			if n > 0 {
				_, _ = w.Write(buf[:n])
				f.Flush()
			}
			if err != nil {
				return
			}
		}
	}
	_, _ = io.Copy(w, resp.Body)
}
