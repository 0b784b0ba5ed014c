package interop

import (
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/milagro-go/milagro/ciphersuite"
)

// ALPN (RFC 7301) against openssl s_server -alpn / s_client -alpn on the
// PSK suites OpenSSL offers: agreement both ways, and a mismatch both ways
// (each server sends no_application_protocol).

// opensslPath fails the test when openssl is missing (an interop test that
// cannot run its peer must not pass).
func opensslPath(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("openssl")
	if err != nil {
		t.Fatalf("missing peer openssl (install openssl): %v", err)
	}
	return p
}

var alpnSuites = []suiteCase{peerSuites[0], peerSuites[3]} // PSK and ECDHE_PSK

// TestOpenSSLServerALPN: our client ↔ openssl s_server -alpn.
func TestOpenSSLServerALPN(t *testing.T) {
	openssl := opensslPath(t)
	for _, s := range alpnSuites {
		t.Run("agree/"+s.openssl, func(t *testing.T) {
			port := freePort(t)
			srv := startPeer(t, nil, openssl, opensslServerArgs(port, s, identity, "-alpn", "h2,http/1.1")...)
			waitListening(t, srv, port)
			cfg := clientConfig(s.id, identity, psk)
			cfg.NextProtos = []string{"spdy/3", "http/1.1"}
			c, err := dial(t, port, cfg)
			if err != nil {
				t.Fatalf("handshake with s_server: %v", err)
			}
			checkState(t, c, s, hint)
			if p := c.ConnectionState().NegotiatedProtocol; p != "http/1.1" {
				t.Fatalf("negotiated %q with s_server, want http/1.1", p)
			}
			exchange(t, c, []byte("ping\n"), nil)
			if !srv.waitOutput("ping", ioTimeout) {
				t.Fatal("s_server did not receive the data")
			}
			if out := srv.output(); !strings.Contains(out, "ALPN protocols advertised by the client: spdy/3, http/1.1") {
				t.Fatalf("s_server did not see our ALPN list:\n%s", out)
			}
			c.Close()
			srv.wait(t, 10*time.Second)
		})
		t.Run("mismatch/"+s.openssl, func(t *testing.T) {
			port := freePort(t)
			srv := startPeer(t, nil, openssl, opensslServerArgs(port, s, identity, "-alpn", "h2")...)
			waitListening(t, srv, port)
			cfg := clientConfig(s.id, identity, psk)
			cfg.NextProtos = []string{"foo"}
			_, err := dial(t, port, cfg)
			assertAlert(t, err, ciphersuite.AlertNoApplicationProtocol, true)
			srv.wait(t, 10*time.Second)
		})
	}
}

// TestOpenSSLClientALPN: openssl s_client -alpn ↔ our server.
func TestOpenSSLClientALPN(t *testing.T) {
	openssl := opensslPath(t)
	for _, s := range alpnSuites {
		t.Run("agree/"+s.openssl, func(t *testing.T) {
			cfg := serverConfig(s.id, identity, psk)
			cfg.NextProtos = []string{"h2", "http/1.1"}
			ln, port := listen(t, cfg)
			accepted := acceptOne(ln)
			cli := startPeer(t, nil, openssl, clientALPNArgs(port, s, "foo,http/1.1,h2")...)
			r := recvAccept(t, accepted)
			if r.err != nil {
				t.Fatalf("handshake with s_client: %v", r.err)
			}
			checkState(t, r.c, s, identity)
			if p := r.c.ConnectionState().NegotiatedProtocol; p != "h2" {
				t.Fatalf("negotiated %q with s_client, want h2 (the server's preference)", p)
			}
			if !cli.waitOutput("ALPN protocol: h2", ioTimeout) {
				t.Fatalf("s_client does not report h2:\n%s", cli.output())
			}
			cli.stdin.Close()
			expectEOF(t, r.c)
			if err := cli.wait(t, 10*time.Second); err != nil {
				t.Fatalf("s_client: %v", err)
			}
		})
		t.Run("mismatch/"+s.openssl, func(t *testing.T) {
			cfg := serverConfig(s.id, identity, psk)
			cfg.NextProtos = []string{"h2"}
			ln, port := listen(t, cfg)
			accepted := acceptOne(ln)
			cli := startPeer(t, nil, openssl, clientALPNArgs(port, s, "foo,bar")...)
			r := recvAccept(t, accepted)
			assertAlert(t, r.err, ciphersuite.AlertNoApplicationProtocol, false)
			cli.wait(t, 10*time.Second)
			if out := cli.output(); !strings.Contains(out, "no application protocol") {
				t.Fatalf("s_client does not report the alert:\n%s", out)
			}
		})
	}
}

// clientALPNArgs are s_client arguments that keep its session report (it
// names the negotiated protocol) and send nothing.
func clientALPNArgs(port int, s suiteCase, alpn string) []string {
	args := opensslClientArgs(port, s, identity, pskHex)
	out := args[:0:0]
	for _, a := range args {
		if a != "-quiet" {
			out = append(out, a)
		}
	}
	return append(out, "-alpn", alpn)
}
