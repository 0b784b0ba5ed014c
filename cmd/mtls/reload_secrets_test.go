package main

import (
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/milagro-go/milagro/mtls"
)

// startTCPEcho runs a plain TCP echo service on loopback until the test ends.
func startTCPEcho(t *testing.T) string {
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
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	return ln.Addr().String()
}

// echoOnce sends a line over conn and expects it back.
func echoOnce(t *testing.T, conn net.Conn, what string) {
	t.Helper()
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(15 * time.Second))
	if _, err := conn.Write([]byte("ping\n")); err != nil {
		t.Fatalf("%s: write: %v", what, err)
	}
	b := make([]byte, 5)
	if _, err := io.ReadFull(conn, b); err != nil || string(b) != "ping\n" {
		t.Fatalf("%s: echo %q, %v", what, b, err)
	}
}

// reloadProxy sends SIGHUP to a proxy and waits for the outcome of the
// reload it logs (the n-th "reloaded" line, or a failure).
func reloadProxy(t *testing.T, p *proc, n int) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGHUP)
	for end := time.Now().Add(15 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		out := p.stderr.String()
		if strings.Contains(out, "reload failed") {
			t.Fatalf("reload failed:\n%s", out)
		}
		if strings.Count(out, `msg=reloaded`) >= n {
			return
		}
	}
	t.Fatalf("no reload logged:\n%s", p.stderr.String())
}

// Every secret of the proxy, from each of its sources (flag, file,
// environment), survives SIGHUP reloads: the proxy logs "reloaded" (not
// "reload failed") and still connects afterwards.
func TestProxyReloadEverySecretSource(t *testing.T) {
	k := makeCLIKeys(t)
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pskFile := write("psk.txt", "client1:"+testPSK+"\n")
	pinFile := write("pin", cliPIN+"\n")
	ticketFile := write("tickets", strings.Repeat("ab", 32)+"\n")

	// The mtls server the client-mode proxies connect to: PSK and CS.
	_, srvAddr := startServer(t, "--psk-identity", "client1", "--psk", testPSK, "--key", k.f("server.key"))
	echo := startTCPEcho(t)

	type source struct {
		name string
		env  map[string]string
		args []string
	}
	clientSources := []source{
		{"psk flag", nil, []string{"--psk-identity", "client1", "--psk", testPSK}},
		{"psk env", map[string]string{"MTLS_PSK": testPSK}, []string{"--psk-identity", "client1"}},
		{"psk file", nil, []string{"--psk-file", pskFile}},
		{"pin flag", nil, []string{"--key", k.f("alice.token"), "--permit", k.f("alice-permit.key"), "--pin", cliPIN}},
		{"pin env", map[string]string{"MTLS_PIN": cliPIN}, []string{"--key", k.f("alice.token"), "--permit", k.f("alice-permit.key")}},
		{"pin file", nil, []string{"--key", k.f("alice.token"), "--permit", k.f("alice-permit.key"), "--pin-file", pinFile}},
	}
	for _, s := range clientSources {
		t.Run("client/"+s.name, func(t *testing.T) {
			for k, v := range s.env {
				t.Setenv(k, v)
			}
			p := startMTLS(t, nil, append([]string{"proxy", "client", "--listen", "127.0.0.1:0", "--target", srvAddr}, s.args...)...)
			m := addrRE.FindStringSubmatch(waitStderr(t, p, "proxy listening"))
			if m == nil {
				t.Fatalf("no address in:\n%s", p.stderr.String())
			}
			for i := 1; i <= 2; i++ {
				reloadProxy(t, p, i)
				conn, err := net.Dial("tcp", m[1])
				if err != nil {
					t.Fatal(err)
				}
				echoOnce(t, conn, "after reload")
			}
		})
	}

	serverSources := []source{
		{"psk flag", nil, []string{"--psk-identity", "client1", "--psk", testPSK}},
		{"psk env", map[string]string{"MTLS_PSK": testPSK}, []string{"--psk-identity", "client1"}},
		{"psk file", nil, []string{"--psk-file", pskFile}},
		{"ticket key file", nil, []string{"--psk-file", pskFile, "--ticket-key-file", ticketFile}},
	}
	key, _ := parsePSK(testPSK)
	for _, s := range serverSources {
		t.Run("server/"+s.name, func(t *testing.T) {
			for k, v := range s.env {
				t.Setenv(k, v)
			}
			p := startMTLS(t, nil, append([]string{"proxy", "server", "--listen", "127.0.0.1:0", "--target", echo, "--allow-all"}, s.args...)...)
			m := addrRE.FindStringSubmatch(waitStderr(t, p, "proxy listening"))
			if m == nil {
				t.Fatalf("no address in:\n%s", p.stderr.String())
			}
			for i := 1; i <= 2; i++ {
				reloadProxy(t, p, i)
				ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
				conn, err := (&mtls.Dialer{Config: &mtls.Config{PSKIdentity: "client1", PSK: key}}).DialContext(ctx, "tcp", m[1])
				cancel()
				if err != nil {
					t.Fatal(err)
				}
				echoOnce(t, conn, "after reload")
			}
		})
	}
}
