package notifications

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/abacusbilling/abacus"
	"github.com/abacusbilling/abacus/internal/db"
)

// Config tunes the dispatcher.
type Config struct {
	// PollInterval is how often due deliveries are looked for when no
	// Enqueue in this process woke the dispatcher (default 1 s).
	PollInterval time.Duration
	// Workers deliver in parallel, so one slow server does not hold up
	// the rest (default 4).
	Workers int
	// BatchSize is how many due deliveries one round takes (default 100).
	BatchSize int
	// Lease is how long a claimed delivery stays with its process before
	// another may take it over (default 5 min; longer than any send).
	Lease time.Duration
	// SendTimeout bounds one Channel.Deliver call (default 60 s).
	SendTimeout time.Duration
	// MaxAttempts before a delivery fails for good (default 8).
	MaxAttempts int
	// KeepBodies keeps rendered bodies on sent e-mail deliveries: the
	// development inbox. Off in production (links in them are credentials).
	KeepBodies bool
}

// WithDefaults fills zero fields.
func (c Config) WithDefaults() Config {
	if c.PollInterval <= 0 {
		c.PollInterval = time.Second
	}
	if c.Workers <= 0 {
		c.Workers = 4
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 100
	}
	if c.Lease <= 0 {
		c.Lease = 5 * time.Minute
	}
	if c.SendTimeout <= 0 {
		c.SendTimeout = time.Minute
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 8
	}
	return c
}

// Service renders and delivers notifications; Run is the notifications
// role. Channels, the Policy and the Directory are set by the app before
// Run.
type Service struct {
	db    *db.DB
	clock abacus.Clock
	log   *slog.Logger
	cfg   Config

	mu        sync.RWMutex
	channels  map[string]Channel
	policy    Policy
	dir       Directory
	src       Sources
	downloads *Downloads // download.go

	// built is when this process made the service: the triggers' consumer,
	// created for the first time, starts at the stream's events published
	// since (JetStream's wall-clock timestamps, so not the service clock).
	built time.Time
}

// New returns a service with no channels and the AlwaysSend policy.
func New(d *db.DB, clock abacus.Clock, log *slog.Logger, cfg Config) *Service {
	return &Service{db: d, clock: clock, log: log, cfg: cfg.WithDefaults(), channels: map[string]Channel{}, policy: AlwaysSend{},
		built: time.Now()}
}

// RegisterChannel makes c deliver the deliveries of channel c.Name(),
// replacing any channel of that name.
func (s *Service) RegisterChannel(c Channel) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.channels[c.Name()] = c
}

// SetPolicy replaces the policy (nil restores AlwaysSend).
func (s *Service) SetPolicy(p Policy) {
	if p == nil {
		p = AlwaysSend{}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.policy = p
}

// SetDirectory sets how account recipients are looked up.
func (s *Service) SetDirectory(d Directory) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dir = d
}

func (s *Service) parts(channel string) (Channel, Policy, Directory) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.channels[channel], s.policy, s.dir
}

// Enqueue is the package's Enqueue with the service's clock; it returns the
// notification's id, or "" when the dedupe key was already used.
func (s *Service) Enqueue(ctx context.Context, tx *db.Tx, m Message) (string, error) {
	return enqueue(ctx, tx, m, s.clock.Now())
}

// Run delivers due notifications until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	t := time.NewTicker(s.cfg.PollInterval)
	defer t.Stop()
	for {
		n, err := s.DeliverDue(ctx)
		if err != nil && ctx.Err() == nil {
			s.log.Warn("delivering notifications", "err", err)
		}
		if n == s.cfg.BatchSize {
			continue // more are waiting
		}
		select {
		case <-ctx.Done():
			return nil
		case <-wakeCh:
		case <-t.C:
		}
	}
}

