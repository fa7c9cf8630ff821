package risk

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
)

// applier stores the journal's batches in SQLite off the answer path:
// every ApplyInterval (or at once when ApplyBatch events wait, or a
// request waits for its batch: a barrier or a request with commit hooks),
// in one transaction that also records the last batch stored. A
// transaction's cost is mostly per commit and per B-tree page written, so
// hundreds of events share what a group commit of ten paid alone.
type applier struct {
	s *Service

	mu      sync.Mutex
	batches []journalBatch
	reqs    []*commitReq // answered once what came before them is stored
	events  int
	oldest  time.Time

	wake chan struct{}
	quit chan struct{}
	done chan struct{}
}

func newApplier(s *Service) *applier {
	return &applier{s: s, wake: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{})}
}

// push queues a batch the journal holds.
func (a *applier) push(b journalBatch) {
	a.mu.Lock()
	first := len(a.batches) == 0
	if first {
		a.oldest = time.Now()
	}
	a.batches = append(a.batches, b)
	a.events += len(b.items)
	full := a.events >= a.s.cfg.ApplyBatch
	a.mu.Unlock()
	if first || full { // the first sets the applier's timer
		a.signal()
	}
}

// pushReq queues a request that waits until it (its items and commit
// hooks, if any) and every batch before it are stored.
func (a *applier) pushReq(r *commitReq) {
	a.mu.Lock()
	a.reqs = append(a.reqs, r)
	a.mu.Unlock()
	a.signal()
}

