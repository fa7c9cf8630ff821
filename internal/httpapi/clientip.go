package httpapi

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Forwarding headers ClientIP can read, named as in http.client_ip_header.
const (
	HeaderXForwardedFor = "x-forwarded-for"
	HeaderForwarded     = "forwarded"
)

// ClientIP finds the address of the client that sent a request. It reads
// a forwarding header only when the TCP peer is a trusted proxy, and then
// takes the rightmost address that is not a trusted proxy: every hop
// appends the address it received from, so entries left of the last
// trusted hop are whatever the client chose to send. The zero value and
// nil trust no proxy and return the peer.
type ClientIP struct {
	trusted []netip.Prefix
	header  string
}

// NewClientIP trusts the proxies in cidrs (CIDRs or single addresses) and
// reads header (HeaderXForwardedFor, the default when empty, or
// HeaderForwarded). Only one header is read: a proxy that sets one passes
// the other through from the client, so honouring both would let a
// client pick its own address.
func NewClientIP(cidrs []string, header string) (*ClientIP, error) {
	header = strings.ToLower(strings.TrimSpace(header))
	switch header {
	case "":
		header = HeaderXForwardedFor
	case HeaderXForwardedFor, HeaderForwarded:
	default:
		return nil, fmt.Errorf("client IP header %q: must be %s or %s", header, HeaderXForwardedFor, HeaderForwarded)
	}
	c := &ClientIP{header: header}
	for _, s := range cidrs {
		p, err := ParseTrustedProxy(s)
		if err != nil {
			return nil, err
		}
		c.trusted = append(c.trusted, p)
	}
	return c, nil
}

// ParseTrustedProxy parses a CIDR (10.0.0.0/8) or a single address.
func ParseTrustedProxy(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("trusted proxy %q: must be a CIDR such as 10.0.0.0/8 or an IP address", s)
	}
	return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
}

// Resolve returns the client's address for a request from remoteAddr
// (host:port, as http.Request.RemoteAddr) carrying header h.
func (c *ClientIP) Resolve(remoteAddr string, h http.Header) string {
	peer := hostOf(remoteAddr)
	if c == nil || len(c.trusted) == 0 || !c.isTrusted(peer) {
		return peer
	}
	hops := c.hops(h)
	client := peer
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(hops[i])
		if err != nil {
			// A hop we cannot read: the last address we could is the best we know.
			return client
		}
		client = a.Unmap().String()
		if !c.isTrusted(client) {
			return client
		}
	}
	return client
}

func (c *ClientIP) isTrusted(ip string) bool {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return false
	}
	a = a.Unmap()
	for _, p := range c.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// hops lists the addresses in the configured header, leftmost first,
// across repeated header lines.
func (c *ClientIP) hops(h http.Header) []string {
	var out []string
	for _, line := range h.Values(c.header) {
		for _, el := range strings.Split(line, ",") {
			el = strings.TrimSpace(el)
			if c.header == HeaderForwarded {
				el = forwardedFor(el)
			}
			out = append(out, hostOf(el))
		}
	}
	return out
}

// forwardedFor returns the for= node of one RFC 7239 element, unquoted.
func forwardedFor(el string) string {
	for _, pair := range strings.Split(el, ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(pair), "=")
		if ok && strings.EqualFold(k, "for") {
			return strings.Trim(v, `"`)
		}
	}
	return ""
}

// hostOf strips a port and IPv6 brackets: "1.2.3.4:5", "[::1]:5" and
// "[::1]" give the bare address; anything else is returned as is.
func hostOf(s string) string {
	if h, _, err := net.SplitHostPort(s); err == nil {
		return h
	}
	return strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
}
