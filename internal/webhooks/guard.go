package webhooks

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
)

// blocked are ranges a webhook may not reach besides what netip's
// predicates name (loopback, private, link-local, multicast, unspecified):
// "this network", carrier-grade NAT (Alibaba's metadata 100.100.100.200),
// IETF protocol assignments, benchmarking, reserved and broadcast.
// 169.254.169.254 and fd00:ec2::254 (cloud metadata) are link-local and
// private (fc00::/7) already.
var blocked = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("64:ff9b:1::/48"),
}

// forbiddenIP says why ip may not be a webhook target, or "" when it may.
func forbiddenIP(ip netip.Addr) string {
	ip = ip.Unmap()
	switch {
	case !ip.IsValid():
		return "not an IP address"
	case ip.IsLoopback():
		return "a loopback address"
	case ip.IsUnspecified():
		return "an unspecified address"
	case ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast():
		return "a link-local address (cloud metadata lives there)"
	case ip.IsMulticast() || ip.IsInterfaceLocalMulticast():
		return "a multicast address"
	case ip.IsPrivate():
		return "a private address"
	}
	for _, p := range blocked {
		if p.Contains(ip) {
			return "a reserved address"
		}
	}
	return ""
}

// guard keeps deliveries off internal networks: URLs are checked when an
// endpoint is saved, and every connection is checked again on the address
// actually dialled (DNS may answer differently later).
type guard struct {
	allowPrivate bool
	resolver     *net.Resolver
}

// checkURL validates an endpoint URL; the error message is for the url
// field.
func (g guard) checkURL(ctx context.Context, raw string) string {
	u, err := url.Parse(raw)
	switch {
	case err != nil || !u.IsAbs() || u.Host == "":
		return "must be an absolute http:// or https:// URL such as https://example.com/webhooks"
	case u.Scheme != "http" && u.Scheme != "https":
		return "must use http or https"
	case u.User != nil:
		return "must not carry credentials; the signature authenticates Abacus"
	case u.Fragment != "":
		return "must not have a fragment"
	case len(raw) > 2048:
		return "must be at most 2048 characters"
	}
	if g.allowPrivate {
		return ""
	}
	host := u.Hostname()
	if ip, err := netip.ParseAddr(host); err == nil {
		if why := forbiddenIP(ip); why != "" {
			return fmt.Sprintf("%s is %s; webhooks may only reach public addresses", host, why)
		}
		return ""
	}
	if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return "localhost is a loopback address; webhooks may only reach public addresses"
	}
	ips, err := g.resolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return fmt.Sprintf("host %s does not resolve", host)
	}
	for _, ip := range ips {
		if why := forbiddenIP(ip); why != "" {
			return fmt.Sprintf("%s resolves to %s, %s; webhooks may only reach public addresses", host, ip, why)
		}
	}
	return ""
}

// control is the net.Dialer Control hook: it runs after resolution, on the
// address about to be dialled, so a name that resolves to a public address
// at creation and to an internal one later is still refused.
func (g guard) control(_, address string, _ syscall.RawConn) error {
	if g.allowPrivate {
		return nil
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("webhooks: refusing to dial %s: %w", address, err)
	}
	if why := forbiddenIP(ap.Addr()); why != "" {
		return &refusedError{addr: ap.Addr().String(), why: why}
	}
	return nil
}

// refusedError is a delivery the SSRF guard stopped.
type refusedError struct{ addr, why string }

func (e *refusedError) Error() string {
	return fmt.Sprintf("refused to connect to %s: %s (webhooks.allow_private_targets is off)", e.addr, e.why)
}
