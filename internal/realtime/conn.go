package realtime

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"

	"github.com/abacusbilling/abacus"
)

var (
	errDraining = errors.New("realtime: the node is shutting down")
	errReading  = errors.New("realtime: reading missed messages failed")
)

// item is one entry of a connection's send queue.
type item struct {
	env   envelope
	frame []byte
	after int64 // kindResume: resume after this seq
}

// conn is one live WebSocket connection. The handler's goroutine reads
// frames and handles them; a writer goroutine, started when frames are
// queued and gone when the queue is empty (an idle connection has none:
// memory per connection), drains the send queue, so a slow socket never
// blocks the node's dispatcher: a queue past its bounds closes the
// connection (4009) instead of growing.
type conn struct {
	svc    *Service
	ws     *websocket.Conn
	sock   *socket // under ws: corked while the writer drains the queue
	info   ConnInfo
	grants map[string]bool // nil: every conversation

	mu      sync.Mutex
	queue   []item
	queued  int  // bytes in queue
	writing bool // a writer goroutine is draining the queue
	// holding: live frames from the bus wait in held (their bytes in
	// heldBytes) until the ready frame and the URL's resumes are queued,
	// so that a client sees resumes before any live frame although the
	// connection is registered (subscribed) before ready is sent.
	holding   bool
	held      []item
	heldBytes int
	closing   bool
	code      websocket.StatusCode
	reason    string
	finished  chan struct{} // closed once the close frame is written
	ping      *time.Timer

	// writer's own state: per conversation, the last seq written and the
	// first (what came before it was never sent on this connection).
	sent, first map[string]int64

	// reader's own state
	tokens     float64
	lastRefill time.Time
	refused    int
	typingAt   map[string]time.Time
}

func (c *conn) granted(conv string) bool {
	return c.grants == nil || conv == "" || c.grants[conv]
}

// enqueue adds it to the send queue without blocking; a live frame (from
// the bus) waits in held while the connection is holding. Past the bounds
// (queue and held together) the connection is closed as a slow consumer.
func (c *conn) enqueue(it item, live bool) {
	if it.env.kind != kindResume && !c.granted(it.env.conv) {
		return
	}
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return
	}
	if len(c.queue)+len(c.held) >= c.svc.cfg.SendQueue || c.queued+c.heldBytes+len(it.frame) > c.svc.cfg.SendQueueBytes {
		c.mu.Unlock()
		c.close(CloseSlowConsumer, "slow consumer: frames were not read fast enough; reconnect and resume")
		return
	}
	if live && c.holding {
		c.held = append(c.held, it)
		c.heldBytes += len(it.frame)
		c.mu.Unlock()
		return
	}
	c.queue = append(c.queue, it)
	c.queued += len(it.frame)
	c.startWriterLocked()
	c.mu.Unlock()
}

// release ends holding: the live frames held so far are queued after what
// is queued (the ready frame and the resumes), in the order they came.
func (c *conn) release() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.holding = false
	if c.closing || len(c.held) == 0 {
		c.held, c.heldBytes = nil, 0
		return
	}
	c.queue = append(c.queue, c.held...)
	c.queued += c.heldBytes
	c.held, c.heldBytes = nil, 0
	c.startWriterLocked()
}

// startWriterLocked starts the writer unless one runs; c.mu is held.
func (c *conn) startWriterLocked() {
	if !c.writing {
		c.writing = true
		go c.writeLoop()
	}
}

// take handles an item published to the connection's user: a kick closes
// the connection, anything else is queued.
func (c *conn) take(it item) {
	if it.env.kind == kindKick {
		c.close(CloseRemoved, "disconnected by the service's staff")
		return
	}
	c.enqueue(it, true)
}

// send queues a frame for this connection only.
func (c *conn) send(frame any) {
	c.enqueue(item{env: envelope{kind: kindFrame}, frame: mustJSON(frame)}, false)
}

