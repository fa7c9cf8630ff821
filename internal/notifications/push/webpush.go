package push

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	webpush "github.com/SherClockHolmes/webpush-go"
)

// WebPush is the Provider of browser subscriptions (RFC 8030 with VAPID,
// payload encrypted per RFC 8291).
type WebPush struct {
	// Client sends the request (default: a client with a 30 s timeout
	// that follows no redirects).
	Client *http.Client
}

var defaultClient = &http.Client{Timeout: 30 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// Send implements Provider.
func (w WebPush) Send(ctx context.Context, p Push) error {
	client := w.Client
	if client == nil {
		client = defaultClient
	}
	// webpush-go adds "mailto:" to a subject that is not an https: URL.
	subject := strings.TrimPrefix(p.VAPID.Subject, "mailto:")
	resp, err := webpush.SendNotificationWithContext(ctx, p.Payload, &webpush.Subscription{Endpoint: p.Device.Endpoint,
		Keys: webpush.Keys{P256dh: p.Device.P256dh, Auth: p.Device.Auth}}, &webpush.Options{
		HTTPClient: client, Subscriber: subject, VAPIDPublicKey: p.VAPID.PublicKey, VAPIDPrivateKey: p.VAPID.PrivateKey,
		TTL: int(p.TTL.Seconds()), Urgency: webpush.Urgency(p.Urgency), Topic: p.Topic})
	if err != nil {
		return fmt.Errorf("web push: %w", err)
	}
	defer resp.Body.Close()
	excerpt, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
	switch {
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone:
		return fmt.Errorf("web push: %d: %w", resp.StatusCode, ErrGone)
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return nil
	default:
		return fmt.Errorf("web push: push service answered %d: %s", resp.StatusCode, excerpt)
	}
}
