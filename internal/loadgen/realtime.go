package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	gojson "github.com/goccy/go-json"

	"github.com/abacusbilling/abacus/internal/client"
)

// Realtime scenarios (RealtimeConfig.Scenario), the figures of issue 16.
const (
	// ScenarioIdle opens Conns connections, holds them and reports the
	// server's resident memory per connection.
	ScenarioIdle = "idle"
	// ScenarioDirect sends 1:1 messages at Rate over Conns connections
	// (Conns/2 private conversations), open loop. With two URLs each pair
	// straddles the two nodes: the cross-node figure.
	ScenarioDirect = "direct"
	// ScenarioGroup sends Messages messages to one group of GroupSize
	// members, all online.
	ScenarioGroup = "group"
	// ScenarioStorm opens Conns authenticated connections as fast as the
	// server takes them (tokens minted beforehand).
	ScenarioStorm = "storm"
)

// RealtimeConfig shapes a run of the realtime load generator against the
// contract of docs/realtime.md: tokens from POST /api/v1/realtime/tokens,
// conversations from POST /api/v1/conversations, and real WebSocket
// clients at GET /api/v1/realtime/ws?token=.
type RealtimeConfig struct {
	Scenario string
	// URLs are the base URLs of the realtime nodes (http://127.0.0.1:8080).
	// Connection i goes to URLs[i % len(URLs)].
	URLs   []string
	APIKey string
	Conns  int // idle, direct, storm: connections (users); default 1000
	// Direct: messages due per second across all pairs, over Duration,
	// the first Warmup not counted; Drain bounds the wait for deliveries
	// after the last is due.
	Rate                    float64
	Duration, Warmup, Drain time.Duration
	TextBytes               int // length of each message's text; default 32
	// Group: members (all online), messages sent by member 0, one per
	// Interval.
	GroupSize int
	Messages  int
	Interval  time.Duration
	// Idle: how long the connections stay open before the memory is read.
	Hold time.Duration
	// ConnectConcurrency bounds handshakes in flight (storm: the storm's
	// width); SetupConcurrency bounds API calls in flight.
	ConnectConcurrency int
	SetupConcurrency   int
	// Sources is how many loopback source addresses (127.0.0.1,
	// 127.0.0.2, …) connections are spread over; 0 = one per 25,000
	// connections. One address has ~28,000 ephemeral ports per server.
	Sources int
	// ServerPID is the server whose memory and CPU are read; 0 = the
	// process listening on URLs[0]'s port.
	ServerPID int
	Run       string        // prefix of the user ids; default bench-<time>
	TokenTTL  time.Duration // default 1 h
	Log       io.Writer     // progress lines; nil = none
}