// close ends the connection with code. The writer writes the frames
// already queued (except for a slow consumer, whose queue is dropped),
// then the close frame.
func (c *conn) close(code websocket.StatusCode, reason string) {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return
	}
	c.closing, c.code, c.reason = true, code, reason
	if code == CloseSlowConsumer {
		c.queue, c.queued = nil, 0
	}
	c.held, c.heldBytes = nil, 0
	c.startWriterLocked() // writes what is queued, then the close frame
	c.mu.Unlock()
}

// ServeWS is the WebSocket endpoint: it authenticates the token (query
// parameter token, or the request's end-user principal), upgrades, sets
// the connection up and returns; a goroutine of the connection's own
// reads it until it ends. Returning frees what the request held (its
// context, headers, the middleware's state, the handler's deeper stack):
// memory per idle connection.
func (s *Service) ServeWS(w http.ResponseWriter, r *http.Request) {
	hj := &hijacker{ResponseWriter: w, timeout: s.cfg.WriteTimeout}
	ws, err := websocket.Accept(hj, r, &websocket.AcceptOptions{InsecureSkipVerify: true, CompressionMode: websocket.CompressionDisabled})
	if err != nil {
		return // Accept answered the HTTP error
	}
	ctx := r.Context()
	id, err := s.identify(ctx, r)
	if err != nil {
		code, reason := CloseUnauthorized, err.Error()
		if errors.Is(err, errTokenExpired) {
			code = CloseTokenExpired
		}
		var e *abacus.Error
		if errors.As(err, &e) {
			reason = e.Code + ": " + e.Message
		}
		_ = ws.Close(code, truncate(reason))
		return
	}
	s.mu.Lock()
	draining := s.draining
	if !draining {
		s.conns.Add(1)
	}
	s.mu.Unlock()
	if draining {
		_ = ws.Close(CloseServiceRestart, "server shutting down: reconnect")
		return
	}
	c := &conn{svc: s, ws: ws, sock: hj.sock, finished: make(chan struct{}), holding: true,
		tokens: float64(s.cfg.RateBurst), lastRefill: time.Now(),
		info: ConnInfo{ID: abacus.NewID("rtc"), TenantID: id.TenantID, UserID: id.UserID, Node: s.cfg.Node, Since: s.clock.Now(),
			UserAgent: truncate(r.UserAgent()), RemoteAddr: r.RemoteAddr, Auth: id.Kind}}
	if id.Grants != nil {
		c.grants = map[string]bool{}
		for _, g := range id.Grants {
			c.grants[g] = true
		}
	}
	ws.SetReadLimit(s.cfg.MaxFrameBytes)
	if h := s.hooks.Connect; h != nil {
		if err := h(ctx, c.info); err != nil {
			code, reason := websocket.StatusInternalError, "internal error"
			var ce *CloseError
			if errors.As(err, &ce) {
				code, reason = codeOf(ce.Code), ce.Reason
			} else {
				s.log.Error("realtime: connect hook failed", "err", err)
			}
			_ = ws.Close(code, truncate(reason))
			s.conns.Done()
			return
		}
	}
	// Admitted: from here Disconnect runs however the connection ends
	// (c.end), a failure to register included, so what Connect counted
	// is undone.
	//
	// Registered (the user's subject subscribed and flushed) before ready
	// is queued, so that ready means what docs/realtime.md says: anything
	// published to the user from then on, on any node, reaches this
	// connection. Live frames are held until ready and the URL's resumes
	// are queued, so the resumes come first.
	if err := s.hub.register(c); err != nil {
		s.hub.unregister(c)
		s.log.Warn("realtime: registering a connection failed", "err", err)
		_ = ws.Close(CloseServiceRestart, "this node cannot take connections: reconnect")
		c.end(CloseServiceRestart)
		return
	}
	c.send(readyFrame{Type: "ready", ConnectionID: c.info.ID, UserID: c.info.UserID, Node: s.cfg.Node,
		PingSeconds: int(s.cfg.PingInterval / time.Second)})
	if h := s.afterReady; h != nil {
		h(c.info)
	}
	c.resumeFromURL(ctx, r.URL.Query().Get("resume"))
	c.release()
	c.schedulePing()
	go c.serve()
}

