package proxy

import (
	"io"
	"net"
	"slices"
	"testing"
	"time"
)

// Silent connections must not take the slots of legitimate ones.
// A server proxy with MaxConns 1000; 2,000 connections from 127.0.0.3 that
// never send a byte; a legitimate client on 127.0.0.1 keeps connecting
// (PSK handshake, one byte through the target and back). Reported: its
// handshakes/s and p50/p99 latency, with and without the silent crowd;
// "silent-held" is how many silent connections the proxy kept open (the
// rest were closed at once by the per-source handshake bound).
//
//	go test -run='^$' -bench=ProxySilentConns ./proxy
func BenchmarkProxySilentConns(b *testing.B) {
	for _, silent := range []int{0, 2000} {
		name := "quiet"
		if silent > 0 {
			name = "2000-silent"
		}
		b.Run(name, func(b *testing.B) { benchSilent(b, silent) })
	}
}

func benchSilent(b *testing.B, silent int) {
	raiseNOFILE(b, uint64(4*silent+1024))
	up := startUpstream(b, nil)
	s := &Server{Target: up.addr(), MaxConns: 1000, HandshakeTimeout: 30 * time.Second, Logger: quietLogger(b)}
	addr := startServer(b, s, AllowAll())
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 3)}}
	var crowd []net.Conn
	defer func() {
		for _, c := range crowd {
			c.Close()
		}
	}()
	for i := 0; i < silent; i++ {
		c, err := d.Dial("tcp", addr)
		if err != nil {
			b.Fatalf("silent connection %d: %v", i, err)
		}
		crowd = append(crowd, c)
	}
	time.Sleep(200 * time.Millisecond)
	held := s.slots.Len()
	lat := make([]time.Duration, 0, b.N)
	buf := []byte{1}
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		c, err := dialMTLS(b, addr, "alice")
		if err != nil {
			b.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(20 * time.Second))
		if _, err := c.Write(buf); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			b.Fatal(err)
		}
		c.Close()
		lat = append(lat, time.Since(t0))
	}
	el := time.Since(start)
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(b.N)/el.Seconds(), "handshakes/s")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(held), "silent-held")
}
