package httpapi_test

import (
	"net/http"
	"testing"

	"github.com/abacusbilling/abacus/internal/httpapi"
)

func TestClientIP(t *testing.T) {
	t.Parallel()
	xff, err := httpapi.NewClientIP([]string{"10.0.0.0/8", "192.0.2.7", "2001:db8::/32"}, "")
	if err != nil {
		t.Fatal(err)
	}
	fwd, err := httpapi.NewClientIP([]string{"10.0.0.0/8"}, "Forwarded")
	if err != nil {
		t.Fatal(err)
	}
	h := func(kv ...string) http.Header {
		out := http.Header{}
		for i := 0; i+1 < len(kv); i += 2 {
			out.Add(kv[i], kv[i+1])
		}
		return out
	}
	tests := []struct {
		name   string
		c      *httpapi.ClientIP
		remote string
		header http.Header
		want   string
	}{
		{"no proxies trusted: peer, header ignored", nil, "203.0.113.9:5000", h("X-Forwarded-For", "1.1.1.1"), "203.0.113.9"},
		{"untrusted peer spoofing X-Forwarded-For is ignored", xff, "203.0.113.9:5000", h("X-Forwarded-For", "1.1.1.1"), "203.0.113.9"},
		{"untrusted peer spoofing Forwarded is ignored", fwd, "203.0.113.9:5000", h("Forwarded", "for=1.1.1.1"), "203.0.113.9"},
		{"trusted proxy: the client it saw", xff, "10.1.2.3:5000", h("X-Forwarded-For", "198.51.100.4"), "198.51.100.4"},
		{"rightmost untrusted hop wins over a spoofed leftmost", xff, "10.1.2.3:5000",
			h("X-Forwarded-For", "1.1.1.1, 198.51.100.4, 10.9.9.9"), "198.51.100.4"},
		{"repeated header lines are one list", xff, "10.1.2.3:5000",
			h("X-Forwarded-For", "1.1.1.1", "X-Forwarded-For", "198.51.100.4, 192.0.2.7"), "198.51.100.4"},
		{"every hop trusted: the leftmost", xff, "10.1.2.3:5000", h("X-Forwarded-For", "10.0.0.1, 10.0.0.2"), "10.0.0.1"},
		{"trusted proxy without header: the proxy", xff, "10.1.2.3:5000", nil, "10.1.2.3"},
		{"unreadable hop: the last address read", xff, "10.1.2.3:5000", h("X-Forwarded-For", "198.51.100.4, garbage"), "10.1.2.3"},
		{"IPv6 peer and hop", xff, "[2001:db8::1]:443", h("X-Forwarded-For", "2001:db9::5"), "2001:db9::5"},
		{"X-Forwarded-For reader ignores Forwarded", xff, "10.1.2.3:5000",
			h("Forwarded", "for=1.1.1.1", "X-Forwarded-For", "198.51.100.4"), "198.51.100.4"},
		{"Forwarded reader ignores X-Forwarded-For", fwd, "10.1.2.3:5000",
			h("X-Forwarded-For", "1.1.1.1", "Forwarded", `for="[2001:db8:cafe::17]:4711";proto=https, for=10.0.0.5`), "2001:db8:cafe::17"},
		{"Forwarded with port and by", fwd, "10.1.2.3:5000", h("Forwarded", "for=1.1.1.1, for=198.51.100.4:80;by=10.1.2.3"), "198.51.100.4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.c.Resolve(tt.remote, tt.header); got != tt.want {
				t.Fatalf("Resolve(%s, %v) = %s, want %s", tt.remote, tt.header, got, tt.want)
			}
		})
	}
}

func TestNewClientIPRefusesBadInput(t *testing.T) {
	t.Parallel()
	if _, err := httpapi.NewClientIP([]string{"10.0.0.0/33"}, ""); err == nil {
		t.Error("bad CIDR accepted")
	}
	if _, err := httpapi.NewClientIP(nil, "x-real-ip"); err == nil {
		t.Error("unknown header accepted")
	}
}