// WithDefaults returns c with zero fields set to their defaults.
func (c RealtimeConfig) WithDefaults() RealtimeConfig {
	if c.Conns <= 0 {
		c.Conns = 1000
	}
	if c.Duration <= 0 {
		c.Duration = 20 * time.Second
	}
	if c.Drain <= 0 {
		c.Drain = 10 * time.Second
	}
	if c.TextBytes <= 0 {
		c.TextBytes = 32
	}
	if c.GroupSize <= 0 {
		c.GroupSize = 1000
	}
	if c.Messages <= 0 {
		c.Messages = 50
	}
	if c.Interval <= 0 {
		c.Interval = 100 * time.Millisecond
	}
	if c.Hold <= 0 {
		c.Hold = 10 * time.Second
	}
	if c.ConnectConcurrency <= 0 {
		c.ConnectConcurrency = 64
	}
	if c.SetupConcurrency <= 0 {
		c.SetupConcurrency = 32
	}
	if c.Run == "" {
		c.Run = "bench-" + strconv.FormatInt(time.Now().UnixMilli(), 36)
	}
	if c.TokenTTL <= 0 {
		c.TokenTTL = time.Hour
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
	return c
}

// Validate reports the first bad field by its flag name.
func (c RealtimeConfig) Validate() error {
	switch c.Scenario {
	case ScenarioIdle, ScenarioDirect, ScenarioGroup, ScenarioStorm:
	default:
		return fmt.Errorf("scenario %q: use idle, direct, group or storm", c.Scenario)
	}
	if len(c.URLs) == 0 {
		return errors.New("url: give at least one realtime node")
	}
	for _, u := range c.URLs {
		p, err := url.Parse(u)
		if err != nil || p.Scheme != "http" || p.Host == "" {
			return fmt.Errorf("url %q: give http://host:port of a node", u)
		}
	}
	switch {
	case c.Conns > 1_000_000:
		return fmt.Errorf("conns %d is above 1,000,000", c.Conns)
	case c.Scenario == ScenarioDirect && (c.Conns < 2 || c.Conns%2 != 0):
		return fmt.Errorf("conns %d: the direct scenario pairs connections, give an even number ≥ 2", c.Conns)
	case c.Scenario == ScenarioDirect && (c.Rate <= 0 || c.Rate > 1e6):
		return fmt.Errorf("rate %v must be above 0 and at most 1,000,000 messages/s", c.Rate)
	case c.Warmup < 0 || c.Warmup >= c.Duration:
		return fmt.Errorf("warmup %s must be at least 0 and shorter than the duration %s", c.Warmup, c.Duration)
	case c.Scenario == ScenarioGroup && c.GroupSize < 2:
		return fmt.Errorf("group-size %d must be at least 2", c.GroupSize)
	case c.TextBytes > 64<<10:
		return fmt.Errorf("text-bytes %d is above 65536", c.TextBytes)
	case c.Sources < 0 || c.Sources > 250:
		return fmt.Errorf("sources %d must be between 0 and 250", c.Sources)
	}
	return nil
}

// RealtimeResult is what a realtime run measured. Latencies run from each
// message's due time (open loop), so a stalled server or a late generator
// is charged; Lag is due → written by the generator.
type RealtimeResult struct {
	Scenario string
	Conns    int // connections open when the measured part started

	Connect     time.Duration // opening all connections
	ConnectRate float64       // connections/s over Connect
	Handshake   Latency       // dial → 101 answered, per connection
	// Ready counts the connections whose ready frame came (authenticated
	// and registered by the server), ReadyIn from the first dial to the
	// last ready frame (storm).
	Ready        int64
	ReadyIn      time.Duration
	ConnectErrs  int64
	FirstConnErr error

	Sent, SendErrs  int64 // counted messages written / failed to write
	Acked           int64 // ack frames for counted messages
	Delivered       int64 // counted message frames to recipients (not the sender's own devices)
	Want            int64 // deliveries expected
	Duplicates      int64 // a recipient got the same client_id again
	Errors          int64 // error frames
	FirstError      string
	Closed          int64       // connections the server closed or dropped during the run
	CloseCodes      map[int]int // close code → connections
	Latency         Latency     // due → delivered to a recipient
	Ack             Latency     // due → ack to the sender
	Lag             Latency     // due → written
	FanoutLast      Latency     // group: per message, due → its last delivery
	Elapsed         time.Duration
	DeliveredPerSec float64

	ServerPID                       int
	ServerRSSBefore, ServerRSSAfter int64 // bytes
	SelfRSSBefore, SelfRSSAfter     int64
	// CPU used during the measured part (connecting for idle and storm,
	// sending for direct and group), by the server and by the generator.
	ServerCPU, SelfCPU time.Duration
	Wall               time.Duration // of the measured part
}

// ServerBytesPerConn is the server's resident memory growth per open
// connection.
func (r RealtimeResult) ServerBytesPerConn() float64 {
	if r.Conns == 0 || r.ServerRSSAfter == 0 {
		return 0
	}
	return float64(r.ServerRSSAfter-r.ServerRSSBefore) / float64(r.Conns)
}

// SelfBytesPerConn is the generator's own resident memory growth per
// connection.
func (r RealtimeResult) SelfBytesPerConn() float64 {
	if r.Conns == 0 || r.SelfRSSAfter == 0 {
		return 0
	}
	return float64(r.SelfRSSAfter-r.SelfRSSBefore) / float64(r.Conns)
}

// rtFrame is the part of a server frame the generator reads.
type rtFrame struct {
	Type           string `json:"type"`
	ConversationID string `json:"conversation_id"`
	ClientID       string `json:"client_id"`
	SenderID       string `json:"sender_id"`
	Seq            int64  `json:"seq"`
	Code           string `json:"code"`
	Message        string `json:"message"`
}

// rtConn is one generator connection: a user's device.
type rtConn struct {
	ws   *WSConn
	user int
	// Written only by the connection's reader goroutine; read after it
	// ended (readers WaitGroup).
	lat, ack []time.Duration
}

// rtRun is the state of one run.
type rtRun struct {
	cfg     RealtimeConfig
	api     *client.Client
	users   []string
	tokens  []string
	dialers []*net.Dialer
	conns   []*rtConn
	readers sync.WaitGroup

	closed     atomic.Int64
	ready      atomic.Int64 // ready frames received
	lastReady  atomic.Int64 // unix nanos of the last one
	codesMu    sync.Mutex
	codes      map[int]int
	errors     atomic.Int64
	firstErr   atomic.Pointer[string]
	onMessage  func(c *rtConn, f *rtFrame, now time.Time)
	onAck      func(c *rtConn, f *rtFrame, now time.Time)
	stopping   atomic.Bool
	serverPID  int
	cpuSelf0   time.Duration
	cpuServer0 time.Duration
}

// RunRealtime runs cfg.Scenario and returns its figures. The connections
// it opened are closed before it returns.
func RunRealtime(ctx context.Context, cfg RealtimeConfig) (RealtimeResult, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return RealtimeResult{}, err
	}
	// Keep the API connections alive: a new one per call would leave a
	// TIME_WAIT socket per token, and take the ports the WebSockets need.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost, tr.MaxConnsPerHost = cfg.SetupConcurrency, cfg.SetupConcurrency
	api := client.New(cfg.URLs[0], cfg.APIKey, &http.Client{Timeout: 30 * time.Second, Transport: tr})
	defer tr.CloseIdleConnections()
	r := &rtRun{cfg: cfg, api: api, codes: map[int]int{}}
	n := cfg.Conns
	if cfg.Scenario == ScenarioGroup {
		n = cfg.GroupSize
	}
	if _, err := RaiseFileLimit(uint64(n) + 1024); err != nil {
		fmt.Fprintf(cfg.Log, "warning: %v\n", err)
	}
	r.serverPID = cfg.ServerPID
	if r.serverPID == 0 {
		u, _ := url.Parse(cfg.URLs[0])
		host := u.Host
		if u.Port() == "" {
			host += ":80"
		}
		if pid, err := ListenerPID(host); err == nil {
			r.serverPID = pid
		} else {
			fmt.Fprintf(cfg.Log, "warning: server memory and CPU not read: %v\n", err)
		}
	}
	if r.serverPID != 0 && r.serverPID != os.Getpid() {
		if lim, err := ProcFileLimit(r.serverPID); err == nil && lim < uint64(n)+64 {
			fmt.Fprintf(cfg.Log, "warning: the server (pid %d) may open only %d files, fewer than %d connections: start it with a higher limit (prlimit --nofile=%d abacus serve …)\n", r.serverPID, lim, n, n+4096)
		}
	}
	r.setDialers(n)
	defer r.closeAll()
	switch cfg.Scenario {
	case ScenarioIdle:
		return r.idle(ctx)
	case ScenarioDirect:
		return r.direct(ctx)
	case ScenarioGroup:
		return r.group(ctx)
	default:
		return r.storm(ctx)
	}
}

