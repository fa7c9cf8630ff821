package backup

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Format is the archive layout's version, in its manifest.
const Format = 1

// Names inside the archive.
const (
	manifestName = "manifest.json"
	databaseName = "abacus.db"
	streamsDir   = "streams/"
	filesDir     = "files/"
)

// Manifest describes a backup; it is the archive's first entry.
type Manifest struct {
	Format    int       `json:"format"`
	Version   string    `json:"version"` // of the binary that took it
	StartedAt time.Time `json:"started_at"`
	// DatabaseAt is when the database copy's read transaction began (T1).
	DatabaseAt time.Time `json:"database_at"`
	// StreamsAt is when the first stream snapshot began (T2): whatever a
	// stream held then is in the backup.
	StreamsAt time.Time `json:"streams_at"`
	// FinishedAt is when the last stream snapshot ended.
	FinishedAt time.Time `json:"finished_at"`
	Streams    []Stream  `json:"streams"`
	Files      int       `json:"files"`
}

// Source is what Take reads: the running (or stopped) embedded mode.
type Source struct {
	SQLitePath string     // the database file
	NATS       *nats.Conn // a connection to the embedded server
	DataDir    string
	// Skip lists paths under DataDir, relative, that are not copied as
	// files: the database and its WAL, the JetStream store, the lock.
	Skip    []string
	Version string
	// Flush, when set, runs just before the database is copied: a writer
	// that answers before its rows are in the database (the risk journal)
	// stores what it answered, so the copy holds it.
	Flush func(context.Context) error
}

// Take writes a backup of src to w as a tar archive, following the order
// of the package doc, while the server keeps serving.
func Take(ctx context.Context, src Source, w io.Writer) (Manifest, error) {
	m := Manifest{Format: Format, Version: src.Version, StartedAt: time.Now().UTC()}
	js, err := jetstream.New(src.NATS)
	if err != nil {
		return m, err
	}
	if m.Streams, err = positions(ctx, js); err != nil {
		return m, err
	}
	tmp, err := os.MkdirTemp(src.DataDir, ".backup-")
	if err != nil {
		return m, fmt.Errorf("making a work directory in the data dir: %w", err)
	}
	defer os.RemoveAll(tmp)
	dbFile := filepath.Join(tmp, databaseName)
	if src.Flush != nil {
		if err := src.Flush(ctx); err != nil {
			return m, fmt.Errorf("storing what was answered before the database copy: %w", err)
		}
	}
	m.DatabaseAt = time.Now().UTC()
	if err := vacuumInto(ctx, src.SQLitePath, dbFile); err != nil {
		return m, err
	}
	m.StreamsAt = time.Now().UTC()
	for i := range m.Streams {
		if err := snapshotToFile(ctx, src.NATS, &m.Streams[i], filepath.Join(tmp, m.Streams[i].Name+".snap")); err != nil {
			return m, err
		}
	}
	m.FinishedAt = time.Now().UTC()
	files, err := dataFiles(src.DataDir, append(src.Skip, filepath.Base(tmp)))
	if err != nil {
		return m, err
	}
	m.Files = len(files)
	tw := tar.NewWriter(w)
	b, _ := json.MarshalIndent(m, "", "  ")
	if err := addBytes(tw, manifestName, b); err != nil {
		return m, err
	}
	if err := addFile(tw, databaseName, dbFile); err != nil {
		return m, err
	}
	for _, st := range m.Streams {
		if err := addFile(tw, streamsDir+st.Name+".snap", filepath.Join(tmp, st.Name+".snap")); err != nil {
			return m, err
		}
	}
	for _, rel := range files {
		if err := addFile(tw, filesDir+filepath.ToSlash(rel), filepath.Join(src.DataDir, rel)); err != nil {
			return m, err
		}
	}
	return m, tw.Close()
}

func snapshotToFile(ctx context.Context, nc *nats.Conn, st *Stream, file string) error {
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if err := snapshot(ctx, nc, st, f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// dataFiles lists the regular files under dir, relative, except skip (a
// path skips everything under it; a name ending in * is a prefix).
func dataFiles(dir string, skip []string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." {
			return nil
		}
		for _, s := range skip {
			if rel == s || (strings.HasSuffix(s, "*") && strings.HasPrefix(rel, strings.TrimSuffix(s, "*"))) {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
		}
		if d.Type().IsRegular() {
			out = append(out, rel)
		}
		return nil
	})
	return out, err
}

