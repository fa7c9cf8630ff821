package config

import (
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func load(t *testing.T, args, env []string) (Config, error) {
	t.Helper()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfg, _, err := Load(fs, args, env)
	return cfg, err
}

func TestDefaultsAreValid(t *testing.T) {
	t.Parallel()
	cfg, err := load(t, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HTTP.Addr != "127.0.0.1:8080" || cfg.DataDir != "./data" || cfg.Roles[0] != "all" {
		t.Fatalf("unexpected defaults: %+v", cfg)
	}
}

func TestPrecedenceFileEnvFlags(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	yml := filepath.Join(dir, "abacus.yaml")
	if err := os.WriteFile(yml, []byte("data_dir: /from/file\nhttp:\n  addr: 127.0.0.1:1000\n  read_timeout: 7s\nlog:\n  level: debug\nroles: [api, outbox]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := load(t, []string{"--config", yml, "--http-addr", "127.0.0.1:3000"},
		[]string{"ABACUS_HTTP_ADDR=127.0.0.1:2000", "ABACUS_LOG_LEVEL=warn"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DataDir != "/from/file" || cfg.HTTP.ReadTimeout != 7*time.Second {
		t.Errorf("file values not applied: %+v", cfg)
	}
	if cfg.Log.Level != "warn" {
		t.Errorf("env should beat file: log.level = %s", cfg.Log.Level)
	}
	if cfg.HTTP.Addr != "127.0.0.1:3000" {
		t.Errorf("flag should beat env: http.addr = %s", cfg.HTTP.Addr)
	}
	if strings.Join(cfg.Roles, ",") != "api,outbox" {
		t.Errorf("roles from YAML list = %v", cfg.Roles)
	}

	toml := filepath.Join(dir, "abacus.toml")
	if err := os.WriteFile(toml, []byte("[nats]\nlisten = \"127.0.0.1:4333\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err = load(t, []string{"--config", toml}, nil)
	if err != nil || cfg.NATS.Listen != "127.0.0.1:4333" {
		t.Fatalf("TOML: %v %+v", err, cfg.NATS)
	}
}

func TestValidationReportsEveryProblemWithKeyAndValue(t *testing.T) {
	t.Parallel()
	_, err := load(t, []string{"--http-addr", "nonsense", "--log-level", "loud", "--database-url", "mysql://x"},
		[]string{"ABACUS_OUTBOX_BATCH_SIZE=0"})
	var ps Problems
	if !errors.As(err, &ps) {
		t.Fatalf("got %v, want Problems", err)
	}
	text := err.Error()
	for _, want := range []string{`http.addr = "nonsense"`, `log.level = "loud"`, `database.url = "mysql://x"`, `outbox.batch_size = "0"`} {
		if !strings.Contains(text, want) {
			t.Errorf("error %q does not mention %s", text, want)
		}
	}
	if len(ps) != 4 {
		t.Errorf("got %d problems, want 4: %v", len(ps), ps)
	}
}

func TestBadTypedValuesAndUnknownFileKeys(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	yml := filepath.Join(dir, "c.yml")
	if err := os.WriteFile(yml, []byte("htp:\n  adr: x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := load(t, []string{"--config", yml, "--http-read-timeout", "soon"}, nil)
	if err == nil || !strings.Contains(err.Error(), "htp.adr") || !strings.Contains(err.Error(), "http.read_timeout") {
		t.Fatalf("got %v, want both the unknown key and the bad duration", err)
	}
}

func TestSecretsAreRedacted(t *testing.T) {
	t.Parallel()
	cfg, err := load(t, []string{"--database-url", "postgres://u:hunter2@db:5432/x", "--bootstrap-api-key", "abk_0123456789abcdefghijkl"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	Print(&b, &cfg)
	if strings.Contains(b.String(), "hunter2") || strings.Contains(b.String(), "abk_0123456789") {
		t.Fatalf("secret printed:\n%s", b.String())
	}
	if !strings.Contains(b.String(), "postgres://u:redacted@db:5432/x") {
		t.Fatalf("redacted URL missing:\n%s", b.String())
	}
}

func TestTrustedProxies(t *testing.T) {
	t.Parallel()
	cfg, err := load(t, nil, []string{"ABACUS_HTTP_TRUSTED_PROXIES=10.0.0.0/8, 192.0.2.7,2001:db8::/32", "ABACUS_HTTP_CLIENT_IP_HEADER=forwarded"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(cfg.HTTP.TrustedProxies, " ") != "10.0.0.0/8 192.0.2.7 2001:db8::/32" || cfg.HTTP.ClientIPHeader != "forwarded" {
		t.Fatalf("http = %+v", cfg.HTTP)
	}
	_, err = load(t, []string{"--http-trusted-proxies", "10.0.0.0/8,proxy.local", "--http-client-ip-header", "x-real-ip"}, nil)
	for _, want := range []string{`http.trusted_proxies = "proxy.local"`, `http.client_ip_header = "x-real-ip"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not name %s", err, want)
		}
	}
}

func TestSignupMode(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"open", "invite_only", "closed"} {
		cfg, err := load(t, nil, []string{"ABACUS_IDENTITY_SIGNUP=" + mode})
		if err != nil || cfg.Identity.Signup != mode {
			t.Fatalf("identity.signup=%s: %v %q", mode, err, cfg.Identity.Signup)
		}
	}
	if cfg, _ := load(t, nil, nil); cfg.Identity.Signup != "open" {
		t.Fatalf("default identity.signup = %q, want open", cfg.Identity.Signup)
	}
	_, err := load(t, []string{"--identity-signup", "invite"}, nil)
	if err == nil || !strings.Contains(err.Error(), `identity.signup = "invite"`) {
		t.Fatalf("got %v, want an error naming identity.signup", err)
	}
}

func TestAppURL(t *testing.T) {
	t.Parallel()
	cfg, err := load(t, []string{"--identity-app-url", "https://app.example.com"}, nil)
	if err != nil || cfg.Identity.AppURL != "https://app.example.com" {
		t.Fatalf("identity.app_url: %v %q", err, cfg.Identity.AppURL)
	}
	_, err = load(t, []string{"--identity-app-url", "app.example.com"}, nil)
	if err == nil || !strings.Contains(err.Error(), `identity.app_url = "app.example.com"`) {
		t.Fatalf("got %v, want an error naming identity.app_url", err)
	}
}

func TestBootstrapOwnerSettings(t *testing.T) {
	t.Parallel()
	cfg, err := load(t, nil, []string{"ABACUS_BOOTSTRAP_ADMIN_EMAIL=owner@example.com", "ABACUS_BOOTSTRAP_ADMIN_PASSWORD=Tr0ub4dor&3-horse"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Bootstrap.AdminEmail != "owner@example.com" || cfg.Bootstrap.AdminPassword != "Tr0ub4dor&3-horse" {
		t.Fatalf("bootstrap %+v", cfg.Bootstrap)
	}
	var b strings.Builder
	Print(&b, &cfg)
	if strings.Contains(b.String(), "Tr0ub4dor") {
		t.Fatalf("the admin password is printed:\n%s", b.String())
	}
	for _, env := range [][]string{
		{"ABACUS_BOOTSTRAP_ADMIN_EMAIL=owner@example.com"},
		{"ABACUS_BOOTSTRAP_ADMIN_PASSWORD=Tr0ub4dor&3-horse"},
		{"ABACUS_BOOTSTRAP_ADMIN_EMAIL=Owner <owner@example.com>", "ABACUS_BOOTSTRAP_ADMIN_PASSWORD=Tr0ub4dor&3-horse"},
	} {
		if _, err := load(t, nil, env); err == nil || !strings.Contains(err.Error(), "bootstrap.admin_email") {
			t.Errorf("%v: got %v, want a problem naming bootstrap.admin_email", env, err)
		}
	}
}

// Idempotency-Keys are kept a day unless told otherwise, and never less
// than an hour: a shorter window could purge a key its retries still use.
func TestIdempotencyRetention(t *testing.T) {
	t.Parallel()
	cfg, err := load(t, nil, nil)
	if err != nil || cfg.HTTP.IdempotencyRetention != 24*time.Hour {
		t.Fatalf("default: %v %v, want 24h", cfg.HTTP.IdempotencyRetention, err)
	}
	cfg, err = load(t, []string{"--http-idempotency-retention", "72h"}, nil)
	if err != nil || cfg.HTTP.IdempotencyRetention != 72*time.Hour {
		t.Fatalf("flag: %v %v, want 72h", cfg.HTTP.IdempotencyRetention, err)
	}
	_, err = load(t, nil, []string{"ABACUS_HTTP_IDEMPOTENCY_RETENTION=10m"})
	if err == nil || !strings.Contains(err.Error(), `http.idempotency_retention = "10m0s"`) {
		t.Fatalf("10m: %v, want it refused naming http.idempotency_retention", err)
	}
}