func (r *rtRun) logf(format string, args ...any) {
	fmt.Fprintf(r.cfg.Log, format+"\n", args...)
}

// setDialers prepares one dialer per source address for n connections.
func (r *rtRun) setDialers(n int) {
	src := r.cfg.Sources
	u, _ := url.Parse(r.cfg.URLs[0])
	ip := net.ParseIP(u.Hostname())
	if ip == nil || ip.To4() == nil || !ip.IsLoopback() {
		r.dialers = []*net.Dialer{{Timeout: 10 * time.Second}}
		return
	}
	if src == 0 {
		src = (n + 24_999) / 25_000
	}
	for i := range src {
		d := &net.Dialer{Timeout: 10 * time.Second}
		if src > 1 {
			d.LocalAddr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(1+i))}
			d.Control = func(_, _ string, c syscall.RawConn) error {
				return c.Control(setBindNoPort)
			}
		}
		r.dialers = append(r.dialers, d)
	}
}

func (r *rtRun) closeAll() {
	r.stopping.Store(true)
	for _, c := range r.conns {
		if c != nil && c.ws != nil {
			_ = c.ws.Drop()
		}
	}
	r.readers.Wait()
}

// parallel runs fn(i) for i in [0, n) with width workers and returns the
// first error.
func parallel(ctx context.Context, n, width int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var next atomic.Int64
	var once sync.Once
	var first error
	var wg sync.WaitGroup
	for range min(width, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := fn(ctx, i); err != nil {
					once.Do(func() { first = err; cancel() })
					return
				}
			}
		}()
	}
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return first
}

