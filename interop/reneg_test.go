package interop

import (
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/milagro-go/milagro/ciphersuite"
)

// TestRenegotiationRefused: a renegotiation request from OpenSSL (a
// HelloRequest from s_server's "r" command, a ClientHello from s_client's
// "R" command) gets a no_renegotiation warning from us and never a second
// handshake. OpenSSL 3.0 then ends the connection with a fatal
// handshake_failure (its policy for a refused renegotiation), which we see
// as a remote alert.
func TestRenegotiationRefused(t *testing.T) {
	openssl := requirePeer(t, "openssl", "openssl")
	s := peerSuites[0]
	// As OpenSSL's -msg trace shows our alert arriving.
	const ourWarning = "<<< TLS 1.2, Alert [length 0002], warning no_renegotiation"

	t.Run("s_server-HelloRequest", func(t *testing.T) {
		port := freePort(t)
		// Without -quiet s_server reads commands from stdin; -msg traces records.
		srv := startPeer(t, nil, openssl, opensslServerArgs(port, s, identity, "-msg")...)
		waitListening(t, srv, port)
		c, err := dial(t, port, clientConfig(s.id, identity, psk))
		if err != nil {
			t.Fatal(err)
		}
		if !srv.waitOutput("CIPHER is", 5*time.Second) {
			t.Fatalf("s_server did not finish its handshake:\n%s", srv.output())
		}
		io.WriteString(srv.stdin, "r\n")
		var b [16]byte
		_, err = c.Read(b[:])
		assertAlert(t, err, ciphersuite.AlertHandshakeFailure, true)
		if !srv.waitOutput(ourWarning, 5*time.Second) {
			t.Fatalf("s_server did not receive our no_renegotiation warning:\n%s", srv.output())
		}
		out := srv.output()
		if !strings.Contains(out, "HelloRequest") {
			t.Fatalf("s_server sent no HelloRequest:\n%s", out)
		}
		if n := strings.Count(out, "], ClientHello"); n != 1 {
			t.Fatalf("%d ClientHellos, want 1 (no second handshake):\n%s", n, out)
		}
	})

	t.Run("s_client-ClientHello", func(t *testing.T) {
		ln, port := listen(t, serverConfig(s.id, identity, psk))
		accepted := acceptOne(ln)
		// Without -nocommands, "R" on stdin makes s_client renegotiate.
		cli := startPeer(t, nil, openssl, "s_client", "-connect", fmt.Sprintf("127.0.0.1:%d", port), "-tls1_2",
			"-cipher", s.openssl, "-psk", pskHex, "-psk_identity", identity, "-msg")
		r := recvAccept(t, accepted)
		if r.err != nil {
			t.Fatal(r.err)
		}
		if !cli.waitOutput("Extended master secret", 5*time.Second) {
			t.Fatalf("s_client did not finish its handshake:\n%s", cli.output())
		}
		io.WriteString(cli.stdin, "R\n")
		var b [16]byte
		_, err := r.c.Read(b[:])
		assertAlert(t, err, ciphersuite.AlertHandshakeFailure, true)
		if !cli.waitOutput(ourWarning, 5*time.Second) {
			t.Fatalf("s_client did not receive our no_renegotiation warning:\n%s", cli.output())
		}
		out := cli.output()
		if n := strings.Count(out, "], ClientHello"); n != 2 {
			t.Fatalf("%d ClientHellos from s_client, want 2 (the renegotiation attempt):\n%s", n, out)
		}
		if n := strings.Count(out, "], ServerHello\n"); n != 1 {
			t.Fatalf("%d ServerHellos, want 1 (we must not renegotiate):\n%s", n, out)
		}
	})
}
