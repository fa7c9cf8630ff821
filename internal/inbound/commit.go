package inbound

import (
	"context"
	"time"

	"github.com/abacusbilling/abacus/internal/db"
)

// Group commit: concurrent Receive calls record their documents in one
// transaction. The first caller to find no commit running becomes the
// leader and commits what has queued, batch after batch, until the queue
// is empty; the others wait for their result. Nothing waits on a timer:
// a lone upload commits at once; under load, each commit takes everything
// that arrived during the previous one (a SQLite writer commits one
// transaction at a time; PostgreSQL pays a round trip and a WAL flush per
// commit).

// maxBatch bounds the documents of one transaction.
const maxBatch = 128

// pending is one document waiting for its commit.
type pending struct {
	tenant string
	d      *Document
	now    time.Time
	done   chan error
}

type committer struct {
	queue   []*pending
	leading bool
}

// record commits p's metadata row and event (with others' in the same
// transaction when several wait) and returns p's own outcome.
func (s *Service) record(ctx context.Context, p *pending) error {
	p.done = make(chan error, 1)
	s.mu.Lock()
	s.commits.queue = append(s.commits.queue, p)
	if s.commits.leading {
		s.mu.Unlock()
		return <-p.done
	}
	s.commits.leading = true
	for {
		batch := s.commits.queue[:min(len(s.commits.queue), maxBatch)]
		s.commits.queue = s.commits.queue[len(batch):]
		if len(batch) == 0 {
			s.commits.leading = false
			s.mu.Unlock()
			return <-p.done
		}
		s.mu.Unlock()
		// The leader commits for everyone: its own cancellation must not
		// fail the others' documents.
		s.commitBatch(context.WithoutCancel(ctx), batch)
		s.mu.Lock()
	}
}

// commitBatch records batch in one transaction; should that fail (one
// document's bytes were committed concurrently: a unique violation), each
// is recorded alone so one cannot fail the others.
func (s *Service) commitBatch(ctx context.Context, batch []*pending) {
	err := s.db.InTx(ctx, func(tx *db.Tx) error {
		for _, p := range batch {
			if err := s.recordOne(ctx, tx, p); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil || len(batch) == 1 {
		for _, p := range batch {
			p.done <- err
		}
		return
	}
	for _, p := range batch {
		p.d.DuplicateOf = ""
		p.done <- s.db.InTx(ctx, func(tx *db.Tx) error { return s.recordOne(ctx, tx, p) })
	}
}

// recordOne records p's metadata row, flagged when it duplicates another
// document (one committed, or one earlier in the same transaction), and
// its document.received event.
func (s *Service) recordOne(ctx context.Context, tx *db.Tx, p *pending) error {
	d := p.d
	if d.Number != "" && d.SupplierKey != "" {
		dup, err := findDuplicate(ctx, tx, p.tenant, d.SupplierKey, d.Number, d.IssueDate)
		if err != nil {
			return err
		}
		d.DuplicateOf = dup
	}
	if err := insertDocument(ctx, tx, p.tenant, d); err != nil {
		return err
	}
	_, err := DocumentReceived.Record(ctx, tx, p.tenant, d.ID, p.now, ReceivedEvent{
		ID: d.ID, Format: string(d.Format), Source: string(d.Source), Status: d.Status, Kind: d.Kind, Number: d.Number,
		IssueDate: d.IssueDate, SupplierName: d.SupplierName, Currency: d.Currency, Payable: d.Payable,
		Violations: len(d.Report.Violations), DuplicateOf: d.DuplicateOf, ReceivedAt: d.ReceivedAt,
	})
	return err
}