// serve reads the connection until it ends, then waits for the close
// frame to be written and ends the connection.
func (c *conn) serve() {
	// Not the request's context: it ends when ServeWS returns.
	code := c.readLoop(context.Background())
	if code > 0 {
		c.close(code, closeReasons[code])
	} else {
		c.close(websocket.StatusNormalClosure, "")
		_ = c.ws.CloseNow()
	}
	c.svc.hub.unregister(c)
	<-c.finished
	c.mu.Lock()
	ended := c.code
	c.mu.Unlock()
	c.end(ended)
}

// end runs the Disconnect hook with the close code and counts the
// connection out of the node's (for the drain).
func (c *conn) end(code websocket.StatusCode) {
	if h := c.svc.hooks.Disconnect; h != nil {
		h(c.info, int(code))
	}
	c.svc.conns.Done()
}

func codeOf(code int) websocket.StatusCode {
	if code < 1000 || code > 4999 {
		return websocket.StatusInternalError
	}
	return websocket.StatusCode(code)
}

func truncate(s string) string {
	const max = 120 // a close reason fits in 123 bytes
	if len(s) <= max {
		return s
	}
	s = s[:max]
	for !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}

// closeReasons are the reasons sent with the close codes the reader
// chooses.
var closeReasons = map[websocket.StatusCode]string{
	websocket.StatusMessageTooBig:           "frame too big",
	websocket.StatusInvalidFramePayloadData: "text frame is not valid UTF-8",
	CloseRateLimited:                        "rate limited: too many frames",
}

// maxURLResumes bounds the resume query parameter.
const maxURLResumes = 100

// resumeFromURL queues the resumes of the resume query parameter,
// "<conversation_id>:<after_seq>" separated by commas; a bad entry gets an
// error frame.
func (c *conn) resumeFromURL(ctx context.Context, q string) {
	if q == "" {
		return
	}
	ctx = abacus.WithPrincipal(ctx, &abacus.Principal{TenantID: c.info.TenantID, Kind: "realtime", ID: c.info.UserID})
	entries := strings.Split(q, ",")
	if len(entries) > maxURLResumes {
		c.send(errorFrame{Type: "error", Code: "bad_resume", Message: "at most 100 conversations in the resume parameter; resume the others with frames"})
		entries = entries[:maxURLResumes]
	}
	for _, e := range entries {
		conv, after, ok := strings.Cut(e, ":")
		n, err := strconv.ParseInt(after, 10, 64)
		if !ok || err != nil || n < 0 || conv == "" {
			c.send(errorFrame{Type: "error", Code: "bad_resume", Message: "resume entries are <conversation_id>:<after_seq>: " + truncate(e)})
			continue
		}
		f := clientFrame{Type: "resume", ConversationID: conv, AfterSeq: &n}
		c.handleResume(ctx, &f)
	}
}

// identify returns who the request connects as: a connection token from
// the token query parameter, or an end user's access token (query
// parameter, or already checked by the HTTP edge from the Authorization
// header).
func (s *Service) identify(ctx context.Context, r *http.Request) (Identity, error) {
	tok := r.URL.Query().Get("token")
	if tok == "" {
		if p := abacus.PrincipalFrom(ctx); p != nil && p.Kind == "end_user" {
			return Identity{TenantID: p.TenantID, UserID: p.ID, Kind: "end_user"}, nil
		}
		return Identity{}, abacus.Errorf(abacus.KindUnauthorized, "token_required",
			"connect with ?token=<connection token or end user's access token>")
	}
	if isConnectionToken(tok) {
		return s.VerifyToken(ctx, tok)
	}
	if s.auth == nil {
		return Identity{}, errTokenInvalid
	}
	p, err := s.auth(ctx, tok)
	if err != nil {
		if e, ok := abacus.AsError(err); ok && e.Code == "token_expired" {
			return Identity{}, errTokenExpired
		}
		return Identity{}, errTokenInvalid
	}
	if p.Kind != "end_user" {
		return Identity{}, abacus.Errorf(abacus.KindUnauthorized, "token_invalid",
			"only end users connect: use an end user's access token or a connection token (POST /api/v1/realtime/tokens)")
	}
	return Identity{TenantID: p.TenantID, UserID: p.ID, Kind: "end_user"}, nil
}

