package paytest

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// StripeMockVersion is the pinned stripe-mock scripts/test installs.
const StripeMockVersion = "v0.203.0"

var (
	mockOnce sync.Once
	mockBin  string
	mockErr  error
)

// stripeMockBinary finds stripe-mock: $ABACUS_STRIPE_MOCK, the PATH,
// $(go env GOPATH)/bin, else it is installed once per machine into the
// temporary directory with the Go toolchain (the module proxy serves it).
func stripeMockBinary() (string, error) {
	mockOnce.Do(func() {
		if p := os.Getenv("ABACUS_STRIPE_MOCK"); p != "" {
			mockBin = p
			return
		}
		if p, err := exec.LookPath("stripe-mock"); err == nil {
			mockBin = p
			return
		}
		if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
			p := filepath.Join(string(trim(out)), "bin", "stripe-mock")
			if _, err := os.Stat(p); err == nil {
				mockBin = p
				return
			}
		}
		dir := filepath.Join(os.TempDir(), "abacus-stripe-mock-"+StripeMockVersion)
		p := filepath.Join(dir, "stripe-mock")
		if _, err := os.Stat(p); err == nil {
			mockBin = p
			return
		}
		cmd := exec.Command("go", "install", "github.com/stripe/stripe-mock@"+StripeMockVersion)
		cmd.Env = append(os.Environ(), "GOBIN="+dir)
		if out, err := cmd.CombinedOutput(); err != nil {
			mockErr = fmt.Errorf("installing stripe-mock %s: %v: %s", StripeMockVersion, err, out)
			return
		}
		mockBin = p
	})
	return mockBin, mockErr
}

func trim(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

// StripeMock starts stripe-mock on a free 127.0.0.1 port for the test
// and returns its base URL. Without it the test fails in CI (CI=true) and
// is skipped elsewhere, with one line saying how to get it.
func StripeMock(t testing.TB) string {
	t.Helper()
	bin, err := stripeMockBinary()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("stripe-mock is required in CI: %v", err)
		}
		t.Skipf("stripe-mock unavailable (go install github.com/stripe/stripe-mock@%s, or set ABACUS_STRIPE_MOCK): %v", StripeMockVersion, err)
	}
	// Both ports chosen by stripe-mock itself, read back from its output:
	// a port picked here and closed could be taken before it binds, and its
	// HTTPS default (:12112) is one port for every stripe-mock on the
	// machine, so a second one running beside it exited.
	cmd := exec.Command(bin, "-http-addr", "127.0.0.1:0", "-https-addr", "127.0.0.1:0")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting stripe-mock: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	addr := make(chan string, 1)
	go func() {
		sc, sent := bufio.NewScanner(out), false
		for sc.Scan() { // read to the end: a full pipe would stop it
			if a, ok := strings.CutPrefix(sc.Text(), "Listening for HTTP at address: "); ok && !sent {
				addr <- a
				sent = true
			}
		}
		close(addr)
	}()
	select {
	case a, ok := <-addr:
		if !ok {
			t.Fatal("stripe-mock exited before it listened")
		}
		return "http://" + a
	case <-time.After(30 * time.Second):
		t.Fatal("stripe-mock did not say where it listens within 30 s")
	}
	return ""
}
