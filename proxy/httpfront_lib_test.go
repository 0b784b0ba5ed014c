package proxy

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/milagro-go/milagro/mtls"
	"github.com/milagro-go/milagro/mtlshttp"
)

// The library: a Server in HTTP identity mode serves mtls HTTP clients
// (mtlshttp.NewTransport, mtlshttp.NewHTTP2Transport) by their ALPN choice,
// and Shutdown ends idle keep-alive connections instead of waiting for
// them.
func TestServerHTTPIdentityLibrary(t *testing.T) {
	rec := newRecorder()
	s := &Server{Target: backend(t, rec), HTTPIdentityHeader: testHdr, Logger: quietLogger(t), Metrics: NewMetrics()}
	if err := s.SetConfig(pskServerConfig(), AllowAll()); err != nil {
		t.Fatal(err)
	}
	ln := listenLocal(t)
	addr := ln.Addr().String()
	done := make(chan error, 1)
	go func() { done <- s.Serve(context.Background(), ln) }()

	h1 := mtlshttp.NewTransport(pskClientConfig("alice"))
	h2 := mtlshttp.NewHTTP2Transport(pskClientConfig("bob"))
	for _, rt := range []http.RoundTripper{h1, h2} {
		req, _ := http.NewRequest("GET", "https://"+addr+"/x", nil)
		req.Header.Set(testHdr, "admin")
		resp, err := rt.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatal(resp.Status)
		}
	}
	reqs := rec.seen()
	if len(reqs) != 2 {
		t.Fatalf("back end saw %+v", reqs)
	}
	onlyID(t, reqs[:1], "alice")
	onlyID(t, reqs[1:], "bob")

	// Both connections are idle (keep-alive); Shutdown ends them well
	// before its deadline.
	if n := s.ActiveConns(); n != 2 {
		t.Fatalf("%d active connections, want 2", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v (idle HTTP connections not ended)", err)
	}
	if err := <-done; !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve: %v", err)
	}
}

// idConn reports another peer identity than the handshake's.
type idConn struct {
	SecureConn
	id string
}

func (c idConn) ConnectionState() mtls.ConnectionState {
	cs := c.SecureConn.ConnectionState()
	cs.PeerIdentity = c.id
	return cs
}

// An identity that cannot be an HTTP header value (control characters,
// white space at either end) is refused: the connection is closed and the
// back end sees nothing.
func TestServerHTTPIdentityRefusesUnsafeIdentity(t *testing.T) {
	for _, id := range []string{"alice\r\nX-Mtls-Identity: admin", "alice\x00", " alice", "alice\t"} {
		rec := newRecorder()
		s := &Server{Target: backend(t, rec), HTTPIdentityHeader: testHdr, Logger: quietLogger(t),
			NewConn: func(c net.Conn, cfg *mtls.Config) SecureConn { return idConn{mtls.Server(c, cfg), id} }}
		addr := startServer(t, s, AllowAll())
		rt := mtlshttp.NewTransport(pskClientConfig("alice"))
		req, _ := http.NewRequest("GET", "https://"+addr+"/x", nil)
		if resp, err := rt.RoundTrip(req); err == nil {
			resp.Body.Close()
			t.Errorf("identity %q: answered %s", id, resp.Status)
		}
		rt.CloseIdleConnections()
		if reqs := rec.seen(); len(reqs) != 0 {
			t.Errorf("identity %q: back end saw %+v", id, reqs)
		}
	}
}

// A reload whose ACL no longer admits an identity closes its live HTTP/2
// connection: it cannot carry one more request.
func TestServerHTTPIdentityRevocation(t *testing.T) {
	rec := newRecorder()
	s := &Server{Target: backend(t, rec), HTTPIdentityHeader: testHdr, Logger: quietLogger(t), Metrics: NewMetrics()}
	addr := startServer(t, s, AllowAll())
	h2 := mtlshttp.NewHTTP2Transport(pskClientConfig("alice"))
	defer h2.CloseIdleConnections()
	get := func() error {
		req, _ := http.NewRequest("GET", "https://"+addr+"/x", nil)
		resp, err := h2.RoundTrip(req)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return nil
	}
	if err := get(); err != nil {
		t.Fatal(err)
	}
	acl, err := NewACL([]string{"bob"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetConfig(pskServerConfig(), acl); err != nil {
		t.Fatal(err)
	}
	if n := metricValue(s.Metrics.revoked); n != 1 {
		t.Fatalf("%v connections revoked, want 1", n)
	}
	if err := get(); err == nil {
		t.Fatal("a revoked identity's request was served")
	}
	if reqs := rec.seen(); len(reqs) != 1 {
		t.Fatalf("back end saw %+v", reqs)
	}
}
