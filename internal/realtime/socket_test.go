package realtime

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"
)

// tcpPair returns the two ends of a TCP connection on 127.0.0.1.
func tcpPair(t *testing.T) (net.Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server := <-accepted
	if server == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return server, client
}

// A corked socket writes nothing until uncorked, then everything in
// order; bytes read before the hijack come before the network's.
func TestSocketCorksWritesAndKeepsEarlyBytes(t *testing.T) {
	server, client := tcpPair(t)
	s := &socket{Conn: server, timeout: time.Second, pending: []byte("early ")}

	s.cork()
	for _, f := range []string{"one ", "two ", "three"} {
		if _, err := s.Write([]byte(f)); err != nil {
			t.Fatal(err)
		}
	}
	_ = client.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if n, err := client.Read(make([]byte, 64)); n != 0 || err == nil {
		t.Fatalf("read %d bytes (%v) from a corked socket", n, err)
	}
	if err := s.uncork(); err != nil {
		t.Fatal(err)
	}
	_ = client.SetReadDeadline(time.Now().Add(5 * time.Second))
	got := make([]byte, len("one two three"))
	if _, err := io.ReadFull(client, got); err != nil || string(got) != "one two three" {
		t.Fatalf("read %q, %v", got, err)
	}
	if _, err := s.Write([]byte("!")); err != nil { // uncorked: written at once
		t.Fatal(err)
	}
	if _, err := io.ReadFull(client, got[:1]); err != nil || got[0] != '!' {
		t.Fatalf("read %q, %v", got[:1], err)
	}

	if _, err := client.Write([]byte("late")); err != nil {
		t.Fatal(err)
	}
	_ = server.SetReadDeadline(time.Now().Add(5 * time.Second))
	all, err := io.ReadAll(io.LimitReader(s, int64(len("early late"))))
	if err != nil || !bytes.Equal(all, []byte("early late")) {
		t.Fatalf("read %q, %v", all, err)
	}
}

// A peer that stops reading fails the socket's writes after the timeout
// instead of blocking the writer for ever; later writes fail at once.
func TestSocketWriteTimesOut(t *testing.T) {
	server, _ := tcpPair(t)
	s := &socket{Conn: server, timeout: 200 * time.Millisecond}
	big := make([]byte, 1<<20)
	start := time.Now()
	var err error
	for i := 0; i < 64 && err == nil; i++ { // past the kernel's buffers
		_, err = s.Write(big)
	}
	if err == nil || time.Since(start) > 5*time.Second {
		t.Fatalf("err %v after %s", err, time.Since(start))
	}
	if _, err := s.Write([]byte("x")); err == nil {
		t.Fatal("a write after a failed one succeeded")
	}
}
