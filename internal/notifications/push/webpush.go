package push

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"syscall"
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

// NewClient returns the HTTP client push requests use: 30 s timeout, no
// redirects and, unless allowLocal, no connections to loopback, private,
// link-local, multicast or unspecified addresses, checked at every
// connection (DNS may change): an endpoint is whatever a device
// registered, and must not reach into the deployment's own network.
func NewClient(allowLocal bool) *http.Client {
	dialer := &net.Dialer{Timeout: 10 * time.Second}
	if !allowLocal {
		dialer.Control = refuseLocal
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.DialContext = dialer.DialContext
	transport.Proxy = nil
	return &http.Client{Timeout: 30 * time.Second, Transport: transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// errLocalTarget refuses a connection into the local network.
var errLocalTarget = errors.New("push endpoint resolves to a local or private address")

func refuseLocal(_, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return err
	}
	ip = ip.Unmap()
	if ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() || ip.IsMulticast() ||
		ip.IsUnspecified() || ip.IsInterfaceLocalMulticast() || cgnat.Contains(ip) {
		return fmt.Errorf("%w (%s)", errLocalTarget, ip)
	}
	return nil
}

// cgnat is the shared address space (RFC 6598), private in practice.
var cgnat = netip.MustParsePrefix("100.64.0.0/10")

var defaultClient = NewClient(false)

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