// readLoop reads and handles frames until the connection ends, and
// returns the close code to send.
func (c *conn) readLoop(ctx context.Context) websocket.StatusCode {
	ctx = abacus.WithPrincipal(ctx, &abacus.Principal{TenantID: c.info.TenantID, Kind: "realtime", ID: c.info.UserID})
	for {
		typ, data, err := c.ws.Read(ctx)
		if err != nil {
			if errors.Is(err, websocket.ErrMessageTooBig) {
				return websocket.StatusMessageTooBig
			}
			return websocket.CloseStatus(err)
		}
		if !c.allow() {
			c.refused++
			if c.refused >= c.svc.cfg.RateCloseAfter {
				return CloseRateLimited
			}
			c.send(errorFrame{Type: "error", Code: "rate_limited", Message: "too many frames: slow down (at most " +
				strconv.FormatFloat(c.svc.cfg.RatePerSecond, 'f', -1, 64) + " a second)", ClientID: clientIDOf(data)})
			continue
		}
		c.refused = 0
		if typ != websocket.MessageText {
			c.send(errorFrame{Type: "error", Code: "binary_not_supported", Message: "frames are JSON text frames"})
			continue
		}
		if !utf8.Valid(data) {
			return websocket.StatusInvalidFramePayloadData
		}
		if code := c.handle(ctx, data); code != 0 {
			return code
		}
	}
}

// allow takes a token from the connection's bucket.
func (c *conn) allow() bool {
	now := time.Now()
	c.tokens += now.Sub(c.lastRefill).Seconds() * c.svc.cfg.RatePerSecond
	c.lastRefill = now
	if b := float64(c.svc.cfg.RateBurst); c.tokens > b {
		c.tokens = b
	}
	if c.tokens < 1 {
		return false
	}
	c.tokens--
	return true
}

func clientIDOf(data []byte) string {
	var f struct {
		ClientID string `json:"client_id"`
	}
	_ = json.Unmarshal(data, &f)
	if len(f.ClientID) > maxClientIDLen {
		return ""
	}
	return f.ClientID
}

// fail sends the error frame for err about frame f.
func (c *conn) fail(f *clientFrame, err error) websocket.StatusCode {
	var ce *CloseError
	if errors.As(err, &ce) {
		return codeOf(ce.Code)
	}
	e, ok := abacus.AsError(err)
	if !ok {
		c.svc.log.Error("realtime: handling a frame failed", "type", f.Type, "err", err)
		e = abacus.Errorf(abacus.KindInternal, "internal", "the server failed to handle the frame; try again")
	}
	msg := e.Message
	if len(e.Fields) > 0 {
		msg = e.Fields[0].Field + ": " + e.Fields[0].Message
	}
	c.send(errorFrame{Type: "error", Code: e.Code, Message: msg, ClientID: f.ClientID, ConversationID: f.ConversationID})
	return 0
}

