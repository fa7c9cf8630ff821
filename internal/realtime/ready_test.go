package realtime_test

import (
	"fmt"
	"testing"

	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
	"github.com/abacusbilling/abacus/internal/realtime"
)

// Once a client has read ready, a frame published to its user on another
// node reaches it (CI once lost a presence frame that way: ready was
// written before the user's subject was subscribed). The frame is
// published from node a while node b's connection sits right after its
// ready frame, deterministically, and it must come after the URL's
// resumed messages, not before them and not never.
func TestReadyMeansLiveFramesArrive(t *testing.T) {
	t.Parallel()
	d := dbtest.Open(t, db.SQLite)
	cl := newCluster(t, d)
	a := cl.node("rt-a", nil, realtime.Config{})
	b := cl.node("rt-b", nil, realtime.Config{})
	conv := conversation(t, a.svc, realtime.KindGroup, "ann", "ben")
	for i := 1; i <= 3; i++ {
		if _, err := a.svc.Send(tenantCtx(), realtime.MessageInput{ConversationID: conv, SenderID: "ann",
			ClientID: fmt.Sprint(i), Text: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}

	readyRead, published := make(chan struct{}), make(chan error, 1)
	realtime.SetAfterReady(b.svc, func(c realtime.ConnInfo) {
		if c.UserID != "ben" {
			return
		}
		<-readyRead // the client has ready in hand
		a.svc.PublishToUsers(tenant, []string{"ben"}, "", map[string]any{"type": "event", "name": "hello"})
		// Flushed: the bus has routed the frame before the connection goes on.
		published <- a.nc.Flush()
	})
	ben := dialURL(t, b, "token="+b.token(t, "ben")+"&resume="+conv+":1")
	ben.expect("ready")
	close(readyRead)
	if err := <-published; err != nil {
		t.Fatal(err)
	}
	inOrder(t, ben.messages(conv, 2), 2)
	if f := ben.expect("resumed"); f.num("seq") != 3 {
		t.Fatalf("resumed %v", f)
	}
	if f := ben.expect("event"); f.str("name") != "hello" {
		t.Fatalf("event %v", f)
	}
}