func addBytes(tw *tar.Writer, name string, b []byte) error {
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: int64(len(b)), ModTime: time.Now()}); err != nil {
		return err
	}
	_, err := tw.Write(b)
	return err
}

func addFile(tw *tar.Writer, name, file string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: int64(fi.Mode().Perm()), Size: fi.Size(), ModTime: fi.ModTime()}); err != nil {
		return err
	}
	if _, err := io.CopyN(tw, f, fi.Size()); err != nil {
		return fmt.Errorf("adding %s to the backup: %w", file, err)
	}
	return nil
}

// Target is where Restore puts a backup: an empty data dir, the SQLite
// file and the JetStream store dir the server will use.
type Target struct {
	DataDir    string
	SQLitePath string
	// Connect starts the embedded server on its (empty) store dir and
	// returns a connection and a function that stops it.
	Connect func(ctx context.Context) (*nats.Conn, func(), error)
}

// Restore reads a backup written by Take into t, restores its streams
// through the embedded server, and rewinds their consumers. The data dir
// must be empty (or not exist).
func Restore(ctx context.Context, r io.Reader, t Target) (Manifest, error) {
	var m Manifest
	if err := mustBeEmpty(t.DataDir); err != nil {
		return m, err
	}
	snaps, err := os.MkdirTemp(t.DataDir, ".restore-")
	if err != nil {
		return m, err
	}
	defer os.RemoveAll(snaps)
	if m, err = extract(r, t, snaps); err != nil {
		return m, err
	}
	nc, stop, err := t.Connect(ctx)
	if err != nil {
		return m, err
	}
	defer stop()
	js, err := jetstream.New(nc)
	if err != nil {
		return m, err
	}
	for _, st := range m.Streams {
		if err := restoreFromFile(ctx, nc, st, filepath.Join(snaps, st.Name+".snap")); err != nil {
			return m, err
		}
		if err := rewind(ctx, js, st); err != nil {
			return m, err
		}
	}
	return m, nil
}

func mustBeEmpty(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return os.MkdirAll(dir, 0o750)
	}
	if err != nil {
		return err
	}
	if len(entries) > 0 {
		return fmt.Errorf("data dir %s is not empty: restore into an empty directory (data_dir)", dir)
	}
	return nil
}

// extract writes the archive's database and files into t and its stream
// snapshots into snaps, and returns the manifest.
func extract(r io.Reader, t Target, snaps string) (Manifest, error) {
	var m Manifest
	tr := tar.NewReader(r)
	first := true
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return m, fmt.Errorf("reading the backup: %w", err)
		}
		name := path.Clean(h.Name)
		if first {
			if name != manifestName {
				return m, errors.New("not an Abacus backup: its first entry is not manifest.json")
			}
			if err := json.NewDecoder(tr).Decode(&m); err != nil {
				return m, fmt.Errorf("reading the manifest: %w", err)
			}
			if m.Format != Format {
				return m, fmt.Errorf("backup format %d; this binary restores format %d", m.Format, Format)
			}
			first = false
			continue
		}
		var dst string
		switch {
		case name == databaseName:
			dst = t.SQLitePath
		case strings.HasPrefix(name, streamsDir):
			dst = filepath.Join(snaps, path.Base(name))
		case strings.HasPrefix(name, filesDir) && !strings.Contains(name, ".."):
			dst = filepath.Join(t.DataDir, filepath.FromSlash(strings.TrimPrefix(name, filesDir)))
		default:
			return m, fmt.Errorf("unexpected entry %q in the backup", h.Name)
		}
		if err := writeFile(dst, tr, os.FileMode(h.Mode).Perm()); err != nil {
			return m, err
		}
	}
	if first {
		return m, errors.New("the backup is empty")
	}
	return m, nil
}

func writeFile(dst string, r io.Reader, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o750); err != nil {
		return err
	}
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, mode|0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", dst, err)
	}
	return f.Close()
}

func restoreFromFile(ctx context.Context, nc *nats.Conn, st Stream, file string) error {
	f, err := os.Open(file)
	if err != nil {
		return fmt.Errorf("the backup has no snapshot of %s: %w", st.Name, err)
	}
	defer f.Close()
	return restore(ctx, nc, st, f)
}