// handle handles one text frame; a non-zero code closes the connection.
func (c *conn) handle(ctx context.Context, data []byte) websocket.StatusCode {
	var f clientFrame
	if err := json.Unmarshal(data, &f); err != nil {
		return c.fail(&clientFrame{ClientID: clientIDOf(data)}, abacus.Invalid("bad_frame", "the frame is not a JSON object of this protocol: %s", jsonProblem(err)))
	}
	if f.Type != "ping" && f.ConversationID == "" {
		switch f.Type {
		case "send", "typing", "resume", "read", "delivered", "edit", "delete", "react", "mute", "unmute", "report":
			return c.fail(&f, abacus.Invalid("bad_frame", "conversation_id is required").WithField("conversation_id", "required"))
		}
	}
	if f.ConversationID != "" && !c.granted(f.ConversationID) {
		return c.fail(&f, abacus.Errorf(abacus.KindForbidden, "not_granted", "this connection's token does not grant conversation %s", f.ConversationID))
	}
	switch f.Type {
	case "send":
		return c.handleSend(ctx, &f)
	case "typing":
		return c.handleTyping(ctx, &f)
	case "resume":
		return c.handleResume(ctx, &f)
	case "read":
		if f.Seq == nil || *f.Seq < 0 {
			return c.fail(&f, abacus.Invalid("bad_frame", "seq must be 0 or more").WithField("seq", "0 or more"))
		}
		if _, err := c.svc.MarkRead(ctx, f.ConversationID, c.info.UserID, *f.Seq); err != nil {
			return c.fail(&f, err)
		}
	case "delivered":
		if f.Seq == nil || *f.Seq < 0 {
			return c.fail(&f, abacus.Invalid("bad_frame", "seq must be 0 or more").WithField("seq", "0 or more"))
		}
		if _, err := c.svc.MarkDelivered(ctx, f.ConversationID, c.info.UserID, *f.Seq); err != nil {
			return c.fail(&f, err)
		}
	case "edit":
		if f.Seq == nil || f.Text == nil {
			return c.fail(&f, abacus.Invalid("bad_frame", "edit needs seq and text").WithField("seq", "required"))
		}
		if _, err := c.svc.EditMessage(ctx, f.ConversationID, *f.Seq, EditInput{UserID: c.info.UserID, Text: *f.Text}); err != nil {
			return c.fail(&f, err)
		}
	case "delete":
		if f.Seq == nil {
			return c.fail(&f, abacus.Invalid("bad_frame", "delete needs seq").WithField("seq", "required"))
		}
		if _, err := c.svc.DeleteMessage(ctx, f.ConversationID, *f.Seq, c.info.UserID); err != nil {
			return c.fail(&f, err)
		}
	case "react":
		if f.Seq == nil {
			return c.fail(&f, abacus.Invalid("bad_frame", "react needs seq and emoji").WithField("seq", "required"))
		}
		if _, err := c.svc.React(ctx, f.ConversationID, *f.Seq, c.info.UserID, f.Emoji, f.Remove); err != nil {
			return c.fail(&f, err)
		}
	case "leave":
		if err := c.svc.RemoveMember(ctx, f.ConversationID, c.info.UserID, c.info.UserID); err != nil {
			return c.fail(&f, err)
		}
	case "mute", "unmute":
		var until *time.Time
		if f.Type == "mute" {
			until = &time.Time{}
			if f.Until != nil {
				until = f.Until
			}
		}
		got, err := c.svc.Mute(ctx, f.ConversationID, c.info.UserID, until)
		if err != nil {
			return c.fail(&f, err)
		}
		c.send(mutedFrame{Type: "muted", ConversationID: f.ConversationID, Until: got})
	case "block", "unblock":
		if err := c.svc.SetBlock(ctx, c.info.UserID, f.UserID, f.Type == "block"); err != nil {
			return c.fail(&f, err)
		}
		c.send(blockedFrame{Type: "blocked", UserID: f.UserID, Blocked: f.Type == "block"})
	case "report":
		if f.Seq == nil {
			return c.fail(&f, abacus.Invalid("bad_frame", "report needs seq").WithField("seq", "required"))
		}
		r, err := c.svc.ReportMessage(ctx, f.ConversationID, *f.Seq, MessageReportInput{ReporterID: c.info.UserID, Reason: f.Reason})
		if err != nil {
			return c.fail(&f, err)
		}
		c.send(reportedFrame{Type: "reported", ConversationID: f.ConversationID, Seq: *f.Seq, ReportID: r.ID})
	case "ping":
		c.send(pongFrame{Type: "pong"})
	case "":
		return c.fail(&f, abacus.Invalid("bad_frame", "the frame has no type").WithField("type", "required"))
	default:
		return c.fail(&f, abacus.Invalid("unknown_type", "unknown frame type %q", truncate(f.Type)))
	}
	return 0
}

