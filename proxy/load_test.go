package proxy

import (
	"bytes"
	"io"
	"math/rand/v2"
	"net"
	"runtime"
	"syscall"
	"testing"
	"time"
)

// fdsPerConn is how many descriptors one proxied connection takes in this
// test, with room to spare (the client, both proxies' two sides, the
// upstream), and fdReserve what the test needs besides.
const fdsPerConn, fdReserve = 8, 256

// loadConns raises the soft RLIMIT_NOFILE as far as want connections need
// (up to the hard limit) and returns how many connections, a multiple of
// batch, fit in the limit it got.
func loadConns(t testing.TB, want, batch int) int {
	t.Helper()
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		t.Fatalf("getrlimit: %v", err)
	}
	need := uint64(fdsPerConn*want + fdReserve)
	if rl.Cur < need {
		rl.Cur = min(need, rl.Max)
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
			t.Logf("setrlimit(RLIMIT_NOFILE, %d): %v", rl.Cur, err)
		}
		if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
			t.Fatalf("getrlimit: %v", err)
		}
	}
	n := want
	if rl.Cur < need {
		n = 0
		if rl.Cur > fdReserve {
			n = int(rl.Cur-fdReserve) / fdsPerConn / batch * batch
		}
		if n < batch {
			t.Fatalf("RLIMIT_NOFILE %d (hard %d) leaves room for fewer than %d connections", rl.Cur, rl.Max, batch)
		}
		t.Logf("RLIMIT_NOFILE %d (hard %d) allows %d connections, not %d: running with %d", rl.Cur, rl.Max, n, want, n)
	}
	return n
}

// raiseNOFILE lifts the soft RLIMIT_NOFILE to at least n (up to the hard
// limit) for a benchmark, which is skipped when it cannot be.
func raiseNOFILE(b testing.TB, n uint64) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		b.Skipf("getrlimit: %v", err)
	}
	if rl.Cur >= n {
		return
	}
	rl.Cur = min(n, rl.Max)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Cur < n {
		b.Skipf("cannot raise RLIMIT_NOFILE to %d (hard limit %d): %v", n, rl.Max, err)
	}
}

// TestLoad1000 runs 1,000 concurrent connections (fewer, logged, if RLIMIT_NOFILE
// cannot be raised that far) through a client-mode and
// a server-mode proxy (in process, PSK) to an echo service, each moving
// data both ways, then checks that goroutines and file descriptors return
// to their baseline. A slow client that never completes its handshake is
// cut at the handshake timeout meanwhile.
func TestLoad1000(t *testing.T) {
	const batch, half = 100, 2048
	conns := loadConns(t, 1000, batch)
	runtime.GC()
	baseG, baseFD := runtime.NumGoroutine(), countFDs(t)

	// The subtest's cleanups (proxies shut down, upstream closed) run when
	// it ends, before the baseline comparison below.
	t.Run("traffic", func(t *testing.T) {
		up := startUpstream(t, nil)
		srv := &Server{Target: up.addr(), HandshakeTimeout: 5 * time.Second, Logger: quietLogger(t)}
		saddr := startServer(t, srv, AllowAll())
		cl := &Client{Target: saddr, Logger: quietLogger(t)}
		caddr := startClient(t, cl, "alice")

		slowStart := time.Now() // before the proxy can start its handshake timer
		slow, err := net.Dial("tcp", saddr)
		if err != nil {
			t.Fatal(err)
		}
		defer slow.Close()
		slowDone := make(chan error, 1)
		go func() {
			slow.SetReadDeadline(time.Now().Add(120 * time.Second))
			_, err := io.Copy(io.Discard, slow)
			slowDone <- err
		}()

		rng := rand.New(rand.NewPCG(1, 2))
		cs := make([]net.Conn, 0, conns)
		msgs := make([][]byte, 0, conns)
		defer func() {
			for _, c := range cs {
				c.Close()
			}
		}()
		buf := make([]byte, 2*half)
		for b := 0; b < conns/batch; b++ {
			first := len(cs)
			for i := 0; i < batch; i++ {
				c, err := net.Dial("tcp", caddr)
				if err != nil {
					t.Fatalf("dial %d: %v", len(cs), err)
				}
				c.SetDeadline(time.Now().Add(60 * time.Second))
				msg := make([]byte, 2*half)
				for j := range msg {
					msg[j] = byte(rng.Uint32())
				}
				if _, err := c.Write(msg[:half]); err != nil {
					t.Fatalf("write %d: %v", len(cs), err)
				}
				cs, msgs = append(cs, c), append(msgs, msg)
			}
			for i := first; i < len(cs); i++ {
				if _, err := io.ReadFull(cs[i], buf[:half]); err != nil || !bytes.Equal(buf[:half], msgs[i][:half]) {
					t.Fatalf("conn %d first echo: %v", i, err)
				}
			}
		}
		if a, b := cl.ActiveConns(), srv.ActiveConns(); a != conns || b < conns {
			t.Fatalf("active connections: client %d, server %d; want %d each", a, b, conns)
		}
		for i, c := range cs {
			if _, err := c.Write(msgs[i][half:]); err != nil {
				t.Fatalf("conn %d second write: %v", i, err)
			}
			c.(*net.TCPConn).CloseWrite()
		}
		for i, c := range cs {
			rest, err := io.ReadAll(c)
			if err != nil || !bytes.Equal(rest, msgs[i][half:]) {
				t.Fatalf("conn %d: second echo %d bytes, %v", i, len(rest), err)
			}
		}
		// The proxy cuts the slow handshake, and not before its timeout.
		if err := <-slowDone; isTimeoutErr(err) {
			t.Errorf("slow handshake never cut: %v", err)
		} else if d := time.Since(slowStart); d < 5*time.Second {
			t.Errorf("slow handshake cut %v after the dial, before the 5s handshake timeout", d)
		}
		if !waitFor(5*time.Second, func() bool { return cl.ActiveConns() == 0 && srv.ActiveConns() == 0 }) {
			t.Errorf("connections still active: client %d server %d", cl.ActiveConns(), srv.ActiveConns())
		}
	})
	if t.Failed() {
		return
	}
	ok := waitFor(10*time.Second, func() bool {
		runtime.GC()
		return runtime.NumGoroutine() <= baseG && countFDs(t) <= baseFD
	})
	if !ok {
		d := goroutineDump()
		t.Fatalf("leak: goroutines %d (baseline %d), fds %d (baseline %d)\n%s",
			runtime.NumGoroutine(), baseG, countFDs(t), baseFD, d[:min(8000, len(d))])
	}
}
