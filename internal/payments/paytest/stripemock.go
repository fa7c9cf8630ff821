package paytest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
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
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cmd := exec.Command(bin, "-http-addr", addr)
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting stripe-mock: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return "http://" + addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("stripe-mock did not listen on %s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
