package bench

import (
	"crypto/rand"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/milagro-go/milagro/mtls"
	"github.com/milagro-go/milagro/pairing"
)

// Handshake benchmarks (see doc.go). The goal for Milagro CS is at most
// 3.5 ms of server CPU per handshake (the retired C implementation on
// BN254 needed 8.0 ms).

type keys struct {
	csKey  *pairing.CSClientKey
	permit *pairing.TimePermit
	secret *pairing.CSServerSecret
	nodeA  *pairing.P2PKey
	nodeB  *pairing.P2PKey
}

var (
	keysOnce sync.Once
	keysVal  *keys
	keysErr  error
)

// benchKeys issues every key from three D-TAs and combines the shares.
func benchKeys(tb testing.TB) *keys {
	keysOnce.Do(func() { keysVal, keysErr = newKeys() })
	if keysErr != nil {
		tb.Fatal(keysErr)
	}
	return keysVal
}

func newKeys() (*keys, error) {
	var shares []*pairing.MasterShare
	for range 3 {
		s, err := pairing.NewMasterShare(rand.Reader)
		if err != nil {
			return nil, err
		}
		shares = append(shares, s)
	}
	day := pairing.Day(time.Now())
	var cks []*pairing.CSClientKey
	var tps []*pairing.TimePermit
	var sss []*pairing.CSServerSecret
	var pa, pb []*pairing.P2PKey
	for _, s := range shares {
		ck, err := s.IssueCSClientKey("alice@example.com")
		if err != nil {
			return nil, err
		}
		tp, err := s.IssueTimePermit("alice@example.com", day)
		if err != nil {
			return nil, err
		}
		a, err := s.IssueP2PKey("node-a")
		if err != nil {
			return nil, err
		}
		bb, err := s.IssueP2PKey("node-b")
		if err != nil {
			return nil, err
		}
		cks, tps, sss = append(cks, ck), append(tps, tp), append(sss, s.IssueCSServerSecret())
		pa, pb = append(pa, a), append(pb, bb)
	}
	k := &keys{}
	var err error
	if k.csKey, err = pairing.CombineCSClientKeys(cks...); err != nil {
		return nil, err
	}
	if k.permit, err = pairing.CombineTimePermits(tps...); err != nil {
		return nil, err
	}
	if k.secret, err = pairing.CombineCSServerSecrets(sss...); err != nil {
		return nil, err
	}
	if k.nodeA, err = pairing.CombineP2PKeys(pa...); err != nil {
		return nil, err
	}
	if k.nodeB, err = pairing.CombineP2PKeys(pb...); err != nil {
		return nil, err
	}
	return k, nil
}

var benchPSK = []byte("0123456789abcdef0123456789abcdef")

type benchCase struct {
	name           string
	client, server *mtls.Config
}

func cases(tb testing.TB) []benchCase {
	k := benchKeys(tb)
	psk := func(suite uint16) benchCase {
		return benchCase{
			client: &mtls.Config{CipherSuites: []uint16{suite}, PSKIdentity: "client", PSK: benchPSK, ServerName: "bench"},
			server: &mtls.Config{CipherSuites: []uint16{suite}, GetServerPSK: func(string) ([]byte, error) { return benchPSK, nil }},
		}
	}
	cs := []uint16{0xFF01}
	p2p := []uint16{0xFF11}
	out := []benchCase{
		{"MilagroCS", &mtls.Config{CipherSuites: cs, CSKey: k.csKey, ServerName: "bench"},
			&mtls.Config{CipherSuites: cs, CSServerSecret: k.secret}},
		{"MilagroCSPermit", &mtls.Config{CipherSuites: cs, CSKey: k.csKey, CSPermit: k.permit, ServerName: "bench"},
			&mtls.Config{CipherSuites: cs, CSServerSecret: k.secret, RequirePermits: true}},
		{"MilagroP2P", &mtls.Config{CipherSuites: p2p, P2PKey: k.nodeB, ExpectedServerIdentity: "node-a", ServerName: "bench"},
			&mtls.Config{CipherSuites: p2p, P2PKey: k.nodeA}},
		// The Milagro cases above use the default post-quantum policy
		// (prefer: hybrid between two of our endpoints); these are the
		// classic handshakes, for the cost of the hybrid.
		{"MilagroCSClassic", &mtls.Config{CipherSuites: cs, CSKey: k.csKey, ServerName: "bench", PostQuantum: mtls.PostQuantumOff},
			&mtls.Config{CipherSuites: cs, CSServerSecret: k.secret, PostQuantum: mtls.PostQuantumOff}},
		{"MilagroP2PClassic", &mtls.Config{CipherSuites: p2p, P2PKey: k.nodeB, ExpectedServerIdentity: "node-a", ServerName: "bench", PostQuantum: mtls.PostQuantumOff},
			&mtls.Config{CipherSuites: p2p, P2PKey: k.nodeA, PostQuantum: mtls.PostQuantumOff}},
	}
	p := psk(0x00A8)
	p.name = "PSK"
	e := psk(0xD001)
	e.name = "ECDHE_PSK"
	return append(out, p, e)
}

// BenchmarkHandshake: sequential full handshakes over loopback TCP.
func BenchmarkHandshake(b *testing.B) {
	for _, c := range cases(b) {
		b.Run(c.name, func(b *testing.B) { benchSequential(b, c.client, c.server) })
	}
}

// BenchmarkHandshakeParallel: concurrent handshakes (GOMAXPROCS clients),
// the throughput of one process that is both client and server.
func BenchmarkHandshakeParallel(b *testing.B) {
	for _, c := range cases(b) {
		b.Run(c.name, func(b *testing.B) { benchParallel(b, c.client, c.server) })
	}
}