// DeliverDue takes one batch of due deliveries, delivers them with the
// configured number of workers and returns how many it found.
func (s *Service) DeliverDue(ctx context.Context) (int, error) {
	now := s.clock.Now()
	list, err := s.dueDeliveries(ctx, now, s.cfg.BatchSize)
	if err != nil {
		return 0, err
	}
	work := make(chan due)
	errs := make(chan error, len(list))
	var wg sync.WaitGroup
	for range min(s.cfg.Workers, len(list)) {
		wg.Go(func() {
			for d := range work {
				if err := s.deliverOne(ctx, d); err != nil {
					errs <- err
				}
			}
		})
	}
	for _, d := range list {
		work <- d
	}
	close(work)
	wg.Wait()
	close(errs)
	var all []error
	for e := range errs {
		all = append(all, e)
	}
	return len(list), errors.Join(all...)
}

// deliverOne claims d and carries it to its end or next try.
func (s *Service) deliverOne(ctx context.Context, due due) error {
	now := s.clock.Now()
	ok, err := s.claim(ctx, due, now, now.Add(s.cfg.Lease))
	if err != nil || !ok {
		return err
	}
	d, err := s.loadDelivery(ctx, due.id)
	if err != nil {
		return err
	}
	o, sink := s.attempt(ctx, &d)
	return s.record(ctx, d, o, sink, now)
}

// attempt decides and, if it is to be sent, sends d; it returns how the
// delivery ends and, for a digest, who takes it.
func (s *Service) attempt(ctx context.Context, d *Delivery) (outcome, DigestSink) {
	ch, policy, dir := s.parts(d.Channel)
	if err := s.fillRecipient(ctx, dir, d); err != nil {
		return s.retryOrFail(*d, err), nil
	}
	dec, err := policy.Decide(ctx, d.TenantID, d.To, d.Category, d.Channel, d.Critical, s.clock.Now())
	if err != nil {
		return s.retryOrFail(*d, fmt.Errorf("policy: %w", err)), nil
	}
	switch dec.Action {
	case Drop:
		return outcome{state: StateDropped, err: dec.Reason}, nil
	case Defer:
		return outcome{state: StateDeferred, due: dec.Until, err: dec.Reason, uncount: true}, nil
	case Digest:
		if sink, ok := policy.(DigestSink); ok {
			return outcome{state: StateDigested, err: dec.Reason}, sink
		}
	}
	if ch == nil {
		return outcome{state: StateDropped, err: fmt.Sprintf("channel %s is not enabled in this deployment", d.Channel)}, nil
	}
	return s.send(ctx, ch, d), nil
}

// fillRecipient completes an account recipient from the directory.
func (s *Service) fillRecipient(ctx context.Context, dir Directory, d *Delivery) error {
	if dir == nil || d.To.Kind == RecipientEmail || d.To.ID == "" {
		return nil
	}
	r, locale, err := dir.Lookup(ctx, d.TenantID, d.To)
	if err != nil {
		return fmt.Errorf("looking up %s %s: %w", d.To.Kind, d.To.ID, err)
	}
	d.To = r
	if d.Locale == "" {
		d.Locale = locale
	}
	return nil
}

// send renders d and hands it to ch.
func (s *Service) send(ctx context.Context, ch Channel, d *Delivery) outcome {
	r, err := s.Render(ctx, d.TenantID, d.Template, d.Locale, templateData(*d))
	if err != nil {
		return outcome{state: StateFailed, err: err.Error()}
	}
	d.Subject, d.Text, d.HTML, d.Locale = r.Subject, r.Text, r.HTML, r.Locale
	if d.Channel == ChannelEmail {
		if o, done := s.prepareEmail(ctx, d); done {
			return o
		}
	}
	sctx, cancel := context.WithTimeout(ctx, s.cfg.SendTimeout)
	defer cancel()
	if err := ch.Deliver(sctx, *d); err != nil {
		o := s.retryOrFail(*d, err)
		o.subject = d.Subject
		var hb *HardBounceError
		if errors.As(err, &hb) && d.Channel == ChannelEmail {
			o.state = StateSuppressed
			if serr := suppress(ctx, s.db, d.TenantID, Suppression{Email: d.To.Email, Reason: ReasonHardBounce,
				Detail: err.Error(), CreatedAt: s.clock.Now()}); serr != nil {
				s.log.Warn("suppressing a bounced address", "tenant_id", d.TenantID, "err", serr)
			}
		}
		return o
	}
	o := outcome{state: StateSent, subject: d.Subject}
	if s.cfg.KeepBodies && d.Channel == ChannelEmail {
		o.text, o.html = d.Text, d.HTML
	}
	return o
}

