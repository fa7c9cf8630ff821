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
}

func commands() []command {
	return []command{
		{"serve", "run Abacus (all roles by default)", serve},
		{"migrate", "apply database migrations and exit", migrate},
		{"config", "print the effective configuration (secrets redacted)", printConfig},
		{"apikeys", "create, list or revoke API keys (create|list|revoke)", apikeys},
		{"keys", "rotate the access-token signing keys (rotate)", keys},
		{"meters", "meter maintenance on the database (meters rebuild SLUG)", meters},
		{"events", "send usage events to a running server (events send)", events},
		{"bench", "load-test a running server and its baselines (bench ingest|query|load-usage|http|serve-204|baseline-http|baseline-jetstream)", bench},
		{"demo", "seed a running server with plans, customers, subscriptions and usage", demoCmd},
		{"version", "print the version", version},
	}
}

// Run runs the command line and returns the exit code.
func Run(ctx context.Context, e Env) int {
	if len(e.Args) == 0 || e.Args[0] == "-h" || e.Args[0] == "--help" || e.Args[0] == "help" {
		usage(e.Stderr)
		if len(e.Args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands() {
		if c.name == e.Args[0] {
			err := c.run(ctx, e, e.Args[1:])
			if errors.Is(err, flag.ErrHelp) {
				return 0
			}
			if err != nil {
				fmt.Fprintf(e.Stderr, "abacus %s: %s\n", c.name, oneLine(err))
				return 1
			}
			return 0
		}
	}
	fmt.Fprintf(e.Stderr, "abacus: unknown command %q\n", e.Args[0])
	usage(e.Stderr)
	return 2
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
	fmt.Fprintln(w, "Usage: abacus <command> [flags]\n\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun `abacus <command> -h` for a command's flags. Every flag also reads ABACUS_<NAME> from the environment and a --config file.")
}

// load parses a command's flags into a Config.
func load(name string, e Env, args []string, extra func(fs *flag.FlagSet)) (config.Config, []string, error) {
	fs := flag.NewFlagSet("abacus "+name, flag.ContinueOnError)
	fs.SetOutput(e.Stderr)
	if extra != nil {
		extra(fs)
	}
	return config.Load(fs, args, e.Environ)
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

func version(_ context.Context, e Env, _ []string) error {
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
	cfg, _, err := load("config", e, args, nil)
	if err != nil {
		return err
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
