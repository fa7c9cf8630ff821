package backup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The JetStream API subjects of a stream's snapshot and restore (the
// protocol the nats CLI speaks: chunks acknowledged one by one).
const (
	snapshotSubject = "$JS.API.STREAM.SNAPSHOT."
	restoreSubject  = "$JS.API.STREAM.RESTORE."
	chunkSize       = 128 << 10
)

// Stream is one stream of a backup: what the restore request needs, and
// where each durable consumer stood before the database was copied.
type Stream struct {
	Name      string          `json:"name"`
	Config    json.RawMessage `json:"config"`
	State     json.RawMessage `json:"state"`
	Consumers []Consumer      `json:"consumers,omitempty"`
}

// Consumer is a durable consumer's position at T0 (see the package doc).
type Consumer struct {
	Name string `json:"name"`
	// AckFloor is the last stream sequence acknowledged with everything
	// before it; 0 when none was.
	AckFloor uint64 `json:"ack_floor"`
	// Created is when the consumer was made: where one that acknowledged
	// nothing yet and delivers only new messages starts again.
	Created time.Time `json:"created"`
}

type apiError struct {
	Code        int    `json:"code"`
	Description string `json:"description"`
}

func (e *apiError) Error() string { return fmt.Sprintf("%s (%d)", e.Description, e.Code) }

// positions lists every stream with its durable consumers' ack floors.
func positions(ctx context.Context, js jetstream.JetStream) ([]Stream, error) {
	var out []Stream
	names := js.StreamNames(ctx)
	for name := range names.Name() {
		s, err := js.Stream(ctx, name)
		if err != nil {
			return nil, fmt.Errorf("reading stream %s: %w", name, err)
		}
		st := Stream{Name: name}
		infos := s.ListConsumers(ctx)
		for ci := range infos.Info() {
			if ci.Config.Durable == "" {
				continue // ephemeral: gone with its client
			}
			st.Consumers = append(st.Consumers, Consumer{Name: ci.Name, AckFloor: ci.AckFloor.Stream, Created: ci.Created})
		}
		if err := infos.Err(); err != nil {
			return nil, fmt.Errorf("listing consumers of %s: %w", name, err)
		}
		out = append(out, st)
	}
	return out, names.Err()
}

// snapshot streams the server's snapshot of stream st (with its
// consumers) into w and fills st's config and state.
func snapshot(ctx context.Context, nc *nats.Conn, st *Stream, w io.Writer) error {
	inbox := nc.NewInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		return err
	}
	defer func() { _ = sub.Unsubscribe() }()
	req, _ := json.Marshal(map[string]any{"deliver_subject": inbox, "chunk_size": chunkSize})
	msg, err := nc.RequestWithContext(ctx, snapshotSubject+st.Name, req)
	if err != nil {
		return fmt.Errorf("asking for a snapshot of %s: %w", st.Name, err)
	}
	var resp struct {
		Error  *apiError       `json:"error"`
		Config json.RawMessage `json:"config"`
		State  json.RawMessage `json:"state"`
	}
	if err := json.Unmarshal(msg.Data, &resp); err != nil {
		return fmt.Errorf("snapshot of %s: %w", st.Name, err)
	}
	if resp.Error != nil {
		return fmt.Errorf("snapshot of %s: %w", st.Name, resp.Error)
	}
	st.Config, st.State = resp.Config, resp.State
	for {
		m, err := sub.NextMsgWithContext(ctx)
		if err != nil {
			return fmt.Errorf("snapshot of %s: %w", st.Name, err)
		}
		if len(m.Data) == 0 && m.Reply == "" { // the end, with a status
			if s := m.Header.Get("Status"); s != "" && s != "204" {
				return fmt.Errorf("snapshot of %s: the server stopped it: %s %s", st.Name, s, m.Header.Get("Description"))
			}
			return nil
		}
		if _, err := w.Write(m.Data); err != nil {
			return err
		}
		if m.Reply == "" {
			continue // the last, short chunk is not acknowledged
		}
		if err := m.Respond(nil); err != nil { // the ack frees a slot of the window
			return err
		}
	}
}