// prepareEmail checks the address and the suppression list and loads the
// attachments; done means the outcome is final without sending.
func (s *Service) prepareEmail(ctx context.Context, d *Delivery) (outcome, bool) {
	if d.To.Email == "" {
		return outcome{state: StateDropped, subject: d.Subject, err: "the recipient has no e-mail address"}, true
	}
	sup, err := s.suppressed(ctx, d.TenantID, d.To.Email)
	if err != nil {
		return s.retryOrFail(*d, err), true
	}
	if sup {
		return outcome{state: StateSuppressed, subject: d.Subject, err: "the address is on the suppression list"}, true
	}
	if d.Attachments, err = s.loadAttachments(ctx, d.NotificationID); err != nil {
		return s.retryOrFail(*d, err), true
	}
	return outcome{}, false
}

// retryOrFail schedules the next try after err, or fails the delivery
// when err is permanent or the attempts are spent.
func (s *Service) retryOrFail(d Delivery, err error) outcome {
	if IsPermanent(err) || d.Attempt >= s.cfg.MaxAttempts {
		return outcome{state: StateFailed, err: err.Error()}
	}
	return outcome{state: StatePending, due: s.clock.Now().Add(Backoff(d.Attempt)), err: err.Error()}
}

// Backoff is the wait after failed attempt n (from 1): 30 s, 2 min, 8 min,
// 32 min, about 2 h, then 6 h, each ±20 % so retries spread out.
func Backoff(n int) time.Duration {
	d := 30 * time.Second
	for i := 1; i < n && d < 6*time.Hour; i++ {
		d *= 4
	}
	d = min(d, 6*time.Hour)
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// record stores o, claimed at claimedAt; a digest is handed to its sink
// in the same transaction, a document delivery's steps recorded in it.
func (s *Service) record(ctx context.Context, d Delivery, o outcome, sink DigestSink, claimedAt time.Time) error {
	if o.state == StateFailed || (o.state == StatePending && o.err != "") {
		s.log.Warn("notification delivery failed", "delivery_id", d.ID, "tenant_id", d.TenantID, "channel", d.Channel,
			"attempt", d.Attempt, "state", o.state, "err", o.err)
	}
	return s.db.InTx(ctx, func(tx *db.Tx) error {
		now := s.clock.Now()
		ok, err := finish(ctx, tx, d.ID, d.Attempt, o, now)
		if err != nil || !ok {
			return err
		}
		if err := recordDocumentSteps(ctx, tx, d, o, claimedAt, now); err != nil {
			return err
		}
		if sink == nil {
			return nil
		}
		return sink.AddToDigest(ctx, tx, d)
	})
}

// DeliverNotification delivers the due deliveries of one notification now,
// without waiting for the dispatcher's next round (a module that wants its
// mail out at once calls it after commit). It returns once each has been
// tried, here or by the dispatcher that claimed it first, or when ctx
// ends.
func (s *Service) DeliverNotification(ctx context.Context, id string) error {
	list, err := s.dueOf(ctx, id, s.clock.Now())
	if err != nil {
		return err
	}
	var errs []error
	for _, d := range list {
		errs = append(errs, s.deliverOne(ctx, d))
	}
	return errors.Join(append(errs, s.awaitOthers(ctx, id))...)
}

// awaitOthers waits while another claimant is sending one of the
// notification's deliveries.
func (s *Service) awaitOthers(ctx context.Context, id string) error {
	for {
		n, err := s.sendingOf(ctx, id)
		if err != nil || n == 0 {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}
