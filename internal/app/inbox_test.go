package app

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/config"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/notifications"
)

// The wiring: a staff member signed in to the whole app gets a notification
// in their inbox over the in_app channel, live on their SSE stream and in
// the list; the preferences policy is the app's.
func TestStaffInboxThroughTheApp(t *testing.T) {
	t.Parallel()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.HTTP.Addr = "127.0.0.1:0"
	a := New(cfg, Options{Version: "test", Log: slog.New(slog.DiscardHandler)})
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Stop(context.Background()) })
	base := "http://" + a.Addr()
	post := func(path string, body any) map[string]any {
		b, _ := json.Marshal(body)
		res, err := http.Post(base+path, "application/json", bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(res.Body).Decode(&out)
		if res.StatusCode/100 != 2 {
			t.Fatalf("%s: %d %v", path, res.StatusCode, out)
		}
		return out
	}
	pw := "quite a long passphrase 77"
	signup := post("/api/v1/auth/signup", map[string]any{"email": "ada@acme.test", "password": pw, "organization": "Acme"})
	tenant := signup["tenant"].(map[string]any)["id"].(string)
	user := signup["user"].(map[string]any)["id"].(string)
	token := post("/api/v1/auth/login", map[string]any{"email": "ada@acme.test", "password": pw})["access_token"].(string)

	req, _ := http.NewRequest("GET", base+"/api/v1/me/notifications/stream", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	lines := bufio.NewScanner(res.Body)
	if res.StatusCode != 200 || !lines.Scan() || lines.Text() != ": connected" {
		t.Fatalf("stream: %d %q", res.StatusCode, lines.Text())
	}

	n := a.modules().notify
	var id string
	err = a.DB.InTx(context.Background(), func(tx *db.Tx) (err error) {
		id, err = n.Enqueue(context.Background(), tx, notifications.Message{TenantID: tenant, Template: "notifications.digest",
			To: notifications.Recipient{Kind: notifications.RecipientStaff, ID: user}, Channels: []string{notifications.ChannelInApp},
			Category: "usage", Data: map[string]any{"category": "usage", "count": 1,
				"items": []any{map[string]any{"subject": "API calls at 80 %", "text": "8,000 of 10,000"}}}})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	// The notifications role may have taken it already; this does not wait.
	if err := n.DeliverNotification(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 1)
	go func() {
		for lines.Scan() {
			if d, ok := strings.CutPrefix(lines.Text(), "data: "); ok {
				got <- d
				return
			}
		}
	}()
	select {
	case d := <-got:
		if !strings.Contains(d, "API calls at 80 %") {
			t.Fatalf("event %s", d)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("no notification on the staff stream")
	}
	req, _ = http.NewRequest("GET", base+"/api/v1/me/notifications", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	lr, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer lr.Body.Close()
	b, _ := io.ReadAll(lr.Body)
	var list abacus.List[map[string]any]
	if err := json.Unmarshal(b, &list); err != nil || len(list.Data) != 1 {
		t.Fatalf("list: %s", b)
	}
	// The bootstrap API key has no inbox.
	req, _ = http.NewRequest("GET", base+"/api/v1/me/notifications", nil)
	req.Header.Set("Authorization", "Bearer "+a.BootstrapKey)
	kr, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	kr.Body.Close()
	if kr.StatusCode != http.StatusForbidden {
		t.Fatalf("api key: %d", kr.StatusCode)
	}
}
