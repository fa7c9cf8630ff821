package metering

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"
	"unsafe"
)

// batchVersion is the first byte of an encoded batch. A new layout gets a
// new version; DecodeBatch keeps reading the old ones.
const batchVersion byte = 2

// ErrBadBatch is wrapped by every DecodeBatch error.
var ErrBadBatch = errors.New("malformed event batch")

// EncodeBatch encodes validated events as one bus message:
//
//	version byte (2) | uvarint count | count × event
//	event = tenant id source specversion type subject datacontenttype dataschema
//	        (each: uvarint 0 = same as the previous event, else len+1, bytes)
//	        time, receivedAt (each: varint unix seconds, uvarint nanoseconds)
//	        data (uvarint len+1, bytes; 0 = no data)
//	        flags (version 2 only: bit 0 = TimeAssigned)
//
// Repeated strings (tenant, source, type…) cost one byte after the first
// event, so a batch is about as large as its data.
func EncodeBatch(events []Event) []byte {
	return AppendBatch(make([]byte, 0, EncodedSize(events)), events)
}

// EncodedSize returns an upper bound of the size EncodeBatch needs for
// events.
func EncodedSize(events []Event) int {
	size := 16
	for i := range events {
		e := &events[i]
		size += len(e.TenantID) + len(e.ID) + len(e.Source) + len(e.SpecVersion) + len(e.Type) + len(e.Subject) +
			len(e.DataContentType) + len(e.DataSchema) + len(e.Data) + 80
	}
	return size
}

// AppendBatch appends the encoding of events (see EncodeBatch) to b, so
// callers can reuse buffers.
func AppendBatch(b []byte, events []Event) []byte {
	return appendBatch(b, len(events), func(i int) *Event { return &events[i] })
}

// AppendBatchAt appends the encoding of events[idx[0]], events[idx[1]], …
// (see EncodeBatch) to b, without copying the events first.
func AppendBatchAt(b []byte, events []Event, idx []int32) []byte {
	return appendBatch(b, len(idx), func(i int) *Event { return &events[idx[i]] })
}

func appendBatch(b []byte, n int, at func(int) *Event) []byte {
	b = append(b, batchVersion)
	b = binary.AppendUvarint(b, uint64(n))
	var prev *Event
	for i := 0; i < n; i++ {
		e := at(i)
		var p Event
		if prev != nil {
			p = *prev
		}
		b = appendField(b, e.TenantID, p.TenantID, prev != nil)
		b = appendField(b, e.ID, p.ID, prev != nil)
		b = appendField(b, e.Source, p.Source, prev != nil)
		b = appendField(b, e.SpecVersion, p.SpecVersion, prev != nil)
		b = appendField(b, e.Type, p.Type, prev != nil)
		b = appendField(b, e.Subject, p.Subject, prev != nil)
		b = appendField(b, e.DataContentType, p.DataContentType, prev != nil)
		b = appendField(b, e.DataSchema, p.DataSchema, prev != nil)
		b = appendTime(b, e.Time)
		b = appendTime(b, e.ReceivedAt)
		if e.Data == nil {
			b = append(b, 0)
		} else {
			b = binary.AppendUvarint(b, uint64(len(e.Data))+1)
			b = append(b, e.Data...)
		}
		var flags byte
		if e.TimeAssigned {
			flags |= 1
		}
		b = append(b, flags)
		prev = e
	}
	return b
}

func appendField(b []byte, s, prev string, hasPrev bool) []byte {
	if hasPrev && s == prev {
		return append(b, 0)
	}
	b = binary.AppendUvarint(b, uint64(len(s))+1)
	return append(b, s...)
}

func appendTime(b []byte, t time.Time) []byte {
	b = binary.AppendVarint(b, t.Unix())
	return binary.AppendUvarint(b, uint64(t.Nanosecond()))
}

