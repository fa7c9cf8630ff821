package cli

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/identity"
)

// twoTenants creates a data dir holding the tenants Acme and Globex and
// returns it with their ids.
func twoTenants(t *testing.T) (dir, acme, globex string) {
	t.Helper()
	dir = t.TempDir()
	ctx := context.Background()
	d, err := db.Open(ctx, db.Options{SQLitePath: filepath.Join(dir, "abacus.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, err := d.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	svc := identity.NewService(d, abacus.SystemClock{}, slog.New(slog.DiscardHandler))
	a, err := svc.CreateTenant(ctx, "Acme")
	if err != nil {
		t.Fatal(err)
	}
	g, err := svc.CreateTenant(ctx, "Globex")
	if err != nil {
		t.Fatal(err)
	}
	return dir, a.ID, g.ID
}

// TestTenantFlagWithSeveralTenants expects the commands that act on one
// tenant to refuse to guess among several, naming them and --tenant, and
// to take a tenant by id or by name, also after the arguments.
func TestTenantFlagWithSeveralTenants(t *testing.T) {
	t.Parallel()
	dir, acme, globex := twoTenants(t)
	cli := func(args ...string) (int, string, string) {
		return runCLI(t, "", append(args, "--data-dir", dir)...)
	}
	for _, args := range [][]string{{"apikeys", "list"}, {"meters", "rebuild", "tokens"}} {
		code, _, errOut := cli(args...)
		if code != 1 || !strings.Contains(errOut, "several tenants") || !strings.Contains(errOut, "--tenant") ||
			!strings.Contains(errOut, acme+" (Acme)") || !strings.Contains(errOut, globex+" (Globex)") {
			t.Errorf("%v without --tenant: exit %d, %s", args, code, errOut)
		}
	}
	code, key, errOut := cli("apikeys", "create", "--name", "ci", "--tenant", "Acme")
	if code != 0 || !strings.HasPrefix(key, "abk_") {
		t.Fatalf("create --tenant Acme: exit %d %q %s", code, key, errOut)
	}
	id := strings.Fields(errOut[strings.Index(errOut, "created "):])[1]
	if _, list, _ := cli("apikeys", "list", "--tenant", acme); !strings.Contains(list, id) {
		t.Errorf("list --tenant %s lacks the key %s:\n%s", acme, id, list)
	}
	if _, list, _ := cli("apikeys", "list", "--tenant", "Globex"); strings.Contains(list, id) {
		t.Errorf("Globex lists Acme's key:\n%s", list)
	}
	if code, _, errOut := cli("apikeys", "revoke", id, "--tenant", "Globex"); code != 1 || !strings.Contains(errOut, "not") {
		t.Errorf("revoke Acme's key as Globex: exit %d %s", code, errOut)
	}
	if code, out, errOut := cli("apikeys", "revoke", id, "--tenant", "Acme"); code != 0 || !strings.Contains(out, "revoked "+id) {
		t.Errorf("revoke ID --tenant Acme: exit %d %s %s", code, out, errOut)
	}
	if code, _, errOut := cli("apikeys", "list", "--tenant", "Initech"); code != 1 || !strings.Contains(errOut, `no tenant has the id or name "Initech"`) {
		t.Errorf("unknown tenant: exit %d %s", code, errOut)
	}
	// The tenant resolves; the meter does not exist in it.
	if code, _, errOut := cli("meters", "rebuild", "tokens", "--tenant", globex); code != 1 || strings.Contains(errOut, "tenant") {
		t.Errorf("meters rebuild --tenant %s: exit %d %s", globex, code, errOut)
	}
}
