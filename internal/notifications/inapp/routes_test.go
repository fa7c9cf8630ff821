package inapp_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
	"github.com/abacusbilling/abacus/internal/enduser"
	"github.com/abacusbilling/abacus/internal/notifications/inapp"
)

func call(t *testing.T, method, url, token string, body any, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, url, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode/100 == 2 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v %s", method, url, err, b)
		}
	}
	return resp.StatusCode
}

// The inbox over HTTP: pages by cursor, counts, marks seen, read and
// archived, marks all read, and shows nobody another person's items.
func TestInboxStates(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		clock := abacus.SystemClock{}
		eu := enduser.NewService(d, clock, nil, enduser.WithBaseURL("https://abacus.test"))
		userID, token := endUser(t, d, eu)
		n := newNode(t, d, clock, eu, nil, inapp.Config{})
		for i := range 5 {
			notify(t, d, n.notify, userID, fmt.Sprintf("https://app.test/%d", i))
		}
		base := n.url + "/api/v1/end-user/me/notifications"

		var page1, page2 abacus.List[inapp.InboxItem]
		if s := call(t, "GET", base+"?limit=3", token, nil, &page1); s != 200 || len(page1.Data) != 3 || page1.NextCursor == "" {
			t.Fatalf("page 1: %d %+v", s, page1)
		}
		call(t, "GET", base+"?limit=3&cursor="+page1.NextCursor, token, nil, &page2)
		if len(page2.Data) != 2 || page2.NextCursor != "" || page2.Data[0].ID >= page1.Data[2].ID {
			t.Fatalf("page 2: %+v", page2)
		}
		newest, oldest := page1.Data[0], page2.Data[1]

		var c inapp.InboxCounts
		call(t, "GET", base+"/counts", token, nil, &c)
		if c != (inapp.InboxCounts{Unread: 5, Unseen: 5}) {
			t.Fatalf("counts %+v", c)
		}
		var it inapp.InboxItem
		call(t, "PATCH", base+"/"+newest.ID, token, map[string]any{"seen": true}, &it)
		if it.SeenAt == nil || it.ReadAt != nil {
			t.Fatalf("seen %+v", it)
		}
		call(t, "PATCH", base+"/"+oldest.ID, token, map[string]any{"read": true}, &it)
		if it.SeenAt == nil || it.ReadAt == nil {
			t.Fatalf("read %+v", it)
		}
		call(t, "GET", base+"/counts", token, nil, &c)
		if c != (inapp.InboxCounts{Unread: 4, Unseen: 3}) {
			t.Fatalf("counts after seen and read %+v", c)
		}
		call(t, "PATCH", base+"/"+newest.ID, token, map[string]any{"archived": true}, &it)
		var list abacus.List[inapp.InboxItem]
		call(t, "GET", base, token, nil, &list)
		if len(list.Data) != 4 {
			t.Fatalf("inbox after archiving: %d", len(list.Data))
		}
		call(t, "GET", base+"?state=archived", token, nil, &list)
		if len(list.Data) != 1 || list.Data[0].ID != newest.ID {
			t.Fatalf("archived %+v", list.Data)
		}
		var done inapp.InboxReadAll
		call(t, "POST", base+"/read-all", token, nil, &done)
		call(t, "GET", base+"/counts", token, nil, &c)
		if done.Updated != 4 || c != (inapp.InboxCounts{}) {
			t.Fatalf("read-all %d, counts %+v", done.Updated, c)
		}

		// Another end user of the tenant sees none of it.
		ctx := enduser.SystemContext(context.Background(), tenant)
		bob, err := eu.CreateUser(ctx, enduser.NewUser{Email: "bob@example.com", Password: "correct horse battery", Name: "Bob"})
		if err != nil {
			t.Fatal(err)
		}
		bobToken := tokenFor(t, d, eu, bob)
		if s := call(t, "GET", base+"/"+oldest.ID, bobToken, nil, nil); s != 404 {
			t.Fatalf("another person's item: %d", s)
		}
		if s := call(t, "PATCH", base+"/"+oldest.ID, bobToken, map[string]any{"archived": false}, nil); s != 404 {
			t.Fatalf("changing another person's item: %d", s)
		}
		call(t, "GET", base, bobToken, nil, &list)
		if len(list.Data) != 0 {
			t.Fatalf("bob sees %d items", len(list.Data))
		}
		if s := call(t, "GET", base+"?state=later", token, nil, nil); s != 400 {
			t.Fatalf("unknown state: %d", s)
		}
	})
}
