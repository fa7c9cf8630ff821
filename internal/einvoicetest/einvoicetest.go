// Package einvoicetest runs the shared e-invoice validator
// (../shared/einvoice/validate: the OASIS UBL 2.1 schema plus the EN 16931
// and Peppol BIS 3 rules) from tests. A missing validator fails the test:
// the test command installs what it needs.
package einvoicetest

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// SharedDir is ../shared beside the module root (the directory holding
// go.mod), found by walking up from the test's working directory.
func SharedDir(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(filepath.Dir(dir), "shared")
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test directory")
		}
		dir = parent
	}
}

// Validate runs the validator on xml and returns its output and whether
// the document passed (schema-valid, no fatal rule failed).
func Validate(t testing.TB, name string, xml []byte) (string, bool) {
	t.Helper()
	validator := filepath.Join(SharedDir(t), "einvoice", "validate")
	if _, err := os.Stat(validator); err != nil {
		t.Fatalf("the e-invoice validator is missing at %s: %v", validator, err)
	}
	dir, err := os.MkdirTemp("", "einvoice")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	f := filepath.Join(dir, name+".xml")
	if err := os.WriteFile(f, xml, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(validator, f).CombinedOutput()
	if err != nil {
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() == 2 {
			t.Fatalf("the validator could not run: %v\n%s", err, out)
		}
		return string(out), false
	}
	return string(out), strings.Contains(string(out), "1 passed")
}
