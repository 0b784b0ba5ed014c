package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/milagro-go/milagro/dtls"
)

// udpEcho is a plain UDP echo service on loopback that remembers how many
// datagrams it saw.
type udpEcho struct {
	pc   net.PacketConn
	seen atomic.Int64
}

func startUDPEcho(t testing.TB) *udpEcho {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e := &udpEcho{pc: pc}
	go func() {
		buf := make([]byte, 65536)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			e.seen.Add(1)
			_, _ = pc.WriteTo(buf[:n], from)
		}
	}()
	t.Cleanup(func() { pc.Close() })
	return e
}

func dtlsServerConfig() *dtls.Config {
	return &dtls.Config{
		GetPSK: func(id string) ([]byte, error) {
			if k, ok := testKeys[id]; ok {
				return k, nil
			}
			return nil, fmt.Errorf("unknown identity %q", id)
		},
		HandshakeTimeout: 5 * time.Second,
	}
}

func dtlsClientConfig(id string) *dtls.Config {
	return &dtls.Config{PSK: testKeys[id], PSKIdentity: id, HandshakeTimeout: 5 * time.Second}
}

// startUDPServer runs s (SetConfig already called) on a loopback port.
func startUDPServer(t testing.TB, s *UDPServer) string {
	t.Helper()
	ln, err := dtls.Listen("udp", "127.0.0.1:0", dtlsServerConfig())
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(context.Background(), ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
		if err := <-errc; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	return ln.Addr().String()
}

func datagramRoundTrip(c net.Conn, msg string) error {
	if _, err := c.Write([]byte(msg)); err != nil {
		return err
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 2048)
	n, err := c.Read(buf)
	if err != nil {
		return err
	}
	if string(buf[:n]) != msg {
		return fmt.Errorf("got %q, want %q", buf[:n], msg)
	}
	return nil
}

func TestUDPServerForwardsAndEnforcesACL(t *testing.T) {
	echoSvc := startUDPEcho(t)
	m := NewMetrics()
	s := &UDPServer{Target: echoSvc.pc.LocalAddr().String(), Metrics: m, Logger: quietLogger(t)}
	acl, err := NewACL([]string{"alice"}, []string{"bo"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetConfig(dtlsServerConfig(), acl); err != nil {
		t.Fatal(err)
	}
	addr := startUDPServer(t, s)

	for _, id := range []string{"alice", "bob"} {
		c, err := dtls.Dial("udp", addr, dtlsClientConfig(id))
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		for i := range 10 {
			if err := datagramRoundTrip(c, fmt.Sprintf("%s datagram %d", id, i)); err != nil {
				t.Fatalf("%s: %v", id, err)
			}
		}
		c.Close()
	}
	if got := echoSvc.seen.Load(); got != 20 {
		t.Fatalf("service saw %d datagrams, want 20", got)
	}
	// mallory authenticates (her PSK is known) but the ACL refuses her
	// inside the handshake: nothing reaches the service.
	if c, err := dtls.Dial("udp", addr, dtlsClientConfig("mallory")); err == nil {
		c.Close()
		t.Fatal("mallory was admitted")
	}
	if got := echoSvc.seen.Load(); got != 20 {
		t.Fatalf("service saw %d datagrams after the denial", got)
	}
	if !waitFor(5*time.Second, func() bool { return metricValue(m.aclDenials) == 1 }) {
		t.Fatalf("acl denials = %v", metricValue(m.aclDenials))
	}
	if !waitFor(5*time.Second, func() bool { return metricValue(m.handshakes.WithLabelValues("unknown", resultDenied, "false")) == 1 }) {
		t.Fatal("the denied handshake is not counted as denied")
	}
	if up := metricValue(m.bytes.WithLabelValues("upstream")); up == 0 {
		t.Fatal("no upstream bytes counted")
	}
	ok := m.handshakes.WithLabelValues(dtls.CipherSuiteName(dtls.TLS_PSK_WITH_AES_128_GCM_SHA256), resultOK, "false")
	if v := metricValue(ok); v != 2 {
		t.Fatalf("ok handshakes = %v", v)
	}
}

func TestUDPIdleTimeout(t *testing.T) {
	echoSvc := startUDPEcho(t)
	s := &UDPServer{Target: echoSvc.pc.LocalAddr().String(), IdleTimeout: 300 * time.Millisecond, Logger: quietLogger(t)}
	if err := s.SetConfig(dtlsServerConfig(), AllowAll()); err != nil {
		t.Fatal(err)
	}
	addr := startUDPServer(t, s)
	c, err := dtls.Dial("udp", addr, dtlsClientConfig("alice"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := datagramRoundTrip(c, "hello"); err != nil {
		t.Fatal(err)
	}
	if s.ActiveConns() != 1 {
		t.Fatalf("active %d", s.ActiveConns())
	}
	if !waitFor(5*time.Second, func() bool { return s.ActiveConns() == 0 }) {
		t.Fatal("idle session not closed")
	}
	// The server closed with close_notify: the client sees the end.
	_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := c.Read(make([]byte, 10)); err == nil {
		t.Fatal("read after idle close succeeded")
	}
}

func TestUDPClientToServer(t *testing.T) {
	echoSvc := startUDPEcho(t)
	s := &UDPServer{Target: echoSvc.pc.LocalAddr().String(), Logger: quietLogger(t)}
	acl, _ := NewACL([]string{"alice"}, nil)
	if err := s.SetConfig(dtlsServerConfig(), acl); err != nil {
		t.Fatal(err)
	}
	srvAddr := startUDPServer(t, s)

	run := func(id string) (string, *UDPClient, *Metrics) {
		m := NewMetrics()
		cl := &UDPClient{Target: srvAddr, Logger: quietLogger(t), Metrics: m, IdleTimeout: 10 * time.Second}
		if err := cl.SetConfig(dtlsClientConfig(id)); err != nil {
			t.Fatal(err)
		}
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = cl.Serve(ctx, pc)
		}()
		t.Cleanup(func() {
			cancel()
			wg.Wait()
			pc.Close()
		})
		return pc.LocalAddr().String(), cl, m
	}
	local, cl, m := run("alice")
	// Two local senders get a session each; replies reach the right one.
	var apps []net.Conn
	for range 2 {
		a, err := net.Dial("udp", local)
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		apps = append(apps, a)
	}
	for i := range 5 {
		for j, a := range apps {
			if err := datagramRoundTrip(a, fmt.Sprintf("app %d datagram %d", j, i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if n := cl.ActiveConns(); n != 2 {
		t.Fatalf("client sessions %d", n)
	}
	if n := s.ActiveConns(); n != 2 {
		t.Fatalf("server sessions %d", n)
	}
	if v := metricValue(m.bytes.WithLabelValues("upstream")); v == 0 {
		t.Fatal("client counted no upstream bytes")
	}

	// A client proxy holding bob's key is refused by the server's ACL: its
	// datagrams never reach the service and nothing comes back.
	before := echoSvc.seen.Load()
	bobLocal, _, _ := run("bob")
	a, err := net.Dial("udp", bobLocal)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if err := datagramRoundTrip(a, "from bob"); err == nil {
		t.Fatal("bob's datagram was answered")
	}
	if got := echoSvc.seen.Load(); got != before {
		t.Fatalf("service saw %d datagrams from a denied peer", got-before)
	}
}
