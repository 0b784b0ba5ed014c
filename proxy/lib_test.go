package proxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/milagro-go/milagro/mtls"
)

func TestServerAllowDeny(t *testing.T) {
	up := startUpstream(t, nil)
	m := NewMetrics()
	acl, _ := NewACL([]string{"alice"}, []string{"bo"})
	dials := &dialCounter{}
	s := &Server{Target: up.addr(), Metrics: m, DialTarget: dials.dial}
	addr := startServer(t, s, acl)

	for _, id := range []string{"alice", "bob"} {
		c, err := dialMTLS(t, addr, id)
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		if got := roundTrip(t, c, []byte("hello "+id)); string(got) != "hello "+id {
			t.Fatalf("%s: echo %q", id, got)
		}
		c.Close()
	}
	if n := up.count.Load(); n != 2 {
		t.Fatalf("upstream saw %d connections, want 2", n)
	}
	_, err := dialMTLS(t, addr, "mallory")
	var ae *mtls.AlertError
	if !errors.As(err, &ae) || !ae.Remote {
		t.Fatalf("mallory: err = %v, want a remote alert", err)
	}
	shutdownAndWait(t, s) // every connection handled to its end: no dial can follow
	if n := dials.n.Load(); n != 2 {
		t.Fatalf("denied peer reached the target (%d dials, want 2)", n)
	}
	if v := metricValue(m.aclDenials); v != 1 {
		t.Errorf("acl denials = %v, want 1", v)
	}
	if v := metricValue(m.handshakes.WithLabelValues("TLS_PSK_WITH_AES_128_GCM_SHA256", "ok", "false")); v != 2 {
		t.Errorf("ok handshakes = %v, want 2", v)
	}
	if !waitFor(2*time.Second, func() bool {
		return metricValue(m.bytes.WithLabelValues("upstream")) == float64(len("hello alice")+len("hello bob"))
	}) {
		t.Errorf("upstream bytes = %v", metricValue(m.bytes.WithLabelValues("upstream")))
	}

	// Reload: a new ACL applies to the next handshake.
	s2acl, _ := NewACL([]string{"mallory"}, nil)
	srv := &Server{Target: up.addr(), Metrics: NewMetrics()}
	addr2 := startServer(t, srv, acl)
	if _, err := dialMTLS(t, addr2, "mallory"); err == nil {
		t.Fatal("mallory admitted before reload")
	}
	if err := srv.SetConfig(pskServerConfig(), s2acl); err != nil {
		t.Fatal(err)
	}
	c, err := dialMTLS(t, addr2, "mallory")
	if err != nil {
		t.Fatalf("mallory after reload: %v", err)
	}
	c.Close()
	if _, err := dialMTLS(t, addr2, "alice"); err == nil {
		t.Fatal("alice admitted after reload removed her")
	}
}

func TestClientServerPairHalfClose(t *testing.T) {
	up := startUpstream(t, nil)
	addr := startServer(t, &Server{Target: up.addr()}, AllowAll())
	local := startClient(t, &Client{Target: addr}, "alice")
	c, err := net.Dial("tcp", local)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msg := bytes.Repeat([]byte("0123456789abcdef"), 100000) // 1.6 MB, several records
	if got := roundTrip(t, c, msg); !bytes.Equal(got, msg) {
		t.Fatalf("echo of %d bytes returned %d bytes", len(msg), len(got))
	}
}

func TestIdleTimeout(t *testing.T) {
	up := startUpstream(t, nil)
	addr := startServer(t, &Server{Target: up.addr(), IdleTimeout: 600 * time.Millisecond}, AllowAll())
	c, err := dialMTLS(t, addr, "alice")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Activity keeps it open past the timeout.
	buf := make([]byte, 1)
	var lastActivity time.Time // before the proxy's last read or write
	for i := 0; i < 5; i++ {
		time.Sleep(100 * time.Millisecond)
		lastActivity = time.Now()
		c.Write([]byte{'x'})
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, err := io.ReadFull(c, buf); err != nil {
			t.Fatalf("active connection closed: %v", err)
		}
	}
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	_, err = c.Read(buf)
	if err == nil || isTimeoutErr(err) {
		t.Fatalf("idle connection not closed: %v", err)
	}
	// Never early; how late it may be is not a test's claim (load decides).
	if d := time.Since(lastActivity); d < 600*time.Millisecond {
		t.Fatalf("closed %v after the last activity, before the idle timeout (600ms)", d)
	}
}

