package interop

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/milagro-go/milagro/ciphersuite"
)

// OpenSSL flags, found by experiment with OpenSSL 3.0:
//   - s_server -quiet: no session output on stdout (stdout is exactly the
//     received data) and stdin EOF is ignored; stdin command letters are
//     not interpreted. -naccept 1: exit after the connection.
//   - s_client -quiet -no_ign_eof -nocommands: stdout is exactly the
//     received data; stdin is sent verbatim (without -nocommands a chunk
//     starting with 'Q' ends the session); stdin EOF sends close_notify
//     and exits.

func opensslServerArgs(port int, s suiteCase, ident string, extra ...string) []string {
	args := []string{"s_server", "-accept", strconv.Itoa(port), "-nocert", "-tls1_2",
		"-cipher", s.openssl, "-psk", pskHex, "-psk_identity", ident, "-psk_hint", hint, "-naccept", "1"}
	return append(args, extra...)
}

func opensslClientArgs(port int, s suiteCase, ident, key string) []string {
	return []string{"s_client", "-connect", fmt.Sprintf("127.0.0.1:%d", port), "-tls1_2",
		"-cipher", s.openssl, "-psk", key, "-psk_identity", ident, "-quiet", "-no_ign_eof", "-nocommands"}
}

// TestOpenSSLServer: our client (mtls.Dial) ↔ openssl s_server.
func TestOpenSSLServer(t *testing.T) {
	openssl := requirePeer(t, "openssl", "openssl")
	for _, s := range peerSuites {
		t.Run(s.openssl, func(t *testing.T) {
			toServer, toClient := randomPayload(t, payloadSize), randomPayload(t, payloadSize)
			port := freePort(t)
			srv := startPeer(t, nil, openssl, opensslServerArgs(port, s, identity, "-quiet")...)
			// s_server sends its stdin once connected; stdin stays open.
			go srv.stdin.Write(toClient)
			waitListening(t, srv, port)

			c, err := dial(t, port, clientConfig(s.id, identity, psk))
			if err != nil {
				t.Fatalf("handshake with s_server: %v", err)
			}
			checkState(t, c, s, hint)
			exchange(t, c, toServer, toClient)
			if err := c.CloseWrite(); err != nil {
				t.Fatalf("CloseWrite: %v", err)
			}
			expectEOF(t, c) // s_server answers our close_notify with its own
			if err := srv.wait(t, 10*time.Second); err != nil {
				t.Fatalf("s_server: %v", err)
			}
			if got := srv.stdout.Bytes(); !bytes.Equal(got, toServer) {
				t.Fatalf("s_server received %d bytes, want the %d sent (first difference at %d)", len(got), len(toServer), firstDiff(got, toServer))
			}
		})
	}
}

// TestOpenSSLClient: openssl s_client ↔ our server (mtls.Listen).
func TestOpenSSLClient(t *testing.T) {
	openssl := requirePeer(t, "openssl", "openssl")
	for _, s := range peerSuites {
		t.Run(s.openssl, func(t *testing.T) {
			toServer, toClient := randomPayload(t, payloadSize), randomPayload(t, payloadSize)
			ln, port := listen(t, serverConfig(s.id, identity, psk))
			accepted := acceptOne(ln)
			cli := startPeer(t, nil, openssl, opensslClientArgs(port, s, identity, pskHex)...)
			go cli.stdin.Write(toServer) // stdin stays open until we have all the data

			r := recvAccept(t, accepted)
			if r.err != nil {
				t.Fatalf("handshake with s_client: %v", r.err)
			}
			checkState(t, r.c, s, identity)
			exchange(t, r.c, toClient, toServer)
			if !cli.stdout.waitFor(ioTimeout, func(b []byte) bool { return len(b) >= len(toClient) }) {
				t.Fatalf("s_client printed %d of %d bytes", len(cli.stdout.Bytes()), len(toClient))
			}
			if got := cli.stdout.Bytes(); !bytes.Equal(got, toClient) {
				t.Fatalf("s_client received %d bytes that differ from those sent (at %d)", len(got), firstDiff(got, toClient))
			}
			cli.stdin.Close() // s_client sends close_notify and exits
			expectEOF(t, r.c)
			if err := r.c.Close(); err != nil {
				t.Logf("Close after the peer left: %v", err)
			}
			if err := cli.wait(t, 10*time.Second); err != nil {
				t.Fatalf("s_client: %v", err)
			}
		})
	}
}