// server accepts connections and runs each server handshake on a goroutine
// locked to its thread, adding up the thread CPU time of the handshakes.
type server struct {
	l       net.Listener
	wg      sync.WaitGroup
	cpu     atomic.Int64
	n       atomic.Int64
	failed  atomic.Int64
	lastErr atomic.Value
	noCPU   atomic.Bool
}

func startServer(tb testing.TB, cfg *mtls.Config) *server {
	l, err := mtls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		tb.Fatal(err)
	}
	s := &server{l: l}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s.wg.Add(1)
			go s.serve(c.(*mtls.Conn))
		}
	}()
	return s
}

func (s *server) serve(c *mtls.Conn) {
	defer s.wg.Done()
	defer c.Close()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	t0, ok0 := threadCPU()
	err := c.Handshake()
	t1, ok1 := threadCPU()
	if err != nil {
		s.failed.Add(1)
		s.lastErr.Store(err)
		return
	}
	if ok0 && ok1 {
		s.cpu.Add(int64(t1 - t0))
	} else {
		s.noCPU.Store(true)
	}
	s.n.Add(1)
	// Wait for the client's close_notify (or EOF) before closing.
	var buf [1]byte
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	c.Read(buf[:])
}

func (s *server) stop(b *testing.B) {
	s.l.Close()
	s.wg.Wait()
	if n := s.failed.Load(); n > 0 {
		b.Fatalf("%d server handshakes failed, last: %v", n, s.lastErr.Load())
	}
}

// dialOnce runs one client handshake, returning the client thread's CPU time.
func dialOnce(addr string, cfg *mtls.Config) (time.Duration, bool, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	raw, err := net.Dial("tcp", addr)
	if err != nil {
		return 0, false, err
	}
	cc := &countingConn{Conn: raw}
	c := mtls.Client(cc, cfg)
	t0, ok0 := threadCPU()
	err = c.Handshake()
	t1, ok1 := threadCPU()
	wireBytes.Add(cc.n.Load())
	c.Close()
	if err != nil {
		return 0, false, err
	}
	return t1 - t0, ok0 && ok1, nil
}

// wireBytes adds up the bytes of the handshakes dialOnce ran (both
// directions, TCP payload: records with their headers).
var wireBytes atomic.Int64

// countingConn counts the bytes read and written through it.
type countingConn struct {
	net.Conn
	n atomic.Int64
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.n.Add(int64(n))
	return n, err
}

func (c *countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.n.Add(int64(n))
	return n, err
}

func report(b *testing.B, s *server, clientCPU time.Duration, clientOK bool, elapsed time.Duration) {
	n := s.n.Load()
	if n == 0 {
		return
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "handshakes/s")
	if !s.noCPU.Load() {
		b.ReportMetric(float64(s.cpu.Load())/float64(n)/1e6, "server-ms/op")
	}
	if clientOK {
		b.ReportMetric(float64(clientCPU)/float64(b.N)/1e6, "client-ms/op")
	}
}

func benchSequential(b *testing.B, ccfg, scfg *mtls.Config) {
	s := startServer(b, scfg)
	addr := s.l.Addr().String()
	// Warm up: prepares the credentials (e(K,Q), lines) once per Config.
	if _, _, err := dialOnce(addr, ccfg); err != nil {
		b.Fatal(err)
	}
	s.wg.Wait()
	s.cpu.Store(0)
	s.n.Store(0)
	var clientCPU time.Duration
	clientOK := true
	wireBytes.Store(0)
	p0, pok := processCPU()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		d, ok, err := dialOnce(addr, ccfg)
		if err != nil {
			b.Fatal(err)
		}
		clientCPU += d
		clientOK = clientOK && ok
	}
	elapsed := time.Since(start)
	b.StopTimer()
	s.stop(b)
	if p1, ok := processCPU(); ok && pok {
		b.ReportMetric(float64(p1-p0)/float64(b.N)/1e6, "process-ms/op")
	}
	b.ReportMetric(float64(wireBytes.Load())/float64(b.N), "wire-bytes/op")
	report(b, s, clientCPU, clientOK, elapsed)
}

func benchParallel(b *testing.B, ccfg, scfg *mtls.Config) {
	s := startServer(b, scfg)
	addr := s.l.Addr().String()
	if _, _, err := dialOnce(addr, ccfg); err != nil {
		b.Fatal(err)
	}
	s.wg.Wait()
	s.cpu.Store(0)
	s.n.Store(0)
	var clientCPU atomic.Int64
	var clientNoCPU atomic.Bool
	var firstErr atomic.Value
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			d, ok, err := dialOnce(addr, ccfg)
			if err != nil {
				firstErr.CompareAndSwap(nil, err)
				return
			}
			clientCPU.Add(int64(d))
			if !ok {
				clientNoCPU.Store(true)
			}
		}
	})
	elapsed := time.Since(start)
	b.StopTimer()
	s.stop(b)
	if err, _ := firstErr.Load().(error); err != nil {
		b.Fatal(err)
	}
	report(b, s, time.Duration(clientCPU.Load()), !clientNoCPU.Load(), elapsed)
}

// TestHandshakeCases runs one handshake of every benchmark case, so a plain
// `go test ./bench` checks the harness.
func TestHandshakeCases(t *testing.T) {
	for _, c := range cases(t) {
		s := startServer(t, c.server)
		_, _, err := dialOnce(s.l.Addr().String(), c.client)
		s.l.Close()
		s.wg.Wait()
		if err != nil || s.failed.Load() != 0 || s.n.Load() != 1 {
			t.Fatalf("%s: client %v, server failures %d (%v)", c.name, err, s.failed.Load(), s.lastErr.Load())
		}
	}
}