func jsonProblem(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return te.Field + " must be a " + te.Type.String()
	}
	return "malformed JSON"
}

func (c *conn) handleSend(ctx context.Context, f *clientFrame) websocket.StatusCode {
	in := MessageInput{ConversationID: f.ConversationID, SenderID: c.info.UserID, ClientID: f.ClientID,
		Attachments: f.Attachments, ReplyTo: f.ReplyTo}
	if f.Text != nil {
		in.Text = *f.Text
	}
	accepted := time.Now()
	if err := c.svc.validateSend(in, ""); err != nil {
		return c.fail(f, err)
	}
	if h := c.svc.hooks.BeforeSend; h != nil {
		if err := h(ctx, c.info, in); err != nil {
			return c.fail(f, err)
		}
	}
	out, err := c.svc.send(ctx, c.info.TenantID, in)
	if err != nil {
		return c.fail(f, err)
	}
	c.send(ackFrame{Type: "ack", ConversationID: in.ConversationID, ClientID: in.ClientID, Seq: out.Message.Seq, Duplicate: out.Duplicate})
	c.svc.hub.publish(c.info.TenantID, out.Members, envelope{kind: kindMessage, conv: in.ConversationID, seq: out.Message.Seq,
		accepted: accepted.UnixNano()}, mustJSON(messageFrame{Type: "message", ChatMessage: out.Message}))
	if h := c.svc.hooks.Sent; h != nil && !out.Duplicate {
		h(ctx, c.info.TenantID, out)
	}
	return 0
}

func (c *conn) handleResume(ctx context.Context, f *clientFrame) websocket.StatusCode {
	if f.AfterSeq == nil || *f.AfterSeq < 0 {
		return c.fail(f, abacus.Invalid("bad_frame", "after_seq must be 0 or more").WithField("after_seq", "0 or more"))
	}
	if !c.granted(f.ConversationID) {
		return c.fail(f, abacus.Errorf(abacus.KindForbidden, "not_granted", "this connection's token does not grant conversation %s", f.ConversationID))
	}
	if _, ok, err := memberRole(ctx, c.svc.db, c.info.TenantID, f.ConversationID, c.info.UserID); err != nil || !ok {
		if err == nil {
			err = abacus.Errorf(abacus.KindForbidden, "not_a_member", "%s is not a member of conversation %s", c.info.UserID, f.ConversationID)
		}
		return c.fail(f, err)
	}
	c.enqueue(item{env: envelope{kind: kindResume, conv: f.ConversationID}, after: *f.AfterSeq}, false)
	return 0
}

func (c *conn) handleTyping(ctx context.Context, f *clientFrame) websocket.StatusCode {
	now := time.Now()
	if !f.Stopped {
		if c.typingAt == nil {
			c.typingAt = map[string]time.Time{}
		}
		if last, ok := c.typingAt[f.ConversationID]; ok && now.Sub(last) < c.svc.cfg.TypingInterval {
			return 0 // throttled: the others were told a moment ago
		}
		if len(c.typingAt) > 1000 {
			clear(c.typingAt)
		}
		c.typingAt[f.ConversationID] = now
	} else {
		delete(c.typingAt, f.ConversationID)
	}
	members, err := memberIDs(ctx, c.svc.db, c.info.TenantID, f.ConversationID)
	if err != nil {
		return c.fail(f, err)
	}
	others := members[:0]
	me := false
	for _, m := range members {
		if m == c.info.UserID {
			me = true
		} else {
			others = append(others, m)
		}
	}
	if !me {
		return c.fail(f, abacus.Errorf(abacus.KindForbidden, "not_a_member", "%s is not a member of conversation %s", c.info.UserID, f.ConversationID))
	}
	c.svc.hub.publishFrame(c.info.TenantID, others, typingFrame{Type: "typing", ConversationID: f.ConversationID,
		UserID: c.info.UserID, Stopped: f.Stopped})
	return 0
}