func TestHandshakeTimeoutAndMaxConns(t *testing.T) {
	up := startUpstream(t, nil)
	m := NewMetrics()
	s := &Server{Target: up.addr(), HandshakeTimeout: 300 * time.Millisecond, MaxConns: 1, Metrics: m}
	addr := startServer(t, s, AllowAll())

	// A client that never finishes its handshake is cut at the timeout.
	start := time.Now() // before the proxy can start its timer
	raw, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	raw.Write([]byte{0x16, 0x03, 0x01}) // a partial record header, then silence
	raw.SetReadDeadline(time.Now().Add(30 * time.Second))
	_, err = io.ReadAll(raw)
	if d := time.Since(start); err != nil || d < 300*time.Millisecond {
		t.Fatalf("slow handshake: err %v after %v, want the proxy to close it, not before 300ms", err, d)
	}
	if !waitFor(2*time.Second, func() bool { return metricValue(m.handshakes.WithLabelValues("unknown", "timeout", "false")) == 1 }) {
		t.Errorf("timeout handshakes = %v, want 1", metricValue(m.handshakes.WithLabelValues("unknown", "timeout", "false")))
	}

	// MaxConns=1 counts established connections: a second one completes
	// its handshake but is not served until the first ends.
	c1, err := dialMTLS(t, addr, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c1.Write([]byte("one")); err != nil {
		t.Fatal(err)
	}
	b1 := make([]byte, 3)
	c1.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := io.ReadFull(c1, b1); err != nil {
		t.Fatal(err)
	}
	c2, err := dialMTLS(t, addr, "bob")
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	c2.Write([]byte("two"))
	c2.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	b2 := make([]byte, 3)
	if n, err := io.ReadFull(c2, b2); err == nil || !isTimeoutErr(err) {
		t.Fatalf("second connection served beyond MaxConns=1: %q %v", b2[:n], err)
	}
	c1.Close()
	c2.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := io.ReadFull(c2, b2); err != nil || string(b2) != "two" {
		t.Fatalf("slot not freed after the first connection closed: %q %v", b2, err)
	}
	if up.count.Load() == 0 {
		t.Fatal("no connection reached upstream")
	}
}

func TestTargetDownAndHealthz(t *testing.T) {
	ln := listenLocal(t)
	dead := ln.Addr().String()
	ln.Close()
	addr := startServer(t, &Server{Target: dead, ConnectTimeout: time.Second}, AllowAll())
	c, err := dialMTLS(t, addr, "alice")
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	// Not a clean EOF (close_notify): the client must see a failure.
	if b, err := io.ReadAll(c); err == nil || isTimeoutErr(err) || len(b) != 0 {
		t.Fatalf("target down: read %q, %v; want a reset, not a clean EOF", b, err)
	}
	clock := time.Unix(1_700_000_000, 0)
	h := &StatusHandler{Target: dead, Metrics: NewMetrics(), CacheFor: time.Second, Now: func() time.Time { return clock }}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/healthz", nil))
	if rec.Code != 503 {
		t.Fatalf("/healthz with target down = %d", rec.Code)
	}
	up := startUpstream(t, nil)
	h.Target = up.addr()
	clock = clock.Add(time.Second - time.Nanosecond)
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/healthz", nil))
	if rec.Code != 503 {
		t.Fatalf("/healthz within CacheFor of a failed probe = %d, want the cached 503", rec.Code)
	}
	clock = clock.Add(time.Nanosecond) // the cached result has expired
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/healthz", nil))
	if rec.Code != 200 {
		t.Fatalf("/healthz with target up = %d", rec.Code)
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), "mtls_proxy_active_connections") {
		t.Fatalf("/metrics: %d %.200s", rec.Code, rec.Body.String())
	}
}

