package cluster

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
)

// Node is one Abacus process of a topology: its name and roles.
type Node struct {
	Name  string
	Roles []string
}

// Groups of roles with their own placement; every other role is a
// background role and gets a process of its own.
var (
	// HTTPRoles run behind the balancer's default route, two of them
	// (risk answers its routes beside the API, as in deploy/).
	HTTPRoles = []string{"api", "ingest", "risk"}
	// ScaledRoles run twice in the default topology.
	ScaledRoles = []string{"meter", "realtime"}
	// RoutePrefixes send these paths to the nodes of a role other than the
	// HTTP group's (the balancer's longest-prefix routes).
	RoutePrefixes = map[string][]string{
		"realtime": {"/api/v1/realtime", "/api/v1/conversations"},
	}
)

// DefaultTopology is the local cluster of issue 21 for the given role
// registry: two api,ingest,risk nodes, two meter nodes, two realtime nodes
// (when the role exists), and one node for each other role. Roles added
// to the registry later get their node without a change here.
func DefaultTopology(roles []string) []Node {
	var nodes []Node
	has := func(r string) bool { return slices.Contains(roles, r) }
	var httpRoles []string
	for _, r := range HTTPRoles {
		if has(r) {
			httpRoles = append(httpRoles, r)
		}
	}
	for i := 1; i <= 2 && len(httpRoles) > 0; i++ {
		nodes = append(nodes, Node{Name: fmt.Sprintf("api-%d", i), Roles: httpRoles})
	}
	for _, r := range ScaledRoles {
		if has(r) {
			for i := 1; i <= 2; i++ {
				nodes = append(nodes, Node{Name: fmt.Sprintf("%s-%d", r, i), Roles: []string{r}})
			}
		}
	}
	for _, r := range roles {
		if !slices.Contains(HTTPRoles, r) && !slices.Contains(ScaledRoles, r) {
			nodes = append(nodes, Node{Name: r, Roles: []string{r}})
		}
	}
	return nodes
}

// Options plan a cluster.
type Options struct {
	Dir string // state, logs and data of every process
	Bin string // the abacus binary every process runs
	// Nodes is the topology; empty means DefaultTopology(Roles).
	Nodes []Node
	Roles []string // the binary's role registry
	NATS  int      // nats-servers; default 3
	// DatabaseURL is a PostgreSQL server to use; empty finds one on
	// 127.0.0.1:5432 or starts one in Dir.
	DatabaseURL string
	// OwnPostgres starts a PostgreSQL server for the cluster in Dir even
	// when one answers elsewhere (a test that restarts it).
	OwnPostgres bool
	// Schema holds the cluster's tables on that server (shared servers
	// stay tidy); default abacus_cluster.
	Schema string
	// MaxConns is each process's connection pool; default 4.
	MaxConns int
	// Env is added to every Abacus process's environment (ABACUS_*).
	Env []string
}

// Cluster is a planned local cluster: what runs where. It is saved as
// cluster.json in its directory, so down and status find it again.
type Cluster struct {
	Dir         string   `json:"dir"`
	Postgres    Postgres `json:"postgres"`
	Schema      string   `json:"schema"`
	DatabaseURL string   `json:"database_url"`
	NATSURL     string   `json:"nats_url"`
	APIKey      string   `json:"api_key"`
	BalancerURL string   `json:"balancer_url"`
	Env         []string `json:"env"` // shared by every Abacus process
	Procs       []*Proc  `json:"procs"`
}

const stateFile = "cluster.json"

