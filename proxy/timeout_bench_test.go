package proxy

import (
	"io"
	"net"
	"testing"
	"time"
)

// BenchmarkTimeouts measures how late the proxy's timers close a
// connection after their configured time: the timing claim the tests leave
// out (they check only that a timer fires, for the right cause, and never
// early), since how late depends on the machine's load. It reports the
// mean lateness as ms-late/op.
func BenchmarkTimeouts(b *testing.B) {
	up := startUpstream(b, nil)
	report := func(b *testing.B, late time.Duration, n int) {
		b.ReportMetric(float64(late)/float64(n)/float64(time.Millisecond), "ms-late/op")
	}
	b.Run("idle", func(b *testing.B) {
		const idle = 50 * time.Millisecond
		addr := startServer(b, &Server{Target: up.addr(), IdleTimeout: idle}, AllowAll())
		var late time.Duration
		n := 0
		buf := make([]byte, 1)
		for b.Loop() {
			c, err := dialMTLS(b, addr, "alice")
			if err != nil {
				b.Fatal(err)
			}
			start := time.Now() // before the last activity
			c.Write([]byte{'x'})
			if _, err := io.ReadFull(c, buf); err != nil {
				b.Fatal(err)
			}
			if _, err := c.Read(buf); err == nil || isTimeoutErr(err) {
				b.Fatalf("idle connection not closed: %v", err)
			}
			late += time.Since(start) - idle
			n++
			c.Close()
		}
		report(b, late, n)
	})
	b.Run("handshake", func(b *testing.B) {
		const timeout = 50 * time.Millisecond
		addr := startServer(b, &Server{Target: up.addr(), HandshakeTimeout: timeout}, AllowAll())
		var late time.Duration
		n := 0
		for b.Loop() {
			start := time.Now()
			raw, err := net.Dial("tcp", addr)
			if err != nil {
				b.Fatal(err)
			}
			raw.Write([]byte{0x16, 0x03, 0x01}) // a partial record header, then silence
			if _, err := io.ReadAll(raw); err != nil {
				b.Fatal(err)
			}
			late += time.Since(start) - timeout
			n++
			raw.Close()
		}
		report(b, late, n)
	})
}
