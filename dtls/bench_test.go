package dtls

import (
	"bytes"
	"net/netip"
	"testing"
	"time"
)

// Benchmarks on loopback, Milagro P2P next to static DTLS-PSK: full
// handshakes (cookie exchange included) per second, and datagram round
// trips of 1 KiB payloads over one connection.

func benchConfigs(b *testing.B, p2p bool) (srv, cli *Config) {
	if p2p {
		k := testKeys(b)
		return &Config{P2PKey: k.a}, &Config{P2PKey: k.b, ServerIdentity: "node-a"}
	}
	key := bytes.Repeat([]byte{7}, 16)
	return &Config{PSK: key, PSKIdentity: "dev"}, &Config{PSK: key, PSKIdentity: "dev"}
}

func benchHandshake(b *testing.B, p2p bool) {
	srv, cli := benchConfigs(b, p2p)
	l := listen(b, srv)
	go serveUntilClose(l)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		c, err := dial(b, l.Addr().String(), cli)
		if err != nil {
			b.Fatal(err)
		}
		_ = c.Close()
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "handshakes/s")
}

func BenchmarkHandshakeP2P(b *testing.B) { benchHandshake(b, true) }
func BenchmarkHandshakePSK(b *testing.B) { benchHandshake(b, false) }

func benchDatagrams(b *testing.B, p2p bool, suite uint16) {
	srv, cli := benchConfigs(b, p2p)
	srv.CipherSuites = []uint16{suite}
	l := listen(b, srv)
	done := serveEcho(l, 1)
	c, err := dial(b, l.Addr().String(), cli)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	if s := waitServed(b, done); s.err != nil {
		b.Fatal(s.err)
	}
	msg := bytes.Repeat([]byte{0x5a}, 1024)
	buf := make([]byte, 2048)
	b.SetBytes(int64(2 * len(msg)))
	b.ResetTimer()
	for range b.N {
		if _, err := c.Write(msg); err != nil {
			b.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if n, err := c.Read(buf); err != nil || n != len(msg) {
			b.Fatalf("echo: %d %v", n, err)
		}
	}
	b.ReportMetric(float64(2*b.N)/b.Elapsed().Seconds(), "datagrams/s")
}

func BenchmarkDatagramsP2PGCM(b *testing.B) { benchDatagrams(b, true, TLS_PSK_WITH_AES_128_GCM_SHA256) }
func BenchmarkDatagramsPSKGCM(b *testing.B) {
	benchDatagrams(b, false, TLS_PSK_WITH_AES_128_GCM_SHA256)
}
func BenchmarkDatagramsPSKCCM8(b *testing.B) {
	benchDatagrams(b, false, TLS_PSK_WITH_AES_128_CCM_8)
}
func BenchmarkDatagramsPSKChaCha(b *testing.B) {
	benchDatagrams(b, false, TLS_PSK_WITH_CHACHA20_POLY1305_SHA256)
}

// benchHandshakeFlood measures a legitimate P2P peer's handshakes per
// second while (with flood) another loopback address keeps 256 P2P
// handshakes in flight, each returning the cookie and then failing on a
// wrong key (node-b's key from other D-TAs).
//
// The flooder is another process (this test binary, see TestMain) at the
// lowest CPU priority: an attacker spends its own machine, and on this
// one its pion clients would otherwise share the server's Go scheduler
// and compete for the same two cores, which measures the test rig rather
// than the listener. What the listener spends on the flood (routing,
// refusing, cookie rounds, the pairings the budget still admits) runs in
// this process at normal priority and is measured.
func benchHandshakeFlood(b *testing.B, flood bool) {
	srv, cli := benchConfigs(b, true)
	srv.HandshakeTimeout = 2 * time.Second
	l := listen(b, srv)
	go serveUntilClose(l)
	if flood {
		stop := startFlooder(b, l.Addr().String())
		defer stop()
		settleFlood(b, l)
	}
	b.ResetTimer()
	for range b.N {
		c, err := dial(b, l.Addr().String(), cli)
		if err != nil {
			b.Fatal(err)
		}
		_ = c.Close()
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "handshakes/s")
	b.StopTimer()
	st := l.Stats()
	b.ReportMetric(float64(st.Refused), "refused")
}

// BenchmarkHandshakeP2PFloodKept measures, on one listener and in one
// run, a legitimate peer's P2P handshake rate before the flood, during it
// and after it, and reports the share it keeps under the flood
// ("kept-%": the flooded rate over the mean of the two unflooded ones),
// so that the machine's drift between separate runs does not enter the
// ratio. One op is the whole sequence, 300 handshakes per phase.
func BenchmarkHandshakeP2PFloodKept(b *testing.B) {
	const n = 300
	srv, cli := benchConfigs(b, true)
	srv.HandshakeTimeout = 2 * time.Second
	l := listen(b, srv)
	go serveUntilClose(l)
	phase := func() float64 {
		t0 := time.Now()
		for range n {
			c, err := dial(b, l.Addr().String(), cli)
			if err != nil {
				b.Fatal(err)
			}
			_ = c.Close()
		}
		return float64(n) / time.Since(t0).Seconds()
	}
	var before, flooded, after float64
	var refused float64
	for range b.N {
		before += phase()
		stop := startFlooder(b, l.Addr().String())
		settleFlood(b, l)
		r0, t0 := l.Stats().Refused, time.Now()
		flooded += phase()
		refused += float64(l.Stats().Refused-r0) / time.Since(t0).Seconds()
		stop()
		after += phase()
	}
	k := float64(b.N)
	before, flooded, after = before/k, flooded/k, after/k
	b.ReportMetric(before, "before-hs/s")
	b.ReportMetric(flooded, "flooded-hs/s")
	b.ReportMetric(after, "after-hs/s")
	b.ReportMetric(100*flooded/((before+after)/2), "kept-%")
	// The flooding source's first ClientHellos refused per second while
	// it was flooding: the flood's intensity once its budget is spent.
	b.ReportMetric(refused/k, "flood-refused/s")
}

// serveUntilClose accepts connections on l and serves each until the
// client's close_notify.
func serveUntilClose(l *Listener) {
	for {
		c, err := l.AcceptDTLS()
		if err != nil {
			return
		}
		go func() {
			if c.Handshake() == nil {
				buf := make([]byte, 16)
				_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
				_, _ = c.Read(buf)
			}
			_ = c.Close()
		}()
	}
}

// settleFlood waits until the flooding source has been charged a failed
// proof, then lets its admissions settle to what its budget's refill
// allows: the flood's steady state.
func settleFlood(b *testing.B, l *Listener) {
	src := l.g.keyer.IP(netip.MustParseAddr("127.0.0.2"))
	for end := time.Now().Add(60 * time.Second); l.g.budget.Clean(src); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(end) {
			b.Fatal("the flood never failed a proof")
		}
	}
	time.Sleep(5 * time.Second)
}

func BenchmarkHandshakeP2PUnflooded(b *testing.B) { benchHandshakeFlood(b, false) }
func BenchmarkHandshakeP2PFlooded(b *testing.B)   { benchHandshakeFlood(b, true) }
