// Package client is a small Go client for the Abacus HTTP API, used by the
// command-line tools (events send, bench) and by tests that drive a running
// server from outside.
//
// Every call makes one attempt; retrying is the caller's choice, made with
// Retry (which re-sends the very same body, so event ids never change
// between attempts) and Retryable (which says whether an error is worth
// another attempt).
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Content types accepted by POST /api/v1/events.
const (
	ContentTypeEvent = "application/cloudevents+json"       // one event
	ContentTypeBatch = "application/cloudevents-batch+json" // an array of events
)

// Client calls one Abacus server with one API key. It is safe for
// concurrent use.
type Client struct {
	base string
	key  string
	hc   *http.Client
}

// New returns a client for the server at baseURL (e.g.
// "http://127.0.0.1:8080") authenticating with apiKey. A nil hc uses a
// client with a 30 s timeout per request.
func New(baseURL, apiKey string, hc *http.Client) *Client {
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	return &Client{base: strings.TrimRight(baseURL, "/"), key: apiKey, hc: hc}
}

// BaseURL returns the server's base URL.
func (c *Client) BaseURL() string { return c.base }

// FieldProblem is one entry of a problem's errors list.
type FieldProblem struct {
	Index   *int   `json:"index,omitempty"`
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Problem is an error answer from the server: an RFC 9457 problem+json
// body when the server sent one, else the status and the start of the
// body. RetryAfter is the Retry-After header (0 when absent).
type Problem struct {
	Status     int            `json:"status"`
	Type       string         `json:"type,omitempty"`
	Title      string         `json:"title,omitempty"`
	Detail     string         `json:"detail,omitempty"`
	Code       string         `json:"code,omitempty"`
	RequestID  string         `json:"request_id,omitempty"`
	Errors     []FieldProblem `json:"errors,omitempty"`
	RetryAfter time.Duration  `json:"-"`
	Body       string         `json:"-"` // set when the body was not problem+json
}

func (p *Problem) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "HTTP %d", p.Status)
	if p.Code != "" {
		fmt.Fprintf(&b, " %s", p.Code)
	}
	switch {
	case p.Detail != "":
		fmt.Fprintf(&b, ": %s", p.Detail)
	case p.Title != "":
		fmt.Fprintf(&b, ": %s", p.Title)
	case p.Body != "":
		fmt.Fprintf(&b, ": %s", p.Body)
	}
	for i, f := range p.Errors {
		if i == 10 {
			fmt.Fprintf(&b, "; … %d more", len(p.Errors)-i)
			break
		}
		if f.Index != nil {
			fmt.Fprintf(&b, "; [%d].%s: %s", *f.Index, f.Field, f.Message)
		} else {
			fmt.Fprintf(&b, "; %s: %s", f.Field, f.Message)
		}
	}
	return b.String()
}

// Retryable reports whether a request that failed with err may succeed if
// sent again unchanged: network errors and timeouts, 408, 425, 429 and
// every 5xx. Other answers (400, 401, 403, 404, 413…) need the request to
// change, and context cancellation ends retrying.
func Retryable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	var p *Problem
	if errors.As(err, &p) {
		return p.Status >= 500 || p.Status == http.StatusTooManyRequests ||
			p.Status == http.StatusRequestTimeout || p.Status == http.StatusTooEarly
	}
	// Transport errors: refused connections, resets, timeouts, EOF from a
	// killed server. The body was not acknowledged, so a resend is safe.
	return true
}

// RetryAfter returns the server's Retry-After hint carried by err, or 0.
func RetryAfter(err error) time.Duration {
	var p *Problem
	if errors.As(err, &p) {
		return p.RetryAfter
	}
	return 0
}

// Do sends one request with the API key and returns the response body of a
// 2xx answer. Any other status is returned as a *Problem; transport
// failures are returned wrapped.
func (c *Client) Do(ctx context.Context, method, path, contentType string, body []byte) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, fmt.Errorf("building %s %s: %w", method, path, err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Accept", "application/json")
	if c.key != "" {
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: reading the answer: %w", method, path, err)
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return out, nil
	}
	return nil, problemFrom(resp, out)
}

func problemFrom(resp *http.Response, body []byte) *Problem {
	p := &Problem{}
	if err := json.Unmarshal(body, p); err != nil || (p.Title == "" && p.Detail == "" && p.Code == "") {
		p = &Problem{Body: truncate(strings.TrimSpace(string(body)), 300)}
	}
	p.Status = resp.StatusCode
	if s := resp.Header.Get("Retry-After"); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n >= 0 {
			p.RetryAfter = time.Duration(n) * time.Second
		} else if t, err := http.ParseTime(s); err == nil {
			p.RetryAfter = max(time.Until(t), 0)
		}
	}
	return p
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// SendEvents posts an encoded body of events (one attempt). contentType is
// ContentTypeEvent for one event object or ContentTypeBatch for an array.
// A nil error means the server answered 2xx: the events are durable.
func (c *Client) SendEvents(ctx context.Context, contentType string, body []byte) error {
	_, err := c.Do(ctx, http.MethodPost, "/api/v1/events", contentType, body)
	return err
}

