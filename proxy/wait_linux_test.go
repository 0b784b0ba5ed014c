package proxy

import (
	"errors"
	"io"
	"net"
	"runtime"
	"syscall"
	"testing"
	"time"
)

// A plain TCP source that is reset must end the copy with an error, not as
// a clean EOF (which would half-close the other side as if the stream were
// complete).
func TestCopyLowMemResetIsNotEOF(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	acc := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		acc <- c
	}()
	peer, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	src := <-acc
	if src == nil {
		t.Fatal("accept failed")
	}
	defer src.Close()
	done := make(chan error, 1)
	go func() { done <- copyLowMem(io.Discard, src, nil) }()
	time.Sleep(30 * time.Millisecond) // copyLowMem is waiting
	peer.(*net.TCPConn).SetLinger(0)
	peer.Close()
	select {
	case err := <-done:
		if !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("copy after a reset: %v, want ECONNRESET", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a reset did not end the copy")
	}
}

// At the peer's clean EOF the waiter itself reports io.EOF, so the copy
// loop takes no 32 KiB buffer for a read that returns nothing (mass
// disconnects), for TCP and UNIX stream sockets.
func TestReadinessWaiterEOF(t *testing.T) {
	for _, network := range []string{"tcp", "unix"} {
		addr := "127.0.0.1:0"
		if network == "unix" {
			addr = t.TempDir() + "/s"
		}
		ln, err := net.Listen(network, addr)
		if err != nil {
			t.Fatal(err)
		}
		acc := make(chan net.Conn, 1)
		go func() {
			c, _ := ln.Accept()
			acc <- c
		}()
		peer, err := net.Dial(network, ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		src := <-acc
		ln.Close()
		wait := readinessWaiter(src)
		if wait == nil {
			t.Fatalf("%s: no readiness waiter", network)
		}
		peer.Write([]byte("x"))
		if err := wait(); err != nil {
			t.Fatalf("%s: wait with data: %v", network, err)
		}
		var b [1]byte
		if n, err := src.Read(b[:]); n != 1 || err != nil {
			t.Fatalf("%s: read: %d %v", network, n, err)
		}
		peer.Close()
		if err := wait(); err != io.EOF {
			t.Fatalf("%s: wait at EOF: %v, want io.EOF", network, err)
		}
		src.Close()
	}
}

// A mass disconnect: many idle copies whose peers all close at once must
// not each take a fresh 32 KiB buffer to read nothing (the waiter reports
// the EOF itself).
func TestMassDisconnectTakesNoBuffers(t *testing.T) {
	const n = 200
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var peers, srcs []net.Conn
	for i := 0; i < n; i++ {
		p, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		s, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		peers, srcs = append(peers, p), append(srcs, s)
	}
	done := make(chan error, n)
	for _, s := range srcs {
		go func(s net.Conn) { done <- copyLowMem(io.Discard, s, nil) }(s)
	}
	time.Sleep(100 * time.Millisecond) // all waiting
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	gets := bigBufGets.Load()
	for _, p := range peers {
		p.Close()
	}
	for i := 0; i < n; i++ {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("copy at EOF: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("copies did not end at EOF")
		}
	}
	runtime.ReadMemStats(&after)
	for _, s := range srcs {
		s.Close()
	}
	if got := bigBufGets.Load() - gets; got != 0 {
		t.Fatalf("%d connections ending at EOF took %d copy buffers; want none", n, got)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > n*bigBufSize/8 {
		t.Fatalf("%d connections ending allocated %d bytes (%d per connection); want no copy buffer each", n, grew, grew/n)
	}
}
