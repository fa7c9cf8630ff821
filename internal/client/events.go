package client

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/abacusbilling/abacus"
)

// EventReader streams events from NDJSON, a JSON array of objects, a
// single JSON object, or objects simply written one after another.
type EventReader struct {
	br      *bufio.Reader
	dec     *json.Decoder
	inArray bool
	done    bool
	n       int
}

// NewEventReader returns a reader of the events in r.
func NewEventReader(r io.Reader) *EventReader {
	return &EventReader{br: bufio.NewReaderSize(r, 1<<20)}
}

// Next returns the next event's raw JSON object, or io.EOF after the last.
// Malformed input is an error naming the event's position (0-based).
func (r *EventReader) Next() (json.RawMessage, error) {
	if r.done {
		return nil, io.EOF
	}
	if r.dec == nil {
		first, err := firstByte(r.br)
		if err != nil {
			r.done = true
			return nil, err
		}
		r.dec = json.NewDecoder(r.br)
		if first == '[' {
			if _, err := r.dec.Token(); err != nil {
				return nil, fmt.Errorf("reading events: %w", err)
			}
			r.inArray = true
		}
	}
	if r.inArray && !r.dec.More() {
		r.done = true
		if _, err := r.dec.Token(); err != nil { // the closing ]
			return nil, fmt.Errorf("reading events: after event %d: %w", r.n, err)
		}
		if _, err := r.dec.Token(); !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("reading events: unexpected data after the JSON array")
		}
		return nil, io.EOF
	}
	var raw json.RawMessage
	if err := r.dec.Decode(&raw); err != nil {
		if errors.Is(err, io.EOF) && !r.inArray {
			r.done = true
			return nil, io.EOF
		}
		return nil, fmt.Errorf("reading event %d: %w", r.n, err)
	}
	if len(raw) == 0 || raw[0] != '{' {
		return nil, fmt.Errorf("reading event %d: an event must be a JSON object, got %.40s", r.n, raw)
	}
	r.n++
	return raw, nil
}

// firstByte returns the first byte that is not white space, unread.
func firstByte(br *bufio.Reader) (byte, error) {
	for {
		c, err := br.ReadByte()
		if err != nil {
			return 0, err
		}
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		}
		return c, br.UnreadByte()
	}
}

// Defaults are what Complete fills in on events that lack them.
type Defaults struct {
	Source string    // CloudEvents source; "" leaves it absent (the server will refuse the event)
	Now    time.Time // the time given to events without one; zero = time.Now()
}

// Complete returns ev with an id (a new time-ordered "evt_…" id), a time,
// specversion "1.0" and the default source added where they are missing,
// so that every retry of the event carries the same identity. Fields the
// client set are kept byte for byte. ev must be a JSON object.
func Complete(ev json.RawMessage, d Defaults) ([]byte, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(ev, &m); err != nil {
		return nil, fmt.Errorf("an event must be a JSON object: %w", err)
	}
	if m == nil {
		return nil, fmt.Errorf("an event must be a JSON object, not null")
	}
	missing := func(k string) bool {
		v, ok := m[k]
		return !ok || string(v) == "null" || string(v) == `""`
	}
	changed := false
	set := func(k string, v any) {
		b, _ := json.Marshal(v)
		m[k] = b
		changed = true
	}
	if missing("id") {
		set("id", abacus.NewID("evt"))
	}
	if missing("time") {
		now := d.Now
		if now.IsZero() {
			now = time.Now()
		}
		set("time", now.UTC().Format(time.RFC3339Nano))
	}
	if missing("specversion") {
		set("specversion", "1.0")
	}
	if missing("source") && d.Source != "" {
		set("source", d.Source)
	}
	if !changed {
		return bytes.TrimSpace(ev), nil
	}
	return json.Marshal(m)
}

// AppendBatch appends events as a JSON array to dst.
func AppendBatch(dst []byte, events [][]byte) []byte {
	dst = append(dst, '[')
	for i, e := range events {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, e...)
	}
	return append(dst, ']')
}
