// Package einvoicetest runs the official e-invoice validator (the OASIS
// UBL 2.1 schema plus the EN 16931 and Peppol BIS 3 rules, kept outside
// this repository at ../shared/einvoice/validate) from tests, as a
// cross-check of the project's own EN 16931 checks, which always run.
//
// A clone of the repository alone has no validator beside it. There the
// cross-check is skipped, and one line per test binary says so and how to
// enable it. With CI=true or ABACUS_REQUIRE_EINVOICE_VALIDATOR=1 the
// validator is required: a missing one fails the test, so CI can never
// lose the cross-check silently.
package einvoicetest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// The environment variables that decide where the validator is and
// whether it is required.
const (
	EnvValidator = "ABACUS_EINVOICE_VALIDATOR"         // path of the validate script
	EnvRequire   = "ABACUS_REQUIRE_EINVOICE_VALIDATOR" // "1": a missing validator fails
	EnvCI        = "CI"                                // "true": as EnvRequire=1
)

// SkipNotice starts the line printed when the cross-check is skipped;
// scripts/test looks for it.
const SkipNotice = "einvoicetest: official e-invoice validator not found"

// skipOnce prints the skip line once per test binary (per package), not
// once per test.
var skipOnce sync.Once

// batching is set by Main: queued documents will be checked.
var batching atomic.Bool

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

// Required reports whether the environment demands the validator.
func Required() bool {
	return os.Getenv(EnvCI) == "true" || os.Getenv(EnvRequire) == "1"
}

// validatorPath is $ABACUS_EINVOICE_VALIDATOR, else the script in
// ../shared.
func validatorPath(t testing.TB) string {
	if p := os.Getenv(EnvValidator); p != "" {
		return p
	}
	return filepath.Join(SharedDir(t), "einvoice", "validate")
}

// Available reports whether the validator can run. When it is missing it
// fails the test if Required, and otherwise prints the skip line (once per
// test binary) and returns false.
func Available(t testing.TB) bool {
	t.Helper()
	validator := validatorPath(t)
	_, err := os.Stat(validator)
	if err == nil {
		return true
	}
	if Required() {
		t.Fatalf("the e-invoice validator is missing at %s (%v), and %s=1 or %s=true requires it: "+
			"put the validation kit at ../shared/einvoice or set %s to its validate script",
			validator, err, EnvRequire, EnvCI, EnvValidator)
	}
	skipOnce.Do(func() {
		fmt.Printf("%s at %s: UBL is checked by Abacus's own EN 16931 rules only; to cross-check, "+
			"put the kit at ../shared/einvoice or set %s, and set %s=1 to require it\n",
			SkipNotice, validator, EnvValidator, EnvRequire)
	})
	return false
}

// Validate runs the validator on xml and returns its output and whether
// the document passed (schema-valid, no fatal rule failed). Call it only
// after Available returned true.
func Validate(t testing.TB, name string, xml []byte) (string, bool) {
	t.Helper()
	validator := validatorPath(t)
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

// CrossCheck cross-checks xml with the official validator when it is
// Available and reports a rejection as a test failure; without the
// validator it does nothing (see Available). Callers run the project's own
// checks beside it. In a package whose TestMain runs Main, the document is
// queued and checked with the rest at the end of the test binary (see
// batch.go); elsewhere it is checked now.
func CrossCheck(t testing.TB, name string, xml []byte) {
	t.Helper()
	if !Available(t) {
		return
	}
	if batching.Load() {
		enqueue(queued{test: t.Name(), name: name, xml: xml})
		return
	}
	if out, ok := Validate(t, name, xml); !ok {
		t.Errorf("%s: the official validator rejected the document:\n%s\n%s", name, out, xml)
	}
}
