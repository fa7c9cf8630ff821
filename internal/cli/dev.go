package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/abacusbilling/abacus/internal/app"
	"github.com/abacusbilling/abacus/internal/cluster"
)

func devCommands() []command {
	return []command{
		{name: "cluster", summary: "a local cluster: three nats-servers, PostgreSQL, Abacus per role group, a load balancer", subs: []command{
			{name: "up", summary: "start the cluster (or what of it is not running) and wait until it is ready", run: clusterUp},
			{name: "down", summary: "stop every process of the cluster (--purge also deletes its data)", run: clusterDown},
			{name: "status", summary: "list the processes and whether each is ready (exit 1 when one is not)", run: clusterStatus},
		}},
		{name: "nats", summary: "run one nats-server of a JetStream cluster (used by dev cluster)", run: devNATS},
		{name: "balance", summary: "run the HTTP load balancer in front of Abacus nodes (used by dev cluster)", run: devBalance},
	}
}

func clusterDirFlag(fs *flag.FlagSet) *string {
	return fs.String("dir", "data/cluster", "directory of the cluster's state, logs and data")
}

func clusterUp(ctx context.Context, e Env, args []string) error {
	fs := newFlags("dev cluster up [flags]")
	dir := clusterDirFlag(fs)
	dbURL := fs.String("database-url", "", "PostgreSQL server to use (default: 127.0.0.1:5432 if it answers, else one started in --dir)")
	schema := fs.String("schema", "abacus_cluster", "PostgreSQL schema holding the cluster's tables")
	timeout := fs.Duration("timeout", 2*time.Minute, "how long each process may take to become ready")
	if err := parseNoArguments(fs, e, args); err != nil {
		return err
	}
	c, err := cluster.Load(*dir)
	if errors.Is(err, os.ErrNotExist) {
		bin, err := os.Executable()
		if err != nil {
			return err
		}
		if strings.Contains(bin, "go-build") {
			return errors.New("the cluster's processes run this binary, and `go run` deletes it on exit: build it first (go build -o bin/abacus ./cmd/abacus) or use scripts/cluster up")
		}
		c, err = cluster.Plan(ctx, cluster.Options{Dir: *dir, Bin: bin, Roles: app.RoleNames(), DatabaseURL: *dbURL, Schema: *schema})
		if err != nil {
			return err
		}
		if err := c.Save(); err != nil {
			return err
		}
	} else if err != nil {
		return err
	} else if c.Postgres.DataDir != "" { // started by the cluster: start it again
		if _, err := cluster.FindOrStartPostgres(ctx, filepath.Dir(c.Postgres.DataDir), c.Postgres.Port, c.Postgres.URL); err != nil {
			return err
		}
	}
	fmt.Fprintf(e.Stderr, "starting the cluster in %s (logs in %s)\n", c.Dir, filepath.Join(c.Dir, "logs"))
	err = c.Start(ctx, true, *timeout)
	if serr := c.Save(); err == nil {
		err = serr
	}
	if err != nil {
		return err
	}
	c.Status(ctx, e.Stdout)
	fmt.Fprintf(e.Stdout, "\nThe cluster is ready. Admin API key: %s\n  curl -H 'Authorization: Bearer %s' %s/api/v1/meters\n",
		c.APIKey, c.APIKey, c.BalancerURL)
	return nil
}

func clusterDown(ctx context.Context, e Env, args []string) error {
	fs := newFlags("dev cluster down [flags]")
	dir := clusterDirFlag(fs)
	purge := fs.Bool("purge", false, "also delete the cluster's data: its directory and its PostgreSQL schema")
	timeout := fs.Duration("timeout", 30*time.Second, "how long a process may take to stop after SIGTERM before it is killed")
	if err := parseNoArguments(fs, e, args); err != nil {
		return err
	}
	c, err := cluster.Load(*dir)
	if errors.Is(err, os.ErrNotExist) {
		fmt.Fprintf(e.Stdout, "no cluster in %s\n", *dir)
		return nil
	}
	if err != nil {
		return err
	}
	err = c.Stop(*timeout)
	if *purge {
		if perr := cluster.DropSchema(ctx, c.Postgres.URL, c.Schema); perr != nil && c.Postgres.DataDir == "" {
			err = errors.Join(err, perr)
		}
	}
	err = errors.Join(err, cluster.StopPostgres(c.Postgres))
	if *purge {
		err = errors.Join(err, os.RemoveAll(c.Dir))
	}
	if err == nil {
		fmt.Fprintln(e.Stdout, "the cluster is down")
	}
	return err
}

