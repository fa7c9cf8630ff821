package realtime

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/httpapi"
)

// Config tunes the gateway. Zero fields take the defaults of
// (Config).withDefaults.
type Config struct {
	// Node names this process in connection listings and the ready frame;
	// default host name and process id.
	Node string
	// MaxFrameBytes is the largest frame a client may send; a larger one
	// closes the connection with 1009.
	MaxFrameBytes int64
	// MaxTextBytes is the longest message text.
	MaxTextBytes int
	// SendQueue bounds each connection's frames waiting to be written; a
	// client that lets more pile up is disconnected (4009).
	SendQueue int
	// SendQueueBytes bounds the same queue in bytes.
	SendQueueBytes int
	// WriteTimeout is the longest one frame may take to write.
	WriteTimeout time.Duration
	// PingInterval is how often the server pings; a pong missing for
	// PingTimeout closes the connection.
	PingInterval, PingTimeout time.Duration
	// RatePerSecond and RateBurst limit the frames a connection sends (a
	// token bucket); over it frames get rate_limited errors, and
	// RateCloseAfter refusals in a row close the connection (4008).
	RatePerSecond  float64
	RateBurst      int
	RateCloseAfter int
	// TypingInterval is the least time between two typing frames the
	// server forwards for one connection and conversation.
	TypingInterval time.Duration
	// MemberLimit is the default and largest member limit of a group.
	MemberLimit int
	// ResumePage is how many messages one read of a resume fetches.
	ResumePage int
	// DrainTimeout bounds how long shutdown waits for connections to close.
	DrainTimeout time.Duration
	// BusBuffer is the number of messages from NATS waiting for this
	// node's dispatcher; beyond it NATS drops (clients recover by resume).
	BusBuffer int
	// OfflineDelay is how long a message to a member with no live
	// connection waits before it becomes a notification (one read on
	// another device meanwhile is not notified); OfflinePoll how often due
	// ones are looked for.
	OfflineDelay, OfflinePoll time.Duration
	// CommitBatch is the most sends one transaction stores (group
	// commit); CommitLoops the most such transactions at once.
	CommitBatch, CommitLoops int
	// PresenceGroupLimit is the largest group whose members are told of
	// each other's presence (Contacts); default 100.
	PresenceGroupLimit int
}

func (c Config) withDefaults() Config {
	if c.Node == "" {
		h, _ := os.Hostname()
		c.Node = fmt.Sprintf("%s-%d", h, os.Getpid())
	}
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	if c.MaxFrameBytes <= 0 {
		c.MaxFrameBytes = 64 << 10
	}
	def(&c.MaxTextBytes, 8<<10)
	def(&c.SendQueue, 1024)
	def(&c.SendQueueBytes, 4<<20)
	defDur(&c.WriteTimeout, 10*time.Second)
	defDur(&c.PingInterval, 25*time.Second)
	defDur(&c.PingTimeout, 10*time.Second)
	if c.RatePerSecond <= 0 {
		c.RatePerSecond = 50
	}
	def(&c.RateBurst, 100)
	def(&c.RateCloseAfter, 100)
	defDur(&c.TypingInterval, time.Second)
	def(&c.MemberLimit, 10000)
	def(&c.ResumePage, 500)
	defDur(&c.DrainTimeout, 10*time.Second)
	def(&c.BusBuffer, 1<<16)
	defDur(&c.OfflineDelay, 10*time.Second)
	defDur(&c.OfflinePoll, min(time.Second, c.OfflineDelay/2))
	def(&c.CommitBatch, 256)
	def(&c.CommitLoops, 4)
	def(&c.PresenceGroupLimit, 100)
	return c
}

// ConnInfo describes one live WebSocket connection.
type ConnInfo struct {
	ID         string    `json:"id" example:"rtc_01jd6z8q4m7x2v3b9n5k1c0abc"`
	TenantID   string    `json:"-"`
	UserID     string    `json:"user_id" example:"user_ada"`
	Node       string    `json:"node" example:"rt-1"`
	Since      time.Time `json:"since"`
	UserAgent  string    `json:"user_agent"`
	RemoteAddr string    `json:"remote_addr"`
	// Auth is how it authenticated: "token" (a connection token) or
	// "end_user" (an end user's access token).
	Auth string `json:"auth" enum:"token,end_user"`
}