func TestShutdownDrains(t *testing.T) {
	up := startUpstream(t, nil)
	s := &Server{Target: up.addr(), Logger: quietLogger(t)}
	if err := s.SetConfig(pskServerConfig(), AllowAll()); err != nil {
		t.Fatal(err)
	}
	ln := listenLocal(t)
	addr := ln.Addr().String()
	done := make(chan error, 1)
	go func() { done <- s.Serve(context.Background(), ln) }()
	live, err := dialMTLS(t, addr, "alice")
	if err != nil {
		t.Fatal(err)
	}
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		shut <- s.Shutdown(ctx)
	}()
	if err := <-done; !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve: %v", err)
	}
	if _, err := dialMTLS(t, addr, "bob"); err == nil {
		t.Fatal("new connection accepted while draining")
	}
	// The live connection still works, then ends; Shutdown then returns.
	if got := roundTrip(t, live, []byte("still here")); string(got) != "still here" {
		t.Fatalf("live connection during drain: %q", got)
	}
	live.Close()
	select {
	case err := <-shut:
		if err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("Shutdown did not return after the last connection ended")
	}

	// A connection that outlives the drain timeout is closed.
	s2 := &Server{Target: up.addr(), Logger: quietLogger(t)}
	addr2 := startServer(t, s2, AllowAll())
	c, err := dialMTLS(t, addr2, "alice")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := s2.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown = %v, want DeadlineExceeded", err)
	}
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil || isTimeoutErr(err) {
		t.Fatalf("connection not closed after the drain timeout: %v", err)
	}
}

// TestTruncationResetsTarget: an mtls peer that drops the TCP connection
// without close_notify must not look like a clean end of stream to the
// service: the proxy resets the target connection.
func TestTruncationResetsTarget(t *testing.T) {
	res := make(chan error, 1)
	up := startUpstream(t, func(c net.Conn) {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err := io.ReadAll(c)
		res <- err
	})
	addr := startServer(t, &Server{Target: up.addr()}, AllowAll())
	c, err := dialMTLS(t, addr, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("POST /transfer amount=1000")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	c.NetConn().Close() // no close_notify
	select {
	case err := <-res:
		if err == nil || !strings.Contains(err.Error(), "reset") {
			t.Fatalf("service read ended with %v, want a connection reset", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("service never saw the end of the stream")
	}
}

// TestACLRecheckedAfterHandshake: even if the handshake did not apply the
// ACL (a Config hook gone wrong), the proxy checks the identity again
// before dialling the target.
func TestACLRecheckedAfterHandshake(t *testing.T) {
	up := startUpstream(t, nil)
	m := NewMetrics()
	acl, _ := NewACL([]string{"alice"}, nil)
	dials := &dialCounter{}
	s := &Server{Target: up.addr(), Metrics: m, DialTarget: dials.dial, NewConn: func(c net.Conn, cfg *mtls.Config) SecureConn {
		cfg = cfg.Clone()
		cfg.VerifyPeerIdentity = nil // the in-handshake check is lost
		return mtls.Server(c, cfg)
	}}
	addr := startServer(t, s, acl)
	c, err := dialMTLS(t, addr, "mallory")
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	if b, _ := io.ReadAll(c); len(b) != 0 {
		t.Fatalf("mallory read %q", b)
	}
	shutdownAndWait(t, s) // mallory's connection handled to its end: no dial can follow
	if n := dials.n.Load(); n != 0 {
		t.Fatalf("denied peer reached the target (%d dials)", n)
	}
	if v := metricValue(m.aclDenials); v != 1 {
		t.Fatalf("acl denials = %v", v)
	}
}

// TestRecordOfSmallBufferSize: a message that exactly fills the copy loop's
// small read buffer must be forwarded at once (no waiting for more data
// that a request/response peer will never send).
func TestRecordOfSmallBufferSize(t *testing.T) {
	up := startUpstream(t, func(c net.Conn) {
		buf := make([]byte, smallBufSize)
		for {
			if _, err := io.ReadFull(c, buf); err != nil {
				return
			}
			if _, err := c.Write(buf); err != nil {
				return
			}
		}
	})
	addr := startServer(t, &Server{Target: up.addr()}, AllowAll())
	local := startClient(t, &Client{Target: addr}, "alice")
	c, err := net.Dial("tcp", local)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	for i := 0; i < 5; i++ {
		msg := bytes.Repeat([]byte{byte('a' + i)}, smallBufSize)
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, smallBufSize)
		if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("exchange %d: %v", i, err)
		}
	}
}

// dialCounter is a Server.DialTarget that counts its calls.
type dialCounter struct{ n atomic.Int32 }

func (d *dialCounter) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	d.n.Add(1)
	var nd net.Dialer
	return nd.DialContext(ctx, network, addr)
}

// shutdownAndWait shuts s down gracefully and returns once every
// connection handler has returned: what they did is then final.
func shutdownAndWait(t *testing.T, s *Server) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
}