func clusterStatus(ctx context.Context, e Env, args []string) error {
	fs := newFlags("dev cluster status [flags]")
	dir := clusterDirFlag(fs)
	if err := parseNoArguments(fs, e, args); err != nil {
		return err
	}
	c, err := cluster.Load(*dir)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("no cluster in %s: start one with abacus dev cluster up", *dir)
	}
	if err != nil {
		return err
	}
	if !c.Status(ctx, e.Stdout) {
		return errors.New("not every process is ready")
	}
	return nil
}

func devNATS(ctx context.Context, e Env, args []string) error {
	fs := newFlags("dev nats [flags]")
	var n cluster.NATSNode
	fs.StringVar(&n.Name, "name", "nats-1", "server name, unique in the cluster")
	fs.StringVar(&n.Client, "client", "127.0.0.1:4222", "host:port for clients")
	fs.StringVar(&n.Cluster, "cluster", "127.0.0.1:6222", "host:port for the other servers")
	routes := fs.String("routes", "", "the other servers' cluster addresses, comma-separated")
	fs.StringVar(&n.StoreDir, "store", "data/nats", "JetStream's directory")
	if err := parseNoArguments(fs, e, args); err != nil {
		return err
	}
	for _, r := range strings.Split(*routes, ",") {
		if r = strings.TrimSpace(r); r != "" {
			n.Routes = append(n.Routes, r)
		}
	}
	return cluster.RunNATS(ctx, n, func(format string, args ...any) {
		fmt.Fprintf(e.Stderr, time.Now().UTC().Format("15:04:05.000 ")+format+"\n", args...)
	})
}

func devBalance(ctx context.Context, e Env, args []string) error {
	fs := newFlags("dev balance [flags]")
	listen := fs.String("listen", "127.0.0.1:8080", "host:port to listen on")
	var routes []cluster.Route
	fs.Func("route", "PREFIX=URL,URL…: requests whose path starts with PREFIX go to these backends (repeatable; an empty PREFIX matches all)", func(v string) error {
		prefix, backends, ok := strings.Cut(v, "=")
		if !ok || backends == "" {
			return fmt.Errorf("%q: want PREFIX=URL[,URL…]", v)
		}
		routes = append(routes, cluster.Route{Prefix: prefix, Backends: strings.Split(backends, ",")})
		return nil
	})
	if err := parseNoArguments(fs, e, args); err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(e.Stderr, nil))
	b, err := cluster.NewBalancer(cluster.BalancerConfig{Routes: routes}, log)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", *listen, err)
	}
	srv := &http.Server{Handler: b, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = b.Run(ctx) }()
	go func() { _ = srv.Serve(ln) }()
	log.Info("balancing", "listen", *listen, "routes", len(routes))
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = srv.Shutdown(sctx)
	log.Info("balancer stopped", "retries", b.Retries(), "failures", b.Failures())
	return err
}

// probe is a container health check for images without a shell or curl:
// exit 0 when the URL answers 200.
func probe(ctx context.Context, e Env, args []string) error {
	fs := newFlags("probe [flags] URL")
	timeout := fs.Duration("timeout", 2*time.Second, "how long to wait for the answer")
	if err := parse(fs, e, args, fs.Parse); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("name one URL, e.g. abacus probe http://127.0.0.1:8080/readyz")
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fs.Arg(0), nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s answered %s", fs.Arg(0), resp.Status)
	}
	return nil
}