// CloseError refuses or ends a connection with a WebSocket close code.
// Hooks return it to choose the code (e.g. CloseTooManyConns).
type CloseError struct {
	Code   int
	Reason string
}

func (e *CloseError) Error() string { return fmt.Sprintf("websocket close %d: %s", e.Code, e.Reason) }

// Hooks let other parts (presence, moderation, entitlements, offline
// notifications, metrics) take part in the gateway. Every hook is
// optional; set them with SetHooks before the first connection.
type Hooks struct {
	// Connect runs after authentication, before the connection is
	// registered: it admits the connection or refuses it (an error: a
	// *CloseError closes with its code, any other error with 1011).
	Connect func(ctx context.Context, c ConnInfo) error
	// Disconnect runs once for every connection Connect admitted, when it
	// has ended (or failed to register), with the close code sent or
	// received (0 when the socket just broke).
	Disconnect func(c ConnInfo, code int)
	// BeforeSend runs before a message from a connection is stored; an
	// *abacus.Error refuses it with an error frame of its code (blocked,
	// muted, rate_limited, quota_exceeded…), a *CloseError closes.
	BeforeSend func(ctx context.Context, c ConnInfo, in MessageInput) error
	// Sent runs after a message was stored and published, from a
	// connection or the API (not for a duplicate): offline notifications,
	// metering.
	Sent func(ctx context.Context, tenant string, s Sent)
	// Delivered runs after a message frame was written to a socket, with
	// the time the message was accepted (delivery latency).
	Delivered func(c ConnInfo, conversationID string, seq int64, accepted time.Time)
	// Online reports whether a user has a live connection on any node
	// (cluster-wide presence); nil: on this node.
	Online func(tenant, user string) bool
	// Notify turns an offline notice into a notification inside tx (the
	// notifications module's Enqueue), which also claims the notice; nil:
	// no offline notifications. See offline.go.
	Notify func(ctx context.Context, tx *db.Tx, n OfflineNotice) error
}

// Service is the messaging module: conversations and messages in the
// database, and this node's WebSocket gateway.
type Service struct {
	db     *db.DB
	clock  abacus.Clock
	log    *slog.Logger
	cfg    Config
	keys   keyring
	hub    *hub
	commit *committer
	hooks  Hooks
	// auth checks tokens that are not connection tokens (an end user's
	// access token); nil: only connection tokens.
	auth httpapi.Authenticator

	mu       sync.Mutex
	draining bool
	conns    sync.WaitGroup

	// afterReady, set only by tests, runs when a connection's ready frame
	// is queued, before its URL's resumes.
	afterReady func(ConnInfo)
}

// New returns the service. nc carries messages between nodes; nil keeps
// delivery inside this process (tests, a single node without a bus).
func New(d *db.DB, clock abacus.Clock, log *slog.Logger, nc *nats.Conn, cfg Config) *Service {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg = cfg.withDefaults()
	s := &Service{db: d, clock: clock, log: log, cfg: cfg, keys: keyring{keys: map[string]tenantSecret{}}}
	s.hub = newHub(s, nc)
	s.commit = newCommitter(s)
	return s
}

// SetHooks sets the hooks (see Hooks).
func (s *Service) SetHooks(h Hooks) { s.hooks = h }

// SetAuthenticator sets how tokens other than connection tokens are
// checked: the HTTP edge's authenticator, whose end-user principals
// (kind "end_user") may connect.
func (s *Service) SetAuthenticator(a httpapi.Authenticator) { s.auth = a }

// Node returns this node's name.
func (s *Service) Node() string { return s.cfg.Node }

