package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// mtlsBin is the mtls binary built once by TestMain; tests of other commands
// in this package can run it too (there must be only this one TestMain).
var mtlsBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "mtls-cli-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	mtlsBin = filepath.Join(dir, "mtls")
	out, err := exec.Command("go", "build", "-o", mtlsBin, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is a running mtls process, bounded by a timeout and killed at cleanup.
type proc struct {
	cmd            *exec.Cmd
	stdout, stderr *lockedBuf
	done           chan struct{}
	err            error
}

type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns what was written, without the warnings about secrets
// given as flags (which the tests do on purpose); raw keeps them.
func (l *lockedBuf) String() string {
	var out []string
	for _, line := range strings.SplitAfter(l.raw(), "\n") {
		if !strings.Contains(line, secretFlagWarning) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "")
}

func (l *lockedBuf) raw() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func startMTLS(t *testing.T, stdin []byte, args ...string) *proc {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	cmd := exec.CommandContext(ctx, mtlsBin, args...)
	cmd.WaitDelay = 2 * time.Second
	p := &proc{cmd: cmd, stdout: &lockedBuf{}, stderr: &lockedBuf{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.stdout, p.stderr
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		cancel()
		<-p.done
		if t.Failed() {
			t.Logf("mtls %s\nstderr:\n%s", strings.Join(args, " "), p.stderr.String())
		}
	})
	return p
}

func (p *proc) wait(t *testing.T) error {
	t.Helper()
	select {
	case <-p.done:
		return p.err
	case <-time.After(20 * time.Second):
		t.Fatal("mtls did not exit within 20s")
		return nil
	}
}

var listenRE = regexp.MustCompile(`listening"?[ ,]"?addr"?[=:]"?(127\.0\.0\.1:\d+)`)

// startServer starts `mtls server` on a free port and returns its address.
// Global flags (before the command) may lead args, up to "--".
func startServer(t *testing.T, args ...string) (*proc, string) {
	t.Helper()
	var global []string
	for i, a := range args {
		if a == "--" {
			global, args = append([]string(nil), args[:i]...), args[i+1:]
			break
		}
	}
	p := startMTLS(t, nil, append(append(global, "server", "--listen", "127.0.0.1:0"), args...)...)
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if m := listenRE.FindStringSubmatch(p.stderr.String()); m != nil {
			return p, m[1]
		}
		select {
		case <-p.done:
			t.Fatalf("mtls server exited: %v\n%s", p.err, p.stderr.String())
		default:
		}
	}
	t.Fatalf("mtls server did not log its address:\n%s", p.stderr.String())
	return nil, ""
}

