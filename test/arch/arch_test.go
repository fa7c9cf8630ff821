// Package arch_test holds the architecture test: every package keeps to
// the boundary its module declares (abacus.Module, in
// internal/<module>/module.go). It reads the source with go/parser, so it
// checks what the code says, not what a build happens to link:
//
//   - a package imports only its own module, the modules its declaration
//     lists in Uses, and never a test-helper package (…test) outside tests;
//   - a package's SQL (upper-case FROM/JOIN/INTO/UPDATE/TABLE followed by
//     a table name in a string literal) names only tables its module owns;
//   - every table the migrations create has exactly one owner;
//   - only store files (store.go, store_*.go, *_postgres.go, *_sqlite.go)
//     name the database engine (db.Postgres, db.SQLite, Engine()).
//
// Test files are not checked: a test may set up another module's rows.
package arch_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/analytics"
	"github.com/abacusbilling/abacus/internal/app"
	"github.com/abacusbilling/abacus/internal/backup"
	"github.com/abacusbilling/abacus/internal/billing"
	"github.com/abacusbilling/abacus/internal/blob"
	"github.com/abacusbilling/abacus/internal/catalog"
	"github.com/abacusbilling/abacus/internal/cli"
	"github.com/abacusbilling/abacus/internal/client"
	"github.com/abacusbilling/abacus/internal/cluster"
	"github.com/abacusbilling/abacus/internal/config"
	"github.com/abacusbilling/abacus/internal/country"
	"github.com/abacusbilling/abacus/internal/dashboard"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/demo"
	"github.com/abacusbilling/abacus/internal/document"
	"github.com/abacusbilling/abacus/internal/einvoicetest"
	"github.com/abacusbilling/abacus/internal/enduser"
	"github.com/abacusbilling/abacus/internal/heapfloor"
	"github.com/abacusbilling/abacus/internal/httpapi"
	"github.com/abacusbilling/abacus/internal/identity"
	"github.com/abacusbilling/abacus/internal/inbound"
	"github.com/abacusbilling/abacus/internal/loadgen"
	"github.com/abacusbilling/abacus/internal/media"
	"github.com/abacusbilling/abacus/internal/metering"
	"github.com/abacusbilling/abacus/internal/money"
	"github.com/abacusbilling/abacus/internal/natsbus"
	"github.com/abacusbilling/abacus/internal/nearby"
	"github.com/abacusbilling/abacus/internal/notifications"
	"github.com/abacusbilling/abacus/internal/outbox"
	"github.com/abacusbilling/abacus/internal/payments"
	"github.com/abacusbilling/abacus/internal/period"
	"github.com/abacusbilling/abacus/internal/portal"
	"github.com/abacusbilling/abacus/internal/pricing"
	"github.com/abacusbilling/abacus/internal/realtime"
	"github.com/abacusbilling/abacus/internal/risk"
	"github.com/abacusbilling/abacus/internal/seal"
	"github.com/abacusbilling/abacus/internal/service"
	"github.com/abacusbilling/abacus/internal/subscription"
	"github.com/abacusbilling/abacus/internal/timeline"
	"github.com/abacusbilling/abacus/internal/webhooks"
)

const modulePath = "github.com/abacusbilling/abacus"

// declared is every module's declaration. A directory under internal/
// without an entry here fails the test.
var declared = []abacus.Module{
	abacus.RootModule,
	analytics.Module,
	app.Module,
	backup.Module,
	billing.Module,
	blob.Module,
	catalog.Module,
	cli.Module,
	client.Module,
	cluster.Module,
	config.Module,
	country.Module,
	dashboard.Module,
	db.Module,
	demo.Module,
	document.Module,
	einvoicetest.Module,
	enduser.Module,
	heapfloor.Module,
	httpapi.Module,
	identity.Module,
	inbound.Module,
	loadgen.Module,
	media.Module,
	metering.Module,
	money.Module,
	natsbus.Module,
	nearby.Module,
	notifications.Module,
	outbox.Module,
	payments.Module,
	period.Module,
	portal.Module,
	pricing.Module,
	realtime.Module,
	risk.Module,
	seal.Module,
	service.Module,
	subscription.Module,
	timeline.Module,
	webhooks.Module,
	// Entry points and end-to-end test packages outside internal/ (a main
	// package or test-only package cannot be imported to declare itself).
	{Name: "cmd/abacus", Uses: []string{"cli"}},
	{Name: "test/crash"},
	{Name: "test/deploy"},
	{Name: "test/cluster"},
	{Name: "test/sdk"},
	{Name: "test/browser"},
	{Name: "test/arch"},
	{Name: "test/tools/s3server"},
}

// knownViolations are boundary breaks that other branches of issue 12 are
// removing; each key is "<package dir> <what>". The lead empties this list
// when those branches merge. Nothing may be added to it.
var knownViolations = map[string]string{}

// pkg is one directory of non-test Go files.
type pkg struct {
	dir    string // slash path from the repository root
	module string
	files  map[string]*ast.File // by base name
}

func TestArchitecture(t *testing.T) {
	root := repoRoot(t)
	mods := map[string]abacus.Module{}
	for _, m := range declared {
		mods[m.Name] = m
	}
	pkgs := parsePackages(t, root, mods)
	owner := tableOwners(t, root, mods)
	found := map[string]bool{}
	report := func(key, msg string) {
		found[key] = true
		if _, known := knownViolations[key]; !known {
			t.Errorf("%s", msg)
		}
	}
	for _, p := range pkgs {
		checkImports(p, mods[p.module], report)
		checkSQL(p, owner, report)
		checkEngine(p, report)
	}
	for key := range knownViolations {
		if !found[key] {
			t.Errorf("known violation %q is gone: remove it from knownViolations", key)
		}
	}
}

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("repository root not found from test/arch: %v", err)
	}
	return root
}

