package realtime

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
)

// Group commit of message stores. Every send waits for the transaction
// that stores it (an ack means durable), but concurrent sends share one:
// a send joins the pending batch, and a commit loop stores the whole
// batch in one transaction, then wakes each sender with its own result.
// While a batch commits, the next one fills, so batches grow with the
// load and a lone send pays no wait.
//
//	send ──► pending ──► loop: take ≤ maxBatch ─► one tx ─► wake senders
//	                      (up to CommitLoops loops at once)
//
// A request that fails on its own (not a member, blocked, a retried
// client_id…) fails before it writes anything, so the others commit. A
// batch whose transaction fails as a whole (a unique-index race with
// another node, a deadlock) is stored again one send per transaction.
type committer struct {
	s        *Service
	maxBatch int
	maxLoops int

	mu      sync.Mutex
	pending []*sendReq
	loops   int

	batches, sends atomic.Int64 // transactions committed and sends in them
}

// sendReq is one send waiting for its batch.
type sendReq struct {
	tenant string
	in     MessageInput
	att    string

	out  Sent
	err  error
	done chan struct{}
}

func newCommitter(s *Service) *committer {
	return &committer{s: s, maxBatch: s.cfg.CommitBatch, maxLoops: s.cfg.CommitLoops}
}

// store stores a validated message with the others pending and returns
// once its transaction has committed (or failed). ctx ending returns
// early with its error; the message may still be stored (a retry with
// the same client_id is acked with its seq).
func (c *committer) store(ctx context.Context, tenant string, in MessageInput, att string) (Sent, error) {
	r := &sendReq{tenant: tenant, in: in, att: att, done: make(chan struct{})}
	c.mu.Lock()
	c.pending = append(c.pending, r)
	if c.loops < c.maxLoops {
		c.loops++
		go c.loop()
	}
	c.mu.Unlock()
	select {
	case <-r.done:
		return r.out, r.err
	case <-ctx.Done():
		return Sent{}, ctx.Err()
	}
}

// loop commits batches until none is pending. Loops are started on
// demand, so an idle node runs none.
func (c *committer) loop() {
	for {
		c.mu.Lock()
		n := min(len(c.pending), c.maxBatch)
		if n == 0 {
			c.loops--
			c.mu.Unlock()
			return
		}
		batch := slices.Clone(c.pending[:n])
		c.pending = slices.Delete(c.pending, 0, n)
		c.mu.Unlock()
		c.commit(batch)
		for _, r := range batch {
			close(r.done)
		}
	}
}

// commit stores batch in one transaction, or, when that transaction
// fails as a whole, each send in its own.
func (c *committer) commit(batch []*sendReq) {
	// Conversations in one order in every batch, so that two batches on
	// PostgreSQL lock conversation rows in the same order (no deadlock);
	// the sort is stable, so sends to one conversation keep their order.
	slices.SortStableFunc(batch, func(a, b *sendReq) int {
		return cmp.Or(cmp.Compare(a.tenant, b.tenant), cmp.Compare(a.in.ConversationID, b.in.ConversationID))
	})
	ctx, cancel := batchContext(c.s.db)
	defer cancel()
	if len(batch) > 1 {
		err := c.s.db.InTx(ctx, func(tx *db.Tx) error {
			b := batchState{members: map[[2]string][]string{}, stored: map[sendKey]ChatMessage{}}
			for _, r := range batch {
				r.out, r.err = c.s.storeOne(ctx, tx, r.tenant, r.in, r.att, &b)
				if r.err != nil && !isOwnFailure(r.err) {
					return r.err
				}
			}
			return nil
		})
		if err == nil {
			c.batches.Add(1)
			c.sends.Add(int64(len(batch)))
			return
		}
		c.s.log.Debug("realtime: a batch of sends failed; storing them one by one", "sends", len(batch), "err", err)
	}
	for _, r := range batch {
		r.out, r.err = c.s.sendAlone(ctx, r.tenant, r.in, r.att)
		c.batches.Add(1)
		c.sends.Add(1)
	}
}

// isOwnFailure reports whether err refuses one send without spoiling the
// transaction it ran in (an *abacus.Error found before any write).
func isOwnFailure(err error) bool {
	e, ok := abacus.AsError(err)
	return ok && e.Kind != abacus.KindInternal
}

type sendKey struct{ tenant, conv, sender, client string }

// batchState is what the sends of one batch share: the members of each
// conversation read so far, and the sends stored, so that a client_id
// repeated within the batch is a duplicate of the first.
type batchState struct {
	members map[[2]string][]string
	stored  map[sendKey]ChatMessage
}

func (b *batchState) storedBefore(k sendKey) (ChatMessage, bool) {
	if b == nil {
		return ChatMessage{}, false
	}
	m, ok := b.stored[k]
	return m, ok
}

func (b *batchState) remember(k sendKey, m ChatMessage) {
	if b != nil {
		b.stored[k] = m
	}
}
