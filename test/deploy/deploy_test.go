// Package deploy_test checks the deployment artefacts (Dockerfile,
// deploy/compose.yaml, deploy/kubernetes/*.yaml, deploy/systemd/*) against
// the binary they run: every command and flag is one the command line
// takes, every ABACUS_* variable is a real setting, the configuration each
// process gets loads and validates, every role named exists, and together
// the processes of each artefact run every role of the registry (so a role
// added later fails here until a deployment runs it). No Docker or
// Kubernetes is needed: the files are parsed.
package deploy_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"flag"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/abacusbilling/abacus/internal/app"
	"github.com/abacusbilling/abacus/internal/cli"
	"github.com/abacusbilling/abacus/internal/config"
)

const root = "../.."

// invocation is one abacus process an artefact starts.
type invocation struct {
	where string
	args  []string          // after the binary: serve --roles …
	env   map[string]string // as the artefact sets it (placeholders resolved)
}

var knownEnv = func() map[string]bool {
	m := map[string]bool{"ABACUS_CONFIG": true}
	for _, s := range config.Settings() {
		m[s.Env] = true
	}
	return m
}()

// sample stands in for a value an operator fills in (a secret or a
// variable the artefact leaves to the environment).
func sample(key string) string {
	switch {
	case strings.HasSuffix(key, "_ENCRYPTION_KEY"), strings.HasSuffix(key, "_SEAL_KEY"), strings.HasSuffix(key, "_HASH_KEY"):
		b := make([]byte, 32)
		_, _ = rand.Read(b)
		return base64.StdEncoding.EncodeToString(b)
	case key == "ABACUS_BOOTSTRAP_API_KEY":
		return "abk_0123456789abcdef0123456789abcdef"
	case key == "ABACUS_REALTIME_NODE":
		return "node-1"
	}
	return ""
}

var composeVar = regexp.MustCompile(`\$\{([A-Z0-9_]+)(:?[-?])?([^}]*)\}`)

func resolve(key, v string) string {
	if strings.Contains(v, "CHANGE-ME") && sample(key) != "" {
		return sample(key)
	}
	return composeVar.ReplaceAllStringFunc(v, func(m string) string {
		p := composeVar.FindStringSubmatch(m)
		if strings.HasSuffix(p[2], "-") {
			return p[3]
		}
		if s := sample(p[1]); s != "" {
			return s
		}
		if s := sample(key); s != "" {
			return s
		}
		return "x"
	})
}

// check runs the invocation's checks and returns the roles it runs.
func check(t *testing.T, inv invocation) []string {
	t.Helper()
	if len(inv.args) == 0 {
		t.Errorf("%s: no command", inv.where)
		return nil
	}
	var env []string
	for k, v := range inv.env {
		if strings.HasPrefix(k, "ABACUS_") && !knownEnv[k] {
			t.Errorf("%s: %s is not a setting of the binary (abacus config lists them)", inv.where, k)
		}
		env = append(env, k+"="+v)
	}
	sort.Strings(env)
	// The command line itself must take the command and every flag: with
	// -h appended it prints the usage, or fails on an unknown flag.
	var stderr bytes.Buffer
	code := cli.Run(context.Background(), cli.Env{Args: append(slices.Clone(inv.args), "-h"), Environ: env,
		Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: &stderr})
	if code != 0 {
		first, _, _ := strings.Cut(stderr.String(), "\n")
		t.Errorf("%s: abacus %s is refused by the binary (exit %d): %s", inv.where, strings.Join(inv.args, " "), code, first)
		return nil
	}
	if inv.args[0] != "serve" && inv.args[0] != "migrate" {
		return nil
	}
	fs := flag.NewFlagSet("abacus", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfg, rest, err := config.Load(fs, inv.args[1:], env)
	if err != nil {
		t.Errorf("%s: abacus %s: the configuration it gets does not load: %v", inv.where, strings.Join(inv.args, " "), err)
		return nil
	}
	if len(rest) > 0 {
		t.Errorf("%s: unexpected arguments %q", inv.where, rest)
	}
	if inv.args[0] == "migrate" {
		return nil
	}
	roles, err := app.SelectRoles(cfg.Roles)
	if err != nil {
		t.Errorf("%s: roles %q: %v", inv.where, cfg.Roles, err)
		return nil
	}
	var names []string
	for _, r := range roles {
		names = append(names, r.Name)
	}
	return names
}

// coversRegistry fails unless the roles together are every role.
func coversRegistry(t *testing.T, artefact string, ran map[string]bool) {
	t.Helper()
	for _, r := range app.RoleNames() {
		if !ran[r] {
			t.Errorf("%s: no process runs role %s", artefact, r)
		}
	}
}

func readYAMLDocs(t *testing.T, path string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var docs []map[string]any
	dec := yaml.NewDecoder(bytes.NewReader(b))
	for {
		var d map[string]any
		err := dec.Decode(&d)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("%s is not valid YAML: %v", path, err)
		}
		if d != nil {
			docs = append(docs, d)
		}
	}
	return docs
}

