package interop

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/milagro-go/milagro/dtls"
	"github.com/milagro-go/milagro/internal/testport"
)

// Static DTLS-PSK (package dtls) against openssl s_server / s_client
// -dtls1_2. Flags as in openssl_test.go; -quiet makes stdout exactly the
// received data, and each stdin line becomes one DTLS record.

var dtlsSuites = []struct {
	id      uint16
	openssl string
}{
	{dtls.TLS_PSK_WITH_AES_128_GCM_SHA256, "PSK-AES128-GCM-SHA256"},
	{dtls.TLS_PSK_WITH_AES_128_CCM_8, "PSK-AES128-CCM8"},
}

// requireOpenSSL fails (never skips) when openssl is missing.
func requireOpenSSL(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("openssl")
	if err != nil {
		t.Fatalf("openssl is required for the DTLS interop tests: %v", err)
	}
	return p
}

// freeUDPPort returns a UDP port on 127.0.0.1 that was free a moment ago.
func freeUDPPort(t *testing.T) int { return testport.UDP(t) }

// waitUDPBound waits until a UDP socket is bound to port (from
// /proc/net/udp, without sending a probe), or the process exits.
func waitUDPBound(t *testing.T, p *peer, port int) {
	t.Helper()
	suffix := fmt.Sprintf(":%04X", port)
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if p.exited() {
			t.Fatalf("%s exited before binding %d: %v\n%s", p.name, port, p.err, p.output())
		}
		fh, err := os.Open("/proc/net/udp")
		if err != nil {
			t.Fatalf("cannot see UDP sockets: %v", err)
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			if fs := strings.Fields(sc.Text()); len(fs) > 1 && strings.HasSuffix(fs[1], suffix) {
				fh.Close()
				return
			}
		}
		fh.Close()
	}
	t.Fatalf("nothing bound to UDP port %d after 10s", port)
}

func dtlsClientConfig(suite uint16, key []byte) *dtls.Config {
	return &dtls.Config{PSK: key, PSKIdentity: identity, CipherSuites: []uint16{suite}, HandshakeTimeout: 10 * time.Second}
}

func dtlsServerConfig(suite uint16, key []byte) *dtls.Config {
	return &dtls.Config{PSK: key, PSKIdentity: identity, PSKIdentityHint: []byte(hint),
		CipherSuites: []uint16{suite}, HandshakeTimeout: 10 * time.Second}
}

func readDatagram(t *testing.T, c net.Conn) string {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(ioTimeout))
	buf := make([]byte, 2048)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return string(buf[:n])
}

// TestDTLSOpenSSLServer: our client (dtls.Dial) ↔ openssl s_server -dtls1_2.
func TestDTLSOpenSSLServer(t *testing.T) {
	openssl := requireOpenSSL(t)
	for _, s := range dtlsSuites {
		t.Run(s.openssl, func(t *testing.T) {
			port := freeUDPPort(t)
			srv := startPeer(t, nil, openssl, "s_server", "-dtls1_2", "-accept", "127.0.0.1:"+strconv.Itoa(port),
				"-nocert", "-cipher", s.openssl, "-psk", pskHex, "-psk_identity", identity, "-psk_hint", hint,
				"-naccept", "1", "-quiet")
			waitUDPBound(t, srv, port)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			c, err := dtls.DialContext(ctx, "udp", "127.0.0.1:"+strconv.Itoa(port), dtlsClientConfig(s.id, psk))
			if err != nil {
				t.Fatalf("handshake with s_server: %v\n%s", err, srv.output())
			}
			if cs := c.ConnectionState(); cs.CipherSuite != s.id || cs.PeerIdentity != "" {
				t.Fatalf("state %+v", cs)
			}
			var want strings.Builder
			for i := range 5 {
				line := fmt.Sprintf("datagram %d from go\n", i)
				want.WriteString(line)
				if _, err := c.Write([]byte(line)); err != nil {
					t.Fatal(err)
				}
			}
			if !srv.stdout.waitFor(ioTimeout, func(b []byte) bool { return len(b) >= want.Len() }) || srv.stdout.String() != want.String() {
				t.Fatalf("s_server received %q", srv.stdout.String())
			}
			if _, err := srv.stdin.Write([]byte("from openssl\n")); err != nil {
				t.Fatal(err)
			}
			if got := readDatagram(t, c); got != "from openssl\n" {
				t.Fatalf("received %q", got)
			}
			_ = c.Close() // close_notify: the one-shot s_server exits
			if err := srv.wait(t, 10*time.Second); err != nil {
				t.Fatalf("s_server: %v", err)
			}
		})
	}
}