func TestServerClientRoundTrip(t *testing.T) {
	dir := t.TempDir()
	pskFile := filepath.Join(dir, "psk.txt")
	bobKey := strings.Repeat("5a", 32)
	os.WriteFile(pskFile, []byte("bob:"+bobKey+"\n"), 0o600)
	srv, addr := startServer(t, "--psk-identity", "client1", "--psk", testPSK, "--psk-file", pskFile, "--psk-hint", "srvhint")

	// Several clients at once, different identities and suites.
	clients := []struct{ id, key, suite, wantSuite string }{
		{"client1", testPSK, "PSK-AES128-GCM-SHA256", "TLS_PSK_WITH_AES_128_GCM_SHA256"},
		{"client1", testPSK, "ECDHE_PSK_WITH_AES_256_GCM_SHA384", "TLS_ECDHE_PSK_WITH_AES_256_GCM_SHA384"},
		{"bob", bobKey, "TLS_ECDHE_PSK_WITH_CHACHA20_POLY1305_SHA256", "TLS_ECDHE_PSK_WITH_CHACHA20_POLY1305_SHA256"},
		{"bob", bobKey, "", "TLS_ECDHE_PSK_WITH_CHACHA20_POLY1305_SHA256"}, // default preference
	}
	// All clients run at once (started here, waited for below).
	procs := make([]*proc, len(clients))
	inputs := make([][]byte, len(clients))
	for i, c := range clients {
		inputs[i] = make([]byte, 200<<10+i)
		rand.Read(inputs[i])
		args := []string{"client", "--connect", addr, "--psk-identity", c.id, "--psk", c.key}
		if c.suite != "" {
			args = append(args, "--suites", c.suite)
		}
		procs[i] = startMTLS(t, inputs[i], args...)
	}
	for i, c := range clients {
		p := procs[i]
		if err := p.wait(t); err != nil {
			t.Errorf("client %d: %v\n%s", i, err, p.stderr.String())
			continue
		}
		if want := "suite=" + c.wantSuite + " peer= psk_hint=\"srvhint\"\n"; p.stderr.String() != want {
			t.Errorf("client %d stderr = %q, want %q", i, p.stderr.String(), want)
		}
		if got := p.stdout.String(); got != string(inputs[i]) {
			t.Errorf("client %d: echo of %d bytes differs (got %d bytes)", i, len(inputs[i]), len(got))
		}
	}

	// A wrong key fails on both sides with a clear one-line message.
	p := startMTLS(t, []byte("x"), "client", "--connect", addr, "--psk-identity", "bob", "--psk", testPSK)
	err := p.wait(t)
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("client with a wrong key: %v, want exit status 1", err)
	}
	if want := "mtls client: handshake failed: remote error: bad_record_mac\n"; p.stderr.String() != want {
		t.Fatalf("client with a wrong key: stderr %q, want %q", p.stderr.String(), want)
	}

	// SIGTERM stops the server cleanly.
	srv.cmd.Process.Signal(syscall.SIGTERM)
	if err := srv.wait(t); err != nil {
		t.Fatalf("server after SIGTERM: %v", err)
	}
	log := srv.stderr.String()
	if n := strings.Count(log, "level=INFO msg=connection"); n != len(clients) {
		t.Errorf("%d successful connection lines, want %d:\n%s", n, len(clients), log)
	}
	for _, w := range []string{"peer=client1", "peer=bob", "suite=TLS_ECDHE_PSK_WITH_AES_256_GCM_SHA384",
		"level=WARN msg=connection", "handshake failed: local error: bad_record_mac", "msg=\"shutting down\""} {
		if !strings.Contains(log, w) {
			t.Errorf("server log lacks %q:\n%s", w, log)
		}
	}
}

// TestServerShutdownClosesConnections: SIGINT while a client is connected
// and idle ends the client's session with close_notify (client exits 0).
func TestServerShutdownClosesConnections(t *testing.T) {
	srv, addr := startServer(t, "--log-format", "json", "--", "--psk-identity", "client1", "--psk", testPSK)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, mtlsBin, "client", "--connect", addr, "--psk-identity", "client1", "--psk", testPSK)
	stdinR, stdinW, _ := os.Pipe() // stays open: the client idles
	defer stdinW.Close()
	cmd.Stdin = stdinR
	var cerr, cout lockedBuf
	cmd.Stderr, cmd.Stdout = &cerr, &cout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stdinR.Close()
	// The echo proves the server's side of the handshake complete too (the
	// client's "suite=" comes after the server's Finished, possibly before
	// the server is done): a shutdown then must send close_notify.
	stdinW.Write([]byte("ping\n"))
	for end := time.Now().Add(10 * time.Second); cout.String() != "ping\n"; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("client did not connect and echo: %q %s", cout.String(), cerr.String())
		}
	}
	srv.cmd.Process.Signal(syscall.SIGINT)
	if err := srv.wait(t); err != nil {
		t.Fatalf("server after SIGINT: %v", err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("client after the server's shutdown: %v: %s", err, cerr.String())
	}
	if !strings.Contains(srv.stderr.String(), `"msg":"shutting down"`) {
		t.Fatalf("json log lacks shutdown line:\n%s", srv.stderr.String())
	}
}

// TestServerOnceFailure: --once exits 1 with the handshake error.
func TestServerOnceFailure(t *testing.T) {
	srv, addr := startServer(t, "--once", "--psk-identity", "client1", "--psk", testPSK)
	p := startMTLS(t, nil, "client", "--connect", addr, "--psk-identity", "eve", "--psk", testPSK)
	if err := p.wait(t); err == nil {
		t.Fatal("client with an unknown identity exited 0")
	}
	if want := "mtls client: handshake failed: remote error: unknown_psk_identity\n"; p.stderr.String() != want {
		t.Fatalf("client stderr %q, want %q", p.stderr.String(), want)
	}
	if err := srv.wait(t); err == nil {
		t.Fatal("mtls server --once exited 0 after a failed handshake")
	}
	if !strings.Contains(srv.stderr.String(), "mtls server: handshake failed: local error: unknown_psk_identity") {
		t.Fatalf("server stderr:\n%s", srv.stderr.String())
	}
}
