// Package sdk runs the official OpenMeter JavaScript SDK (npm
// @openmeter/sdk, pinned in package-lock.json) against a whole Abacus
// started in-process on a free port. The test fails, not skips, when node
// or npm is missing: OpenMeter compatibility is a promise, not an option.
package sdk_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/abacusbilling/abacus/internal/app"
	"github.com/abacusbilling/abacus/internal/config"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
)

func TestOpenMeterSDK(t *testing.T) {
	t.Parallel()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is needed for the OpenMeter SDK test and is not on PATH: %v", err)
	}
	if _, err := os.Stat(filepath.Join("node_modules", "@openmeter", "sdk", "package.json")); err != nil {
		npm, err := exec.LookPath("npm")
		if err != nil {
			t.Fatalf("npm is needed to install the OpenMeter SDK (npm ci in test/sdk): %v", err)
		}
		if out, err := exec.Command(npm, "ci", "--no-audit", "--no-fund").CombinedOutput(); err != nil {
			t.Fatalf("npm ci in test/sdk: %v\n%s", err, out)
		}
	}
	for _, engine := range dbtest.Engines {
		t.Run(string(engine), func(t *testing.T) {
			t.Parallel()
			base, key := startAbacus(t, engine)
			cmd := exec.Command(node, "sdk_test.mjs")
			cmd.Env = append(os.Environ(), "ABACUS_URL="+base, "ABACUS_API_KEY="+key)
			out, err := cmd.CombinedOutput()
			t.Logf("node sdk_test.mjs:\n%s", out)
			if err != nil {
				t.Fatalf("the OpenMeter SDK script failed: %v", err)
			}
		})
	}
}

func startAbacus(t *testing.T, engine db.Engine) (base, key string) {
	t.Helper()
	var b [16]byte
	_, _ = rand.Read(b[:])
	key = "abk_sdktest" + hex.EncodeToString(b[:])
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.Bootstrap.APIKey = key
	if engine == db.Postgres {
		cfg.Database.URL = dbtest.NewSchema(t)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	a := app.New(cfg, app.Options{Version: "sdk-test", Log: slog.New(slog.DiscardHandler)})
	if err := a.Start(context.Background()); err != nil {
		t.Fatalf("starting abacus: %v", err)
	}
	t.Cleanup(func() { _ = a.Stop(context.Background()) })
	return "http://" + a.Addr(), key
}