// Meter is a meter definition as the API reads and writes it (OpenMeter
// field names).
type Meter struct {
	ID            string            `json:"id,omitempty"`
	Slug          string            `json:"slug"`
	Name          string            `json:"name,omitempty"`
	Description   string            `json:"description,omitempty"`
	EventType     string            `json:"eventType"`
	Aggregation   string            `json:"aggregation"`
	ValueProperty string            `json:"valueProperty,omitempty"`
	GroupBy       map[string]string `json:"groupBy,omitempty"`
}

// CreateMeter creates m and returns it as stored. A slug already taken is
// a *Problem with status 409.
func (c *Client) CreateMeter(ctx context.Context, m Meter) (Meter, error) {
	body, err := json.Marshal(m)
	if err != nil {
		return Meter{}, fmt.Errorf("encoding meter %s: %w", m.Slug, err)
	}
	out, err := c.Do(ctx, http.MethodPost, "/api/v1/meters", "application/json", body)
	if err != nil {
		return Meter{}, fmt.Errorf("creating meter %s: %w", m.Slug, err)
	}
	var got Meter
	if err := json.Unmarshal(out, &got); err != nil {
		return Meter{}, fmt.Errorf("decoding created meter %s: %w", m.Slug, err)
	}
	return got, nil
}

// Query selects usage of one meter; zero fields are left out of the
// request (the server's defaults apply).
type Query struct {
	From          time.Time
	To            time.Time
	WindowSize    string // MINUTE, HOUR, DAY, MONTH; "" = one total
	TimeZone      string
	Subjects      []string
	GroupBy       []string
	FilterGroupBy map[string]string
}

// Values returns q as URL query parameters in OpenMeter's form.
func (q Query) Values() url.Values {
	v := url.Values{}
	if !q.From.IsZero() {
		v.Set("from", q.From.UTC().Format(time.RFC3339Nano))
	}
	if !q.To.IsZero() {
		v.Set("to", q.To.UTC().Format(time.RFC3339Nano))
	}
	if q.WindowSize != "" {
		v.Set("windowSize", q.WindowSize)
	}
	if q.TimeZone != "" {
		v.Set("windowTimeZone", q.TimeZone)
	}
	for _, s := range q.Subjects {
		v.Add("subject", s)
	}
	for _, g := range q.GroupBy {
		v.Add("groupBy", g)
	}
	for k, val := range q.FilterGroupBy {
		v.Set("filterGroupBy["+k+"]", val)
	}
	return v
}

// QueryRow is one window of a query answer. Value keeps the exact decimal
// text the server sent.
type QueryRow struct {
	Value       json.Number        `json:"value"`
	WindowStart time.Time          `json:"windowStart"`
	WindowEnd   time.Time          `json:"windowEnd"`
	Subject     *string            `json:"subject"`
	GroupBy     map[string]*string `json:"groupBy"`
}

// QueryResult is a meter query answer.
type QueryResult struct {
	From       *time.Time `json:"from"`
	To         *time.Time `json:"to"`
	WindowSize *string    `json:"windowSize"`
	Data       []QueryRow `json:"data"`
}

// QueryMeter runs q against the meter with id or slug idOrSlug. An unknown
// meter is a *Problem with status 404.
func (c *Client) QueryMeter(ctx context.Context, idOrSlug string, q Query) (QueryResult, error) {
	path := "/api/v1/meters/" + url.PathEscape(idOrSlug) + "/query"
	if v := q.Values(); len(v) > 0 {
		path += "?" + v.Encode()
	}
	out, err := c.Do(ctx, http.MethodGet, path, "", nil)
	if err != nil {
		return QueryResult{}, fmt.Errorf("querying meter %s: %w", idOrSlug, err)
	}
	d := json.NewDecoder(bytes.NewReader(out))
	d.UseNumber()
	var r QueryResult
	if err := d.Decode(&r); err != nil {
		return QueryResult{}, fmt.Errorf("decoding query answer of meter %s: %w", idOrSlug, err)
	}
	return r, nil
}

// Ready reports whether GET /readyz answers 200.
func (c *Client) Ready(ctx context.Context) error {
	_, err := c.Do(ctx, http.MethodGet, "/readyz", "", nil)
	return err
}

// IsLoopback reports whether rawURL's host is a loopback address
// (127.0.0.0/8, ::1 or "localhost").
func IsLoopback(rawURL string) bool {
	u, err := url.Parse(rawURL)
	if err != nil {
		return false
	}
	h := u.Hostname()
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}
