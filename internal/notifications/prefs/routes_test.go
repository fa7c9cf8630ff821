package prefs_test

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
	"github.com/abacusbilling/abacus/internal/notifications/prefs"
)

// Turning security off over HTTP is a clear problem naming the field.
func TestLockedCategoryIsAProblem(t *testing.T) {
	t.Parallel()
	d := dbtest.Open(t, db.SQLite)
	s := httpapi.New(httpapi.Config{}, d, slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())
	s.SetAuthenticator(func(_ context.Context, tok string) (*abacus.Principal, error) {
		return &abacus.Principal{TenantID: tenant, Kind: "end_user", ID: tok}, nil
	})
	prefs.RegisterRoutes(s, prefs.NewStore(d, abacus.SystemClock{}))
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	put := func(body any) (int, map[string]any) {
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest("PUT", srv.URL+"/api/v1/end-user/me/notification-preferences", bytes.NewReader(b))
		req.Header.Set("Authorization", "Bearer "+ada.ID)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	status, p := put(map[string]any{"preferences": []any{map[string]any{"category": "security", "channel": "push", "mode": "off"}}})
	field := p["errors"].([]any)[0].(map[string]any)
	if status != 400 || p["code"] != "preference_locked" || field["field"] != "preferences[0].mode" {
		t.Fatalf("%d %v", status, p)
	}
	status, p = put(map[string]any{"preferences": []any{map[string]any{"category": "usage", "channel": "email", "mode": "digest"}},
		"quiet_hours": map[string]any{"start": "22:00", "end": "07:00", "time_zone": "Europe/Vienna"}})
	got := p["preferences"].([]any)[0].(map[string]any)
	if status != 200 || got["digest_seconds"] != float64(3600) || p["quiet_hours"].(map[string]any)["end"] != "07:00" {
		t.Fatalf("%d %v", status, p)
	}
	status, p = put(map[string]any{"preferences": []any{}, "quiet_hours": map[string]any{"start": "22:00", "end": "07:00", "time_zone": "Mars/Olympus"}})
	if status != 400 || p["code"] != "invalid_preferences" || p["errors"].([]any)[0].(map[string]any)["field"] != "quiet_hours.time_zone" {
		t.Fatalf("%d %v", status, p)
	}
}
