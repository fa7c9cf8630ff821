// Package cli is the abacus command line. main calls Run; tests call it
// too, with their own arguments, environment and output.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"
	"slices"
	"strings"

	"github.com/abacusbilling/abacus/internal/config"
	"github.com/abacusbilling/abacus/internal/httpapi"
)

// Version is set at build time with -ldflags "-X …/internal/cli.Version=v1.2.3".
var Version = "dev"

// Env is what a command sees of the outside world.
type Env struct {
	Args    []string // without the program name
	Environ []string
	Stdin   io.Reader
	Stdout  io.Writer
	Stderr  io.Writer
}

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, e Env, args []string) error
	subs    []command // when set, the first argument names one of them
}

func commands() []command {
	return []command{
		{name: "serve", summary: "run Abacus (all roles by default)", run: serve},
		{name: "migrate", summary: "apply database migrations and exit", run: migrate},
		{name: "config", summary: "print the effective configuration (secrets redacted)", run: printConfig},
		{name: "apikeys", summary: "manage a tenant's API keys on the database", subs: []command{
			{name: "create", summary: "create a key and print it once", run: apikeysCmd("create")},
			{name: "list", summary: "list the keys (never the keys themselves)", run: apikeysCmd("list")},
			{name: "revoke", summary: "revoke a key by its id", run: apikeysCmd("revoke")},
		}},
		{name: "keys", summary: "manage the access-token signing keys", subs: []command{
			{name: "rotate", summary: "add a new signing key; old ones retire when their tokens expire", run: keysRotate},
		}},
		{name: "meters", summary: "meter maintenance on the database", subs: []command{
			{name: "rebuild", summary: "recompute a meter's rollups from its stored events", run: metersRebuild},
		}},
		{name: "analytics", summary: "analytics maintenance on the database", subs: []command{
			{name: "rebuild", summary: "recompute the analytics figures from their journal of domain events", run: analyticsRebuild},
		}},
		{name: "events", summary: "send usage events to a running server", subs: []command{
			{name: "send", summary: "send CloudEvents from a file or stdin, retrying with the same ids", run: eventsSend},
		}},
		{name: "bench", summary: "load-test a running server and its baselines", subs: benchCommands()},
		{name: "backup", summary: "back up the embedded mode (SQLite, JetStream, keys and files) while it serves", run: backupCmd},
		{name: "restore", summary: "restore a backup into an empty data dir", run: restoreCmd},
		{name: "dev", summary: "development tools: a local cluster (dev cluster up|down|status)", subs: devCommands()},
		{name: "probe", summary: "exit 0 when a URL answers 200 (health checks in images without a shell)", run: probe},
		{name: "demo", summary: "seed a running server with plans, customers, subscriptions and usage", run: demoCmd},
		{name: "version", summary: "print the version", run: version},
	}
}

// Run runs the command line and returns the exit code: 0 on success and
// for -h/--help (whose usage goes to stdout), 1 when a command fails, 2
// for an unknown command.
func Run(ctx context.Context, e Env) int {
	if len(e.Args) == 0 {
		usage(e.Stderr)
		return 2
	}
	if isHelp(e.Args[0]) {
		if e.Args[0] == "help" && len(e.Args) > 1 { // abacus help apikeys create
			e.Args = append(slices.Clone(e.Args[1:]), "-h")
			return Run(ctx, e)
		}
		usage(e.Stdout)
		return 0
	}
	c, ok := find(commands(), e.Args[0])
	if !ok {
		fmt.Fprintf(e.Stderr, "abacus: unknown command %q\n", e.Args[0])
		usage(e.Stderr)
		return 2
	}
	err := c.exec(ctx, e, c.name, e.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(e.Stderr, "abacus %s: %s\n", c.name, oneLine(err))
		return 1
	}
	return 0
}

// exec runs c, or the subcommand args name; path is c's name from the
// top ("apikeys"). -h on a command with subcommands lists them.
func (c command) exec(ctx context.Context, e Env, path string, args []string) error {
	if c.subs == nil {
		return c.run(ctx, e, args)
	}
	if len(args) == 0 {
		return fmt.Errorf("name a subcommand: abacus %s %s (-h lists them)", path, subNames(c.subs))
	}
	if isHelp(args[0]) {
		subUsage(e.Stdout, path, c.subs)
		return flag.ErrHelp
	}
	sub, ok := find(c.subs, args[0])
	if !ok {
		return fmt.Errorf("unknown subcommand %q: use abacus %s %s", args[0], path, subNames(c.subs))
	}
	return sub.exec(ctx, e, path+" "+sub.name, args[1:])
}

func isHelp(arg string) bool {
	return arg == "-h" || arg == "--help" || arg == "-help" || arg == "help"
}

func find(cs []command, name string) (command, bool) {
	for _, c := range cs {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

func subNames(cs []command) string {
	names := make([]string, len(cs))
	for i, c := range cs {
		names[i] = c.name
	}
	return strings.Join(names, "|")
}

func oneLine(err error) string {
	var ps config.Problems
	if errors.As(err, &ps) {
		lines := []string{"invalid configuration:"}
		for _, p := range ps {
			lines = append(lines, "  "+p.String())
		}
		return strings.Join(lines, "\n")
	}
	// Drivers sometimes wrap causes over several lines; the operator gets one.
	return strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\n", "; ")), " ")
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: abacus <command> [subcommand] [flags] [arguments]\n\nCommands:")
	for _, c := range commands() {
		summary := c.summary
		if c.subs != nil {
			summary += " (" + subNames(c.subs) + ")"
		}
		fmt.Fprintf(w, "  %-8s %s\n", c.name, summary)
	}
	fmt.Fprintln(w, "\nRun `abacus <command> -h` for a command's flags; flags may come before or after arguments.\n"+
		"Every server flag also reads ABACUS_<NAME> from the environment and a --config file.")
}

func subUsage(w io.Writer, path string, subs []command) {
	fmt.Fprintf(w, "Usage: abacus %s <subcommand> [flags] [arguments]\n\nSubcommands:\n", path)
	for _, c := range subs {
		fmt.Fprintf(w, "  %-18s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\nRun `abacus %s <subcommand> -h` for its flags.\n", path)
}

// newLogger builds the process logger from the configuration.
func newLogger(cfg config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.Log.Level))
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(w, opts)
	if cfg.JSONLogs() {
		h = slog.NewJSONHandler(w, opts)
	}
	return slog.New(httpapi.ContextHandler{Handler: h})
}

func version(_ context.Context, e Env, args []string) error {
	if err := parseNoArguments(newFlags("version"), e, args); err != nil {
		return err
	}
	v := Version
	if bi, ok := debug.ReadBuildInfo(); ok && v == "dev" {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v = "dev-" + s.Value[:12]
			}
		}
	}
	fmt.Fprintf(e.Stdout, "abacus %s\n", v)
	return nil
}

func printConfig(_ context.Context, e Env, args []string) error {
	cfg, rest, err := load("config [flags]", e, args, nil)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return fmt.Errorf("unexpected arguments %q; config takes only flags", rest)
	}
	config.Print(e.Stdout, &cfg)
	return nil
}

// envOr returns the environment variable key from e, or def when unset or empty.
func envOr(e Env, key, def string) string {
	for _, kv := range e.Environ {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key && v != "" {
			return v
		}
	}
	return def
}
