package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/abacusbilling/abacus/internal/client"
)

// clientFlags are the flags of the commands that call a running server.
type clientFlags struct {
	url, key string
	timeout  time.Duration
}

func (c *clientFlags) register(fs *flag.FlagSet, e Env) {
	fs.StringVar(&c.url, "url", envOr(e, "ABACUS_URL", "http://127.0.0.1:8080"), "base URL of the Abacus server (env ABACUS_URL)")
	fs.StringVar(&c.key, "api-key", envOr(e, "ABACUS_API_KEY", ""), "API key with the ingest scope (env ABACUS_API_KEY)")
	fs.DurationVar(&c.timeout, "timeout", 30*time.Second, "time limit of one request")
}

func (c *clientFlags) client(conns int) (*client.Client, error) {
	if c.key == "" {
		return nil, errors.New("no API key: pass --api-key or set ABACUS_API_KEY (create one with `abacus apikeys create --name cli --scopes ingest`)")
	}
	if !strings.HasPrefix(c.url, "http://") && !strings.HasPrefix(c.url, "https://") {
		return nil, fmt.Errorf("--url %q must start with http:// or https://", c.url)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = max(conns, 2)
	tr.MaxConnsPerHost = max(conns, 1)
	return client.New(c.url, c.key, &http.Client{Timeout: c.timeout, Transport: tr}), nil
}

// eventsSend is `abacus events send`: it reads usage events and sends
// them to a running server in batches, retrying each batch with the same
// ids.
func eventsSend(ctx context.Context, e Env, args []string) error {
	fs := newFlags("events send [flags] [FILE|-]")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: abacus events send [flags] [FILE|-]\n\n"+
			"Sends CloudEvents read from FILE (default: stdin) as NDJSON, a JSON array or one JSON object.\n"+
			"Events without id or time get them before the first attempt, so retries never count twice.\n\nFlags:")
		fs.PrintDefaults()
	}
	var cf clientFlags
	cf.register(fs, e)
	batchSize := fs.Int("batch-size", 500, "events per request (1 sends application/cloudevents+json)")
	source := fs.String("source", "abacus-cli", "source given to events that have none")
	attempts := fs.Int("max-attempts", 20, "attempts per batch before giving up (0: until interrupted)")
	progress := fs.String("progress", "auto", "progress bar: auto (when stderr is a terminal), on or off")
	if err := parse(fs, e, args, fs.Parse); err != nil {
		return err
	}
	if *batchSize < 1 || *batchSize > 10000 {
		return fmt.Errorf("--batch-size %d must be between 1 and 10000", *batchSize)
	}
	c, err := cf.client(1)
	if err != nil {
		return err
	}
	var in io.Reader = e.Stdin
	var total int64 // input size in bytes, when known
	switch fs.NArg() {
	case 0:
	case 1:
		if p := fs.Arg(0); p != "-" {
			f, err := os.Open(p)
			if err != nil {
				return fmt.Errorf("cannot read events: %w", err)
			}
			defer f.Close()
			if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
				total = st.Size()
			}
			in = f
		}
	default:
		return fmt.Errorf("give at most one file, got %q", fs.Args())
	}
	if in == nil {
		return errors.New("no input: give a FILE or pipe events to stdin")
	}
	counted := &countingReader{r: in}
	bar := newProgress(e.Stderr, *progress, total)

	s := &sender{c: c, backoff: client.Backoff{MaxAttempts: *attempts}}
	rd := client.NewEventReader(counted)
	defaults := client.Defaults{Source: *source}
	batch := make([][]byte, 0, *batchSize)
	start := time.Now()
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := s.send(ctx, batch); err != nil {
			bar.done(s.sent, time.Since(start))
			return fmt.Errorf("batch of events %d–%d not accepted (events before it were): %w",
				s.sent, s.sent+int64(len(batch))-1, err)
		}
		batch = batch[:0]
		bar.update(s.sent, counted.n.Load(), time.Since(start))
		return nil
	}
	for {
		raw, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			_ = flush()
			return err
		}
		ev, err := client.Complete(raw, defaults)
		if err != nil {
			return fmt.Errorf("event %d: %w", s.sent+int64(len(batch)), err)
		}
		batch = append(batch, ev)
		if len(batch) == *batchSize {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	bar.done(s.sent, time.Since(start))
	fmt.Fprintf(e.Stdout, "sent %d events in %d requests (%d retries) in %s\n",
		s.sent, s.requests, s.retries, time.Since(start).Round(time.Millisecond))
	return nil
}

// sender posts batches, retrying each unchanged until it is accepted.
type sender struct {
	c        *client.Client
	backoff  client.Backoff
	sent     int64
	requests int64
	retries  int64
	buf      []byte
}

func (s *sender) send(ctx context.Context, batch [][]byte) error {
	ct := client.ContentTypeBatch
	if len(batch) == 1 {
		ct = client.ContentTypeEvent
		s.buf = append(s.buf[:0], batch[0]...)
	} else {
		s.buf = client.AppendBatch(s.buf[:0], batch)
	}
	n, err := client.Retry(ctx, s.backoff, func(ctx context.Context) error {
		return s.c.SendEvents(ctx, ct, s.buf)
	})
	s.requests += int64(n)
	s.retries += int64(n - 1)
	if err != nil {
		return err
	}
	s.sent += int64(len(batch))
	return nil
}

type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// progress draws a one-line bar on a terminal; elsewhere it stays silent
// and the command prints a summary line at the end.
type progress struct {
	w     io.Writer
	on    bool
	total int64
	last  time.Time
}

func newProgress(w io.Writer, mode string, total int64) *progress {
	on := mode == "on" || (mode == "auto" && isTerminal(w))
	return &progress{w: w, on: on, total: total}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func (p *progress) update(events, bytesRead int64, elapsed time.Duration) {
	if !p.on || time.Since(p.last) < 100*time.Millisecond {
		return
	}
	p.last = time.Now()
	p.draw(events, bytesRead, elapsed)
}

func (p *progress) draw(events, bytesRead int64, elapsed time.Duration) {
	rate := float64(events) / max(elapsed.Seconds(), 1e-3)
	if p.total > 0 {
		frac := min(float64(bytesRead)/float64(p.total), 1)
		const width = 30
		filled := int(frac * width)
		fmt.Fprintf(p.w, "\r[%s%s] %3.0f%% %d events, %.0f/s ", strings.Repeat("=", filled),
			strings.Repeat(" ", width-filled), frac*100, events, rate)
		return
	}
	fmt.Fprintf(p.w, "\r%d events sent, %.0f/s ", events, rate)
}

func (p *progress) done(events int64, elapsed time.Duration) {
	if !p.on {
		return
	}
	p.draw(events, p.total, elapsed)
	fmt.Fprintln(p.w)
}
