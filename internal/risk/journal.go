package risk

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	gojson "github.com/goccy/go-json"
)

// journal is the risk module's append-only log on SQLite: a group commit
// writes its events and decisions to it in one write(2) and answers, and
// the applier (apply.go) stores them in SQLite later, many groups per
// transaction. A write that returned is in the kernel's page cache, so it
// survives the process being killed, as a SQLite commit with
// synchronous=NORMAL does (neither survives the machine losing power
// before the kernel writes it back).
//
// The log is a directory of segments named by the sequence number of
// their first batch; a segment whose batches are all applied is deleted,
// which drops its pages before the kernel ever writes them to disk.
//
// A batch is framed as
//
//	length uint32 | crc32c uint32 | seq uint64 | received int64 (µs) | items
//
// (little endian; the checksum covers seq to the end), so a write torn by
// a crash of the machine is found and dropped on replay.
type journal struct {
	dir          string
	segmentBytes int64 // a new segment starts past this size

	mu   sync.Mutex
	f    *os.File
	size int64
	seq  uint64 // the last batch written
	// written is seq, for readers that do not take mu.
	written atomic.Uint64
	// applied is the last batch stored in the database.
	applied  atomic.Uint64
	segments []uint64 // first seq of each segment, oldest first; the last is f's
	buf      []byte
}

const (
	defaultSegmentBytes = 16 << 20
	journalHeader       = 24
	journalMaxBatch     = 256 << 20
	itemEvent           = 1
	itemQuestion        = 2
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// journalBatch is one group commit's items as written.
type journalBatch struct {
	seq      uint64
	received time.Time
	items    []*pending
}

// openJournal opens dir (creating it) for replay; call start before
// appending.
func openJournal(dir string) (*journal, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("risk journal: %w", err)
	}
	j := &journal{dir: dir, segmentBytes: defaultSegmentBytes}
	names, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("risk journal: %w", err)
	}
	for _, e := range names {
		first, ok := strings.CutSuffix(e.Name(), ".log")
		if !ok {
			continue
		}
		n, err := strconv.ParseUint(first, 10, 64)
		if err != nil {
			continue
		}
		j.segments = append(j.segments, n)
	}
	slices.Sort(j.segments)
	return j, nil
}

func (j *journal) path(first uint64) string {
	return filepath.Join(j.dir, fmt.Sprintf("%020d.log", first))
}

// replay calls fn with every whole batch after applied, in order, and
// returns the last sequence number the log holds (applied when none is
// later). A torn or corrupt frame ends its segment: nothing after it in
// that segment was acknowledged whole.
func (j *journal) replay(applied uint64, fn func(journalBatch) error) (uint64, error) {
	last := applied
	for _, first := range j.segments {
		err := j.readSegment(first, func(b journalBatch) error {
			last = max(last, b.seq)
			if b.seq <= applied {
				return nil
			}
			return fn(b)
		})
		if err != nil {
			return 0, err
		}
	}
	return last, nil
}

func (j *journal) readSegment(first uint64, fn func(journalBatch) error) error {
	f, err := os.Open(j.path(first))
	if err != nil {
		return fmt.Errorf("risk journal: %w", err)
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<20)
	head := make([]byte, 8)
	var body []byte
	for {
		if _, err := io.ReadFull(r, head); err != nil {
			return nil // the end, or a torn header
		}
		n := binary.LittleEndian.Uint32(head)
		if n < journalHeader-8 || n > journalMaxBatch {
			return nil
		}
		body = slices.Grow(body[:0], int(n))[:n]
		if _, err := io.ReadFull(r, body); err != nil {
			return nil
		}
		if crc32.Checksum(body, castagnoli) != binary.LittleEndian.Uint32(head[4:]) {
			return nil
		}
		b, err := decodeBatch(body)
		if err != nil {
			return fmt.Errorf("risk journal %s: %w", j.path(first), err)
		}
		if err := fn(b); err != nil {
			return err
		}
	}
}

// start deletes the replayed segments and opens a new one whose batches
// follow seq (the last one applied or logged, whichever is later).
func (j *journal) start(seq uint64) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, first := range j.segments {
		if err := os.Remove(j.path(first)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("risk journal: %w", err)
		}
	}
	j.segments, j.seq = nil, seq
	j.written.Store(seq)
	j.applied.Store(seq)
	return j.rotate()
}

// rotate starts a segment for the next batch; j.mu is held.
func (j *journal) rotate() error {
	first := j.seq + 1
	f, err := os.OpenFile(j.path(first), os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("risk journal: %w", err)
	}
	if j.f != nil {
		j.f.Close()
	}
	j.f, j.size = f, 0
	j.segments = append(j.segments, first)
	return nil
}

