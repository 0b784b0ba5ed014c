package bench

import (
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/milagro-go/milagro/mtls"
)

// Session resumption: server CPU per resumed Milagro CS handshake next to
// a full one (the target: resumed at least 15 times cheaper). A
// resumed handshake is the TLS 1.2 abbreviated handshake with a session
// ticket: the server decrypts the ticket, re-checks the session (policy,
// lockout, permit day) and derives keys; no pairing.

func resumeCases(tb testing.TB) (full, resumed benchCase) {
	k := benchKeys(tb)
	cs := []uint16{0xFF01}
	full = benchCase{"full",
		&mtls.Config{CipherSuites: cs, CSKey: k.csKey, CSPermit: k.permit, ServerName: "bench"},
		&mtls.Config{CipherSuites: cs, CSServerSecret: k.secret, RequirePermits: true, SessionTicketsDisabled: true}}
	resumed = benchCase{"resumed",
		&mtls.Config{CipherSuites: cs, CSKey: k.csKey, CSPermit: k.permit, ServerName: "bench",
			ClientSessionCache: mtls.NewLRUClientSessionCache(1)},
		&mtls.Config{CipherSuites: cs, CSServerSecret: k.secret, RequirePermits: true}}
	return full, resumed
}

// dialResumed is dialOnce that also reports whether the session resumed.
func dialResumed(addr string, cfg *mtls.Config) (time.Duration, bool, bool, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	raw, err := net.Dial("tcp", addr)
	if err != nil {
		return 0, false, false, err
	}
	c := mtls.Client(raw, cfg)
	t0, ok0 := threadCPU()
	err = c.Handshake()
	t1, ok1 := threadCPU()
	resumed := c.ConnectionState().DidResume
	c.Close()
	if err != nil {
		return 0, false, false, err
	}
	return t1 - t0, ok0 && ok1, resumed, nil
}

// BenchmarkResumeCS: sequential Milagro CS handshakes (with a time permit,
// permits required), full and resumed; compare server-ms/op.
func BenchmarkResumeCS(b *testing.B) {
	full, resumed := resumeCases(b)
	for _, c := range []benchCase{full, resumed} {
		b.Run(c.name, func(b *testing.B) {
			s := startServer(b, c.server)
			addr := s.l.Addr().String()
			if _, _, _, err := dialResumed(addr, c.client); err != nil { // warm up; gets the ticket
				b.Fatal(err)
			}
			s.wg.Wait()
			s.cpu.Store(0)
			s.n.Store(0)
			var clientCPU time.Duration
			clientOK := true
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				d, ok, didResume, err := dialResumed(addr, c.client)
				if err != nil {
					b.Fatal(err)
				}
				if didResume != (c.name == "resumed") {
					b.Fatalf("handshake %d: resumed = %v", i, didResume)
				}
				clientCPU += d
				clientOK = clientOK && ok
			}
			elapsed := time.Since(start)
			b.StopTimer()
			s.stop(b)
			report(b, s, clientCPU, clientOK, elapsed)
		})
	}
}

// TestResumeCases checks the harness: the "resumed" case resumes.
func TestResumeCases(t *testing.T) {
	_, c := resumeCases(t)
	s := startServer(t, c.server)
	defer func() { s.l.Close(); s.wg.Wait() }()
	for i, want := range []bool{false, true, true} {
		_, _, got, err := dialResumed(s.l.Addr().String(), c.client)
		if err != nil || got != want {
			t.Fatalf("handshake %d: resumed %v (want %v), %v", i, got, want, err)
		}
	}
}
