package cli_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/abacusbilling/abacus/internal/cli"
	"github.com/abacusbilling/abacus/internal/db"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "abacus-cli")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "abacus")
	out, err := exec.Command("go", "build", "-o", binary, "github.com/abacusbilling/abacus/cmd/abacus").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "building abacus: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func run(args []string, env ...string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	code := cli.Run(context.Background(), cli.Env{Args: args, Environ: env, Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr})
	return code, stdout.String(), stderr.String()
}

func TestConfigCommand(t *testing.T) {
	t.Parallel()
	code, out, _ := run([]string{"config", "--database-url", "postgres://u:hunter2pw@h/db"}, "ABACUS_HTTP_ADDR=127.0.0.1:9999")
	if code != 0 || !strings.Contains(out, `http.addr: "127.0.0.1:9999"`) || strings.Contains(out, "hunter2pw") {
		t.Fatalf("code %d, output:\n%s", code, out)
	}
	code, _, errOut := run([]string{"config", "--log-level", "chatty", "--http-addr", "x"})
	if code != 1 || !strings.Contains(errOut, `log.level = "chatty"`) || !strings.Contains(errOut, `http.addr = "x"`) {
		t.Fatalf("code %d, stderr:\n%s", code, errOut)
	}
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	if code, _, errOut := run([]string{"frobnicate"}); code != 2 || !strings.Contains(errOut, "unknown command") {
		t.Fatalf("unknown command: %d %s", code, errOut)
	}
	if code, _, errOut := run([]string{"serve", "--roles", "api,warp"}); code != 1 || !strings.Contains(errOut, "valid roles: all, api") {
		t.Fatalf("unknown role: %d %s", code, errOut)
	}
	if code, out, _ := run([]string{"version"}); code != 0 || !strings.HasPrefix(out, "abacus ") {
		t.Fatalf("version: %d %s", code, out)
	}
}

func TestAPIKeysCommand(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if code, _, errOut := run([]string{"apikeys", "list", "--data-dir", dir}); code != 1 || !strings.Contains(errOut, "no tenant yet") {
		t.Fatalf("list on empty data: %d %s", code, errOut)
	}
	// Bootstrap through a short serve, then manage keys offline.
	startServe(t, dir, nil).stop(t)
	code, key, errOut := run([]string{"apikeys", "create", "--data-dir", dir, "--name", "ci", "--scopes", "ingest,read"})
	if code != 0 || !strings.HasPrefix(strings.TrimSpace(key), "abk_") {
		t.Fatalf("create: %d %q %s", code, key, errOut)
	}
	code, list, _ := run([]string{"apikeys", "list", "--data-dir", dir})
	if code != 0 || !strings.Contains(list, "ci") || strings.Contains(list, strings.TrimSpace(key)) {
		t.Fatalf("list must show the key's name and never the key:\n%s", list)
	}
	id := ""
	for _, line := range strings.Split(list, "\n") {
		if strings.Contains(line, " ci ") {
			id = strings.Fields(line)[0]
		}
	}
	if code, out, errOut := run([]string{"apikeys", "revoke", "--data-dir", dir, id}); code != 0 || !strings.Contains(out, "revoked") {
		t.Fatalf("revoke %q: %d %s %s", id, code, out, errOut)
	}
	if _, list, _ = run([]string{"apikeys", "list", "--data-dir", dir}); !strings.Contains(list, "revoked") {
		t.Fatalf("list after revoke:\n%s", list)
	}
	if code, _, errOut := run([]string{"apikeys", "create", "--data-dir", dir, "--name", "x", "--scopes", "root"}); code != 1 || !strings.Contains(errOut, "scopes[0]") {
		t.Fatalf("bad scope: %d %s", code, errOut)
	}
}