// DecodeBatch decodes a message made by EncodeBatch. The events share one
// private copy of b (strings and Data), so b may be reused afterwards; Data
// is read-only. Errors wrap ErrBadBatch.
func DecodeBatch(b []byte) ([]Event, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("%w: empty message", ErrBadBatch)
	}
	own := make([]byte, len(b))
	copy(own, b)
	return AppendDecoded(nil, own)
}

// AppendDecoded decodes a message made by EncodeBatch and appends its
// events to dst, without copying b: the events' strings and Data point
// into b, which must stay unchanged while they are in use. On error dst is
// returned unchanged (its length; appended elements may be overwritten).
// Errors wrap ErrBadBatch.
func AppendDecoded(dst []Event, b []byte) ([]Event, error) {
	if len(b) == 0 {
		return dst, fmt.Errorf("%w: empty message", ErrBadBatch)
	}
	version := b[0]
	if version != 1 && version != 2 {
		return dst, fmt.Errorf("%w: unknown version %d", ErrBadBatch, b[0])
	}
	own := b
	r := reader{b: own, s: unsafe.String(&own[0], len(own)), i: 1}
	n := r.uvarint()
	// Every event takes at least 12 bytes (13 in version 2), so a count beyond that is a lie.
	if r.err != nil || n > uint64(len(own))/12 {
		return dst, fmt.Errorf("%w: bad event count", ErrBadBatch)
	}
	start := len(dst)
	dst = slices.Grow(dst, int(n))[:start+int(n)]
	events := dst[start:]
	var prev Event
	for i := range events {
		e := &events[i]
		*e = Event{}
		e.TenantID = r.field(prev.TenantID)
		e.ID = r.field(prev.ID)
		e.Source = r.field(prev.Source)
		e.SpecVersion = r.field(prev.SpecVersion)
		e.Type = r.field(prev.Type)
		e.Subject = r.field(prev.Subject)
		e.DataContentType = r.field(prev.DataContentType)
		e.DataSchema = r.field(prev.DataSchema)
		e.Time = r.time()
		e.ReceivedAt = r.time()
		if l := r.uvarint(); l > 0 && r.err == nil {
			e.Data = r.bytes(l - 1)
		}
		if version >= 2 {
			if f := r.uvarint(); f&1 != 0 {
				e.TimeAssigned = true
			}
		}
		if r.err != nil {
			return dst[:start], fmt.Errorf("%w: event %d: %w", ErrBadBatch, i, r.err)
		}
		prev = *e
	}
	if r.i != len(own) {
		return dst[:start], fmt.Errorf("%w: %d trailing bytes", ErrBadBatch, len(own)-r.i)
	}
	return dst, nil
}

var errShort = errors.New("truncated")

type reader struct {
	b   []byte
	s   string // the same bytes as b
	i   int
	err error
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b[r.i:])
	if n <= 0 {
		r.err = errShort
		return 0
	}
	r.i += n
	return v
}

func (r *reader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b[r.i:])
	if n <= 0 {
		r.err = errShort
		return 0
	}
	r.i += n
	return v
}

func (r *reader) span(l uint64) (int, int) {
	if r.err != nil {
		return 0, 0
	}
	if l > uint64(len(r.b)-r.i) {
		r.err = errShort
		return 0, 0
	}
	st := r.i
	r.i += int(l)
	return st, r.i
}

func (r *reader) field(prev string) string {
	l := r.uvarint()
	if l == 0 {
		return prev
	}
	st, end := r.span(l - 1)
	return r.s[st:end]
}

func (r *reader) bytes(l uint64) []byte {
	st, end := r.span(l)
	return r.b[st:end:end]
}

func (r *reader) time() time.Time {
	sec := r.varint()
	ns := r.uvarint()
	if ns >= 1e9 {
		r.err = errors.New("bad nanoseconds")
		return time.Time{}
	}
	return time.Unix(sec, int64(ns)).UTC()
}
