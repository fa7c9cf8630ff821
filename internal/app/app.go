// Package app wires Abacus together: it is the only package that knows
// every module and every adapter. It opens the building blocks (data dir
// lock, database, bus, HTTP server), builds the selected roles, and starts
// and stops them in order.
//
//	Start: lock data dir → listen → open + migrate DB → bus → bootstrap
//	       → build roles (routes) → serve HTTP → start roles
//	Stop:  stop HTTP (drain in-flight) → stop roles (reverse) → bus → DB → unlock
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/config"
	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/httpapi"
	"github.com/abacusbilling/abacus/internal/identity"
	"github.com/abacusbilling/abacus/internal/media"
	"github.com/abacusbilling/abacus/internal/natsbus"
	"github.com/abacusbilling/abacus/internal/service"
)

// Options are what the caller injects besides the configuration.
type Options struct {
	Version string
	Log     *slog.Logger
	Clock   abacus.Clock
	// Out receives the one-time bootstrap banner with the generated key.
	Out io.Writer
}

// App is one running Abacus process.
type App struct {
	Config  config.Config
	Log     *slog.Logger
	Clock   abacus.Clock
	Version string
	Out     io.Writer

	DB       *db.DB
	Bus      *natsbus.Bus
	HTTP     *httpapi.Server
	Metrics  *prometheus.Registry
	Identity *identity.Service

	// BootstrapKey is the admin key created on empty data, if any.
	BootstrapKey string

	roles    []Role
	mods     modules
	received received       // inbound documents (inbound.go)
	objs     objects        // the shared object store (media.go)
	mediaSvc *media.Service // set by the media role (media.go)
	lock     *os.File
	listener net.Listener
	server   *http.Server
	services []service.Service
	stopOnce sync.Once
	// stopBackups closes the backup socket (backup.go).
	stopBackups func()
	stopErr     error
}