type server struct {
	cmd    *exec.Cmd
	addr   string
	stdout *bytes.Buffer
	stderr *bytes.Buffer
	done   chan error
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startServe runs the real binary and waits until /readyz answers 200.
func startServe(t *testing.T, dir string, env []string, args ...string) *server {
	t.Helper()
	s := &server{addr: freeAddr(t), stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}, done: make(chan error, 1)}
	s.cmd = exec.Command(binary, append([]string{"serve", "--data-dir", dir, "--http-addr", s.addr}, args...)...)
	s.cmd.Env = append(os.Environ(), env...)
	s.cmd.Stdout, s.cmd.Stderr = s.stdout, s.stderr
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.done <- s.cmd.Wait() }()
	deadline := time.Now().Add(15 * time.Second)
	for {
		res, err := http.Get("http://" + s.addr + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return s
			}
		}
		select {
		case err := <-s.done:
			t.Fatalf("serve exited early (%v):\n%s", err, s.stderr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve not ready in 15s:\n%s", s.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop sends SIGTERM and requires exit status 0.
func (s *server) stop(t *testing.T) {
	t.Helper()
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.done:
		if err != nil {
			t.Fatalf("serve exited with %v after SIGTERM:\n%s", err, s.stderr)
		}
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		t.Fatal("serve did not exit within 30s of SIGTERM")
	}
}

func TestServeBootstrapsAndStopsCleanlyWithoutLosingOutboxEvents(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	const key = "abk_bootstrap_for_automation_0001"
	s := startServe(t, dir, []string{"ABACUS_BOOTSTRAP_API_KEY=" + key}, "--outbox-poll-interval", "1h")
	if strings.Contains(s.stdout.String(), key) {
		t.Fatal("a bootstrap key given by the operator must not be printed")
	}
	// Domain events committed just before SIGTERM; with a one-hour poll
	// interval only the relay's final flush on shutdown can publish them.
	for i := 0; i < 25; i++ {
		req, _ := http.NewRequest("POST", "http://"+s.addr+"/api/v1/api-keys", strings.NewReader(`{"name":"k","scopes":["read"]}`))
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil || res.StatusCode != 201 {
			t.Fatalf("create key: %v %v", err, res)
		}
		res.Body.Close()
	}
	s.stop(t)
	d, err := db.Open(context.Background(), db.Options{SQLitePath: filepath.Join(dir, "abacus.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var total, pending int
	if err := d.QueryRowContext(context.Background(), `SELECT count(*), count(*) - count(published_at) FROM outbox_events`).Scan(&total, &pending); err != nil {
		t.Fatal(err)
	}
	if total < 26 || pending != 0 {
		t.Fatalf("outbox: %d events, %d unpublished after SIGTERM; want ≥26 and 0", total, pending)
	}
}

func TestServeGeneratesAndPrintsKeyOnce(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := startServe(t, dir, nil)
	s.stop(t)
	first := s.stdout.String()
	if !strings.Contains(first, "abk_") {
		t.Fatalf("generated key not printed:\n%s", first)
	}
	if strings.Contains(s.stderr.String(), strings.TrimSpace(lastLine(first))) {
		t.Fatal("the generated key reached the log")
	}
	s = startServe(t, dir, nil)
	s.stop(t)
	if strings.Contains(s.stdout.String(), "abk_") {
		t.Fatal("key printed again on the second start")
	}
}

func lastLine(s string) string {
	var last string
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) != "" {
			last = sc.Text()
		}
	}
	return last
}

func TestServeFaultsAreOneClearLine(t *testing.T) {
	t.Parallel()
	busy := freeAddr(t)
	l, err := net.Listen("tcp", busy)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ro := t.TempDir()
	if err := os.Chmod(ro, 0o500); err != nil {
		t.Fatal(err)
	}
	running := t.TempDir()
	s := startServe(t, running, nil)
	defer s.stop(t)
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"port in use", []string{"--data-dir", t.TempDir(), "--http-addr", busy}, "cannot listen on " + busy},
		{"bad value", []string{"--http-read-timeout", "forever"}, "http.read_timeout"},
		{"unreachable database", []string{"--data-dir", t.TempDir(), "--http-addr", "127.0.0.1:0", "--database-url", "postgres://x@127.0.0.1:1/x?connect_timeout=2"}, "database.url"},
		{"unreachable nats", []string{"--data-dir", t.TempDir(), "--http-addr", "127.0.0.1:0", "--nats-url", "nats://127.0.0.1:1"}, "nats.url"},
		{"data dir in use", []string{"--data-dir", running, "--http-addr", "127.0.0.1:0"}, "in use by another abacus process"},
	}
	if os.Geteuid() != 0 { // root can write anywhere
		cases = append(cases, struct {
			name string
			args []string
			want string
		}{"unwritable data dir", []string{"--data-dir", filepath.Join(ro, "d"), "--http-addr", "127.0.0.1:0"}, "--data-dir"})
	}
	for _, c := range cases {
		cmd := exec.Command(binary, append([]string{"serve"}, c.args...)...)
		var stderr bytes.Buffer
		cmd.Stderr, cmd.Stdout = &stderr, io.Discard
		err := cmd.Run()
		if err == nil {
			t.Errorf("%s: exit 0", c.name)
			continue
		}
		// The last thing printed is the error: "abacus serve: …", on one
		// line (a configuration error lists each bad setting below it).
		out := strings.TrimSpace(stderr.String())
		i := strings.LastIndex(out, "abacus serve:")
		if i < 0 || !strings.Contains(out[i:], c.want) || (c.name != "bad value" && strings.Contains(out[i:], "\n")) {
			t.Errorf("%s: stderr ends %q, want one line mentioning %q", c.name, out[max(0, i):], c.want)
		}
	}
}