// writeLoop writes the queued frames until the queue is empty, then
// ends; on a closing connection it writes the close frame last.
func (c *conn) writeLoop() {
	ctx := abacus.WithPrincipal(context.Background(), &abacus.Principal{TenantID: c.info.TenantID, Kind: "realtime", ID: c.info.UserID})
	for {
		c.mu.Lock()
		batch, closing := c.queue, c.closing
		c.queue, c.queued = nil, 0
		if len(batch) == 0 {
			if !closing {
				c.writing = false
				c.mu.Unlock()
				return
			}
			code, reason := c.code, c.reason
			c.mu.Unlock()
			c.finish(code, reason)
			return
		}
		c.mu.Unlock()
		// One write for the batch (socket.go).
		c.sock.cork()
		var err error
		for _, it := range batch {
			if err = c.deliver(ctx, it); err != nil {
				break
			}
		}
		if uerr := c.sock.uncork(); err == nil {
			err = uerr
		}
		if err != nil {
			c.close(websocket.StatusGoingAway, "write failed")
			_ = c.ws.CloseNow()
			c.mu.Lock()
			c.queue, c.queued = nil, 0
			c.mu.Unlock()
		}
	}
}

// finish writes the close frame, once, and stops the pings.
func (c *conn) finish(code websocket.StatusCode, reason string) {
	c.mu.Lock()
	if c.ping != nil {
		c.ping.Stop()
	}
	c.mu.Unlock()
	_ = c.ws.Close(code, reason)
	close(c.finished)
}

// schedulePing pings after the ping interval, and again after each pong;
// a pong missing for PingTimeout closes the connection. A timer, not a
// goroutine, waits in between.
func (c *conn) schedulePing() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return
	}
	c.ping = time.AfterFunc(c.svc.cfg.PingInterval, func() {
		pctx, cancel := context.WithTimeout(context.Background(), c.svc.cfg.PingTimeout)
		defer cancel()
		if err := c.ws.Ping(pctx); err != nil {
			c.close(websocket.StatusGoingAway, "no pong")
			return
		}
		c.schedulePing()
	})
}

// write writes one frame. ctx has no deadline: the socket bounds every
// write to the network by WriteTimeout (socket.go), and a context that
// can end costs coder/websocket a timer per frame.
func (c *conn) write(ctx context.Context, frame []byte) error {
	return c.ws.Write(ctx, websocket.MessageText, frame)
}

