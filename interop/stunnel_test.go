package interop

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/milagro-go/milagro/ciphersuite"
)

// stunnel 5 notes: PSKsecrets lines are IDENTITY:KEY where a key of valid
// hex is decoded (at least 16 bytes); it sends no psk_identity_hint. With
// foreground = yes it logs to stderr. It uses OpenSSL, so it has OpenSSL's
// four suites.

func startStunnel(t *testing.T, service string) *peer {
	t.Helper()
	bin := requirePeer(t, "stunnel4", "stunnel4")
	dir := t.TempDir()
	secrets := filepath.Join(dir, "psk.txt")
	if err := os.WriteFile(secrets, []byte(identity+":"+pskHex+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "stunnel.conf")
	body := "foreground = yes\npid =\ndebug = 5\nsyslog = no\n" + strings.ReplaceAll(service, "@SECRETS@", secrets)
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return startPeer(t, nil, bin, conf)
}

// tcpEcho is a plain TCP echo server on loopback (stunnel's backend); it
// half-closes after echoing everything.
func tcpEcho(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(ioTimeout))
				io.Copy(c, c)
				c.(*net.TCPConn).CloseWrite()
			}()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestStunnelServer: our client ↔ stunnel (server mode) ↔ TCP echo.
func TestStunnelServer(t *testing.T) {
	requirePeer(t, "stunnel4", "stunnel4")
	for _, s := range peerSuites {
		t.Run(s.openssl, func(t *testing.T) {
			data := randomPayload(t, payloadSize)
			backend, port := tcpEcho(t), freePort(t)
			st := startStunnel(t, fmt.Sprintf("[srv]\naccept = 127.0.0.1:%d\nconnect = 127.0.0.1:%d\nciphers = %s\nsslVersion = TLSv1.2\nPSKsecrets = @SECRETS@\n",
				port, backend, s.openssl))
			waitListening(t, st, port)
			c, err := dial(t, port, clientConfig(s.id, identity, psk))
			if err != nil {
				t.Fatalf("handshake with stunnel: %v", err)
			}
			checkState(t, c, s, "") // stunnel sends no hint
			exchange(t, c, data, data)
			if err := c.CloseWrite(); err != nil {
				t.Fatal(err)
			}
			expectEOF(t, c)
		})
	}
	for _, tc := range []struct {
		name  string
		ident string
		key   []byte
		alert ciphersuite.Alert
		log   string
	}{
		{"wrong-psk", identity, wrongPSK, ciphersuite.AlertBadRecordMAC, "bad record mac"},
		{"wrong-identity", "intruder", psk, ciphersuite.AlertUnknownPSKIdentity, "psk identity not found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := peerSuites[0]
			backend, port := tcpEcho(t), freePort(t)
			st := startStunnel(t, fmt.Sprintf("[srv]\naccept = 127.0.0.1:%d\nconnect = 127.0.0.1:%d\nciphers = %s\nsslVersion = TLSv1.2\nPSKsecrets = @SECRETS@\n",
				port, backend, s.openssl))
			waitListening(t, st, port)
			_, err := dial(t, port, clientConfig(s.id, tc.ident, tc.key))
			assertAlert(t, err, tc.alert, true)
			if !st.waitOutput(tc.log, 5*time.Second) {
				t.Fatalf("stunnel log lacks %q:\n%s", tc.log, st.output())
			}
		})
	}
}

// TestStunnelClient: TCP client ↔ stunnel (client mode) ↔ our server, echoing.
func TestStunnelClient(t *testing.T) {
	requirePeer(t, "stunnel4", "stunnel4")
	for _, s := range peerSuites {
		t.Run(s.openssl, func(t *testing.T) {
			data := randomPayload(t, payloadSize)
			ln, srvPort := listen(t, serverConfig(s.id, identity, psk))
			accepted := acceptOne(ln)
			port := freePort(t)
			st := startStunnel(t, fmt.Sprintf("[cli]\nclient = yes\naccept = 127.0.0.1:%d\nconnect = 127.0.0.1:%d\nciphers = %s\nsslVersion = TLSv1.2\nPSKsecrets = @SECRETS@\nPSKidentity = %s\n",
				port, srvPort, s.openssl, identity))
			waitListening(t, st, port)
			plain, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer plain.Close()
			plain.SetDeadline(time.Now().Add(ioTimeout))

			r := recvAccept(t, accepted)
			if r.err != nil {
				t.Fatalf("handshake with stunnel: %v", r.err)
			}
			checkState(t, r.c, s, identity)
			echoed := make(chan error, 1)
			go func() {
				n, err := io.Copy(r.c, r.c) // until stunnel's close_notify
				if err == nil && n != int64(len(data)) {
					err = fmt.Errorf("echoed %d bytes, want %d", n, len(data))
				}
				if err == nil {
					err = r.c.Close()
				}
				echoed <- err
			}()
			werr := make(chan error, 1)
			go func() {
				_, err := plain.Write(data)
				if err == nil {
					err = plain.(*net.TCPConn).CloseWrite() // stunnel: close_notify
				}
				werr <- err
			}()
			got, err := io.ReadAll(plain) // ends when our close_notify reaches stunnel
			if err != nil {
				t.Fatalf("read through stunnel: %v", err)
			}
			if err := <-werr; err != nil {
				t.Fatal(err)
			}
			if err := <-echoed; err != nil {
				t.Fatalf("our server: %v", err)
			}
			if !bytes.Equal(got, data) {
				t.Fatalf("got %d bytes back through stunnel, want the %d sent (first difference at %d)", len(got), len(data), firstDiff(got, data))
			}
		})
	}
}