// awaitRoom waits until fewer than limit events wait to be stored, for at
// most d, and reports whether they do. Only a database that stalls or
// fails makes it wait, so it polls.
func (a *applier) awaitRoom(limit int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		a.mu.Lock()
		n := a.events
		a.mu.Unlock()
		if n < limit {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// errBacklog refuses requests while the applier is ApplyBacklog events
// behind: they were not written, so a retry decides them once.
func errBacklog() error {
	e := abacus.Errorf(abacus.KindUnavailable, "risk_backlog",
		"risk events are waiting to be stored faster than the database stores them; retry after the delay in Retry-After")
	e.RetryAfter = 1
	return e
}

func (a *applier) signal() {
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// close stores what is queued and stops.
func (a *applier) close() {
	close(a.quit)
	<-a.done
}

func (a *applier) run() {
	defer close(a.done)
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	quitting := false
	for {
		bs, rs, wait := a.take(quitting)
		if len(bs) > 0 || len(rs) > 0 {
			if !a.apply(bs, rs) {
				if quitting {
					a.s.log.Error("risk: stopping with journal batches not stored; they are stored at the next start", "batches", len(bs))
					return
				}
				wait = time.Second // retry; barriers were answered the error
			} else {
				continue
			}
		}
		if quitting {
			return
		}
		if wait > 0 {
			t.Reset(wait)
		}
		select {
		case <-a.wake:
		case <-t.C:
		case <-a.quit:
			quitting = true
		}
		t.Stop()
	}
}

// take returns what is due: everything when a request waits, ApplyBatch
// events wait, the oldest batch waited ApplyInterval or the applier
// stops; else how long until the oldest batch is due (0: nothing queued).
func (a *applier) take(all bool) ([]journalBatch, []*commitReq, time.Duration) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.batches) == 0 && len(a.reqs) == 0 {
		return nil, nil, 0
	}
	if !all && len(a.reqs) == 0 && a.events < a.s.cfg.ApplyBatch {
		if wait := a.s.cfg.ApplyInterval - time.Since(a.oldest); wait > 0 {
			return nil, nil, wait
		}
	}
	bs, rs := a.batches, a.reqs
	a.batches, a.reqs, a.events = nil, nil, 0
	return bs, rs, 0
}

// apply stores bs and rs in one transaction and answers rs. A request
// whose commit hooks fail is answered that error and left out. When the
// transaction fails, the requests are answered the error and the batches
// queued again (they are in the journal and must be stored); it returns
// false.
func (a *applier) apply(bs []journalBatch, rs []*commitReq) bool {
	var items []*pending
	for _, b := range bs {
		items = append(items, b.items...)
	}
	var seq uint64
	if len(bs) > 0 {
		seq = bs[len(bs)-1].seq
	}
	start := time.Now()
	for {
		refused, err := a.s.store(items, rs, seq)
		if refused != nil {
			refused.done <- err
			rs = without(rs, refused)
			continue
		}
		if err != nil {
			a.s.log.Error("risk: storing journal batches failed; retrying", "batches", len(bs), "err", err)
			for _, r := range rs {
				r.done <- err
			}
			a.requeue(bs)
			return false
		}
		break
	}
	a.s.metrics.applySeconds.Observe(time.Since(start).Seconds())
	if seq > 0 {
		a.s.journal.dropApplied(seq)
	}
	var hooked []*pending
	for _, r := range rs {
		hooked = append(hooked, r.items...)
	}
	a.s.observeStored(hooked)
	for _, r := range rs {
		r.done <- nil
	}
	return true
}

// requeue puts batches that failed to store back in front of the queue.
func (a *applier) requeue(bs []journalBatch) {
	if len(bs) == 0 {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, b := range bs {
		n += len(b.items)
	}
	a.batches = append(append([]journalBatch(nil), bs...), a.batches...)
	a.events += n
	a.oldest = time.Time{} // due at once, after the retry's wait
}

func without(rs []*commitReq, r *commitReq) []*commitReq {
	out := make([]*commitReq, 0, len(rs))
	for _, x := range rs {
		if x != r {
			out = append(out, x)
		}
	}
	return out
}

// journalAnswering is the group commit with the journal: the requests'
// events are written to it in one batch and answered; a request that
// must be answered only once it is in SQLite (it has commit hooks, or it
// is a barrier with no events) goes to the applier, after the batch.
func (s *Service) journalAnswering(reqs []*commitReq) {
	var plain, later []*commitReq
	var items []*pending
	for _, r := range reqs {
		if len(r.items) == 0 || db.HasCommitHooks(r.hooks) {
			later = append(later, r)
			continue
		}
		plain = append(plain, r)
		items = append(items, r.items...)
	}
	if len(items) > 0 {
		now := s.clock.Now()
		for _, p := range items {
			p.received = now
		}
		s.metrics.events.Observe(float64(len(items)))
		start := time.Now()
		b, err := s.journal.append(now, items)
		s.metrics.seconds.Observe(time.Since(start).Seconds())
		if err == nil {
			s.applier.push(b)
			s.observeStored(items)
		}
		for _, r := range plain {
			r.done <- err
		}
	}
	for _, r := range later {
		s.applier.pushReq(r)
	}
}

// replayJournal stores the journal's batches that SQLite does not hold
// yet (acknowledged before a crash), in transactions of up to ApplyBatch
// events, and opens the journal for new batches.
func (s *Service) replayJournal(ctx context.Context) error {
	applied, err := journalApplied(ctx, s.db)
	if err != nil {
		return err
	}
	var items []*pending
	var seq uint64
	batches := 0
	flush := func() error {
		if len(items) == 0 {
			return nil
		}
		if _, err := s.store(items, nil, seq); err != nil {
			return err
		}
		items = items[:0]
		return nil
	}
	last, err := s.journal.replay(applied, func(b journalBatch) error {
		items, seq = append(items, b.items...), b.seq
		batches++
		if len(items) >= s.cfg.ApplyBatch {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		return err
	}
	if batches > 0 {
		s.log.Info("risk journal replayed", "batches", batches, "through", last)
	}
	return s.journal.start(last)
}

// journalQueue holds the requests waiting for the journal. There is no
// writer goroutine: the request that finds nobody writing leads (writes
// what is queued, its own included, and answers the others), so under
// load a group commit costs no hand-off to a goroutine that would wait
// for a processor behind the requests it is to answer.
type journalQueue struct {
	mu      sync.Mutex
	reqs    []*commitReq
	leading bool
}

// leadRounds bounds the batches one request writes as leader before it
// hands the lead to the first request queued, so its own answer waits
// for at most this many writes.
const leadRounds = 4

// errLead, received by a waiting request, makes it the leader.
var errLead = errors.New("risk: lead the journal's group commit")

// add queues r and reports whether the caller must lead.
func (q *journalQueue) add(r *commitReq) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.reqs = append(q.reqs, r)
	if q.leading {
		return false
	}
	q.leading = true
	return true
}

// leadJournal writes what is queued, batch after batch, until nothing is
// or leadRounds batches are written; then the first request queued leads.
func (s *Service) leadJournal() {
	q := &s.jq
	for round := 0; ; round++ {
		q.mu.Lock()
		batch := q.reqs
		if len(batch) == 0 {
			q.leading = false
			q.mu.Unlock()
			return
		}
		if round == leadRounds {
			q.mu.Unlock()
			batch[0].done <- errLead // queued, so not yet answered: the send does not block
			return
		}
		q.reqs = nil
		q.mu.Unlock()
		s.journalAnswering(s.admit(batch))
	}
}

// admit returns batch when the applier has room for its events (see
// Config.ApplyBacklog); else it answers the requests that carry events
// errBacklog and returns the others, barriers that add nothing to store.
func (s *Service) admit(batch []*commitReq) []*commitReq {
	events := 0
	for _, r := range batch {
		events += len(r.items)
	}
	if events == 0 || s.applier.awaitRoom(s.cfg.ApplyBacklog, s.cfg.BacklogWait) {
		return batch
	}
	s.log.Warn("risk: refusing events, the database is not storing them fast enough", "events", events, "backlog", s.cfg.ApplyBacklog)
	kept := batch[:0]
	for _, r := range batch {
		if len(r.items) == 0 {
			kept = append(kept, r)
			continue
		}
		r.done <- errBacklog()
	}
	return kept
}

// awaitJournal waits for r's answer, leading when handed the lead.
func (s *Service) awaitJournal(r *commitReq) error {
	for {
		select {
		case err := <-r.done:
			if err == errLead {
				s.leadJournal()
				continue
			}
			return err
		case <-s.done:
			select {
			case err := <-r.done:
				if err != errLead {
					return err
				}
			default:
			}
			return errStopped
		}
	}
}

// journalBarrier queues an empty request and waits until the applier
// stored everything before it. When ctx ends first, a goroutine takes
// the answer, and the lead if it is handed over, so no request waits on
// one that left.
func (s *Service) journalBarrier(ctx context.Context, r *commitReq) error {
	select {
	case <-s.stop:
		return errStopped
	default:
	}
	if s.jq.add(r) {
		s.leadJournal()
	}
	wait := make(chan error, 1)
	go func() { wait <- s.awaitJournal(r) }()
	select {
	case err := <-wait:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}