// mintTokens makes n users and mints a connection token for each through
// the API.
func (r *rtRun) mintTokens(ctx context.Context, n int) error {
	t0 := time.Now()
	r.users, r.tokens = make([]string, n), make([]string, n)
	ttl := int(r.cfg.TokenTTL.Seconds())
	err := parallel(ctx, n, r.cfg.SetupConcurrency, func(ctx context.Context, i int) error {
		r.users[i] = r.cfg.Run + "-u" + strconv.Itoa(i)
		body := fmt.Appendf(nil, `{"user_id":%q,"ttl_seconds":%d}`, r.users[i], ttl)
		var out struct {
			Token string `json:"token"`
		}
		if err := r.post(ctx, "/api/v1/realtime/tokens", body, &out); err != nil {
			return fmt.Errorf("minting a token for %s: %w", r.users[i], err)
		}
		if out.Token == "" {
			return fmt.Errorf("minting a token for %s: no token in the answer", r.users[i])
		}
		r.tokens[i] = out.Token
		return nil
	})
	if err == nil {
		r.logf("minted %d tokens in %s", n, time.Since(t0).Round(time.Millisecond))
	}
	return err
}

func (r *rtRun) post(ctx context.Context, path string, body []byte, out any) error {
	_, err := client.Retry(ctx, client.Backoff{MaxAttempts: 5, Initial: 50 * time.Millisecond, Max: time.Second}, func(ctx context.Context) error {
		b, err := r.api.Do(ctx, "POST", path, "application/json", body)
		if err != nil {
			return err
		}
		return gojson.Unmarshal(b, out)
	})
	return err
}

// createConversation creates a conversation through the API.
func (r *rtRun) createConversation(ctx context.Context, kind string, members []string) (string, error) {
	body, _ := gojson.Marshal(map[string]any{"kind": kind, "member_ids": members, "title": r.cfg.Run})
	var out struct {
		ID string `json:"id"`
	}
	if err := r.post(ctx, "/api/v1/conversations", body, &out); err != nil {
		return "", fmt.Errorf("creating a %s conversation of %d members: %w", kind, len(members), err)
	}
	if out.ID == "" {
		return "", errors.New("creating a conversation: no id in the answer")
	}
	return out.ID, nil
}

// wsURL is the WebSocket URL of connection i.
func (r *rtRun) wsURL(i int) string {
	base := strings.TrimRight(r.cfg.URLs[i%len(r.cfg.URLs)], "/")
	return base + "/api/v1/realtime/ws?token=" + url.QueryEscape(r.tokens[i])
}

