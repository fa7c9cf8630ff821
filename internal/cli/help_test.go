package cli

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestHelpOnEveryCommand runs -h and --help on every command and
// subcommand of the command table, so a new one is covered: the usage goes
// to stdout, nothing to stderr, and the exit code is 0.
func TestHelpOnEveryCommand(t *testing.T) {
	t.Parallel()
	var paths [][]string
	var walk func(prefix []string, cs []command)
	walk = func(prefix []string, cs []command) {
		for _, c := range cs {
			p := append(slices.Clone(prefix), c.name)
			paths = append(paths, p)
			walk(p, c.subs)
		}
	}
	walk(nil, commands())
	paths = append(paths, nil) // abacus -h
	for _, p := range paths {
		for _, h := range []string{"-h", "--help"} {
			args := append(slices.Clone(p), h)
			code, out, errOut := runCLI(t, "", args...)
			want := "Usage: abacus " + strings.Join(p, " ")
			if code != 0 || errOut != "" || !strings.HasPrefix(out, want) {
				t.Errorf("abacus %s: exit %d, stdout %.80q, stderr %.200q; want exit 0 and stdout starting %q",
					strings.Join(args, " "), code, out, errOut, want)
			}
		}
	}
	for _, args := range [][]string{{"help"}, {"help", "apikeys", "revoke"}} {
		if code, out, _ := runCLI(t, "", args...); code != 0 || !strings.HasPrefix(out, "Usage: abacus") {
			t.Errorf("abacus %s: exit %d, stdout %.80q", strings.Join(args, " "), code, out)
		}
	}
}

// TestHelpListsOwnFlagsFirst expects a command's own flags, with their
// defaults, before the server flags it shares with the others.
func TestHelpListsOwnFlagsFirst(t *testing.T) {
	t.Parallel()
	_, out, _ := runCLI(t, "", "apikeys", "create", "-h")
	server := strings.Index(out, "Server flags")
	for _, own := range []string{"-name string", "-scopes string", "-tenant string"} {
		if i := strings.Index(out, own); i < 0 || i > server {
			t.Errorf("own flag %q not listed before the server flags:\n%s", own, out)
		}
	}
	for _, want := range []string{`(default "read")`, "-data-dir value", "(default ./data)"} {
		if i := strings.Index(out, want); i < 0 || (strings.HasPrefix(want, "-data-dir") && i < server) {
			t.Errorf("help lacks %q in its place:\n%s", want, out)
		}
	}
}

func TestFlagsFirst(t *testing.T) {
	t.Parallel()
	fs := newFlags("test [flags] ARG")
	fs.Bool("verify", false, "")
	fs.Int("max-attempts", 20, "")
	tests := []struct{ args, want string }{
		{"file.ndjson --max-attempts 2", "--max-attempts 2 -- file.ndjson"},
		{"--max-attempts=2 a --verify b", "--max-attempts=2 --verify -- a b"},
		{"a -h", "-h -- a"},
		{"- --verify", "--verify -- -"},
		{"a -- --verify b", "-- a --verify b"},
		{"--server-flag x a", "--server-flag x -- a"}, // flags config.Load adds later take a value
	}
	for _, tt := range tests {
		got := strings.Join(flagsFirst(fs, strings.Fields(tt.args)), " ")
		if got != tt.want {
			t.Errorf("flagsFirst(%q) = %q, want %q", tt.args, got, tt.want)
		}
	}
}

// TestEventsSendFlagsAfterFile expects `events send FILE --max-attempts 2`
// to give up after two attempts, as with the flag before the file.
func TestEventsSendFlagsAfterFile(t *testing.T) {
	t.Parallel()
	rec := &recorder{fail: func(int, string) int { return http.StatusServiceUnavailable }}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	file := filepath.Join(t.TempDir(), "events.ndjson")
	if err := os.WriteFile(file, []byte(`{"type":"tokens","subject":"c1","data":{"tokens":1}}`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runCLI(t, "", "events", "send", file, "--max-attempts", "2", "--url", srv.URL, "--progress", "off")
	if code != 1 || len(rec.bodies) != 2 {
		t.Fatalf("exit %d after %d requests, want 1 after 2 (--max-attempts after the file); stderr: %s", code, len(rec.bodies), errOut)
	}
}
