package realtime_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
	"github.com/abacusbilling/abacus/internal/realtime"
)

// Concurrent sends share transactions (group commit) and still get what
// one transaction per send gave: seqs 1, 2, 3… per conversation without
// gap, a client_id sent twice at once stored once (one of the two acks
// says duplicate, both carry its seq), and a refused send (not a member)
// spoils nothing of its batch.
func TestConcurrentSendsShareTransactions(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		cl := newCluster(t, d)
		svc, ctx := cl.node("rt-a", nil, realtime.Config{}).svc, tenantCtx()
		const convs, senders, each = 6, 4, 10 // senders per conversation, sends per sender
		ids := make([]string, convs)
		for i := range ids {
			ids[i] = conversation(t, svc, realtime.KindGroup, "u0", "u1", "u2", "u3")
		}
		type result struct {
			conv string
			sent realtime.Sent
			err  error
		}
		results := make(chan result, convs*(senders*each+3))
		var wg sync.WaitGroup
		send := func(conv, user, client string) {
			out, err := svc.Send(ctx, realtime.MessageInput{ConversationID: conv, SenderID: user, ClientID: client, Text: "hi"})
			results <- result{conv, out, err}
		}
		for _, conv := range ids {
			for u := range senders {
				wg.Go(func() {
					for k := range each {
						send(conv, fmt.Sprint("u", u), fmt.Sprint("c", k))
					}
				})
			}
			wg.Go(func() { send(conv, "u0", "twice") })
			wg.Go(func() { send(conv, "u0", "twice") })
			wg.Go(func() { send(conv, "stranger", "x") })
		}
		wg.Wait()
		close(results)
		seqs := map[string]map[int64]bool{}
		twice := map[string][]realtime.Sent{}
		refused := 0
		for r := range results {
			if r.err != nil {
				wantCode(t, r.err, "not_a_member")
				refused++
				continue
			}
			if r.sent.Message.ClientID == "twice" {
				twice[r.conv] = append(twice[r.conv], r.sent)
			}
			if r.sent.Duplicate {
				continue
			}
			if seqs[r.conv] == nil {
				seqs[r.conv] = map[int64]bool{}
			}
			if seqs[r.conv][r.sent.Message.Seq] {
				t.Fatalf("%s: seq %d given twice", r.conv, r.sent.Message.Seq)
			}
			seqs[r.conv][r.sent.Message.Seq] = true
		}
		if refused != convs {
			t.Fatalf("%d sends refused, want %d (the strangers')", refused, convs)
		}
		for _, conv := range ids {
			n := int64(senders*each + 1)
			for s := int64(1); s <= n; s++ {
				if !seqs[conv][s] {
					t.Fatalf("%s: seq %d missing (%d stored)", conv, s, len(seqs[conv]))
				}
			}
			tw := twice[conv]
			if len(tw) != 2 || tw[0].Message.Seq != tw[1].Message.Seq || tw[0].Duplicate == tw[1].Duplicate {
				t.Fatalf("%s: the same client_id twice: %+v", conv, tw)
			}
			h, err := svc.History(ctx, conv, realtime.HistoryQuery{After: new(int64(0)), Limit: 500})
			if err != nil || int64(len(h.Data)) != n {
				t.Fatalf("%s: history has %d messages, want %d (%v)", conv, len(h.Data), n, err)
			}
		}
		batches, sends := realtime.CommitStats(svc)
		if batches >= sends {
			t.Fatalf("%d sends in %d transactions: no send shared one", sends, batches)
		}
		t.Logf("%d sends in %d transactions", sends, batches)
	})
}