// Plan chooses ports, finds or starts PostgreSQL and lays out every
// process. Nothing else runs yet.
func Plan(ctx context.Context, o Options) (*Cluster, error) {
	if o.NATS <= 0 {
		o.NATS = 3
	}
	if o.Schema == "" {
		o.Schema = "abacus_cluster"
	}
	if o.MaxConns <= 0 {
		o.MaxConns = 4
	}
	if len(o.Nodes) == 0 {
		o.Nodes = DefaultTopology(o.Roles)
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("creating %s: %w", dir, err)
	}
	c := &Cluster{Dir: dir, Schema: o.Schema}
	ports, err := FreePorts(2*o.NATS + len(o.Nodes) + 2)
	if err != nil {
		return nil, err
	}
	take := func() string {
		p := ports[0]
		ports = ports[1:]
		return fmt.Sprintf("127.0.0.1:%d", p)
	}
	pgPort := take()
	_, pgPortNum, _ := splitHostPort(pgPort)
	if o.OwnPostgres {
		c.Postgres, err = StartPostgres(ctx, filepath.Join(dir, "postgres"), pgPortNum)
	} else {
		c.Postgres, err = FindOrStartPostgres(ctx, filepath.Join(dir, "postgres"), pgPortNum, o.DatabaseURL, os.Getenv("ABACUS_TEST_DATABASE_URL"))
	}
	if err != nil {
		return nil, err
	}
	if c.DatabaseURL, err = Schema(ctx, c.Postgres.URL, o.Schema, o.MaxConns); err != nil {
		return nil, err
	}
	// NATS: a full mesh of routes.
	nats := make([]NATSNode, o.NATS)
	for i := range nats {
		nats[i] = NATSNode{Name: fmt.Sprintf("nats-%d", i+1), Client: take(), Cluster: take(),
			StoreDir: filepath.Join(dir, "nodes", fmt.Sprintf("nats-%d", i+1))}
	}
	var urls []string
	for i := range nats {
		for j := range nats {
			if i != j {
				nats[i].Routes = append(nats[i].Routes, nats[j].Cluster)
			}
		}
		urls = append(urls, nats[i].ClientURL())
		c.Procs = append(c.Procs, &Proc{Name: nats[i].Name, Kind: "nats", Dial: nats[i].Client,
			Log: filepath.Join(dir, "logs", nats[i].Name+".log"),
			Args: []string{o.Bin, "dev", "nats", "--name", nats[i].Name, "--client", nats[i].Client, "--cluster", nats[i].Cluster,
				"--routes", strings.Join(nats[i].Routes, ","), "--store", nats[i].StoreDir}})
	}
	c.NATSURL = strings.Join(urls, ",")
	c.APIKey = "abk_cluster" + randomHex(16)
	c.Env = append([]string{
		"ABACUS_DATABASE_URL=" + c.DatabaseURL,
		fmt.Sprintf("ABACUS_DATABASE_MAX_CONNS=%d", o.MaxConns),
		"ABACUS_NATS_URL=" + c.NATSURL,
		fmt.Sprintf("ABACUS_NATS_REPLICAS=%d", min(o.NATS, 3)),
		"ABACUS_BOOTSTRAP_API_KEY=" + c.APIKey,
		// Every node must seal and hash with the same keys.
		"ABACUS_WEBHOOKS_ENCRYPTION_KEY=" + randomKey(),
		"ABACUS_PAYMENTS_ENCRYPTION_KEY=" + randomKey(),
		"ABACUS_PUSH_SEAL_KEY=" + randomKey(),
		"ABACUS_RISK_HASH_KEY=" + randomKey(),
		"ABACUS_HTTP_DRAIN_DELAY=1s",
		"ABACUS_HTTP_TRUSTED_PROXIES=127.0.0.1/32",
		"ABACUS_LOG_FORMAT=json",
		"ABACUS_GC_HEAP_FLOOR_MB=16",
	}, o.Env...)
	routes := map[string][]string{}
	for _, n := range o.Nodes {
		addr := take()
		p := &Proc{Name: n.Name, Kind: "abacus", HTTP: addr, Roles: n.Roles,
			Log:  filepath.Join(dir, "logs", n.Name+".log"),
			Args: []string{o.Bin, "serve"},
			Env: []string{"ABACUS_DATA_DIR=" + filepath.Join(dir, "nodes", n.Name), "ABACUS_HTTP_ADDR=" + addr,
				"ABACUS_ROLES=" + strings.Join(n.Roles, ","), "ABACUS_REALTIME_NODE=" + n.Name}}
		c.Procs = append(c.Procs, p)
		for _, r := range n.Roles {
			if slices.Contains(HTTPRoles, r) {
				routes[""] = appendOnce(routes[""], "http://"+addr)
			}
			for _, prefix := range RoutePrefixes[r] {
				routes[prefix] = appendOnce(routes[prefix], "http://"+addr)
			}
		}
	}
	lb := take()
	c.BalancerURL = "http://" + lb
	args := []string{o.Bin, "dev", "balance", "--listen", lb}
	prefixes := make([]string, 0, len(routes))
	for p := range routes {
		prefixes = append(prefixes, p)
	}
	sort.Strings(prefixes)
	for _, p := range prefixes {
		args = append(args, "--route", p+"="+strings.Join(routes[p], ","))
	}
	if len(routes) > 0 {
		c.Procs = append(c.Procs, &Proc{Name: "balancer", Kind: "balancer", Dial: lb, Args: args,
			Log: filepath.Join(dir, "logs", "balancer.log")})
	}
	return c, nil
}

func appendOnce(s []string, v string) []string {
	if slices.Contains(s, v) {
		return s
	}
	return append(s, v)
}

// Load reads the cluster saved in dir.
func Load(dir string) (*Cluster, error) {
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil {
		return nil, err
	}
	var c Cluster
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("reading %s: %w", filepath.Join(dir, stateFile), err)
	}
	return &c, nil
}

