package app

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/abacusbilling/abacus/internal/backup"
	"github.com/abacusbilling/abacus/internal/config"
)

// BackupSocket is the unix socket in the data dir on which an embedded
// server answers `abacus backup` (GET /backup: the archive, then the
// trailer Abacus-Backup-Error when it failed midway). Whoever may open it
// may read the data dir anyway: its 0600 mode is the authentication.
const BackupSocket = "abacus.sock"

// BackupSource is what a backup of cfg's embedded mode reads: the SQLite
// file, a connection to the embedded server, and the data dir's other files.
func BackupSource(cfg config.Config, nc *nats.Conn, version string) backup.Source {
	rel := func(p string) string {
		r, err := filepath.Rel(cfg.DataDir, p)
		if err != nil {
			return p
		}
		return r
	}
	return backup.Source{SQLitePath: cfg.SQLitePath(), NATS: nc, DataDir: cfg.DataDir, Version: version,
		Skip: []string{rel(cfg.SQLitePath()) + "*", rel(cfg.NATSStoreDir()), "abacus.lock", BackupSocket, ".backup-*", ".restore-*"}}
}

// Embedded tells whether cfg runs the embedded mode (SQLite and the
// in-process NATS server), the one `abacus backup` covers.
func Embedded(cfg config.Config) bool { return cfg.Database.URL == "" && cfg.NATS.URL == "" }

// serveBackups answers on BackupSocket in the embedded mode; the returned
// function stops it.
func (a *App) serveBackups() (func(), error) {
	if !Embedded(a.Config) {
		return func() {}, nil
	}
	sock := filepath.Join(a.Config.DataDir, BackupSocket)
	_ = os.Remove(sock) // left by a crash; the data-dir lock says it is ours
	l, err := net.Listen("unix", sock)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(sock, 0o600); err != nil {
		l.Close()
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /backup", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "Abacus-Backup-Error")
		w.Header().Set("Content-Type", "application/x-tar")
		src := BackupSource(a.Config, a.Bus.Conn(), a.Version)
		if rs := a.mods.risk.svc; rs != nil {
			// The risk journal's answered batches are stored before the
			// database copy; its files, deleted as they are applied, are
			// not copied (a stopped server's are: BackupSource).
			src.Flush, src.Skip = rs.Flush, append(src.Skip, RiskJournalDir)
		}
		m, err := backup.Take(r.Context(), src, w)
		if err != nil {
			a.Log.Error("backup failed", "err", err)
			w.Header().Set("Abacus-Backup-Error", err.Error())
			return
		}
		a.Log.Info("backup taken", "streams", len(m.Streams), "files", m.Files, "database_at", m.DatabaseAt,
			"took", m.FinishedAt.Sub(m.StartedAt).String())
	})
	srv := &http.Server{Handler: mux}
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.Log.Error("backup socket stopped", "err", err)
		}
	}()
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		_ = os.Remove(sock)
	}, nil
}
