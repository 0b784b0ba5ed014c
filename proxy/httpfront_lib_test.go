package proxy

import (
	"context"
	"errors"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/milagro-go/milagro/mtls"
)

// The library: a Server in HTTP identity mode serves mtls HTTP clients
// (mtls.NewHTTPTransport, mtls.NewHTTP2Transport) by their ALPN choice,
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

	h1 := mtls.NewHTTPTransport(pskClientConfig("alice"))
	h2 := mtls.NewHTTP2Transport(pskClientConfig("bob"))
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
