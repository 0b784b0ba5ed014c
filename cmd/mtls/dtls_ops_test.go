package main

import (
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The DTLS server proxy has the TCP proxy's operator surface: a failed
// SIGHUP reload keeps the previous ACL, is counted and makes /healthz say
// degraded; SIGTERM makes /healthz say draining (before the log says
// shutting down) while a live session goes on. /healthz does not probe the
// UDP target.
func TestDTLSProxyReloadAndDrainStatus(t *testing.T) {
	svc := startUDPEcho(t)
	dir := t.TempDir()
	pskFile, allow := filepath.Join(dir, "psk.txt"), filepath.Join(dir, "allow")
	if err := os.WriteFile(pskFile, []byte("alice:"+testPSK+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(allow, []byte("alice\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv, srvAddr := startProxy(t, "server", "--dtls", "--listen", "127.0.0.1:0", "--target", svc.LocalAddr().String(),
		"--psk-file", pskFile, "--allow-file", allow, "--status", "127.0.0.1:0",
		"--idle-timeout", "20s", "--shutdown-timeout", "20s")
	m := statusAddrRE.FindStringSubmatch(srv.stderr.String())
	if m == nil {
		t.Fatalf("no status address logged:\n%s", srv.stderr.String())
	}
	get := func(path string) (int, string) {
		t.Helper()
		c := &http.Client{Timeout: 5 * time.Second}
		resp, err := c.Get("http://" + m[1] + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/healthz"); code != 200 || body != "ok\n" {
		t.Fatalf("/healthz: %d %q", code, body)
	}

	_, aliceAddr := startProxy(t, "client", "--dtls", "--listen", "127.0.0.1:0", "--target", srvAddr,
		"--psk-identity", "alice", "--psk", testPSK)
	live, err := net.Dial("udp", aliceAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	echo := func(msg string) error {
		if _, err := live.Write([]byte(msg)); err != nil {
			return err
		}
		_ = live.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 64)
		n, err := live.Read(buf)
		if err == nil && string(buf[:n]) != msg {
			t.Fatalf("echo %q, want %q", buf[:n], msg)
		}
		return err
	}
	if err := echo("before"); err != nil {
		t.Fatal(err)
	}

	if err := os.WriteFile(allow, []byte("# emptied by a broken deploy\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv.cmd.Process.Signal(syscall.SIGHUP)
	waitStderr(t, srv, "reload failed; keeping the previous configuration")
	if code, body := get("/healthz"); code != 503 || !strings.HasPrefix(body, "degraded:") || !strings.Contains(body, "lists no identity") {
		t.Fatalf("/healthz after a failed reload: %d %q", code, body)
	}
	if _, metrics := get("/metrics"); !strings.Contains(metrics, `mtls_proxy_reloads_total{result="failed"} 1`) {
		t.Fatalf("/metrics does not count the failed reload:\n%s", metrics)
	}
	if err := echo("after the failed reload"); err != nil {
		t.Fatalf("alice's session after a failed reload (the previous ACL must stay): %v", err)
	}

	srv.cmd.Process.Signal(syscall.SIGTERM)
	waitStderr(t, srv, "shutting down")
	if code, body := get("/healthz"); code != 503 || body != "draining\n" {
		t.Fatalf("/healthz while draining: %d %q", code, body)
	}
	if err := echo("during the drain"); err != nil {
		t.Fatalf("live session during the drain: %v", err)
	}
}

// The DTLS proxy refuses what the TCP proxy refuses: a server forwarding
// plaintext datagrams to a --target off this host, a client accepting
// plaintext on a --listen reachable from elsewhere (whose datagrams would
// leave with this proxy's identity), unless the operator opts out.
func TestDTLSSafeDefaults(t *testing.T) {
	base := []string{"--dtls", "--psk-identity", "a", "--psk", testPSK}
	code, _, errOut := runIn(append([]string{"proxy", "server", "--listen", "127.0.0.1:0", "--target", "10.1.2.3:80", "--allow-all"}, base...)...)
	if code != 1 || !strings.Contains(errOut, "refusing --target") || !strings.Contains(errOut, "--unsafe-target") {
		t.Errorf("DTLS server, non-loopback target: %d %s", code, errOut)
	}
	code, _, errOut = runIn(append([]string{"proxy", "client", "--listen", "0.0.0.0:0", "--target", "127.0.0.1:1"}, base...)...)
	if code != 1 || !strings.Contains(errOut, "refusing --listen") || !strings.Contains(errOut, "--unsafe-listen") {
		t.Errorf("DTLS client, non-loopback listen: %d %s", code, errOut)
	}
	// The other mode's flag is not the opt-out: a server's --unsafe-listen
	// does not allow a remote target, a client's --unsafe-target does not
	// allow a public listener.
	code, _, errOut = runIn(append([]string{"proxy", "server", "--listen", "127.0.0.1:0", "--target", "10.1.2.3:80", "--allow-all", "--unsafe-listen"}, base...)...)
	if code == 0 || strings.Contains(errOut, "proxy listening") {
		t.Errorf("DTLS server with --unsafe-listen only: %d %s", code, errOut)
	}
	code, _, errOut = runIn(append([]string{"proxy", "client", "--listen", "0.0.0.0:0", "--target", "127.0.0.1:1", "--unsafe-target"}, base...)...)
	if code == 0 || strings.Contains(errOut, "proxy listening") {
		t.Errorf("DTLS client with --unsafe-target only: %d %s", code, errOut)
	}
	// With the opt-outs they start.
	for _, args := range [][]string{
		{"proxy", "server", "--listen", "127.0.0.1:0", "--target", "10.1.2.3:80", "--allow-all", "--unsafe-target"},
		{"proxy", "client", "--listen", "0.0.0.0:0", "--target", "127.0.0.1:1", "--unsafe-listen"},
	} {
		p := startMTLS(t, nil, append(args, base...)...)
		waitStderr(t, p, "proxy listening")
		p.cmd.Process.Signal(syscall.SIGTERM)
		if err := p.wait(t); err != nil {
			t.Errorf("%v: %v", args, err)
		}
	}
}

// TestDTLSRefusesStreamFlags: the flags of HTTP identity mode and of TCP
// streams do not apply to datagrams; given with --dtls they are refused,
// not silently ignored.
func TestDTLSRefusesStreamFlags(t *testing.T) {
	base := []string{"--dtls", "--psk-identity", "a", "--psk", testPSK}
	for _, tc := range []struct {
		mode string
		flag []string
	}{
		{"server", []string{"--http-identity-header", "X-Id"}},
		{"server", []string{"--target-protocol", "h2c"}},
		{"server", []string{"--http-allow-upgrade", "websocket"}},
		{"server", []string{"--allow-connect"}},
		{"server", []string{"--proxy-protocol"}},
		{"client", []string{"--alpn", "h2"}},
	} {
		args := []string{"proxy", tc.mode, "--listen", "127.0.0.1:0", "--target", "127.0.0.1:1"}
		if tc.mode == "server" {
			args = append(args, "--allow-all")
		}
		code, _, errOut := runIn(append(append(args, tc.flag...), base...)...)
		if code == 0 || !strings.Contains(errOut, tc.flag[0]+" does not apply to --dtls") {
			t.Errorf("%s %v: exit %d, %s", tc.mode, tc.flag, code, errOut)
		}
	}
}
