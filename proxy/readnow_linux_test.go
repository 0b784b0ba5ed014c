package proxy

import (
	"bytes"
	"io"
	"net"
	"testing"
)

// TestNonBlockingReader: nothing there is "again" (not an error, not EOF),
// data is read, the peer's end is io.EOF - and none of it blocks.
func TestNonBlockingReader(t *testing.T) {
	ln := listenLocal(t)
	defer ln.Close()
	p, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	read := nonBlockingReader(s)
	if read == nil {
		t.Fatal("no non-blocking reader for a TCP connection")
	}
	buf := make([]byte, 64)
	if n, again, err := read(buf); n != 0 || !again || err != nil {
		t.Fatalf("nothing sent: got %d, again=%v, %v; want again", n, again, err)
	}
	if _, err := p.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	// The data is there once a wait says so.
	if err := readinessWaiter(s)(); err != nil {
		t.Fatal(err)
	}
	if n, again, err := read(buf); !bytes.Equal(buf[:n], []byte("hello")) || again || err != nil {
		t.Fatalf("got %q, again=%v, %v; want hello", buf[:n], again, err)
	}
	p.Close()
	if err := readinessWaiter(s)(); err != io.EOF {
		t.Fatalf("wait after the peer closed: %v, want io.EOF", err)
	}
	if n, again, err := read(buf); n != 0 || again || err != io.EOF {
		t.Fatalf("after the peer closed: got %d, again=%v, %v; want io.EOF", n, again, err)
	}
}