// TestDTLSOpenSSLClient: openssl s_client -dtls1_2 ↔ our server (dtls.Listen).
func TestDTLSOpenSSLClient(t *testing.T) {
	openssl := requireOpenSSL(t)
	for _, s := range dtlsSuites {
		t.Run(s.openssl, func(t *testing.T) {
			ln, err := dtls.Listen("udp", "127.0.0.1:0", dtlsServerConfig(s.id, psk))
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			cli := startPeer(t, nil, openssl, "s_client", "-dtls1_2", "-connect", ln.Addr().String(),
				"-cipher", s.openssl, "-psk", pskHex, "-psk_identity", identity, "-quiet", "-no_ign_eof", "-nocommands")
			if _, err := cli.stdin.Write([]byte("from openssl\n")); err != nil {
				t.Fatal(err)
			}
			c, err := acceptDTLS(t, ln)
			if err != nil {
				t.Fatalf("handshake with s_client: %v\n%s", err, cli.output())
			}
			defer c.Close()
			if cs := c.ConnectionState(); cs.CipherSuite != s.id || cs.PeerIdentity != identity {
				t.Fatalf("state %+v", cs)
			}
			if got := readDatagram(t, c); got != "from openssl\n" {
				t.Fatalf("received %q", got)
			}
			for i := range 3 {
				if _, err := c.Write(fmt.Appendf(nil, "datagram %d from go\n", i)); err != nil {
					t.Fatal(err)
				}
			}
			want := "datagram 0 from go\ndatagram 1 from go\ndatagram 2 from go\n"
			if !cli.stdout.waitFor(ioTimeout, func(b []byte) bool { return len(b) >= len(want) }) || cli.stdout.String() != want {
				t.Fatalf("s_client received %q", cli.stdout.String())
			}
			cli.stdin.Close() // s_client sends close_notify and exits
			if err := cli.wait(t, 10*time.Second); err != nil {
				t.Fatalf("s_client: %v", err)
			}
		})
	}
}

func acceptDTLS(t *testing.T, ln *dtls.Listener) (*dtls.Conn, error) {
	t.Helper()
	type res struct {
		c   *dtls.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := ln.AcceptDTLS()
		if err == nil {
			err = c.Handshake()
		}
		ch <- res{c, err}
	}()
	select {
	case r := <-ch:
		return r.c, r.err
	case <-time.After(20 * time.Second):
		t.Fatal("no DTLS connection within 20s")
	}
	return nil, nil
}

// TestDTLSOpenSSLWrongPSK: a wrong key fails the handshake both ways (our
// side by its handshake timeout: the peer's Finished never decrypts).
func TestDTLSOpenSSLWrongPSK(t *testing.T) {
	openssl := requireOpenSSL(t)
	s := dtlsSuites[0]
	t.Run("ours-to-s_server", func(t *testing.T) {
		port := freeUDPPort(t)
		srv := startPeer(t, nil, openssl, "s_server", "-dtls1_2", "-accept", "127.0.0.1:"+strconv.Itoa(port),
			"-nocert", "-cipher", s.openssl, "-psk", pskHex, "-psk_identity", identity, "-naccept", "1", "-quiet")
		waitUDPBound(t, srv, port)
		cfg := dtlsClientConfig(s.id, wrongPSK)
		cfg.HandshakeTimeout = 5 * time.Second
		if c, err := dtls.Dial("udp", "127.0.0.1:"+strconv.Itoa(port), cfg); err == nil {
			c.Close()
			t.Fatal("handshake with a wrong PSK succeeded")
		}
	})
	t.Run("s_client-to-ours", func(t *testing.T) {
		cfg := dtlsServerConfig(s.id, psk)
		cfg.HandshakeTimeout = 5 * time.Second
		ln, err := dtls.Listen("udp", "127.0.0.1:0", cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		cli := startPeer(t, nil, openssl, "s_client", "-dtls1_2", "-connect", ln.Addr().String(),
			"-cipher", s.openssl, "-psk", wrongHex, "-psk_identity", identity, "-quiet", "-no_ign_eof", "-nocommands")
		c, err := acceptDTLS(t, ln)
		if err == nil {
			c.Close()
			t.Fatal("handshake with a wrong PSK succeeded")
		}
		// A Finished under the wrong key does not decrypt, and DTLS drops
		// such records silently (RFC 6347 §4.1.2.7): s_client keeps
		// waiting and is stopped at cleanup; it must not have received data.
		if out := cli.stdout.String(); out != "" {
			t.Fatalf("s_client received %q", out)
		}
	})
}
