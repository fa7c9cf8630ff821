package app

import (
	"context"
	"sync"
	"time"

	"github.com/abacusbilling/abacus/internal/inbound"
	inboundsmtp "github.com/abacusbilling/abacus/internal/inbound/smtp"
	"github.com/abacusbilling/abacus/internal/service"
)

// received is the inbound documents service, built on first use: its
// object store is the one every module shares (a.objects: the directory
// data_dir/objects, or S3 when blob.s3_endpoint is set).
type received struct {
	once sync.Once
	svc  *inbound.Service
	err  error

	smtpAddr string // where the inbound-smtp role listens, once it does
}

func (a *App) inbound() (*inbound.Service, error) {
	r := &a.received
	r.once.Do(func() {
		store, err := a.objects(context.Background())
		if err != nil {
			r.err = err
			return
		}
		r.svc = inbound.NewService(a.DB, store, a.Clock, a.Log.With("module", "inbound"))
		r.svc.ConfigureMail(inbound.MailConfig{Domain: a.Config.Inbound.Domain})
	})
	return r.svc, r.err
}

// registerInbound adds the received documents' routes to the API.
func registerInbound(a *App) error {
	svc, err := a.inbound()
	if err != nil {
		return err
	}
	inbound.RegisterRoutes(a.HTTP, svc)
	return nil
}

// InboundSMTPAddr is the address the inbound-smtp role listens on ("" when
// it does not), useful with port 0.
func (a *App) InboundSMTPAddr() string { return a.received.smtpAddr }

// inboundSMTPRole receives supplier documents by e-mail on
// inbound.smtp_addr and finishes, every minute, messages a crash left
// half-processed (also when not listening: another node may have taken
// them in).
func inboundSMTPRole(a *App) (service.Service, error) {
	svc, err := a.inbound()
	if err != nil {
		return nil, err
	}
	log := a.Log.With("role", "inbound-smtp")
	var srv *inboundsmtp.Server
	if c := a.Config.Inbound; c.SMTPAddr != "" {
		srv, err = inboundsmtp.Listen(inboundsmtp.Config{Addr: c.SMTPAddr, Domain: c.Domain, MaxMessageBytes: c.MaxMessageBytes}, svc, log)
		if err != nil {
			return nil, err
		}
		a.received.smtpAddr = srv.Addr()
	}
	return service.NewFunc("inbound-smtp", func(ctx context.Context) error {
		var wg sync.WaitGroup
		defer wg.Wait()
		if srv != nil {
			wg.Go(func() { _ = srv.Run(ctx) })
		}
		t := time.NewTicker(time.Minute)
		defer t.Stop()
		for {
			if n, err := svc.ProcessPending(ctx, time.Minute); err != nil {
				log.Error("finishing received e-mails", "err", err)
			} else if n > 0 {
				log.Info("finished received e-mails a restart left half-processed", "count", n)
			}
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
			}
		}
	}), nil
}
