package inapp

import (
	"io"
	"log/slog"
	"testing"
)

// A stream whose client does not keep up is cut off once its buffer is
// full (it resumes with Last-Event-ID) instead of growing without bound;
// other streams of the person keep theirs.
func TestSlowStreamIsCutOffAtItsBuffer(t *testing.T) {
	t.Parallel()
	h := newHub(nil, slog.New(slog.NewTextHandler(io.Discard, nil)), 2)
	me := Person{TenantID: "ten_a", Kind: "end_user", ID: "eu_1"}
	slow, fast := h.open(me), h.open(me)
	for i := range 3 {
		h.publish(me, InboxItem{ID: string(rune('a' + i))})
		<-fast.items
	}
	select {
	case <-slow.gone:
	default:
		t.Fatal("the slow stream was not cut off")
	}
	select {
	case <-fast.gone:
		t.Fatal("the fast stream was cut off")
	default:
	}
	if len(slow.items) != 2 {
		t.Fatalf("slow stream holds %d items, want its buffer of 2", len(slow.items))
	}
	h.leave(me, slow)
	h.leave(me, fast)
	if len(h.streams) != 0 {
		t.Fatal("streams left behind")
	}
}