// connectAll opens a connection for every user with width handshakes in
// flight, starts their readers and returns the handshake latencies.
// Connection errors are counted, not fatal, unless none succeeded.
func (r *rtRun) connectAll(ctx context.Context, width int, res *RealtimeResult) error {
	n := len(r.tokens)
	r.conns = make([]*rtConn, n)
	hs := make([][]time.Duration, width)
	var next atomic.Int64
	var errs atomic.Int64
	var firstErr atomic.Pointer[error]
	var wg sync.WaitGroup
	t0 := time.Now()
	for w := range width {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				d := r.dialers[i%len(r.dialers)]
				dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
				s := time.Now()
				ws, err := DialWS(dctx, d, r.wsURL(i))
				cancel()
				if err != nil {
					if errs.Add(1) == 1 {
						firstErr.Store(&err)
					}
					continue
				}
				hs[w] = append(hs[w], time.Since(s))
				c := &rtConn{ws: ws, user: i}
				r.conns[i] = c
				r.readers.Add(1)
				go r.read(c)
			}
		}()
	}
	wg.Wait()
	res.Connect = time.Since(t0)
	var all []time.Duration
	for _, h := range hs {
		all = append(all, h...)
	}
	res.Handshake = Summarise(all)
	res.Conns = len(all)
	res.ConnectRate = float64(len(all)) / res.Connect.Seconds()
	res.ConnectErrs = errs.Load()
	if p := firstErr.Load(); p != nil {
		res.FirstConnErr = *p
	}
	r.logf("opened %d of %d connections in %s (%.0f/s), handshake %s; %d failed", len(all), n,
		res.Connect.Round(time.Millisecond), res.ConnectRate, res.Handshake, res.ConnectErrs)
	if len(all) == 0 && n > 0 {
		return fmt.Errorf("no connection opened: %w", res.FirstConnErr)
	}
	return ctx.Err()
}

// read is a connection's reader: it decodes frames and hands them to the
// scenario until the connection ends.
func (r *rtRun) read(c *rtConn) {
	defer r.readers.Done()
	var f rtFrame
	for {
		_, p, err := c.ws.ReadMessage()
		if err != nil {
			if !r.stopping.Load() {
				r.closed.Add(1)
				code := -1 // dropped with no close frame
				var ce *CloseError
				if errors.As(err, &ce) {
					code = ce.Code
				}
				r.codesMu.Lock()
				r.codes[code]++
				r.codesMu.Unlock()
			}
			return
		}
		now := time.Now()
		f = rtFrame{}
		if err := gojson.Unmarshal(p, &f); err != nil {
			r.noteError("undecodable frame: " + truncate(string(p), 120))
			continue
		}
		switch f.Type {
		case "ready":
			r.ready.Add(1)
			r.lastReady.Store(now.UnixNano())
		case "message":
			if r.onMessage != nil {
				r.onMessage(c, &f, now)
			}
		case "ack":
			if r.onAck != nil {
				r.onAck(c, &f, now)
			}
		case "error":
			r.noteError(f.Code + ": " + f.Message)
		}
	}
}

