package loadgen

import (
	"errors"
	"strings"
	"testing"

	"github.com/abacusbilling/abacus/internal/client"
)

func TestParseResponse(t *testing.T) {
	t.Parallel()
	ok200 := "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 7\r\n\r\n{\"a\":1}"
	chunked := "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"a\"\r\n3;ext=1\r\n:1}\r\n0\r\n\r\n"
	for _, tt := range []struct {
		name, in string
		used     int
		keep     bool
		status   int    // of the *client.Problem, when one
		err      string // part of another error
	}{
		{"content length", ok200, len(ok200), true, 0, ""},
		{"two answers: the first", ok200 + ok200, len(ok200), true, 0, ""},
		{"body incomplete", ok200[:len(ok200)-1], 0, false, 0, ""},
		{"head incomplete", "HTTP/1.1 200 OK\r\nContent-Le", 0, false, 0, ""},
		{"no body", "HTTP/1.1 204 No Content\r\nDate: x\r\n\r\n", 36, true, 0, ""},
		{"close", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", 57, false, 0, ""},
		{"http/1.0", "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", 38, false, 0, ""},
		{"chunked", chunked, len(chunked), true, 0, ""},
		{"chunked incomplete", chunked[:len(chunked)-2], 0, false, 0, ""},
		{"chunked with trailers", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-T: 1\r\n\r\n", 60, true, 0, ""},
		{"problem", "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 16\r\n\r\n{\"code\":\"busy\"}\n", 72, true, 503, ""},
		{"malformed status", "HTTP/1.1 2x0 OK\r\n\r\n", 0, false, 0, "status line"},
		{"not http", "SSH-2.0-OpenSSH\r\n\r\n", 0, false, 0, "status line"},
		{"bad length", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", 0, false, 0, "Content-Length"},
		{"no length", "HTTP/1.1 200 OK\r\n\r\nbody", 0, false, 0, "neither"},
		{"bad chunk", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 0, false, 0, "chunk size"},
		{"chunk without crlf", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n", 0, false, 0, "CRLF"},
	} {
		used, keep, err := parseResponse([]byte(tt.in))
		var p *client.Problem
		switch {
		case tt.err != "":
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%s: error %v, want one about %s", tt.name, err, tt.err)
			}
		case tt.status != 0:
			if !errors.As(err, &p) || p.Status != tt.status {
				t.Errorf("%s: error %v, want a problem with status %d", tt.name, err, tt.status)
			}
		case err != nil:
			t.Errorf("%s: error %v", tt.name, err)
		}
		if used != tt.used || (used > 0 && keep != tt.keep) {
			t.Errorf("%s: used %d keep %v, want %d %v", tt.name, used, keep, tt.used, tt.keep)
		}
	}
	if _, _, err := parseResponse([]byte(strings.Repeat("x", maxHead+1))); err == nil {
		t.Error("a head over the limit was waited for")
	}
}

// Whatever the bytes, the parser neither panics nor claims more than it
// was given.
func FuzzParseResponse(f *testing.F) {
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"))
	f.Add([]byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		used, _, _ := parseResponse(b)
		if used < 0 || used > len(b) {
			t.Fatalf("used %d of %d bytes", used, len(b))
		}
	})
}
