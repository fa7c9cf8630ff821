package loadgen

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// bareRealtime is the realtime baseline: a small server speaking the part
// of the realtime contract the generator uses (tokens, conversations,
// send → ack and message to every connection of every member) on
// coder/websocket, with nothing stored and no bus. The same scenario
// against it and against a realtime node shows what storage, the bus and
// the protocol's checks cost; its tests also make it an independent
// WebSocket implementation for the generator's own client.
type bareRealtime struct {
	key   string
	mu    sync.Mutex
	convs map[string][]string
	seq   map[string]int64
	conns map[string]map[*websocket.Conn]bool
}

// NewBareRealtime returns the baseline's handler; API calls need the
// bearer token key.
func NewBareRealtime(key string) http.Handler {
	s := &bareRealtime{key: key, convs: map[string][]string{}, seq: map[string]int64{}, conns: map[string]map[*websocket.Conn]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/realtime/tokens", s.token)
	mux.HandleFunc("POST /api/v1/conversations", s.conversation)
	mux.HandleFunc("GET /api/v1/realtime/ws", s.serveWS)
	return mux
}

// StartBareRealtime serves the baseline on addr ("127.0.0.1:0": a free
// port) until Close.
func StartBareRealtime(addr, key string) (*BareHTTP, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("starting the bare realtime baseline: %w", err)
	}
	srv := &http.Server{Handler: NewBareRealtime(key), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return &BareHTTP{URL: "http://" + ln.Addr().String(), srv: srv}, nil
}

func (s *bareRealtime) token(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer "+s.key {
		http.Error(w, "no key", http.StatusUnauthorized)
		return
	}
	var in struct {
		UserID string `json:"user_id"`
	}
	_ = json.NewDecoder(r.Body).Decode(&in)
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(map[string]string{"token": "t:" + in.UserID})
}

func (s *bareRealtime) conversation(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Kind      string   `json:"kind"`
		MemberIDs []string `json:"member_ids"`
	}
	_ = json.NewDecoder(r.Body).Decode(&in)
	s.mu.Lock()
	id := "cnv_" + strconv.Itoa(len(s.convs))
	s.convs[id] = in.MemberIDs
	s.mu.Unlock()
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(map[string]string{"id": id, "kind": in.Kind})
}

func (s *bareRealtime) serveWS(w http.ResponseWriter, r *http.Request) {
	user, ok := strings.CutPrefix(r.URL.Query().Get("token"), "t:")
	if !ok {
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"status":401,"code":"unauthorized"}`))
		return
	}
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled})
	if err != nil {
		return
	}
	s.mu.Lock()
	if s.conns[user] == nil {
		s.conns[user] = map[*websocket.Conn]bool{}
	}
	s.conns[user][c] = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.conns[user], c)
		s.mu.Unlock()
	}()
	ctx := r.Context()
	_ = c.Write(ctx, websocket.MessageText, []byte(`{"type":"ready","user_id":`+strconv.Quote(user)+`}`))
	for {
		_, p, err := c.Read(ctx)
		if err != nil {
			return
		}
		var f struct {
			Type           string `json:"type"`
			ConversationID string `json:"conversation_id"`
			ClientID       string `json:"client_id"`
			Text           string `json:"text"`
		}
		if err := json.Unmarshal(p, &f); err != nil || f.Type != "send" {
			_ = c.Write(ctx, websocket.MessageText, []byte(`{"type":"error","code":"bad_frame","message":"?"}`))
			continue
		}
		s.mu.Lock()
		s.seq[f.ConversationID]++
		seq := s.seq[f.ConversationID]
		var to []*websocket.Conn
		for _, m := range s.convs[f.ConversationID] {
			for mc := range s.conns[m] {
				to = append(to, mc)
			}
		}
		s.mu.Unlock()
		ack, _ := json.Marshal(map[string]any{"type": "ack", "conversation_id": f.ConversationID, "client_id": f.ClientID, "seq": seq})
		_ = c.Write(ctx, websocket.MessageText, ack)
		msg, _ := json.Marshal(map[string]any{"type": "message", "conversation_id": f.ConversationID, "client_id": f.ClientID,
			"seq": seq, "sender_id": user, "text": f.Text})
		for _, mc := range to {
			_ = mc.Write(ctx, websocket.MessageText, msg)
		}
	}
}