// restore sends a snapshot taken by snapshot back to the server, which
// creates the stream (it must not exist) with its messages and consumers.
func restore(ctx context.Context, nc *nats.Conn, st Stream, r io.Reader) error {
	req, _ := json.Marshal(map[string]any{"config": st.Config, "state": st.State})
	msg, err := nc.RequestWithContext(ctx, restoreSubject+st.Name, req)
	if err != nil {
		return fmt.Errorf("asking to restore %s: %w", st.Name, err)
	}
	var resp struct {
		Error   *apiError `json:"error"`
		Deliver string    `json:"deliver_subject"`
	}
	if err := json.Unmarshal(msg.Data, &resp); err != nil {
		return fmt.Errorf("restoring %s: %w", st.Name, err)
	}
	if resp.Error != nil {
		return fmt.Errorf("restoring %s: %w", st.Name, resp.Error)
	}
	buf := make([]byte, chunkSize)
	for {
		n, rerr := io.ReadFull(r, buf)
		if n > 0 {
			if err := sendChunk(ctx, nc, resp.Deliver, buf[:n]); err != nil {
				return fmt.Errorf("restoring %s: %w", st.Name, err)
			}
		}
		if errors.Is(rerr, io.EOF) || errors.Is(rerr, io.ErrUnexpectedEOF) {
			break
		}
		if rerr != nil {
			return rerr
		}
	}
	// An empty message ends it; the answer is the stream created.
	end, err := nc.RequestWithContext(ctx, resp.Deliver, nil)
	if err != nil {
		return fmt.Errorf("finishing the restore of %s: %w", st.Name, err)
	}
	var done struct {
		Error *apiError `json:"error"`
	}
	if err := json.Unmarshal(end.Data, &done); err != nil {
		return fmt.Errorf("finishing the restore of %s: %w", st.Name, err)
	}
	if done.Error != nil {
		return fmt.Errorf("restoring %s: %w", st.Name, done.Error)
	}
	return nil
}

func sendChunk(ctx context.Context, nc *nats.Conn, subject string, chunk []byte) error {
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	ack, err := nc.RequestWithContext(cctx, subject, chunk)
	if err != nil {
		return err
	}
	if len(ack.Data) > 0 { // an error answer ends the restore
		var r struct {
			Error *apiError `json:"error"`
		}
		if json.Unmarshal(ack.Data, &r) == nil && r.Error != nil {
			return r.Error
		}
	}
	return nil
}

// rewind makes each consumer of st deliver again from just after its ack
// floor at T0 (the package doc says why), keeping its configuration: the
// server resets a consumer to a sequence its delivery policy allows. One
// whose policy does not (deliver new or last), or that had acknowledged
// nothing, is made again to start there (or where it was created).
func rewind(ctx context.Context, js jetstream.JetStream, st Stream) error {
	s, err := js.Stream(ctx, st.Name)
	if err != nil {
		return err
	}
	for _, c := range st.Consumers {
		if c.AckFloor > 0 {
			_, err := s.ResetConsumerToSequence(ctx, c.Name, c.AckFloor+1)
			if err == nil || errors.Is(err, jetstream.ErrConsumerNotFound) {
				continue
			}
			if !errors.Is(err, jetstream.ErrConsumerInvalidReset) {
				return fmt.Errorf("rewinding consumer %s of %s: %w", c.Name, st.Name, err)
			}
		}
		if err := remake(ctx, s, c); err != nil {
			return fmt.Errorf("rewinding consumer %s of %s: %w", c.Name, st.Name, err)
		}
	}
	return nil
}

// remake deletes consumer c and makes it again with its configuration,
// starting after its ack floor, or where it was created when it delivers
// only new messages.
func remake(ctx context.Context, s jetstream.Stream, c Consumer) error {
	cons, err := s.Consumer(ctx, c.Name)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	cfg := cons.CachedInfo().Config
	switch {
	case c.AckFloor > 0:
		cfg.DeliverPolicy, cfg.OptStartSeq, cfg.OptStartTime = jetstream.DeliverByStartSequencePolicy, c.AckFloor+1, nil
	case cfg.DeliverPolicy == jetstream.DeliverNewPolicy || cfg.DeliverPolicy == jetstream.DeliverLastPolicy ||
		cfg.DeliverPolicy == jetstream.DeliverLastPerSubjectPolicy:
		created := c.Created
		cfg.DeliverPolicy, cfg.OptStartSeq, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, 0, &created
	}
	if err := s.DeleteConsumer(ctx, c.Name); err != nil {
		return err
	}
	_, err = s.CreateConsumer(ctx, cfg)
	return err
}
