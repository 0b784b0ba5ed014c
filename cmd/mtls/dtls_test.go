package main

import (
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// p2pKeys makes node-a and node-b P2P keys from three D-TAs with the CLI.
func p2pKeys(t *testing.T) cliKeys {
	t.Helper()
	k := cliKeys{t.TempDir()}
	for i := 1; i <= 3; i++ {
		n := string(rune('0' + i))
		m := k.f("dta" + n + ".share")
		mustRun(t, "ta", "init", "--out", m)
		for _, id := range []string{"node-a", "node-b"} {
			mustRun(t, "ta", "issue", "--master", m, "--kind", "p2p", "--id", id, "--out", k.f(id+"."+n))
		}
	}
	for _, id := range []string{"node-a", "node-b"} {
		mustRun(t, "keys", "combine", "--out", k.f(id+".key"), k.f(id+".1"), k.f(id+".2"), k.f(id+".3"))
	}
	return k
}

func TestDTLSServerClientP2P(t *testing.T) {
	k := p2pKeys(t)
	srv, addr := startServer(t, "--dtls", "--p2p-key", k.f("node-a.key"))
	// One datagram per client run: pion may drop a burst of datagrams that
	// reaches the server in the instant between its last flight and its
	// handshake completion (UDP semantics; see package dtls).
	for i, in := range []string{"first datagram\n", "second datagram\n", "third\n"} {
		p := startMTLS(t, []byte(in), "client", "--dtls", "--connect", addr, "--p2p-key", k.f("node-b.key"), "--server-id", "node-a")
		if err := p.wait(t); err != nil {
			t.Fatalf("client %d: %v\n%s", i, err, p.stderr.String())
		}
		if got := p.stdout.String(); got != in {
			t.Fatalf("echo %q, want %q\nserver:\n%s\nclient:\n%s", got, in, srv.stderr.String(), p.stderr.String())
		}
		if want := "suite=TLS_PSK_WITH_AES_128_GCM_SHA256 peer=node-a\n"; p.stderr.String() != want {
			t.Fatalf("stderr %q, want %q", p.stderr.String(), want)
		}
	}
	// CCM_8, chosen by the client.
	p := startMTLS(t, []byte("x\n"), "client", "--dtls", "--dtls-suites", "PSK-AES128-CCM8", "--connect", addr,
		"--p2p-key", k.f("node-b.key"), "--server-id", "node-a")
	if err := p.wait(t); err != nil || p.stdout.String() != "x\n" || !strings.HasPrefix(p.stderr.String(), "suite=TLS_PSK_WITH_AES_128_CCM_8 ") {
		t.Fatalf("CCM_8 client: %v %q %q", err, p.stdout.String(), p.stderr.String())
	}
	// An unexpected server identity fails the client before any key is derived.
	p = startMTLS(t, []byte("x\n"), "client", "--dtls", "--handshake-timeout", "3s", "--connect", addr,
		"--p2p-key", k.f("node-b.key"), "--server-id", "node-c")
	if err := p.wait(t); err == nil || !strings.Contains(p.stderr.String(), "mtls client: handshake failed") ||
		!strings.Contains(p.stderr.String(), "unexpected peer identity") {
		t.Fatalf("unexpected server: %v %q", err, p.stderr.String())
	}
	// CS keys and TLS suite names are refused with --dtls.
	mustFail(t, "", []string{"client", "--dtls", "--connect", addr, "--psk-identity", "a", "--psk", testPSK, "--suites", "PSK-AES128-GCM-SHA256"}, "--dtls-suites")
	mustFail(t, "", []string{"client", "--dtls", "--connect", addr, "--psk-identity", "a", "--psk", testPSK, "--dtls-suites", "ECDHE-PSK-CHACHA20-POLY1305"}, "unknown DTLS suite")

	srv.cmd.Process.Signal(syscall.SIGTERM)
	if err := srv.wait(t); err != nil {
		t.Fatalf("server after SIGTERM: %v", err)
	}
	if log := srv.stderr.String(); !strings.Contains(log, "peer=node-b") || strings.Count(log, "datagrams=1 ") != 4 {
		t.Fatalf("server log:\n%s", log)
	}
}

var proxyAddrRE = regexp.MustCompile(`msg="proxy listening".* addr=(127\.0\.0\.1:\d+)`)

func startProxy(t *testing.T, args ...string) (*proc, string) {
	t.Helper()
	p := startMTLS(t, nil, append([]string{"proxy"}, args...)...)
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if m := proxyAddrRE.FindStringSubmatch(p.stderr.String()); m != nil {
			return p, m[1]
		}
		select {
		case <-p.done:
			t.Fatalf("mtls proxy exited: %v\n%s", p.err, p.stderr.String())
		default:
		}
	}
	t.Fatalf("mtls proxy did not log its address:\n%s", p.stderr.String())
	return nil, ""
}

// startUDPEcho runs a plain UDP echo service on loopback until the test ends.
func startUDPEcho(t *testing.T) net.PacketConn {
	t.Helper()
	svc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	go func() {
		buf := make([]byte, 65536)
		for {
			n, from, err := svc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = svc.WriteTo(buf[:n], from)
		}
	}()
	return svc
}

func TestDTLSProxyToUDPService(t *testing.T) {
	svc := startUDPEcho(t)
	pskFile := filepath.Join(t.TempDir(), "psk.txt")
	bobKey := strings.Repeat("5a", 32)
	if err := os.WriteFile(pskFile, []byte("alice:"+testPSK+"\nbob:"+bobKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv, srvAddr := startProxy(t, "server", "--dtls", "--listen", "127.0.0.1:0", "--target", svc.LocalAddr().String(),
		"--psk-file", pskFile, "--allow", "alice", "--idle-timeout", "5s")
	_, aliceAddr := startProxy(t, "client", "--dtls", "--listen", "127.0.0.1:0", "--target", srvAddr,
		"--psk-identity", "alice", "--psk", testPSK)
	_, bobAddr := startProxy(t, "client", "--dtls", "--listen", "127.0.0.1:0", "--target", srvAddr,
		"--psk-identity", "bob", "--psk", bobKey)

	roundTrip := func(addr, msg string) (string, error) {
		c, err := net.Dial("udp", addr)
		if err != nil {
			return "", err
		}
		defer c.Close()
		if _, err := c.Write([]byte(msg)); err != nil {
			return "", err
		}
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 2048)
		n, err := c.Read(buf)
		return string(buf[:n]), err
	}
	for _, msg := range []string{"one", "two", strings.Repeat("x", 1000)} {
		if got, err := roundTrip(aliceAddr, msg); err != nil || got != msg {
			t.Fatalf("through the proxies: %q %v", got, err)
		}
	}
	if got, err := roundTrip(bobAddr, "from bob"); err == nil {
		t.Fatalf("bob (not on the ACL) got %q", got)
	}
	srv.cmd.Process.Signal(syscall.SIGTERM)
	if err := srv.wait(t); err != nil {
		t.Fatalf("proxy server after SIGTERM: %v", err)
	}
	log := srv.stderr.String()
	for _, w := range []string{"identity=alice", "not in the allow list"} {
		if !strings.Contains(log, w) {
			t.Errorf("proxy server log lacks %q:\n%s", w, log)
		}
	}
	if !strings.Contains(log, `msg="access denied" mode=udp-server`) || !strings.Contains(log, "identity=bob") {
		t.Errorf("proxy server did not log bob's denial:\n%s", log)
	}
}
