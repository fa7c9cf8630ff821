package app_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/abacusbilling/abacus/internal/app"
)

// "all,-x" runs every role but x, so a deployment's background group keeps
// running roles added to the registry later (deploy/, test/deploy).
func TestSelectRolesWithout(t *testing.T) {
	t.Parallel()
	roles, err := app.SelectRoles([]string{"all", "-api", "-ingest", "-meter"})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range roles {
		names = append(names, r.Name)
	}
	for _, gone := range []string{"api", "ingest", "meter"} {
		if slices.Contains(names, gone) {
			t.Errorf("%s selected in %v", gone, names)
		}
	}
	if len(names) != len(app.RoleNames())-3 {
		t.Errorf("got %v, want every role but three", names)
	}
	if _, err := app.SelectRoles([]string{"all", "-teleport"}); err == nil || !strings.Contains(err.Error(), "unknown role -teleport") {
		t.Errorf("unknown removed role: got %v", err)
	}
	if _, err := app.SelectRoles([]string{"meter", "-meter"}); err == nil || !strings.Contains(err.Error(), "no role left") {
		t.Errorf("nothing left: got %v", err)
	}
}