// New returns an app for cfg; nothing is opened until Start.
func New(cfg config.Config, o Options) *App {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Clock == nil {
		o.Clock = abacus.SystemClock{}
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	return &App{Config: cfg, Log: o.Log, Clock: o.Clock, Version: o.Version, Out: o.Out}
}

// Addr is the address the HTTP server listens on (useful with port 0).
func (a *App) Addr() string {
	if a.listener == nil {
		return ""
	}
	return a.listener.Addr().String()
}

// Start opens everything and starts the roles. On failure everything it
// opened is closed again and the error says what to fix.
func (a *App) Start(ctx context.Context) (err error) {
	start := time.Now()
	roles, err := SelectRoles(a.Config.Roles)
	if err != nil {
		return err
	}
	a.roles = roles
	defer func() {
		if err != nil {
			_ = a.Stop(context.Background())
		}
	}()
	if err := a.lockDataDir(); err != nil {
		return err
	}
	a.listener, err = net.Listen("tcp", a.Config.HTTP.Addr)
	if err != nil {
		return fmt.Errorf("cannot listen on %s (http.addr): %w; is another process using the port? Choose another with --http-addr", a.Config.HTTP.Addr, err)
	}
	if err := a.openDB(ctx); err != nil {
		return err
	}
	a.Bus, err = natsbus.Open(ctx, natsbus.Options{
		URL: a.Config.NATS.URL, StoreDir: a.Config.NATSStoreDir(), Listen: a.Config.NATS.Listen,
		SyncAlways: a.Config.NATS.SyncAlways, Replicas: a.Config.NATS.Replicas, Name: "abacus", Logger: a.Log.With("component", "nats"),
	})
	if err != nil {
		return fmt.Errorf("%w (nats.url)", err)
	}
	a.Metrics = prometheus.NewRegistry()
	a.Metrics.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	a.HTTP = httpapi.New(httpapi.Config{
		Version: a.Version, MaxBodyBytes: a.Config.HTTP.MaxBodyBytes, CORSOrigins: a.Config.HTTP.CORSOrigins,
	}, a.DB, a.Log, a.Metrics)
	a.Identity, err = newIdentity(a)
	if err != nil {
		return err
	}
	a.HTTP.SetAuthenticator(a.authenticate)
	a.HTTP.SetAuthorizer(a.Identity.Authorize)
	if needDatabase(roles) {
		a.HTTP.AddReadyCheck("database", a.DB.Ping)
	}
	a.HTTP.AddReadyCheck("nats", a.Bus.Check)
	if err := a.bootstrap(ctx); err != nil {
		return err
	}
	if err := a.applyStaticMeters(ctx); err != nil {
		return err
	}
	for _, r := range roles {
		svc, err := r.Build(ctx, a)
		if err != nil {
			return fmt.Errorf("building role %s: %w", r.Name, err)
		}
		if svc != nil {
			a.services = append(a.services, svc)
		}
	}
	if a.stopBackups, err = a.serveBackups(); err != nil {
		return fmt.Errorf("listening for abacus backup on %s in the data dir: %w", BackupSocket, err)
	}
	a.server = &http.Server{
		Handler:           a.HTTP.Handler(),
		ReadTimeout:       a.Config.HTTP.ReadTimeout,
		ReadHeaderTimeout: 10 * time.Second,
		WriteTimeout:      a.Config.HTTP.WriteTimeout,
		IdleTimeout:       a.Config.HTTP.IdleTimeout,
		ErrorLog:          slog.NewLogLogger(a.Log.Handler(), slog.LevelWarn),
	}
	go func() {
		if err := a.server.Serve(a.listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.Log.Error("http server stopped", "err", err)
		}
	}()
	for _, svc := range a.services {
		if err := svc.Start(ctx); err != nil {
			return fmt.Errorf("starting role %s: %w", svc.Name(), err)
		}
		a.HTTP.AddReadyCheck("role:"+svc.Name(), svc.Ready)
	}
	names := make([]string, len(roles))
	for i, r := range roles {
		names[i] = r.Name
	}
	dbDesc, busDesc := "sqlite "+a.Config.SQLitePath(), "embedded nats (store "+a.Config.NATSStoreDir()+")"
	if a.Config.Database.URL != "" {
		dbDesc = "postgres " + config.Redact(a.Config.Database.URL)
	}
	if a.Config.NATS.URL != "" {
		busDesc = "nats " + config.Redact(a.Config.NATS.URL)
	} else if u := a.Bus.ClientURL(); u != "" {
		busDesc += " listening on " + u
	}
	a.Log.Info("abacus ready", "http", "http://"+a.Addr(), "roles", names, "database", dbDesc, "bus", busDesc,
		"docs", "http://"+a.Addr()+"/docs", "startup", time.Since(start).Round(time.Millisecond).String())
	return nil
}

func (a *App) lockDataDir() error {
	dir := a.Config.DataDir
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("cannot create data dir %s (data_dir): %w; choose a writable directory with --data-dir", dir, err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "abacus.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("data dir %s is not writable (data_dir): %w; choose a writable directory with --data-dir", dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return fmt.Errorf("data dir %s is in use by another abacus process; stop it or use another --data-dir", dir)
	}
	_ = f.Truncate(0)
	_, _ = fmt.Fprintf(f, "%d\n", os.Getpid())
	a.lock = f
	return nil
}

func (a *App) openDB(ctx context.Context) error {
	octx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	d, err := db.Open(octx, db.Options{URL: a.Config.Database.URL, SQLitePath: a.Config.SQLitePath(), MaxConns: a.Config.Database.MaxConns})
	if err != nil {
		return fmt.Errorf("%w (database.url)", err)
	}
	a.DB = d
	applied, err := d.Migrate(ctx)
	if err != nil {
		return fmt.Errorf("migrating the database (nothing was changed): %w", err)
	}
	if len(applied) > 0 {
		a.Log.Info("database migrated", "applied", applied)
	}
	return nil
}

// bootstrap creates the default tenant and an admin key on empty data.
func (a *App) bootstrap(ctx context.Context) error {
	t, key, err := a.Identity.Bootstrap(ctx, a.Config.Bootstrap.APIKey)
	if err != nil {
		return fmt.Errorf("bootstrapping empty data: %w", err)
	}
	if key == "" {
		return nil
	}
	a.BootstrapKey = key
	a.Log.Info("created default tenant and admin API key", "tenant_id", t.ID, "key_prefix", key[:12])
	if a.Config.Bootstrap.APIKey == "" {
		fmt.Fprintf(a.Out, "\nCreated tenant %s and an admin API key. It is shown only this once; store it now:\n\n    %s\n\n", t.ID, key)
	}
	return a.bootstrapOwner(ctx, t.ID)
}

// bootstrapOwner gives the fresh tenant its first person: the owner named
// by bootstrap.admin_email and admin_password, or else a one-time link to
// the dashboard's setup page, printed once like the key.
func (a *App) bootstrapOwner(ctx context.Context, tenant string) error {
	b := a.Config.Bootstrap
	if b.AdminEmail != "" {
		if err := a.Identity.CreateOwner(ctx, tenant, b.AdminEmail, b.AdminPassword); err != nil {
			return fmt.Errorf("creating the owner account (bootstrap.admin_email, bootstrap.admin_password): %w", err)
		}
		a.Log.Info("created the owner account from bootstrap.admin_email", "tenant_id", tenant)
		return nil
	}
	link, err := a.Identity.SetupLink(ctx, tenant)
	if err != nil {
		return fmt.Errorf("creating the setup link: %w", err)
	}
	a.Log.Info("printed a one-time link that creates the first owner account", "tenant_id", tenant)
	fmt.Fprintf(a.Out, "Open this link to create the first owner account of the dashboard (it works once, for %d days):\n\n    %s\n\n",
		int(identity.SetupTokenTTL.Hours()/24), link)
	return nil
}

// Stop shuts down in order: the HTTP server stops accepting and finishes
// in-flight requests, roles stop (in reverse) and flush, then the bus and
// the database close. Safe to call twice.
func (a *App) Stop(ctx context.Context) error {
	a.stopOnce.Do(func() {
		var errs []error
		if a.server != nil && a.Config.HTTP.DrainDelay > 0 {
			// Readiness goes false first and requests are still served,
			// so load balancers move away before connections are refused.
			a.HTTP.AddReadyCheck("draining", func(context.Context) error { return errors.New("shutting down") })
			a.Log.Info("draining: /readyz reports not ready", "for", a.Config.HTTP.DrainDelay.String())
			select {
			case <-time.After(a.Config.HTTP.DrainDelay):
			case <-ctx.Done():
			}
		}
		sctx, cancel := context.WithTimeout(ctx, a.Config.HTTP.ShutdownTimeout)
		defer cancel()
		if a.server != nil {
			if err := a.server.Shutdown(sctx); err != nil {
				errs = append(errs, fmt.Errorf("stopping HTTP: %w", err))
			}
		} else if a.listener != nil {
			a.listener.Close()
		}
		if a.stopBackups != nil {
			a.stopBackups()
		}
		for i := len(a.services) - 1; i >= 0; i-- {
			if err := a.services[i].Stop(sctx); err != nil {
				errs = append(errs, fmt.Errorf("stopping %s: %w", a.services[i].Name(), err))
			}
		}
		if a.Bus != nil {
			a.Bus.Close()
		}
		if a.DB != nil {
			errs = append(errs, a.DB.Close())
		}
		if a.lock != nil {
			_ = syscall.Flock(int(a.lock.Fd()), syscall.LOCK_UN)
			a.lock.Close()
		}
		a.stopErr = errors.Join(errs...)
	})
	return a.stopErr
}

// Run starts the app, waits for ctx to end (a signal), and stops it.
func (a *App) Run(ctx context.Context) error {
	if err := a.Start(ctx); err != nil {
		return err
	}
	<-ctx.Done()
	a.Log.Info("shutting down")
	err := a.Stop(context.Background())
	if err == nil {
		a.Log.Info("stopped cleanly")
	}
	return err
}
