package mtlshttp_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/milagro-go/milagro/ciphersuite"
	"github.com/milagro-go/milagro/mtls"
	"github.com/milagro-go/milagro/mtlshttp"
	"golang.org/x/net/http2"
)

// whoami answers with what the handler sees of the connection.
var whoami = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	id, ok := mtls.PeerIdentity(r.Context())
	cs, csOK := mtlshttp.RequestConnectionState(r)
	tlsProto := "<nil>"
	if r.TLS != nil {
		tlsProto = fmt.Sprintf("%s/%#04x", r.TLS.NegotiatedProtocol, r.TLS.Version)
	}
	fmt.Fprintf(w, "%s id=%s ok=%v alpn=%s cs=%v suite=%s tls=%s", r.Proto, id, ok, cs.NegotiatedProtocol, csOK, cs.CipherSuiteName, tlsProto)
})

// serveHTTP starts Serve on a loopback mtls listener and returns its URL.
func serveHTTP(t *testing.T, scfg *mtls.Config, h http.Handler) (string, *http.Server) {
	t.Helper()
	l, err := mtls.Listen("tcp", "127.0.0.1:0", scfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan error, 1)
	go func() { done <- mtlshttp.Serve(srv, l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve returned %v", err)
		}
	})
	return "https://" + l.Addr().String() + "/", srv
}

func get(t *testing.T, rt http.RoundTripper, url string) string {
	t.Helper()
	c := &http.Client{Transport: rt, Timeout: 20 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("status %d, %v", resp.StatusCode, err)
	}
	return string(b)
}

// h2 and HTTP/1.1 clients on one listener both see the authenticated identity.
func TestServeHTTPBothProtocols(t *testing.T) {
	for _, tc := range []struct {
		name    string
		configs func(t *testing.T) (*mtls.Config, *mtls.Config)
		id      string
	}{
		{"PSK", func(*testing.T) (*mtls.Config, *mtls.Config) { return pskConfigs(0xD001) }, testIdentity},
		{"CS", func(t *testing.T) (*mtls.Config, *mtls.Config) {
			return milCSConfigs(t, ciphersuite.ByKX(ciphersuite.KXMilagroCS)[0].ID)
		}, milAlice},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ccfg, scfg := tc.configs(t)
			scfg.NextProtos = []string{"h2", "http/1.1"}
			url, _ := serveHTTP(t, scfg, whoami)

			h2 := mtlshttp.NewHTTP2Transport(ccfg)
			defer h2.CloseIdleConnections()
			got := get(t, h2, url)
			want := "HTTP/2.0 id=" + tc.id + " ok=true alpn=h2 cs=true"
			if !strings.HasPrefix(got, want) || !strings.HasSuffix(got, "tls=h2/0x0303") {
				t.Fatalf("h2 client: got %q, want %q...", got, want)
			}
			h1 := mtlshttp.NewTransport(ccfg)
			defer h1.CloseIdleConnections()
			got = get(t, h1, url)
			want = "HTTP/1.1 id=" + tc.id + " ok=true alpn=http/1.1 cs=true"
			if !strings.HasPrefix(got, want) || !strings.HasSuffix(got, "tls=http/1.1/0x0303") {
				t.Fatalf("HTTP/1.1 client: got %q, want %q...", got, want)
			}
			// A client without ALPN is served HTTP/1.1.
			plain := ccfg.Clone()
			plain.NextProtos = []string{}
			h0 := mtlshttp.NewTransport(plain)
			defer h0.CloseIdleConnections()
			if got = get(t, h0, url); !strings.HasPrefix(got, "HTTP/1.1 id="+tc.id+" ok=true alpn= ") {
				t.Fatalf("client without ALPN: got %q", got)
			}
		})
	}
}