func (r *rtRun) noteError(s string) {
	if r.errors.Add(1) == 1 {
		r.firstErr.Store(&s)
	}
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// markStart reads the CPU and memory counters at the start of the
// measured part.
func (r *rtRun) markStart(res *RealtimeResult) {
	res.ServerPID = r.serverPID
	res.SelfRSSBefore, _ = ProcRSS(os.Getpid())
	r.cpuSelf0, _ = ProcCPU(os.Getpid())
	if r.serverPID != 0 {
		res.ServerRSSBefore, _ = ProcRSS(r.serverPID)
		r.cpuServer0, _ = ProcCPU(r.serverPID)
	}
}

func (r *rtRun) markEnd(res *RealtimeResult, wall time.Duration) {
	res.Wall = wall
	res.SelfRSSAfter, _ = ProcRSS(os.Getpid())
	if c, err := ProcCPU(os.Getpid()); err == nil {
		res.SelfCPU = c - r.cpuSelf0
	}
	if r.serverPID != 0 {
		res.ServerRSSAfter, _ = ProcRSS(r.serverPID)
		if c, err := ProcCPU(r.serverPID); err == nil {
			res.ServerCPU = c - r.cpuServer0
		}
	}
}

func (r *rtRun) finish(res *RealtimeResult) {
	res.Scenario = r.cfg.Scenario
	res.Closed = r.closed.Load()
	r.codesMu.Lock()
	res.CloseCodes = r.codes
	r.codes = map[int]int{}
	r.codesMu.Unlock()
	res.Errors = r.errors.Load()
	if p := r.firstErr.Load(); p != nil {
		res.FirstError = *p
	}
}

// idle opens the connections, holds them for cfg.Hold and reads the
// server's memory before and after.
func (r *rtRun) idle(ctx context.Context) (RealtimeResult, error) {
	var res RealtimeResult
	if err := r.mintTokens(ctx, r.cfg.Conns); err != nil {
		return res, err
	}
	r.markStart(&res)
	t0 := time.Now()
	if err := r.connectAll(ctx, r.cfg.ConnectConcurrency, &res); err != nil {
		return res, err
	}
	r.logf("holding %d connections for %s", res.Conns, r.cfg.Hold)
	select {
	case <-time.After(r.cfg.Hold):
	case <-ctx.Done():
		return res, ctx.Err()
	}
	r.markEnd(&res, time.Since(t0))
	r.finish(&res)
	res.Conns -= int(res.Closed)
	return res, nil
}

// storm opens the connections as fast as the server takes them.
func (r *rtRun) storm(ctx context.Context) (RealtimeResult, error) {
	var res RealtimeResult
	if err := r.mintTokens(ctx, r.cfg.Conns); err != nil {
		return res, err
	}
	r.markStart(&res)
	t0 := time.Now()
	if err := r.connectAll(ctx, r.cfg.ConnectConcurrency, &res); err != nil {
		return res, err
	}
	// A connection is authenticated when its ready frame has come.
	for deadline := time.Now().Add(15 * time.Second); r.ready.Load() < int64(res.Conns) && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	res.Ready = r.ready.Load()
	if last := r.lastReady.Load(); last != 0 {
		res.ReadyIn = time.Unix(0, last).Sub(t0)
	}
	r.markEnd(&res, time.Since(t0))
	r.finish(&res)
	return res, nil
}

// clientID carries message k and its due time, so a recipient computes
// the latency from the frame alone.
func appendClientID(b []byte, k int64, due time.Time) []byte {
	b = append(b, 'm')
	b = strconv.AppendInt(b, k, 10)
	b = append(b, '.')
	return strconv.AppendInt(b, due.UnixNano(), 36)
}

func parseClientID(s string) (k int64, due time.Time, ok bool) {
	a, b, found := strings.Cut(strings.TrimPrefix(s, "m"), ".")
	if !found {
		return 0, time.Time{}, false
	}
	k, err1 := strconv.ParseInt(a, 10, 64)
	ns, err2 := strconv.ParseInt(b, 36, 64)
	if err1 != nil || err2 != nil {
		return 0, time.Time{}, false
	}
	return k, time.Unix(0, ns), true
}

// delivery counts the deliveries of each message and their latency.
type delivery struct {
	got []atomic.Int32 // per message: deliveries to recipients
	// last[k] is the latest delivery time of message k (unix nanos).
	last      []atomic.Int64
	delivered atomic.Int64
	dups      atomic.Int64
	want      int32 // deliveries expected per message
}

func newDelivery(total int64, want int32) *delivery {
	return &delivery{got: make([]atomic.Int32, total), last: make([]atomic.Int64, total), want: want}
}

// note records a delivery of message k at now and reports whether it
// was the first beyond the expected count (a duplicate).
func (d *delivery) note(k int64, now time.Time) bool {
	if k < 0 || k >= int64(len(d.got)) {
		return false
	}
	if d.got[k].Add(1) > d.want {
		d.dups.Add(1)
		return true
	}
	d.delivered.Add(1)
	ns := now.UnixNano()
	for {
		old := d.last[k].Load()
		if old >= ns || d.last[k].CompareAndSwap(old, ns) {
			break
		}
	}
	return false
}

// openLoop writes message k when it is due, for k in [0, total), with a
// few writer goroutines; write sends message k (due at due) and returns
// the write error. It returns the write lags of counted messages and the
// count of failed writes.
func openLoop(ctx context.Context, total, warm int64, start time.Time, interval float64,
	write func(k int64, due time.Time) error) (lags []time.Duration, sent, errs int64) {
	const writers = 8
	var next atomic.Int64
	var nsent, nerr atomic.Int64
	ls := make([][]time.Duration, writers)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			timer := time.NewTimer(time.Hour)
			defer timer.Stop()
			for {
				k := next.Add(1) - 1
				if k >= total || ctx.Err() != nil {
					return
				}
				due := start.Add(time.Duration(float64(k) * interval))
				if d := time.Until(due); d > 0 {
					timer.Reset(d)
					select {
					case <-timer.C:
					case <-ctx.Done():
						return
					}
				}
				err := write(k, due)
				if k < warm {
					continue
				}
				if err != nil {
					nerr.Add(1)
					continue
				}
				nsent.Add(1)
				ls[w] = append(ls[w], time.Since(due))
			}
		}()
	}
	wg.Wait()
	for _, l := range ls {
		lags = append(lags, l...)
	}
	return lags, nsent.Load(), nerr.Load()
}