// moduleOf names the module a directory belongs to: the first directory
// under internal/, or the directory itself elsewhere.
func moduleOf(dir string) string {
	if dir == "." {
		return "abacus"
	}
	if rest, ok := strings.CutPrefix(dir, "internal/"); ok {
		name, _, _ := strings.Cut(rest, "/")
		return name
	}
	return dir
}

func parsePackages(t *testing.T, root string, mods map[string]abacus.Module) []pkg {
	t.Helper()
	byDir := map[string]*pkg{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || d.Name() == "node_modules" || strings.HasPrefix(d.Name(), ".")) && path != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") {
			return nil
		}
		rel, _ := filepath.Rel(root, filepath.Dir(path))
		rel = filepath.ToSlash(rel)
		p := byDir[rel]
		if p == nil {
			p = &pkg{dir: rel, module: moduleOf(rel), files: map[string]*ast.File{}}
			byDir[rel] = p
		}
		if _, ok := mods[p.module]; !ok {
			t.Errorf("%s: module %q has no declaration (add internal/%s/module.go and list it in test/arch)", rel, p.module, p.module)
		}
		if strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		p.files[d.Name()] = f
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var out []pkg
	for _, p := range byDir {
		out = append(out, *p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].dir < out[j].dir })
	return out
}

func checkImports(p pkg, m abacus.Module, report func(key, msg string)) {
	for name, f := range p.files {
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			rel, ok := strings.CutPrefix(path, modulePath)
			if !ok {
				continue
			}
			rel = strings.TrimPrefix(rel, "/")
			if rel == "" {
				rel = "."
			}
			if base := filepath.Base(rel); strings.HasSuffix(base, "test") && !strings.HasSuffix(filepath.Base(p.dir), "test") {
				report(p.dir+" import "+rel, p.dir+"/"+name+": imports the test helper "+rel+" outside a test")
			}
			to := moduleOf(rel)
			if to != p.module && !slices.Contains(m.Uses, to) {
				report(p.dir+" import "+to, p.dir+"/"+name+": imports module "+to+", which module "+p.module+" does not list in Uses")
			}
		}
	}
}

// sqlTable finds a table name after an upper-case SQL keyword; the
// project writes SQL keywords in upper case, prose is lower case.
var sqlTable = regexp.MustCompile(`\b(?:FROM|JOIN|INTO|UPDATE|TABLE(?:\s+IF\s+(?:NOT\s+)?EXISTS)?)\s+([a-z_][a-z0-9_]*)`)

func checkSQL(p pkg, owner map[string]string, report func(key, msg string)) {
	for name, f := range p.files {
		ast.Inspect(f, func(n ast.Node) bool {
			lit, ok := n.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			s, err := strconv.Unquote(lit.Value)
			if err != nil {
				return true
			}
			for _, m := range sqlTable.FindAllStringSubmatch(s, -1) {
				table := m[1]
				if o, ok := owner[table]; ok && o != p.module {
					report(p.dir+" table "+table, p.dir+"/"+name+": SQL names table "+table+", owned by module "+o)
				}
			}
			return true
		})
	}
}

// storeFile is where engine differences may live.
var storeFile = regexp.MustCompile(`^(store(_.*)?|.*_(postgres|sqlite))\.go$`)

func checkEngine(p pkg, report func(key, msg string)) {
	if p.module == "db" {
		return // the seam itself
	}
	for name, f := range p.files {
		// Other packages have engines of their own (loadgen's epoll engine).
		if storeFile.MatchString(name) || !imports(f, modulePath+"/internal/db") {
			continue
		}
		ast.Inspect(f, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			x, _ := sel.X.(*ast.Ident)
			engineConst := x != nil && x.Name == "db" && (sel.Sel.Name == "Postgres" || sel.Sel.Name == "SQLite")
			if engineConst || sel.Sel.Name == "Engine" {
				report(p.dir+" engine "+name, p.dir+"/"+name+": names the database engine ("+sel.Sel.Name+") outside a store file")
			}
			return true
		})
	}
}

func imports(f *ast.File, path string) bool {
	for _, imp := range f.Imports {
		if imp.Path.Value == strconv.Quote(path) {
			return true
		}
	}
	return false
}

var createTable = regexp.MustCompile(`(?i)CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?([a-z_][a-z0-9_]*)`)

// tableOwners maps each table to its owning module and checks that the
// declarations and the migrations agree.
func tableOwners(t *testing.T, root string, mods map[string]abacus.Module) map[string]string {
	t.Helper()
	owner := map[string]string{}
	for _, m := range mods {
		for _, table := range m.Tables {
			if o, dup := owner[table]; dup {
				t.Errorf("table %s is declared by both %s and %s", table, o, m.Name)
			}
			owner[table] = m.Name
		}
	}
	created := map[string]bool{"schema_migrations": true} // created by db.Migrate itself
	for _, engine := range []string{"sqlite", "postgres"} {
		files, err := filepath.Glob(filepath.Join(root, "internal/db/migrations", engine, "*.sql"))
		if err != nil || len(files) == 0 {
			t.Fatalf("no %s migrations found (%v)", engine, err)
		}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range createTable.FindAllStringSubmatch(string(b), -1) {
				created[m[1]] = true
			}
		}
	}
	for table := range created {
		if _, ok := owner[table]; !ok {
			t.Errorf("table %s is created by a migration but no module declares it", table)
		}
	}
	for table, o := range owner {
		if !created[table] {
			t.Errorf("module %s declares table %s, which no migration creates", o, table)
		}
	}
	return owner
}
