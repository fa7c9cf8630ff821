package push_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
	"github.com/abacusbilling/abacus/internal/httpapi"
	"github.com/abacusbilling/abacus/internal/notifications/push"
)

// The device routes over HTTP, as an end user calls them (the
// authenticator stands in for the end users' token check).
func TestDeviceRoutes(t *testing.T) {
	t.Parallel()
	d := dbtest.Open(t, db.SQLite)
	p, _ := setup(t, d)
	s := httpapi.New(httpapi.Config{}, d, slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())
	s.SetAuthenticator(func(_ context.Context, tok string) (*abacus.Principal, error) {
		return &abacus.Principal{TenantID: tenant, Kind: "end_user", ID: tok}, nil
	})
	push.RegisterRoutes(s, p)
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	do := func(method, path, who string, body any) (int, map[string]any) {
		var rd io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
		req, _ := http.NewRequest(method, srv.URL+"/api/v1/end-user/me"+path, rd)
		req.Header.Set("Authorization", "Bearer "+who)
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}

	status, key := do("GET", "/push-key", ada.ID, nil)
	if status != 200 || len(key["public_key"].(string)) != 87 {
		t.Fatalf("push key: %d %v", status, key)
	}
	status, sub := do("POST", "/push-subscriptions", ada.ID, newDevice(t).subscription("https://push.example/abc"))
	if status != 201 || sub["provider"] != "web" {
		t.Fatalf("subscribe: %d %v", status, sub)
	}
	id := sub["id"].(string)
	if _, list := do("GET", "/push-subscriptions", ada.ID, nil); len(list["data"].([]any)) != 1 {
		t.Fatalf("list %v", list)
	}
	if status, _ := do("DELETE", "/push-subscriptions/"+id, "eu_bob", nil); status != 404 {
		t.Fatalf("another person unsubscribed ada's device: %d", status)
	}
	if status, _ := do("DELETE", "/push-subscriptions/"+id, ada.ID, nil); status != 204 {
		t.Fatalf("unsubscribe: %d", status)
	}
	if _, list := do("GET", "/push-subscriptions", ada.ID, nil); len(list["data"].([]any)) != 0 {
		t.Fatalf("list after unsubscribe %v", list)
	}
	status, problem := do("POST", "/push-subscriptions", ada.ID, map[string]any{"endpoint": "https://push.example/x",
		"keys": map[string]any{"p256dh": "AAAA", "auth": "tBHItJI5svbpez7KI4CCXg"}})
	if status != 400 || problem["code"] != "invalid_push_subscription" || problem["errors"].([]any)[0].(map[string]any)["field"] != "keys.p256dh" {
		t.Fatalf("bad key: %d %v", status, problem)
	}
}