// waitDelivered polls until want deliveries arrived or drain passed.
func waitDelivered(ctx context.Context, d *delivery, want int64, drain time.Duration) {
	end := time.Now().Add(drain)
	for d.delivered.Load() < want && time.Now().Before(end) && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
}

// text is the message text of the runs: n bytes of ASCII.
func text(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'a' + byte(i%26)
	}
	return b
}

// direct is the 1:1 scenario: users 2p and 2p+1 share private
// conversation p; message k goes from one of pair k % pairs to the other,
// alternating direction.
func (r *rtRun) direct(ctx context.Context) (RealtimeResult, error) {
	var res RealtimeResult
	cfg := r.cfg
	if err := r.mintTokens(ctx, cfg.Conns); err != nil {
		return res, err
	}
	pairs := cfg.Conns / 2
	convs := make([]string, pairs)
	t0 := time.Now()
	if err := parallel(ctx, pairs, cfg.SetupConcurrency, func(ctx context.Context, p int) error {
		id, err := r.createConversation(ctx, "private", []string{r.users[2*p], r.users[2*p+1]})
		convs[p] = id
		return err
	}); err != nil {
		return res, err
	}
	r.logf("created %d private conversations in %s", pairs, time.Since(t0).Round(time.Millisecond))
	if err := r.connectAll(ctx, cfg.ConnectConcurrency, &res); err != nil {
		return res, err
	}
	total := int64(cfg.Duration.Seconds() * cfg.Rate)
	warm := int64(cfg.Warmup.Seconds() * cfg.Rate)
	d := newDelivery(total, 1)
	var acked atomic.Int64
	r.onMessage = func(c *rtConn, f *rtFrame, now time.Time) {
		k, due, ok := parseClientID(f.ClientID)
		if !ok || f.SenderID == r.users[c.user] || k < warm { // the sender's own device, or not ours
			return
		}
		if !d.note(k, now) {
			c.lat = append(c.lat, now.Sub(due))
		}
	}
	r.onAck = func(c *rtConn, f *rtFrame, now time.Time) {
		if k, due, ok := parseClientID(f.ClientID); ok && k >= warm {
			acked.Add(1)
			c.ack = append(c.ack, now.Sub(due))
		}
	}
	prefix := make([][]byte, pairs)
	for p, id := range convs {
		prefix[p] = []byte(`{"type":"send","conversation_id":"` + id + `","client_id":"`)
	}
	suffix := []byte(`","text":"` + string(text(cfg.TextBytes)) + `"}`)
	bufs := sync.Pool{New: func() any { b := make([]byte, 0, 256+cfg.TextBytes); return &b }}
	r.logf("sending %d messages at %.0f/s over %d connections (%d pairs), the first %d not counted", total, cfg.Rate, res.Conns, pairs, warm)
	start := time.Now().Add(10 * time.Millisecond)
	r.markStart(&res)
	lags, sent, errs := openLoop(ctx, total, warm, start, float64(time.Second)/cfg.Rate, func(k int64, due time.Time) error {
		p := int(k % int64(pairs))
		side := int(k/int64(pairs)) % 2
		c := r.conns[2*p+side]
		if c == nil {
			return errors.New("sender not connected")
		}
		bp := bufs.Get().(*[]byte)
		b := append((*bp)[:0], prefix[p]...)
		b = appendClientID(b, k, due)
		b = append(b, suffix...)
		err := c.ws.WriteText(b)
		*bp = b
		bufs.Put(bp)
		return err
	})
	res.Sent, res.SendErrs, res.Want = sent, errs, sent
	waitDelivered(ctx, d, sent, cfg.Drain)
	r.markEnd(&res, time.Since(start))
	res.Elapsed = time.Duration(d.maxLast()-start.Add(time.Duration(float64(warm)/cfg.Rate*float64(time.Second))).UnixNano()) * time.Nanosecond
	r.finishMessages(&res, d, acked.Load(), lags)
	return res, ctx.Err()
}