// ALPN mismatch both ways over HTTP: an h2-only client of an HTTP/1.1-only
// server is refused (no_application_protocol); an HTTP/2 transport whose
// server ignores ALPN fails the dial instead of speaking h2 to HTTP/1.1.
func TestServeHTTPALPNMismatch(t *testing.T) {
	ccfg, scfg := pskConfigs(0xD001)
	scfg.NextProtos = []string{"http/1.1"}
	url, _ := serveHTTP(t, scfg, whoami)
	c := &http.Client{Transport: mtlshttp.NewHTTP2Transport(ccfg), Timeout: 20 * time.Second}
	_, err := c.Get(url)
	var ae *mtls.AlertError
	if !errors.As(err, &ae) || ae.Alert != ciphersuite.AlertNoApplicationProtocol || !ae.Remote {
		t.Fatalf("h2 client of an http/1.1 server: want a received no_application_protocol, got %v", err)
	}

	_, scfg2 := pskConfigs(0xD001) // no NextProtos: ALPN ignored
	url2, _ := serveHTTP(t, scfg2, whoami)
	_, err = c.Get(url2)
	if err == nil || !strings.Contains(err.Error(), "did not choose h2") {
		t.Fatalf("h2 client of a server without ALPN: got %v", err)
	}
	// ... while an HTTP/1.1 client of that server works.
	h1 := mtlshttp.NewTransport(ccfg)
	defer h1.CloseIdleConnections()
	if got := get(t, h1, url2); !strings.HasPrefix(got, "HTTP/1.1 id="+testIdentity) {
		t.Fatalf("got %q", got)
	}
}

// A failed handshake never reaches the handler, over either protocol.
func TestServeHTTPDeniedIdentity(t *testing.T) {
	ccfg, scfg := pskConfigs(0xD001)
	scfg.NextProtos = []string{"h2", "http/1.1"}
	scfg.VerifyPeerIdentity = func(id string) error { return fmt.Errorf("%q is not allowed", id) }
	reached := make(chan struct{}, 2)
	url, _ := serveHTTP(t, scfg, http.HandlerFunc(func(http.ResponseWriter, *http.Request) { reached <- struct{}{} }))
	for _, rt := range []http.RoundTripper{mtlshttp.NewHTTP2Transport(ccfg), mtlshttp.NewTransport(ccfg)} {
		_, err := (&http.Client{Transport: rt, Timeout: 20 * time.Second}).Get(url)
		var ae *mtls.AlertError
		if !errors.As(err, &ae) || ae.Alert != ciphersuite.AlertUnknownPSKIdentity || !ae.Remote {
			t.Fatalf("want a received unknown_psk_identity, got %v", err)
		}
	}
	select {
	case <-reached:
		t.Fatal("a denied client reached the handler")
	default:
	}
}

// rawH2 opens an HTTP/2 connection by hand (preface and SETTINGS sent) and
// returns a framer reading the server's frames.
func rawH2(t *testing.T, addr string, ccfg *mtls.Config) *http2.Framer {
	t.Helper()
	cfg := ccfg.Clone()
	cfg.NextProtos = []string{"h2"}
	c, err := mtls.Dial("tcp", addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(c, c)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	return fr
}

// Shutdown ends HTTP/2 connections with GOAWAY; Close closes them.
func TestServeHTTPStopEndsH2(t *testing.T) {
	for _, graceful := range []bool{true, false} {
		t.Run(fmt.Sprintf("graceful=%v", graceful), func(t *testing.T) {
			ccfg, scfg := pskConfigs(0xD001)
			scfg.NextProtos = []string{"h2"}
			l, err := mtls.Listen("tcp", "127.0.0.1:0", scfg)
			if err != nil {
				t.Fatal(err)
			}
			srv := &http.Server{Handler: whoami}
			done := make(chan error, 1)
			go func() { done <- mtlshttp.Serve(srv, l) }()
			fr := rawH2(t, l.Addr().String(), ccfg)
			if f, err := fr.ReadFrame(); err != nil || f.Header().Type != http2.FrameSettings {
				t.Fatalf("first frame: %v %v", f, err)
			}
			if graceful {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				go srv.Shutdown(ctx)
			} else {
				srv.Close()
			}
			sawGoAway := false
			for {
				f, err := fr.ReadFrame()
				if err != nil {
					if errors.Is(err, os.ErrDeadlineExceeded) {
						t.Fatal("the server kept the HTTP/2 connection open")
					}
					break
				}
				if f.Header().Type == http2.FrameGoAway {
					sawGoAway = true
				}
			}
			if graceful && !sawGoAway {
				t.Fatal("Shutdown closed the HTTP/2 connection without GOAWAY")
			}
			if err := <-done; !errors.Is(err, http.ErrServerClosed) {
				t.Fatalf("ServeHTTP returned %v", err)
			}
		})
	}
}