// deliver writes one queued item. ChatMessage frames go out once and in seq
// order per conversation: one at or below what this connection was sent
// is dropped, and one past a gap (messages published from two nodes can
// cross) is preceded by the missing ones, read from the database. A
// resume request sends what follows the client's seq from the database.
func (c *conn) deliver(ctx context.Context, it item) error {
	switch it.env.kind {
	case kindFrame:
		return c.write(ctx, it.frame)
	case kindResume:
		return c.resume(ctx, it.env.conv, it.after)
	}
	conv, seq := it.env.conv, it.env.seq
	last, tracked := c.sent[conv]
	if tracked && seq <= last {
		return nil
	}
	if tracked && seq > last+1 {
		// The missing ones are committed (seq is allocated after them),
		// but a read can fail under load: try a few times, then tell the
		// client to resume and go on from this one.
		err := c.catchUp(ctx, conv, seq-1)
		for try := 1; try < 5 && errors.Is(err, errReading); try++ {
			time.Sleep(time.Duration(try) * 20 * time.Millisecond)
			err = c.catchUp(ctx, conv, seq-1)
		}
		if errors.Is(err, errReading) {
			c.svc.log.Warn("realtime: a gap in a conversation could not be filled from the history", "conversation", conv, "seq", seq)
			if err := c.write(ctx, mustJSON(errorFrame{Type: "error", Code: "resume_needed", ConversationID: conv,
				Message: "messages " + strconv.FormatInt(c.sent[conv]+1, 10) + " to " + strconv.FormatInt(seq-1, 10) +
					" could not be delivered: resume from the last seq you have"})); err != nil {
				return err
			}
		} else if err != nil {
			return err
		}
		if c.sent[conv] >= seq {
			return nil
		}
	}
	if !tracked && seq > 1 {
		// The first message of a conversation on this connection: those
		// stored since the connection opened but not here yet (they
		// crossed this one on the bus) come first. Older ones are the
		// history, for a resume.
		ms, err := messagesSince(ctx, c.svc.db, c.info.TenantID, conv, c.info.Since, seq, c.svc.cfg.ResumePage)
		if err != nil {
			c.svc.log.Warn("realtime: reading the messages before a first one failed", "conversation", conv, "err", err)
		}
		for _, m := range ms {
			if err := c.write(ctx, mustJSON(messageFrame{Type: "message", ChatMessage: m})); err != nil {
				return err
			}
			if !tracked {
				c.track(conv, m.Seq-1)
				tracked = true
			}
			c.sent[conv] = m.Seq
		}
	}
	if err := c.write(ctx, it.frame); err != nil {
		return err
	}
	if !tracked {
		c.track(conv, seq-1)
	}
	c.sent[conv] = seq
	if h := c.svc.hooks.Delivered; h != nil && it.env.accepted != 0 {
		h(c.info, conv, seq, time.Unix(0, it.env.accepted))
	}
	return nil
}

func (c *conn) track(conv string, after int64) {
	if c.sent == nil {
		c.sent, c.first = map[string]int64{}, map[string]int64{}
	}
	c.sent[conv], c.first[conv] = after, after+1
}

// resume writes the messages after seq after that this connection has not
// written, then a resumed frame. Messages this connection already wrote
// live (they came before the resume was read) are not written again, so
// every seq is written once; only those can precede older ones.
func (c *conn) resume(ctx context.Context, conv string, after int64) error {
	last, tracked := c.sent[conv]
	var err error
	switch {
	case !tracked:
		c.track(conv, after)
		err = c.catchUp(ctx, conv, -1)
	case after+1 < c.first[conv]:
		// What came before this connection's first live message.
		c.sent[conv] = after
		err = c.catchUp(ctx, conv, c.first[conv]-1)
		c.sent[conv], c.first[conv] = last, after+1
		if err == nil {
			err = c.catchUp(ctx, conv, -1)
		}
	default:
		c.sent[conv] = max(last, after)
		err = c.catchUp(ctx, conv, -1)
	}
	if errors.Is(err, errReading) {
		return c.write(ctx, mustJSON(errorFrame{Type: "error", Code: "internal", ConversationID: conv,
			Message: "reading the missed messages failed; send resume again"}))
	} else if err != nil {
		return err
	}
	return c.write(ctx, mustJSON(resumedFrame{Type: "resumed", ConversationID: conv, Seq: c.sent[conv]}))
}

// catchUp writes the stored messages after what the connection was sent,
// up to seq upTo (-1: all).
func (c *conn) catchUp(ctx context.Context, conv string, upTo int64) error {
	for {
		after := c.sent[conv]
		if upTo >= 0 && after >= upTo {
			return nil
		}
		ms, err := messagesAfter(ctx, c.svc.db, c.info.TenantID, conv, after, c.svc.cfg.ResumePage)
		if err != nil {
			c.svc.log.Warn("realtime: reading missed messages failed", "conversation", conv, "err", err)
			return errReading
		}
		for _, m := range ms {
			if upTo >= 0 && m.Seq > upTo {
				return nil
			}
			if err := c.write(ctx, mustJSON(messageFrame{Type: "message", ChatMessage: m})); err != nil {
				return err
			}
			c.sent[conv] = m.Seq
		}
		if len(ms) < c.svc.cfg.ResumePage {
			if upTo >= 0 && c.sent[conv] < upTo {
				return errReading // not all there yet
			}
			return nil
		}
	}
}
