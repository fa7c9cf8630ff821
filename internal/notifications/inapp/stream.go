package inapp

import (
	"context"
	"net/http"
	"time"
)

// ServeStream is GET /api/v1/me/notifications/stream: server-sent events
// carrying me's new items ("event: notification", "id: <item id>",
// "data: <item JSON>"). With Last-Event-ID (header, or the last_event_id
// query parameter) the items after that id are sent first. A comment line
// every Heartbeat keeps an idle stream open; a client that cannot keep up
// with its buffer is disconnected and resumes.
func (s *Service) ServeStream(w http.ResponseWriter, r *http.Request, me Person) {
	last := r.Header.Get("Last-Event-ID")
	if last == "" {
		last = r.URL.Query().Get("last_event_id")
	}
	st := s.hub.open(me) // before the replay, so nothing falls between
	defer s.hub.leave(me, st)
	var missed []InboxItem
	if last != "" {
		var err error
		if missed, err = s.after(r.Context(), me, last); err != nil {
			s.log.Warn("in-app stream: resuming failed", "tenant_id", me.TenantID, "err", err)
		}
	}
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // proxies must not buffer a stream
	w.WriteHeader(http.StatusOK)
	sent := map[string]bool{}
	for _, it := range missed {
		sent[it.ID] = true
		if !s.write(w, rc, it) {
			return
		}
	}
	if _, err := w.Write([]byte(": connected\n\n")); err != nil || rc.Flush() != nil {
		return
	}
	s.pump(r.Context(), w, rc, st, sent)
}

// pump writes st's items and heartbeats until the client goes or falls
// too far behind.
func (s *Service) pump(ctx context.Context, w http.ResponseWriter, rc *http.ResponseController, st *stream, sent map[string]bool) {
	beat := time.NewTicker(s.cfg.Heartbeat)
	defer beat.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-st.gone:
			return
		case <-beat.C:
			_ = rc.SetWriteDeadline(time.Now().Add(s.cfg.Heartbeat))
			if _, err := w.Write([]byte(": heartbeat\n\n")); err != nil || rc.Flush() != nil {
				return
			}
		case it := <-st.items:
			if sent[it.ID] { // already sent by the replay
				continue
			}
			if !s.write(w, rc, it) {
				return
			}
		}
	}
}

// write sends one event; false when the connection is gone.
func (s *Service) write(w http.ResponseWriter, rc *http.ResponseController, it InboxItem) bool {
	b, err := encodeEvent(it)
	if err != nil {
		s.log.Warn("in-app stream: encoding item", "item_id", it.ID, "err", err)
		return true
	}
	// The server's write timeout is for requests, not streams: each write
	// gets its own deadline.
	_ = rc.SetWriteDeadline(time.Now().Add(s.cfg.Heartbeat + 30*time.Second))
	if _, err := w.Write(b); err != nil {
		return false
	}
	return rc.Flush() == nil
}