func (d *delivery) maxLast() int64 {
	var m int64
	for i := range d.last {
		m = max(m, d.last[i].Load())
	}
	return m
}

// finishMessages gathers the latencies after the readers are stopped.
func (r *rtRun) finishMessages(res *RealtimeResult, d *delivery, acked int64, lags []time.Duration) {
	r.closeAll()
	r.finish(res)
	var lat, ack []time.Duration
	for _, c := range r.conns {
		if c != nil {
			lat = append(lat, c.lat...)
			ack = append(ack, c.ack...)
		}
	}
	res.Latency, res.Ack, res.Lag = Summarise(lat), Summarise(ack), Summarise(lags)
	res.Delivered, res.Duplicates, res.Acked = d.delivered.Load(), d.dups.Load(), acked
	if res.Elapsed > 0 {
		res.DeliveredPerSec = float64(res.Delivered) / res.Elapsed.Seconds()
	}
}

// group sends cfg.Messages messages from member 0 to a group of
// cfg.GroupSize members, one per cfg.Interval.
func (r *rtRun) group(ctx context.Context) (RealtimeResult, error) {
	var res RealtimeResult
	cfg := r.cfg
	if err := r.mintTokens(ctx, cfg.GroupSize); err != nil {
		return res, err
	}
	t0 := time.Now()
	conv, err := r.createConversation(ctx, "group", r.users)
	if err != nil {
		return res, err
	}
	r.logf("created a group of %d members in %s", cfg.GroupSize, time.Since(t0).Round(time.Millisecond))
	if err := r.connectAll(ctx, cfg.ConnectConcurrency, &res); err != nil {
		return res, err
	}
	total := int64(cfg.Messages)
	warm := int64(cfg.Warmup / cfg.Interval)
	d := newDelivery(total, int32(cfg.GroupSize-1))
	var acked atomic.Int64
	sender := r.users[0]
	r.onMessage = func(c *rtConn, f *rtFrame, now time.Time) {
		k, due, ok := parseClientID(f.ClientID)
		if !ok || c.user == 0 || f.SenderID != sender || k < warm {
			return
		}
		if !d.note(k, now) {
			c.lat = append(c.lat, now.Sub(due))
		}
	}
	r.onAck = func(c *rtConn, f *rtFrame, now time.Time) {
		if k, due, ok := parseClientID(f.ClientID); ok && k >= warm {
			acked.Add(1)
			c.ack = append(c.ack, now.Sub(due))
		}
	}
	c0 := r.conns[0]
	if c0 == nil {
		return res, errors.New("the group's sender did not connect")
	}
	prefix := []byte(`{"type":"send","conversation_id":"` + conv + `","client_id":"`)
	suffix := []byte(`","text":"` + string(text(cfg.TextBytes)) + `"}`)
	r.logf("sending %d messages to the group, one per %s, the first %d not counted", total, cfg.Interval, warm)
	start := time.Now().Add(10 * time.Millisecond)
	r.markStart(&res)
	var mu sync.Mutex // one writer: the messages of one sender stay in order
	lags, sent, errs := openLoop(ctx, total, warm, start, float64(cfg.Interval), func(k int64, due time.Time) error {
		mu.Lock()
		defer mu.Unlock()
		b := append(append(append([]byte(nil), prefix...), appendClientID(nil, k, due)...), suffix...)
		return c0.ws.WriteText(b)
	})
	online := int64(0)
	for _, c := range r.conns[1:] {
		if c != nil {
			online++
		}
	}
	res.Sent, res.SendErrs, res.Want = sent, errs, sent*online
	waitDelivered(ctx, d, res.Want, cfg.Drain)
	r.markEnd(&res, time.Since(start))
	var fan []time.Duration
	for k := warm; k < total; k++ {
		if l := d.last[k].Load(); l > 0 {
			fan = append(fan, time.Unix(0, l).Sub(start.Add(time.Duration(k)*cfg.Interval)))
		}
	}
	res.FanoutLast = Summarise(fan)
	res.Elapsed = time.Since(start)
	r.finishMessages(&res, d, acked.Load(), lags)
	return res, ctx.Err()
}