// Run serves until ctx ends, then drains: every connection is closed
// with 1012 (reconnect, to another node) and Run waits for them to end,
// at most DrainTimeout.
func (s *Service) Run(ctx context.Context) error {
	go s.runOffline(ctx)
	<-ctx.Done()
	s.Drain()
	return nil
}

// Drain refuses new connections and closes the open ones with 1012.
func (s *Service) Drain() {
	s.mu.Lock()
	s.draining = true
	s.mu.Unlock()
	for _, c := range s.hub.all() {
		c.close(CloseServiceRestart, "server shutting down: reconnect")
	}
	done := make(chan struct{})
	go func() { s.conns.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(s.cfg.DrainTimeout):
		s.log.Warn("realtime: connections still open after the drain timeout")
	}
	s.hub.close()
}

// Connections returns this node's live connections of a user of the
// caller's tenant, oldest first.
func (s *Service) Connections(ctx context.Context, user string) ([]ConnInfo, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return nil, err
	}
	return s.hub.connections(tenant, user), nil
}

// LocalConnections returns every live connection of this node.
func (s *Service) LocalConnections() []ConnInfo {
	var out []ConnInfo
	for _, c := range s.hub.all() {
		out = append(out, c.info)
	}
	return out
}

// Disconnect closes this node's connections of a user with code.
func (s *Service) Disconnect(tenant, user string, code int, reason string) int {
	n := 0
	for _, c := range s.hub.local(tenant, user) {
		c.close(codeOf(code), reason)
		n++
	}
	return n
}

// PublishToUsers sends frame (a JSON object with a "type") to every
// connection of the users, on every node. conversation, when set, is the
// conversation the frame is about: connections whose grants exclude it
// do not get it.
func (s *Service) PublishToUsers(tenant string, users []string, conversation string, frame any) {
	s.hub.publish(tenant, users, envelope{kind: kindFrame, conv: conversation}, mustJSON(frame))
}

// ServerEvent is a tenant backend's event for users or a conversation's
// members.
type ServerEvent struct {
	UserIDs        []string        `json:"user_ids,omitempty" maxItems:"1000" doc:"users to send it to"`
	ConversationID string          `json:"conversation_id,omitempty" doc:"or: every member of this conversation"`
	Name           string          `json:"name" minLength:"1" maxLength:"64" example:"order.shipped"`
	Data           json.RawMessage `json:"data,omitempty" doc:"any JSON (at most 16 KiB)"`
}

// Published says how many users an event went to.
type Published struct {
	Users int `json:"users" example:"2"`
}

// PublishEvent sends an event frame to users or to a conversation's
// members, live only (it is not stored).
func (s *Service) PublishEvent(ctx context.Context, e ServerEvent) (Published, error) {
	tenant, err := abacus.TenantFrom(ctx)
	if err != nil {
		return Published{}, err
	}
	var v abacus.Validation
	if (len(e.UserIDs) == 0) == (e.ConversationID == "") {
		v.Add("body.user_ids", "give user_ids or conversation_id, one of them")
	}
	for i, u := range e.UserIDs {
		if why := validUserID(u); why != "" {
			v.Add("body.user_ids["+itoa(i)+"]", "%s", why)
		}
	}
	if e.Name == "" || len(e.Name) > 64 {
		v.Add("body.name", "must be 1 to 64 bytes")
	}
	if len(e.Data) > 16<<10 {
		v.Add("body.data", "is larger than 16 KiB")
	}
	if err := v.Err("invalid_event"); err != nil {
		return Published{}, err
	}
	users := e.UserIDs
	if e.ConversationID != "" {
		if _, err := getConversation(ctx, s.db, tenant, e.ConversationID); err != nil {
			return Published{}, err
		}
		if users, err = memberIDs(ctx, s.db, tenant, e.ConversationID); err != nil {
			return Published{}, err
		}
	}
	s.PublishToUsers(tenant, users, e.ConversationID, eventFrame{Type: "event", ConversationID: e.ConversationID, Name: e.Name, Data: e.Data})
	return Published{Users: len(users)}, nil
}