// TestOpenSSLBadCredentials: a wrong PSK or identity fails on both sides
// with the alert each side really sends.
func TestOpenSSLBadCredentials(t *testing.T) {
	openssl := requirePeer(t, "openssl", "openssl")
	s := peerSuites[0]
	for _, s2 := range []suiteCase{s, peerSuites[3]} {
		s := s2
		t.Run("ours-to-s_server/wrong-psk/"+s.openssl, func(t *testing.T) {
			port := freePort(t)
			srv := startPeer(t, nil, openssl, opensslServerArgs(port, s, identity)...)
			waitListening(t, srv, port)
			_, err := dial(t, port, clientConfig(s.id, identity, wrongPSK))
			// s_server cannot decrypt our Finished: bad_record_mac.
			assertAlert(t, err, ciphersuite.AlertBadRecordMAC, true)
			srv.wait(t, 10*time.Second)
			if out := srv.output(); !strings.Contains(out, "bad record mac") {
				t.Fatalf("s_server output does not report the bad record MAC:\n%s", out)
			}
		})
		t.Run("s_client-to-ours/wrong-psk/"+s.openssl, func(t *testing.T) {
			ln, port := listen(t, serverConfig(s.id, identity, psk))
			accepted := acceptOne(ln)
			cli := startPeer(t, nil, openssl, opensslClientArgs(port, s, identity, wrongHex)...)
			r := recvAccept(t, accepted)
			// We cannot decrypt s_client's Finished: we send bad_record_mac.
			assertAlert(t, r.err, ciphersuite.AlertBadRecordMAC, false)
			if err := cli.wait(t, 10*time.Second); err == nil {
				t.Fatalf("s_client exited 0 after a failed handshake")
			}
			if out := cli.output(); !strings.Contains(out, "SSL alert number 20") {
				t.Fatalf("s_client did not receive bad_record_mac (20):\n%s", out)
			}
		})
		t.Run("s_client-to-ours/wrong-identity/"+s.openssl, func(t *testing.T) {
			ln, port := listen(t, serverConfig(s.id, identity, psk))
			accepted := acceptOne(ln)
			cli := startPeer(t, nil, openssl, opensslClientArgs(port, s, "intruder", pskHex)...)
			r := recvAccept(t, accepted)
			assertAlert(t, r.err, ciphersuite.AlertUnknownPSKIdentity, false)
			if err := cli.wait(t, 10*time.Second); err == nil {
				t.Fatalf("s_client exited 0 after a failed handshake")
			}
			if out := cli.output(); !strings.Contains(out, "SSL alert number 115") {
				t.Fatalf("s_client did not receive unknown_psk_identity (115):\n%s", out)
			}
		})
	}
	// openssl s_server's PSK callback does not reject an unexpected identity:
	// it prints a warning and uses its one key. So a wrong identity with the
	// right key succeeds there; check that we do present our identity (the
	// warning names it) and that nothing else differs.
	t.Run("ours-to-s_server/wrong-identity/"+s.openssl, func(t *testing.T) {
		port := freePort(t)
		srv := startPeer(t, nil, openssl, opensslServerArgs(port, s, identity)...)
		waitListening(t, srv, port)
		c, err := dial(t, port, clientConfig(s.id, "intruder", psk))
		if err != nil {
			t.Fatalf("s_server (which only warns about identities) refused us: %v", err)
		}
		c.Close()
		srv.wait(t, 10*time.Second)
		if out := srv.output(); !strings.Contains(out, "got 'intruder' expected 'client1'") {
			t.Fatalf("s_server did not see identity 'intruder':\n%s", out)
		}
	})
}

// TestOpenSSLLongIdentityAndKey: a 128-byte identity (the size every peer
// must support) and a 64-byte PSK, both directions.
func TestOpenSSLLongIdentityAndKey(t *testing.T) {
	openssl := requirePeer(t, "openssl", "openssl")
	s := peerSuites[3]
	longID := strings.Repeat("id-", 42) + "xx" // 128 bytes
	longKey := bytes.Repeat([]byte{0x5a, 0xa5}, 32)
	longHex := fmt.Sprintf("%x", longKey)
	msg := []byte("hello over a long PSK\n")

	t.Run("ours-to-s_server", func(t *testing.T) {
		port := freePort(t)
		args := []string{"s_server", "-accept", strconv.Itoa(port), "-nocert", "-tls1_2", "-cipher", s.openssl,
			"-psk", longHex, "-psk_identity", longID, "-naccept", "1", "-quiet"}
		srv := startPeer(t, nil, openssl, args...)
		waitListening(t, srv, port)
		c, err := dial(t, port, clientConfig(s.id, longID, longKey))
		if err != nil {
			t.Fatal(err)
		}
		exchange(t, c, msg, nil)
		c.CloseWrite()
		expectEOF(t, c)
		srv.wait(t, 10*time.Second)
		if !bytes.Equal(srv.stdout.Bytes(), msg) {
			t.Fatalf("s_server got %q", srv.stdout.Bytes())
		}
	})
	t.Run("s_client-to-ours", func(t *testing.T) {
		ln, port := listen(t, serverConfig(s.id, longID, longKey))
		accepted := acceptOne(ln)
		cli := startPeer(t, nil, openssl, opensslClientArgs(port, s, longID, longHex)...)
		r := recvAccept(t, accepted)
		if r.err != nil {
			t.Fatal(r.err)
		}
		if got := r.c.ConnectionState().PeerIdentity; got != longID {
			t.Fatalf("peer identity %q", got)
		}
		exchange(t, r.c, msg, nil)
		if !cli.stdout.waitFor(ioTimeout, func(b []byte) bool { return bytes.Equal(b, msg) }) {
			t.Fatalf("s_client got %q", cli.stdout.Bytes())
		}
		cli.stdin.Close()
		expectEOF(t, r.c)
	})
}
