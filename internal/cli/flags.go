package cli

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/abacusbilling/abacus/internal/config"
)

// newFlags returns the flag set of one command. use is how to call it,
// e.g. "apikeys revoke [flags] KEY_ID"; its usage lists every flag.
func newFlags(use string) *flag.FlagSet {
	fs := flag.NewFlagSet("abacus "+commandName(use), flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: abacus %s\n\nFlags:\n", use)
		fs.PrintDefaults()
	}
	return fs
}

// commandName is use up to its flags ("apikeys revoke" of "apikeys
// revoke [flags] KEY_ID").
func commandName(use string) string {
	name, _, _ := strings.Cut(use, " [")
	return name
}

// parse calls parseArgs (fs.Parse, or config.Load, which calls it) with
// the flags in args moved before the positional arguments, so `events send
// FILE --max-attempts 2` works as `events send --max-attempts 2 FILE`.
// -h and --help print the usage to stdout and return flag.ErrHelp (exit
// 0); a bad flag prints it to stderr.
func parse(fs *flag.FlagSet, e Env, args []string, parseArgs func([]string) error) error {
	var out bytes.Buffer
	fs.SetOutput(&out)
	err := parseArgs(flagsFirst(fs, args))
	w := e.Stderr
	if errors.Is(err, flag.ErrHelp) {
		w = e.Stdout
	}
	_, _ = w.Write(out.Bytes())
	return err
}

// parseNoArguments parses the flags of a command that takes no other
// arguments (and still answers -h).
func parseNoArguments(fs *flag.FlagSet, e Env, args []string) error {
	if err := parse(fs, e, args, fs.Parse); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	return nil
}

// flagsFirst reorders args as the flag package expects them: every flag
// (with its value) first, then "--" and the positional arguments in their
// order. Everything after a "--" in args is positional. A flag takes the
// next argument as its value unless it is written -name=value, is a
// boolean flag of fs, or is -h/-help; flags fs does not define yet (the
// server flags config.Load adds) all take a value.
func flagsFirst(fs *flag.FlagSet, args []string) []string {
	var flags, operands []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			operands = append(operands, args[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			operands = append(operands, a)
			continue
		}
		flags = append(flags, a)
		if takesValue(fs, a) && i+1 < len(args) {
			i++
			flags = append(flags, args[i])
		}
	}
	return append(append(flags, "--"), operands...)
}

func takesValue(fs *flag.FlagSet, arg string) bool {
	name := strings.TrimLeft(arg, "-")
	if strings.Contains(name, "=") || name == "h" || name == "help" {
		return false
	}
	if f := fs.Lookup(name); f != nil {
		if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
			return false
		}
	}
	return true
}

// load parses a command's flags into a Config. extra adds the command's
// own flags; its usage lists them before the server flags every
// configured command shares. use is as for newFlags.
func load(use string, e Env, args []string, extra func(fs *flag.FlagSet)) (config.Config, []string, error) {
	fs := flag.NewFlagSet("abacus "+commandName(use), flag.ContinueOnError)
	if extra != nil {
		extra(fs)
	}
	var own []string
	fs.VisitAll(func(f *flag.Flag) { own = append(own, f.Name) })
	fs.Usage = func() { configUsage(fs.Output(), fs, use, own) }
	var (
		cfg  config.Config
		rest []string
	)
	err := parse(fs, e, args, func(args []string) (err error) {
		cfg, rest, err = config.Load(fs, args, e.Environ)
		return err
	})
	return cfg, rest, err
}

// configUsage prints the command's own flags, then the server flags with
// their defaults.
func configUsage(w io.Writer, fs *flag.FlagSet, use string, own []string) {
	fmt.Fprintf(w, "Usage: abacus %s\n", use)
	if len(own) > 0 {
		fmt.Fprintln(w, "\nFlags:")
		printFlags(w, fs, func(name string) bool { return slices.Contains(own, name) })
	}
	defaults := config.Default()
	for _, s := range config.Settings() {
		if f := fs.Lookup(s.Flag); f != nil {
			f.DefValue = s.Get(&defaults, true)
		}
	}
	fmt.Fprintln(w, "\nServer flags (each also read from ABACUS_<NAME> and the --config file; `abacus config` prints them all):")
	printFlags(w, fs, func(name string) bool { return !slices.Contains(own, name) })
}

// printFlags prints the defaults of the flags of fs that keep says to.
func printFlags(w io.Writer, fs *flag.FlagSet, keep func(name string) bool) {
	sub := flag.NewFlagSet(fs.Name(), flag.ContinueOnError)
	fs.VisitAll(func(f *flag.Flag) {
		if keep(f.Name) {
			sub.Var(f.Value, f.Name, f.Usage)
			sub.Lookup(f.Name).DefValue = f.DefValue
		}
	})
	sub.SetOutput(w)
	sub.PrintDefaults()
}