// append writes items as the next batch in one write and returns it.
func (j *journal) append(received time.Time, items []*pending) (journalBatch, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f == nil {
		return journalBatch{}, errors.New("risk journal: closed")
	}
	if j.size >= j.segmentBytes {
		if err := j.rotate(); err != nil {
			return journalBatch{}, err
		}
	}
	b := journalBatch{seq: j.seq + 1, received: received, items: items}
	j.buf = encodeBatch(j.buf[:0], b)
	if _, err := j.f.Write(j.buf); err != nil {
		// A short write leaves a torn frame: cut it off, or start a new
		// segment when that fails too, so the next batch is readable.
		if terr := j.f.Truncate(j.size); terr != nil {
			if rerr := j.rotate(); rerr != nil {
				j.f.Close()
				j.f = nil
			}
		}
		return journalBatch{}, fmt.Errorf("risk journal: %w", err)
	}
	j.seq = b.seq
	j.written.Store(b.seq)
	j.size += int64(len(j.buf))
	if cap(j.buf) > 4<<20 {
		j.buf = nil
	}
	return b, nil
}

// dropApplied deletes the segments, other than the one written to, whose
// batches are all applied.
func (j *journal) dropApplied(applied uint64) {
	j.applied.Store(applied)
	j.mu.Lock()
	var drop []uint64
	for len(j.segments) > 1 && j.segments[1]-1 <= applied {
		drop = append(drop, j.segments[0])
		j.segments = j.segments[1:]
	}
	j.mu.Unlock()
	for _, first := range drop {
		_ = os.Remove(j.path(first)) // one left behind is replayed and skipped
	}
}

func (j *journal) close() {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f != nil {
		j.f.Close()
		j.f = nil
	}
}

// encodeBatch appends b's frame to buf.
func encodeBatch(buf []byte, b journalBatch) []byte {
	at := len(buf)
	buf = append(buf, make([]byte, 8)...)
	buf = binary.LittleEndian.AppendUint64(buf, b.seq)
	buf = binary.LittleEndian.AppendUint64(buf, uint64(b.received.UnixMicro()))
	buf = binary.AppendUvarint(buf, uint64(len(b.items)))
	for _, p := range b.items {
		if p.ev != nil {
			buf = append(buf, itemEvent)
			buf = appendBytes(buf, p.tenant, string(p.evJSON), p.d.ID, p.d.Decision)
			buf = appendBytes(buf, string(p.fJSON), string(p.dJSON))
			continue
		}
		buf = append(buf, itemQuestion)
		buf = appendBytes(buf, p.tenant, p.d.ID, p.d.EventID, p.d.Decision, string(p.dJSON), p.customer)
		buf = binary.AppendVarint(buf, p.d.CreatedAt.UnixMicro())
	}
	body := buf[at+8:]
	binary.LittleEndian.PutUint32(buf[at:], uint32(len(body)))
	binary.LittleEndian.PutUint32(buf[at+4:], crc32.Checksum(body, castagnoli))
	return buf
}

func appendBytes(buf []byte, ss ...string) []byte {
	for _, s := range ss {
		buf = binary.AppendUvarint(buf, uint64(len(s)))
		buf = append(buf, s...)
	}
	return buf
}

// decodeBatch reads a frame's body (after length and checksum); the
// events' decisions carry what storing them needs (id, decision, the
// event) and what the DecisionHooks read.
func decodeBatch(body []byte) (journalBatch, error) {
	d := decoder{b: body}
	b := journalBatch{seq: d.u64(), received: time.UnixMicro(int64(d.u64())).UTC()}
	n := d.uvarint()
	if d.err == nil && n > uint64(len(body)) {
		d.err = errors.New("bad item count")
	}
	for i := uint64(0); i < n && d.err == nil; i++ {
		p := &pending{received: b.received}
		switch d.byte() {
		case itemEvent:
			p.tenant = d.str()
			p.evJSON = []byte(d.str())
			p.d = &Decision{ID: d.str(), Decision: d.str()}
			p.fJSON, p.dJSON = []byte(d.str()), []byte(d.str())
			if d.err != nil {
				break
			}
			var ev Event
			if err := gojson.Unmarshal(p.evJSON, &ev); err != nil {
				return b, fmt.Errorf("event %d: %w", i, err)
			}
			ev.finish()
			p.ev, p.customer = &ev, ev.CustomerID
			p.d.EventID, p.d.stored = ev.ID, &ev
		case itemQuestion:
			p.tenant = d.str()
			p.d = &Decision{ID: d.str(), EventID: d.str(), Decision: d.str()}
			p.dJSON, p.customer = []byte(d.str()), d.str()
			p.d.CreatedAt = time.UnixMicro(d.varint()).UTC()
		default:
			d.err = errors.New("unknown item kind")
		}
		b.items = append(b.items, p)
	}
	if d.err != nil {
		return b, d.err
	}
	return b, nil
}

// decoder reads a frame's fields, remembering the first error.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail() { d.err, d.b = errors.New("truncated batch"), nil }

func (d *decoder) u64() uint64 {
	if len(d.b) < 8 {
		d.fail()
		return 0
	}
	v := binary.LittleEndian.Uint64(d.b)
	d.b = d.b[8:]
	return v
}

func (d *decoder) byte() byte {
	if len(d.b) < 1 {
		d.fail()
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) str() string {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail()
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}
