package risk

import (
	"testing"
	"time"
)

// gather takes what is queued; with a due time it also takes what
// arrives until then, but never more than MaxCommitBatch events.
func TestGatherWaitsUntilDueUnderLoad(t *testing.T) {
	s := &Service{cfg: Config{MaxCommitBatch: 5}.withDefaults(), commitCh: make(chan *commitReq, 16)}
	req := func(n int) *commitReq { return &commitReq{items: make([]*pending, n)} }

	s.commitCh <- req(1)
	if got := s.gather([]*commitReq{req(1)}, time.Time{}); len(got) != 2 {
		t.Fatalf("without a due time: %d requests, want the first and the one queued", len(got))
	}

	go func() {
		time.Sleep(20 * time.Millisecond)
		s.commitCh <- req(1)
	}()
	start := time.Now()
	got := s.gather([]*commitReq{req(1)}, start.Add(100*time.Millisecond))
	if len(got) != 2 {
		t.Fatalf("with a due time: %d requests, want the one that arrived before it too", len(got))
	}
	if waited := time.Since(start); waited < 100*time.Millisecond || waited > time.Second {
		t.Fatalf("waited %s, want until the due time (100ms)", waited)
	}

	for range 3 {
		s.commitCh <- req(2)
	}
	start = time.Now()
	got = s.gather([]*commitReq{req(1)}, start.Add(2*time.Second))
	if n := events(got); n != 5 {
		t.Fatalf("gathered %d events, want MaxCommitBatch (5) at once", n)
	}
	if time.Since(start) > time.Second {
		t.Fatal("a full batch waited for its due time")
	}
	<-s.commitCh // the request left queued

	start = time.Now()
	got = s.gather([]*commitReq{req(1)}, start.Add(50*time.Millisecond))
	if len(got) != 1 || time.Since(start) < 50*time.Millisecond {
		t.Fatalf("gathered %d requests in %s; want the first alone, after the due time", len(got), time.Since(start))
	}
}

func events(reqs []*commitReq) int {
	n := 0
	for _, r := range reqs {
		n += len(r.items)
	}
	return n
}