func strs(v any) []string {
	var out []string
	if l, ok := v.([]any); ok {
		for _, x := range l {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
	}
	return out
}

func get(m any, path ...string) any {
	for _, p := range path {
		mm, ok := m.(map[string]any)
		if !ok {
			return nil
		}
		m = mm[p]
	}
	return m
}

func TestDockerfile(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	text := strings.ReplaceAll(string(b), "\\\n", " ")
	var stages []string
	var final []string // the final stage's instructions
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(strings.ToUpper(line), "FROM ") {
			stages = append(stages, line)
			final = nil
		}
		final = append(final, line)
	}
	if len(stages) < 2 {
		t.Fatalf("want a multi-stage build, got stages %q", stages)
	}
	if !strings.Contains(text, "CGO_ENABLED=0") || !strings.Contains(text, "./cmd/abacus") {
		t.Error("the build stage must build ./cmd/abacus with CGO_ENABLED=0 (a static binary)")
	}
	base := strings.Fields(stages[len(stages)-1])[1]
	if !strings.Contains(base, "distroless/static") && base != "scratch" {
		t.Errorf("final stage FROM %s: want scratch or distroless/static (small, no libc needed)", base)
	}
	inv := invocation{where: "Dockerfile", env: map[string]string{}}
	var entry []string
	user := ""
	for _, line := range final {
		kw, rest, _ := strings.Cut(line, " ")
		switch strings.ToUpper(kw) {
		case "USER":
			user = strings.TrimSpace(rest)
		case "ENTRYPOINT", "CMD":
			var l []string
			if err := yaml.Unmarshal([]byte(rest), &l); err != nil {
				t.Fatalf("%s %s: want the exec (JSON) form: %v", kw, rest, err)
			}
			if strings.ToUpper(kw) == "ENTRYPOINT" {
				entry = l
			} else {
				inv.args = l
			}
		case "ENV":
			for _, kv := range strings.Fields(rest) {
				k, v, _ := strings.Cut(kv, "=")
				inv.env[k] = v
			}
		}
	}
	if u, _, _ := strings.Cut(user, ":"); u == "" || u == "0" || u == "root" {
		t.Errorf("final stage USER %q: want a non-root user", user)
	}
	if len(entry) != 1 || entry[0] != "/abacus" {
		t.Errorf("ENTRYPOINT %q: want [\"/abacus\"]", entry)
	}
	check(t, inv)
}

func TestCompose(t *testing.T) {
	t.Parallel()
	path := filepath.Join(root, "deploy", "compose.yaml")
	docs := readYAMLDocs(t, path)
	if len(docs) != 1 {
		t.Fatalf("%s: want one document", path)
	}
	services, _ := docs[0]["services"].(map[string]any)
	ran := map[string]bool{}
	abacus := 0
	nats := 0
	for name, sv := range services {
		image, _ := get(sv, "image").(string)
		switch {
		case strings.Contains(image, "abacus"):
			abacus++
			inv := invocation{where: "compose service " + name, args: strs(get(sv, "command")), env: map[string]string{}}
			env, _ := get(sv, "environment").(map[string]any)
			for k, v := range env {
				inv.env[k] = resolve(k, toString(v))
			}
			for _, r := range check(t, inv) {
				ran[r] = true
			}
			if hc := strs(get(sv, "healthcheck", "test")); len(hc) > 1 && hc[1] == "/abacus" {
				check(t, invocation{where: "compose service " + name + " healthcheck", args: hc[2:], env: map[string]string{}})
			}
		case strings.HasPrefix(image, "nats"):
			nats++
			cmd := strings.Join(strs(get(sv, "command")), " ")
			if !strings.Contains(cmd, "-js") || !strings.Contains(cmd, "--routes") {
				t.Errorf("compose service %s: nats-server needs -js and --routes to form a JetStream cluster: %s", name, cmd)
			}
		}
	}
	if nats != 3 {
		t.Errorf("want three nats-servers, got %d", nats)
	}
	if abacus < 4 {
		t.Errorf("want several abacus services, got %d", abacus)
	}
	coversRegistry(t, path, ran)
}

