package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/abacusbilling/abacus/internal/app"
	"github.com/abacusbilling/abacus/internal/backup"
	"github.com/abacusbilling/abacus/internal/config"
	"github.com/abacusbilling/abacus/internal/natsbus"
)

const notEmbedded = "abacus backup and restore cover the embedded mode (SQLite and the in-process NATS server); " +
	"back up PostgreSQL with pg_basebackup and WAL archiving (or pg_dump) and NATS with stream snapshots (docs/operations.md, \"Backups\")"

// backupCmd is `abacus backup`: through the running server's socket when
// one serves the data dir, else by opening the data dir itself.
func backupCmd(ctx context.Context, e Env, args []string) error {
	var out string
	cfg, rest, err := load("backup [flags]", e, args, func(fs *flag.FlagSet) {
		fs.StringVar(&out, "out", "", "archive to write (- for stdout; default abacus-backup-<UTC time>.tar)")
	})
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return fmt.Errorf("unexpected arguments %q; name the archive with --out", rest)
	}
	if !app.Embedded(cfg) {
		return errors.New(notEmbedded)
	}
	if out == "" {
		out = "abacus-backup-" + time.Now().UTC().Format("20060102T150405Z") + ".tar"
	}
	w, done, err := create(out, e.Stdout)
	if err != nil {
		return err
	}
	err = fromServer(ctx, cfg, w)
	if errors.Is(err, errNoServer) {
		err = offline(ctx, cfg, w)
	}
	if err = errors.Join(err, done(err == nil)); err != nil {
		return err
	}
	if out != "-" {
		fmt.Fprintf(e.Stdout, "backup written to %s\n", out)
	}
	return nil
}

// create opens out for writing; done closes it, removing it on failure.
func create(out string, stdout io.Writer) (io.Writer, func(ok bool) error, error) {
	if out == "-" {
		return stdout, func(bool) error { return nil }, nil
	}
	f, err := os.OpenFile(out, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("creating %s: %w", out, err)
	}
	return f, func(ok bool) error {
		err := f.Close()
		if !ok {
			_ = os.Remove(out)
		}
		return err
	}, nil
}

var errNoServer = errors.New("no server answers on the data dir's socket")

// fromServer asks the server holding the data dir for the backup.
func fromServer(ctx context.Context, cfg config.Config, w io.Writer) error {
	sock := filepath.Join(cfg.DataDir, app.BackupSocket)
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://abacus/backup", nil)
	resp, err := hc.Do(req)
	if err != nil {
		return errNoServer
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("the server answered %s on %s", resp.Status, sock)
	}
	if _, err := io.Copy(w, resp.Body); err != nil {
		return fmt.Errorf("receiving the backup: %w", err)
	}
	if msg := resp.Trailer.Get("Abacus-Backup-Error"); msg != "" {
		return fmt.Errorf("the server failed to take the backup: %s", msg)
	}
	return nil
}

// offline takes the backup with no server running: it holds the data
// dir's lock, so none starts meanwhile.
func offline(ctx context.Context, cfg config.Config, w io.Writer) error {
	unlock, err := lockDataDir(cfg.DataDir)
	if err != nil {
		return err
	}
	defer unlock()
	bus, err := natsbus.Open(ctx, natsbus.Options{StoreDir: cfg.NATSStoreDir(), Name: "abacus-backup"})
	if err != nil {
		return err
	}
	defer bus.Close()
	_, err = backup.Take(ctx, app.BackupSource(cfg, bus.Conn(), Version), w)
	return err
}

// restoreCmd is `abacus restore ARCHIVE`: into an empty data dir, before
// the server starts there.
func restoreCmd(ctx context.Context, e Env, args []string) error {
	cfg, rest, err := load("restore [flags] ARCHIVE", e, args, nil)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return errors.New("name the archive to restore (- for stdin)")
	}
	if !app.Embedded(cfg) {
		return errors.New(notEmbedded)
	}
	r := e.Stdin
	if rest[0] != "-" {
		f, err := os.Open(rest[0])
		if err != nil {
			return err
		}
		defer f.Close()
		r = f
	}
	m, err := backup.Restore(ctx, r, backup.Target{DataDir: cfg.DataDir, SQLitePath: cfg.SQLitePath(),
		Connect: func(ctx context.Context) (*nats.Conn, func(), error) {
			bus, err := natsbus.Open(ctx, natsbus.Options{StoreDir: cfg.NATSStoreDir(), Name: "abacus-restore"})
			if err != nil {
				return nil, nil, err
			}
			return bus.Conn(), bus.Close, nil
		}})
	if err != nil {
		return err
	}
	fmt.Fprintf(e.Stdout, "restored the backup of %s (database at %s, %d streams, %d files) into %s; start abacus serve there\n",
		m.FinishedAt.Format(time.RFC3339), m.DatabaseAt.Format(time.RFC3339), len(m.Streams), m.Files, cfg.DataDir)
	return nil
}
