package app_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/abacusbilling/abacus/internal/app"
	"github.com/abacusbilling/abacus/internal/config"
)

// startOut starts an app on dataDir whose console output goes to out.
func startOut(t *testing.T, dataDir string, out *bytes.Buffer, mod func(*config.Config)) *testApp {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = dataDir
	cfg.HTTP.Addr = "127.0.0.1:0"
	if mod != nil {
		mod(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	a := app.New(cfg, app.Options{Version: "test", Log: slog.New(slog.DiscardHandler), Out: out})
	if err := a.Start(context.Background()); err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() { _ = a.Stop(context.Background()) })
	return &testApp{App: a, t: t, base: "http://" + a.Addr(), key: a.BootstrapKey}
}

var setupLink = regexp.MustCompile(`(http://\S+)/setup\?token=(\S+)`)

// TestFirstStartPrintsASetupLink: a fresh install is usable from the
// dashboard. The first start prints, besides the admin key, a one-time
// link to the dashboard's /setup page; using it creates the owner account
// and signs it in; it works once; a later start prints nothing.
func TestFirstStartPrintsASetupLink(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	var out bytes.Buffer
	a := startOut(t, dir, &out, nil)
	m := setupLink.FindStringSubmatch(out.String())
	if m == nil || m[1] != a.base || !strings.Contains(out.String(), a.key) {
		t.Fatalf("console: %s", out.String())
	}
	page := a.do("GET", "/setup?token="+m[2], "", nil, "Accept", "text/html")
	if page.status != 200 || !bytes.Contains(page.body, []byte(`<div id="app">`)) {
		t.Fatalf("the link does not open the dashboard: %d %.200s", page.status, page.body)
	}

	body := map[string]any{"token": m[2], "email": "founder@example.com", "password": "password123"}
	expectProblem(t, a.do("POST", "/api/v1/auth/setup", "", body), 400, "password_too_common")
	body["password"] = "a long and unusual passphrase 7"
	res := a.do("POST", "/api/v1/auth/setup", "", body)
	if res.status != 200 || bytes.Contains(res.body, []byte("access_token")) {
		t.Fatalf("setup: %d %s", res.status, res.body)
	}
	var access string
	for _, c := range (&http.Response{Header: res.header}).Cookies() {
		if c.Name == "abacus_access" {
			access = c.Value
		}
	}
	me := a.do("GET", "/api/v1/me", "", nil, "Cookie", "abacus_access="+access)
	if me.status != 200 || me.json(t)["role"] != "owner" {
		t.Fatalf("the new account: %d %s", me.status, me.body)
	}
	body["email"] = "someone-else@example.com"
	expectProblem(t, a.do("POST", "/api/v1/auth/setup", "", body), 400, "email_token_used")

	if err := a.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	startOut(t, dir, &out, nil)
	if strings.Contains(out.String(), "/setup?token=") {
		t.Fatalf("a start on existing data printed a setup link: %s", out.String())
	}
}

// TestBootstrapAdminFromConfig: bootstrap.admin_email and admin_password
// (ABACUS_BOOTSTRAP_ADMIN_*) create the owner for automation, with no link.
func TestBootstrapAdminFromConfig(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	a := startOut(t, t.TempDir(), &out, func(c *config.Config) {
		c.Bootstrap.AdminEmail, c.Bootstrap.AdminPassword = "ops@example.com", "a long and unusual passphrase 8"
	})
	if strings.Contains(out.String(), "/setup?token=") || strings.Contains(out.String(), "passphrase") {
		t.Fatalf("console: %s", out.String())
	}
	res := a.do("POST", "/api/v1/auth/login", "", map[string]any{"email": "ops@example.com", "password": "a long and unusual passphrase 8"})
	if res.status != 200 {
		t.Fatalf("sign-in: %d %s", res.status, res.body)
	}
	me := a.do("GET", "/api/v1/me", res.json(t)["access_token"].(string), nil)
	if me.json(t)["role"] != "owner" {
		t.Fatalf("me: %s", me.body)
	}

	cfg := config.Default()
	cfg.DataDir, cfg.HTTP.Addr = t.TempDir(), "127.0.0.1:0"
	cfg.Bootstrap.AdminEmail, cfg.Bootstrap.AdminPassword = "ops@example.com", "password123"
	bad := app.New(cfg, app.Options{Version: "test", Log: slog.New(slog.DiscardHandler)})
	err := bad.Start(context.Background())
	t.Cleanup(func() { _ = bad.Stop(context.Background()) })
	if err == nil || !strings.Contains(err.Error(), "bootstrap.admin_password") {
		t.Fatalf("a common password: %v", err)
	}
}
