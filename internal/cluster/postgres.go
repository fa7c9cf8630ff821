package cluster

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// DefaultPostgresURL is where scripts/test and the cluster look first.
const DefaultPostgresURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// Postgres is the database a cluster uses: found or started by it.
type Postgres struct {
	URL     string // the server (database postgres)
	DataDir string // set when the cluster started it: its data directory
	Port    int
}

// postgresAnswers tells whether a server answers at u.
func postgresAnswers(ctx context.Context, u string) bool {
	cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	c, err := pgx.Connect(cctx, u)
	if err != nil {
		return false
	}
	defer c.Close(context.Background())
	return c.Ping(cctx) == nil
}

// FindOrStartPostgres returns the first server that answers among
// candidates (explicit URLs first, then DefaultPostgresURL); else it
// starts one from the installed binaries (/usr/lib/postgresql/*/bin or
// initdb on PATH) in dir on port, as scripts/test does. A server already
// started there is reused.
func FindOrStartPostgres(ctx context.Context, dir string, port int, candidates ...string) (Postgres, error) {
	for _, u := range append(candidates, DefaultPostgresURL) {
		if u != "" && postgresAnswers(ctx, u) {
			return Postgres{URL: u}, nil
		}
	}
	return StartPostgres(ctx, dir, port)
}

// StartPostgres starts a server of its own from the installed binaries in
// dir on port (initdb first when dir holds none), or reuses one already
// started there: a server a test may stop and restart.
func StartPostgres(ctx context.Context, dir string, port int) (Postgres, error) {
	pg := Postgres{DataDir: filepath.Join(dir, "data"), Port: port,
		URL: fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)}
	bindir, err := postgresBinDir()
	if err != nil {
		return pg, err
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return pg, err
	}
	run := func(name string, args ...string) error {
		cmd := exec.CommandContext(ctx, filepath.Join(bindir, name), args...)
		if os.Geteuid() == 0 { // PostgreSQL refuses to run as root
			if _, err := user.Lookup("postgres"); err != nil {
				return errors.New("running as root and there is no postgres user to run PostgreSQL as: create one (useradd -r postgres) or set --database-url")
			}
			_ = exec.Command("chown", "-R", "postgres", dir).Run()
			cmd = exec.CommandContext(ctx, "runuser", append([]string{"-u", "postgres", "--", filepath.Join(bindir, name)}, args...)...)
		}
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%s: %w\n%s", name, err, out)
		}
		return nil
	}
	if _, err := os.Stat(filepath.Join(pg.DataDir, "PG_VERSION")); err != nil {
		if err := run("initdb", "-D", pg.DataDir, "-U", "postgres", "-A", "trust"); err != nil {
			return pg, err
		}
	}
	if !postgresAnswers(ctx, pg.URL) {
		if err := run("pg_ctl", "-D", pg.DataDir, "-l", filepath.Join(dir, "postgres.log"), "-w", "-o",
			fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c max_connections=300", port, dir), "start"); err != nil {
			return pg, err
		}
	}
	if !postgresAnswers(ctx, pg.URL) {
		return pg, fmt.Errorf("started PostgreSQL in %s but it does not answer at %s", pg.DataDir, pg.URL)
	}
	return pg, nil
}

// StopPostgres stops a server the cluster started (fast mode: sessions
// end, nothing committed is lost).
func StopPostgres(pg Postgres) error { return pgCtl(pg, "-m", "fast", "-w", "stop") }

// CrashPostgres stops a server the cluster started in immediate mode: the
// postmaster and every backend end at once, without a checkpoint, as in a
// crash; the next start recovers from the WAL.
func CrashPostgres(pg Postgres) error { return pgCtl(pg, "-m", "immediate", "-w", "stop") }

// RestartPostgres starts again a server the cluster started and stopped.
func RestartPostgres(ctx context.Context, pg Postgres) (Postgres, error) {
	return StartPostgres(ctx, filepath.Dir(pg.DataDir), pg.Port)
}

func pgCtl(pg Postgres, args ...string) error {
	if pg.DataDir == "" {
		return nil
	}
	bindir, err := postgresBinDir()
	if err != nil {
		return err
	}
	args = append([]string{"-D", pg.DataDir}, args...)
	cmd := exec.Command(filepath.Join(bindir, "pg_ctl"), args...)
	if os.Geteuid() == 0 {
		cmd = exec.Command("runuser", append([]string{"-u", "postgres", "--", filepath.Join(bindir, "pg_ctl")}, args...)...)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("pg_ctl %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

func postgresBinDir() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Strings(dirs)
	for i := len(dirs) - 1; i >= 0; i-- {
		if _, err := os.Stat(filepath.Join(dirs[i], "initdb")); err == nil {
			return dirs[i], nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", errors.New("no PostgreSQL answers at " + DefaultPostgresURL + " and none is installed: apt-get install postgresql, or pass --database-url")
}

// Schema creates (if needed) a schema on the server at base and returns a
// URL whose connections use it, with at most maxConns connections per
// process: a cluster shares the server with whatever else uses it.
func Schema(ctx context.Context, base, schema string, maxConns int) (string, error) {
	c, err := pgx.Connect(ctx, base)
	if err != nil {
		return "", fmt.Errorf("connecting to %s: %w", base, err)
	}
	defer c.Close(context.Background())
	if _, err := c.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{schema}.Sanitize()); err != nil {
		return "", fmt.Errorf("creating schema %s: %w", schema, err)
	}
	u, err := url.Parse(base)
	if err != nil {
		return "", err
	}
	q := u.Query()
	q.Set("search_path", schema)
	q.Set("pool_max_conns", fmt.Sprint(maxConns))
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// DropSchema removes a schema made by Schema and everything in it.
func DropSchema(ctx context.Context, base, schema string) error {
	c, err := pgx.Connect(ctx, base)
	if err != nil {
		return fmt.Errorf("connecting to %s: %w", base, err)
	}
	defer c.Close(context.Background())
	_, err = c.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE")
	return err
}