func toString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case nil:
		return ""
	default:
		b, _ := yaml.Marshal(x)
		return strings.TrimSpace(string(b))
	}
}

func TestKubernetes(t *testing.T) {
	t.Parallel()
	files, _ := filepath.Glob(filepath.Join(root, "deploy", "kubernetes", "*.yaml"))
	var docs []map[string]any
	for _, f := range files {
		docs = append(docs, readYAMLDocs(t, f)...)
	}
	configMaps, secrets := map[string]map[string]any{}, map[string]map[string]any{}
	for _, d := range docs {
		name, _ := get(d, "metadata", "name").(string)
		switch d["kind"] {
		case "ConfigMap":
			configMaps[name], _ = d["data"].(map[string]any)
		case "Secret":
			secrets[name], _ = d["stringData"].(map[string]any)
		}
	}
	var pdbSelectors []map[string]any
	for _, d := range docs {
		if d["kind"] == "PodDisruptionBudget" {
			sel, _ := get(d, "spec", "selector", "matchLabels").(map[string]any)
			pdbSelectors = append(pdbSelectors, sel)
		}
	}
	ran := map[string]bool{}
	deployments := 0
	for _, d := range docs {
		kind, _ := d["kind"].(string)
		if kind != "Deployment" && kind != "Job" {
			continue
		}
		name, _ := get(d, "metadata", "name").(string)
		podLabels, _ := get(d, "spec", "template", "metadata", "labels").(map[string]any)
		containers, _ := get(d, "spec", "template", "spec", "containers").([]any)
		for _, c := range containers {
			where := kind + " " + name
			inv := invocation{where: where, args: strs(get(c, "args")), env: map[string]string{}}
			for _, ef := range asList(get(c, "envFrom")) {
				if n, ok := get(ef, "configMapRef", "name").(string); ok {
					if configMaps[n] == nil {
						t.Errorf("%s: ConfigMap %s is not in deploy/kubernetes", where, n)
					}
					for k, v := range configMaps[n] {
						inv.env[k] = resolve(k, toString(v))
					}
				}
				if n, ok := get(ef, "secretRef", "name").(string); ok {
					if secrets[n] == nil {
						t.Errorf("%s: Secret %s is not in deploy/kubernetes", where, n)
					}
					for k, v := range secrets[n] {
						inv.env[k] = resolve(k, toString(v))
					}
				}
			}
			for _, e := range asList(get(c, "env")) {
				k, _ := get(e, "name").(string)
				v, ok := get(e, "value").(string)
				if !ok {
					v = sample(k)
				}
				inv.env[k] = resolve(k, v)
			}
			for _, r := range check(t, inv) {
				ran[r] = true
			}
			if kind != "Deployment" {
				continue
			}
			deployments++
			if p := get(c, "readinessProbe", "httpGet", "path"); p != "/readyz" {
				t.Errorf("%s: readinessProbe path %v, want /readyz", where, p)
			}
			if p := get(c, "livenessProbe", "httpGet", "path"); p != "/healthz" {
				t.Errorf("%s: livenessProbe path %v, want /healthz", where, p)
			}
			if get(c, "resources", "requests", "cpu") == nil || get(c, "resources", "requests", "memory") == nil {
				t.Errorf("%s: resources.requests needs cpu and memory", where)
			}
			// The probes' port is the one Abacus listens on.
			_, port, _ := strings.Cut(inv.env["ABACUS_HTTP_ADDR"], ":")
			for _, p := range asList(get(c, "ports")) {
				if get(p, "name") == "http" && toString(get(p, "containerPort")) != port {
					t.Errorf("%s: containerPort %v but ABACUS_HTTP_ADDR listens on %q", where, get(p, "containerPort"), port)
				}
			}
		}
		if kind == "Deployment" && !slices.ContainsFunc(pdbSelectors, func(sel map[string]any) bool { return matches(sel, podLabels) }) {
			t.Errorf("Deployment %s: no PodDisruptionBudget selects its pods", name)
		}
	}
	if deployments < 4 {
		t.Errorf("want one Deployment per role group (api, meter, realtime, background), got %d", deployments)
	}
	coversRegistry(t, "deploy/kubernetes", ran)
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

func matches(sel, labels map[string]any) bool {
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// unit reads a systemd unit or environment file: key=value lines, with
// repeated keys kept in order.
func unit(t *testing.T, path string) [][2]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out [][2]string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";") || strings.HasPrefix(line, "[") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Errorf("%s: %q is not key=value", path, line)
			continue
		}
		out = append(out, [2]string{strings.TrimSpace(k), strings.TrimSpace(v)})
	}
	return out
}

