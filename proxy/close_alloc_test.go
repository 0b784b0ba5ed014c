package proxy

import (
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"runtime/pprof"
	"testing"
	"time"
)

// byteEcho is a service that echoes byte by byte from a one-byte buffer:
// it allocates nothing per connection itself, so that what a mass close
// allocates is the proxies' doing.
func byteEcho(c net.Conn) {
	var b [1]byte
	for {
		n, err := c.Read(b[:])
		if n > 0 {
			if _, werr := c.Write(b[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// massClose opens n connections through an in-process client-mode and
// server-mode proxy pair (PSK) to byteEcho, checks each end to end, lets
// them go idle, then closes them all at once from the client side and
// waits until both proxies have finished every connection. It returns the
// heap allocations (count and bytes) made while the connections closed,
// per connection: everything the two proxies (and the service) did to tear
// one connection down.
func massClose(tb testing.TB, n int) (allocs, bytes float64) {
	tb.Helper()
	up := startUpstream(tb, byteEcho)
	// Warnings only, as a busy deployment logs (the benchmark pairs run
	// with --log-level warn too): at info, each close writes a log line.
	quiet := slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelWarn}))
	s := &Server{Target: up.addr(), Logger: quiet}
	saddr := startServer(tb, s, NewACLMust(tb, "alice"))
	cl := &Client{Target: saddr, Logger: quiet}
	caddr := startClient(tb, cl, "alice")

	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	var one [1]byte
	for i := 0; i < n; i++ {
		c, err := net.Dial("tcp", caddr)
		if err != nil {
			tb.Fatal(err)
		}
		conns = append(conns, c)
		c.SetDeadline(time.Now().Add(30 * time.Second))
		if _, err := c.Write([]byte{'x'}); err != nil {
			tb.Fatal(err)
		}
		if _, err := io.ReadFull(c, one[:]); err != nil {
			tb.Fatalf("connection %d: %v", i, err)
		}
	}
	// Every connection idle in both proxies: the server-side copies wait
	// on the service, which has echoed everything.
	if !waitFor(10*time.Second, func() bool { return s.Active() == n && cl.Active() == n }) {
		tb.Fatalf("active connections: server %d, client %d, want %d", s.Active(), cl.Active(), n)
	}

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	// CLOSEPROF=file writes the allocation profile before and after the
	// close (file.before, file.after: go tool pprof -diff_base).
	if f := os.Getenv("CLOSEPROF"); f != "" {
		w, _ := os.Create(f + ".before")
		pprof.Lookup("allocs").WriteTo(w, 0)
		w.Close()
		defer func() { runtime.GC(); w, _ := os.Create(f + ".after"); pprof.Lookup("allocs").WriteTo(w, 0); w.Close() }()
	}
	for _, c := range conns {
		c.Close()
	}
	conns = nil
	if !waitFor(30*time.Second, func() bool { return s.Active() == 0 && cl.Active() == 0 }) {
		tb.Fatalf("after closing: server %d, client %d connections still active", s.Active(), cl.Active())
	}
	runtime.ReadMemStats(&after)
	return float64(after.Mallocs-before.Mallocs) / float64(n), float64(after.TotalAlloc-before.TotalAlloc) / float64(n)
}

// TestMassCloseAllocatesLittle: a mass close of idle connections must
// not make each connection take a buffer (a copy buffer at EOF, a record
// buffer for close_notify kept across a wait, a log record built per
// close). What is allowed per connection, through both proxies: the
// goroutine and timer bookkeeping of ending, a few small error values -
// well under one small record buffer.
func TestMassCloseAllocatesLittle(t *testing.T) {
	const n = 200
	allocs, bytes := massClose(t, n)
	t.Logf("per connection closed: %.1f allocations, %.0f bytes", allocs, bytes)
	limit := 1024.0
	if raceEnabled {
		// sync.Pool drops a quarter of what is put back under the race
		// detector: the few pooled buffers a close takes and gives back
		// are then allocated again now and then. Taking fresh buffers at
		// close (four 4 KiB record buffers per connection) is still caught.
		limit = 10 << 10
	}
	if bytes > limit {
		t.Fatalf("closing %d idle connections allocated %.0f bytes per connection (%.1f allocations); want at most %.0f",
			n, bytes, allocs, limit)
	}
}

// BenchmarkProxyMassClose reports what closing one idle connection
// allocates through an in-process proxy pair, 1,000 connections closed at
// once: allocs/close and B/close.
func BenchmarkProxyMassClose(b *testing.B) {
	const n = 1000
	raiseNOFILE(b, 8*n+256)
	var allocs, bytes float64
	for i := 0; i < b.N; i++ {
		a, by := massClose(b, n)
		allocs += a
		bytes += by
	}
	b.ReportMetric(allocs/float64(b.N), "allocs/close")
	b.ReportMetric(bytes/float64(b.N), "B/close")
}