// Save writes the cluster to its directory (0600: it holds the keys).
func (c *Cluster) Save() error {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(c.Dir, stateFile+".tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(c.Dir, stateFile))
}

// Proc returns the process named name, or nil.
func (c *Cluster) Proc(name string) *Proc {
	for _, p := range c.Procs {
		if p.Name == name {
			return p
		}
	}
	return nil
}

// ProcsWithRole lists the Abacus processes that run role.
func (c *Cluster) ProcsWithRole(role string) []*Proc {
	var out []*Proc
	for _, p := range c.Procs {
		if slices.Contains(p.Roles, role) {
			out = append(out, p)
		}
	}
	return out
}

// Env returns the environment of an Abacus process (shared + its own).
func (c *Cluster) envOf(p *Proc) []string {
	if p.Kind != "abacus" {
		return p.Env
	}
	return append(slices.Clone(c.Env), p.Env...)
}

// StartProc starts one process (again), detached or as a child.
func (c *Cluster) StartProc(p *Proc, detached bool) error {
	own := p.Env
	p.Env = c.envOf(p)
	defer func() { p.Env = own }()
	if detached {
		return p.StartDetached()
	}
	return p.Start()
}

// Start brings the cluster up: the nats-servers, the migrations, the first
// HTTP node (which bootstraps the tenant and the admin key), every other
// node, then the balancer; each waits until ready. Processes already
// running are left alone.
func (c *Cluster) Start(ctx context.Context, detached bool, timeout time.Duration) error {
	start := func(ps []*Proc) error {
		for _, p := range ps {
			if p.Alive() {
				continue
			}
			if err := c.StartProc(p, detached); err != nil {
				return err
			}
		}
		var wg sync.WaitGroup
		errs := make([]error, len(ps))
		for i, p := range ps {
			wg.Go(func() { errs[i] = p.WaitReady(ctx, timeout) })
		}
		wg.Wait()
		return errors.Join(errs...)
	}
	var nats, abacus, rest []*Proc
	for _, p := range c.Procs {
		switch p.Kind {
		case "nats":
			nats = append(nats, p)
		case "abacus":
			abacus = append(abacus, p)
		default:
			rest = append(rest, p)
		}
	}
	if err := start(nats); err != nil {
		return err
	}
	if len(abacus) > 0 {
		if err := c.migrate(ctx, abacus[0].Args[0]); err != nil {
			return err
		}
		if err := start(abacus[:1]); err != nil {
			return err
		}
		if err := start(abacus[1:]); err != nil {
			return err
		}
	}
	return start(rest)
}

// migrate applies the migrations once, before the nodes start together.
func (c *Cluster) migrate(ctx context.Context, bin string) error {
	cmd := exec.CommandContext(ctx, bin, "migrate")
	cmd.Env = append(os.Environ(), c.Env...)
	cmd.Env = append(cmd.Env, "ABACUS_DATA_DIR="+filepath.Join(c.Dir, "nodes", "migrate"))
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("abacus migrate: %w\n%s", err, out)
	}
	return nil
}

// Stop stops every process, the balancer first and the nats-servers last
// (SIGTERM, then SIGKILL after timeout).
func (c *Cluster) Stop(timeout time.Duration) error {
	order := map[string]int{"balancer": 0, "abacus": 1, "nats": 2}
	ps := slices.Clone(c.Procs)
	sort.SliceStable(ps, func(i, j int) bool { return order[ps[i].Kind] < order[ps[j].Kind] })
	var errs []error
	for _, kind := range []string{"balancer", "abacus", "nats"} {
		var wg sync.WaitGroup
		var mu sync.Mutex
		for _, p := range ps {
			if p.Kind != kind {
				continue
			}
			wg.Go(func() {
				if err := p.Stop(timeout); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
	}
	return errors.Join(errs...)
}

// Status writes one line per process: name, kind, roles, address, pid,
// state.
func (c *Cluster) Status(ctx context.Context, w io.Writer) (allUp bool) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tKIND\tROLES\tADDRESS\tPID\tSTATE")
	allUp = true
	for _, p := range c.Procs {
		addr := p.HTTP
		if addr == "" {
			addr = p.Dial
		}
		state := "stopped"
		if p.Alive() {
			state = "starting"
			if p.Ready(ctx) {
				state = "ready"
			}
		}
		if state != "ready" {
			allUp = false
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", p.Name, p.Kind, strings.Join(p.Roles, ","), addr, p.Pid, state)
	}
	_ = tw.Flush()
	fmt.Fprintf(w, "\nbalancer    %s\nnats        %s\npostgres    %s (schema %s)\n", c.BalancerURL, c.NATSURL, redactURL(c.Postgres.URL), c.Schema)
	return allUp
}

func redactURL(u string) string {
	if i := strings.Index(u, "@"); i > 0 {
		if j := strings.Index(u, "://"); j > 0 && j < i {
			if k := strings.Index(u[j+3:i], ":"); k >= 0 {
				return u[:j+3+k] + ":***" + u[i:]
			}
		}
	}
	return u
}

// FreePorts returns n TCP ports free on 127.0.0.1 now.
func FreePorts(n int) ([]int, error) {
	var out []int
	var lns []net.Listener
	defer func() {
		for _, l := range lns {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("finding a free port: %w", err)
		}
		lns = append(lns, l)
		out = append(out, l.Addr().(*net.TCPAddr).Port)
	}
	return out, nil
}

func dialable(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 500*time.Millisecond)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func randomKey() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}
