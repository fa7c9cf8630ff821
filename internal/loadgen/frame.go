package loadgen

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"

	"github.com/abacusbilling/abacus/internal/client"
)

// maxHead bounds an answer's status line and headers.
const maxHead = 64 << 10

var crlf = []byte("\r\n")

// parseResponse finds the first whole HTTP/1.x answer in b, for a client
// that reads into a buffer rather than from a stream. It returns the
// answer's length in b (0 while it is incomplete) and whether the
// connection may carry another request. A non-2xx answer is whole and
// comes with a *client.Problem; a malformed one with another error.
func parseResponse(b []byte) (used int, keep bool, err error) {
	end := bytes.Index(b, []byte("\r\n\r\n"))
	if end < 0 {
		if len(b) > maxHead {
			return 0, false, fmt.Errorf("an answer's headers are over %d bytes", maxHead)
		}
		return 0, false, nil
	}
	line, rest, _ := bytes.Cut(b[:end], crlf)
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
		return 0, false, fmt.Errorf("malformed status line %q", line)
	}
	status, err := strconv.Atoi(string(line[9:12]))
	if err != nil || status < 100 {
		return 0, false, fmt.Errorf("malformed status line %q", line)
	}
	keep = line[7] == '1' // HTTP/1.1 keeps the connection unless told otherwise
	length, chunked := -1, false
	for len(rest) > 0 {
		var h []byte
		h, rest, _ = bytes.Cut(rest, crlf)
		k, v, _ := bytes.Cut(h, []byte(":"))
		v = bytes.TrimSpace(v)
		switch {
		case asciiEq(k, "content-length"):
			if length, err = strconv.Atoi(string(v)); err != nil || length < 0 {
				return 0, false, fmt.Errorf("malformed Content-Length %q", v)
			}
		case asciiEq(k, "transfer-encoding"):
			chunked = asciiEq(v, "chunked")
		case asciiEq(k, "connection"):
			keep = keep && !asciiEq(v, "close")
		}
	}
	body := end + 4
	switch {
	case status < 200 || status == 204 || status == 304:
		used = body
	case chunked:
		n, err := chunkedLength(b[body:])
		if n == 0 || err != nil {
			return 0, false, err
		}
		used = body + n
	case length >= 0:
		if len(b) < body+length {
			return 0, false, nil
		}
		used = body + length
	default:
		return 0, false, errors.New("an answer with neither Content-Length nor chunked encoding")
	}
	if status >= 200 && status < 300 {
		return used, keep, nil
	}
	var text []byte
	if !chunked {
		text = bytes.TrimSpace(b[body:used])
	}
	return used, keep, &client.Problem{Status: status, Body: string(text)}
}

// chunkedLength returns the length of the chunked body at the start of b,
// trailers included, or 0 while it is incomplete.
func chunkedLength(b []byte) (int, error) {
	pos := 0
	for {
		l := bytes.Index(b[pos:], crlf)
		if l < 0 {
			return 0, nil
		}
		sizeText, _, _ := bytes.Cut(b[pos:pos+l], []byte(";"))
		size, err := strconv.ParseInt(string(bytes.TrimSpace(sizeText)), 16, 32)
		if err != nil || size < 0 {
			return 0, fmt.Errorf("malformed chunk size %q", sizeText)
		}
		pos += l + 2
		if size == 0 { // trailers, up to an empty line
			if bytes.HasPrefix(b[pos:], crlf) {
				return pos + 2, nil
			}
			t := bytes.Index(b[pos:], []byte("\r\n\r\n"))
			if t < 0 {
				return 0, nil
			}
			return pos + t + 4, nil
		}
		if len(b) < pos+int(size)+2 {
			return 0, nil
		}
		if !bytes.Equal(b[pos+int(size):pos+int(size)+2], crlf) {
			return 0, errors.New("a chunk is not followed by CRLF")
		}
		pos += int(size) + 2
	}
}