func TestSystemd(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(root, "deploy", "systemd")
	svc := unit(t, filepath.Join(dir, "abacus@.service"))
	instances, _ := filepath.Glob(filepath.Join(dir, "*.env"))
	ran := map[string]bool{}
	n := 0
	for _, inst := range instances {
		name := strings.TrimSuffix(filepath.Base(inst), ".env")
		if name == "abacus" { // the shared file, not an instance
			continue
		}
		n++
		inv := invocation{where: "abacus@" + name, env: map[string]string{}}
		for _, kv := range svc {
			v := strings.ReplaceAll(kv[1], "%i", name)
			switch kv[0] {
			case "EnvironmentFile":
				f := filepath.Join(dir, filepath.Base(strings.TrimPrefix(v, "-")))
				for _, e := range unit(t, f) {
					inv.env[e[0]] = resolve(e[0], e[1])
				}
			case "Environment":
				k, val, _ := strings.Cut(v, "=")
				inv.env[k] = resolve(k, val)
			case "ExecStart":
				f := strings.Fields(v)
				if f[0] != "/usr/local/bin/abacus" {
					t.Errorf("ExecStart runs %s, want /usr/local/bin/abacus (as the unit's install notes say)", f[0])
				}
				inv.args = f[1:]
			}
		}
		for _, r := range check(t, inv) {
			ran[r] = true
		}
	}
	if n < 4 {
		t.Errorf("want an environment file per role group, got %d", n)
	}
	coversRegistry(t, "deploy/systemd", ran)
	for _, kv := range unit(t, filepath.Join(dir, "nats-server.service")) {
		if kv[0] == "ExecStart" && !strings.Contains(kv[1], "nats-server") {
			t.Errorf("nats-server.service runs %s", kv[1])
		}
	}
}

// TestAlertRules parses the Prometheus rules and checks that every Abacus
// metric they name is one the binary exports, with labels it has.
func TestAlertRules(t *testing.T) {
	t.Parallel()
	path := filepath.Join(root, "deploy", "prometheus", "alerts.yaml")
	docs := readYAMLDocs(t, path)
	if len(docs) != 1 {
		t.Fatalf("%s: want one document", path)
	}
	// The metric names and label lists the code defines.
	defined := map[string]bool{}
	labels := map[string]bool{"partition": true, "status": true, "route": true, "method": true}
	nameRe := regexp.MustCompile(`Name: +"(abacus_[a-z_]+)"`)
	_ = filepath.WalkDir(filepath.Join(root, "internal"), func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return err
		}
		b, _ := os.ReadFile(p)
		for _, m := range nameRe.FindAllSubmatch(b, -1) {
			defined[string(m[1])] = true
		}
		return nil
	})
	used := regexp.MustCompile(`\b(abacus_[a-z_]+)\b(\{([^}]*)\})?`)
	alerts := 0
	for _, g := range asList(docs[0]["groups"]) {
		for _, r := range asList(get(g, "rules")) {
			alerts++
			expr, _ := get(r, "expr").(string)
			name, _ := get(r, "alert").(string)
			if expr == "" || name == "" || get(r, "annotations", "summary") == nil {
				t.Errorf("rule %q: needs alert, expr and a summary", name)
			}
			for _, m := range used.FindAllStringSubmatch(expr, -1) {
				if !defined[m[1]] {
					t.Errorf("alert %s: metric %s is not exported by the binary", name, m[1])
				}
				for _, sel := range strings.Split(m[3], ",") {
					if l, _, ok := strings.Cut(strings.TrimSpace(sel), "="); ok && !labels[strings.TrimRight(l, "!~")] {
						t.Errorf("alert %s: %s has no label %s", name, m[1], l)
					}
				}
			}
		}
	}
	if alerts < 5 {
		t.Errorf("want the alerts that matter (lag, partitions, outbox, deliveries, disk), got %d", alerts)
	}
}
