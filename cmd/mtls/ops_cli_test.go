package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/milagro-go/milagro/mtls"
	"github.com/milagro-go/milagro/proxy"
)

// runIn runs the app in-process and returns exit code, stdout, stderr.
func runIn(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(append([]string{"mtls"}, args...), strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

// runBin runs the built binary with extra environment and returns its exit
// code and output.
func runBin(t *testing.T, env []string, stdin string, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, mtlsBin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, out.String(), errb.String()
}

func TestVersion(t *testing.T) {
	code, out, errOut := runIn("--version")
	if code != 0 || errOut != "" || !regexp.MustCompile(`^mtls \S+ \(revision [^)]+\) go1\.\d+\S* \w+/\w+\n$`).MatchString(out) {
		t.Fatalf("--version: %d %q %q", code, out, errOut)
	}
	// The Makefile's -ldflags -X injection (builds without VCS stamping).
	bin := filepath.Join(t.TempDir(), "mtls")
	build := exec.Command("go", "build", "-ldflags", "-X main.version=v9.8.7-test -X main.revision=0123abcd", "-o", bin, ".")
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	b, err := exec.Command(bin, "--version").Output()
	if err != nil || !strings.HasPrefix(string(b), "mtls v9.8.7-test (revision 0123abcd") {
		t.Fatalf("--version of an -X build: %q %v", b, err)
	}
}

func TestVersionString(t *testing.T) {
	defer func(v, r string) { version, revision = v, r }(version, revision)
	version, revision = "v1.2.3", "feedface"
	if s := versionString(); !strings.HasPrefix(s, "mtls v1.2.3 (revision feedface") {
		t.Fatalf("versionString() = %q", s)
	}
}

// Usage errors: the error first, one usage line, no help text, exit 2.
func TestUsageErrorsFirst(t *testing.T) {
	for _, tc := range []struct {
		args  []string
		first string
	}{
		{[]string{"proxy", "server", "--listen", "127.0.0.1:0"}, "mtls proxy server: missing required flag --target"},
		{[]string{"proxy", "client"}, "mtls proxy client: missing required flags --listen, --target"},
		{[]string{"ta", "init"}, "mtls ta init: missing required flag --out"},
		{[]string{"client", "--no-such-flag"}, "mtls client: flag provided but not defined: -no-such-flag"},
		{[]string{"--no-such-flag"}, "mtls: flag provided but not defined: -no-such-flag"},
		{[]string{"keys", "show", "--log-level", "loud"}, `mtls keys show: invalid --log-level "loud"`},
	} {
		code, out, errOut := runIn(tc.args...)
		lines := strings.Split(strings.TrimSuffix(errOut, "\n"), "\n")
		if code != exitUsage {
			t.Errorf("%v: exit %d, want %d", tc.args, code, exitUsage)
		}
		if !strings.HasPrefix(lines[0], tc.first) {
			t.Errorf("%v: first line %q, want %q", tc.args, lines[0], tc.first)
		}
		if len(lines) > 3 || !strings.HasPrefix(lines[1], "usage: ") {
			t.Errorf("%v: want the error and a short usage, got %d lines:\n%s", tc.args, len(lines), errOut)
		}
		if out != "" {
			t.Errorf("%v: printed help on stdout: %q", tc.args, out)
		}
	}
}

func TestLogLevelOnEveryCommand(t *testing.T) {
	app := newApp(strings.NewReader(""), io.Discard, io.Discard)
	var walk func(prefix string, cs []*cli.Command)
	n := 0
	walk = func(prefix string, cs []*cli.Command) {
		for _, c := range cs {
			if c.Name == "help" {
				continue
			}
			leaf := true
			for _, sub := range c.Subcommands {
				leaf = leaf && sub.Name == "help" // urfave/cli adds a help subcommand
			}
			if !leaf {
				walk(prefix+c.Name+" ", c.Subcommands)
				continue
			}
			n++
			have := map[string]bool{}
			for _, f := range c.Flags {
				for _, name := range f.Names() {
					have[name] = true
				}
			}
			if !have["log-level"] || !have["log-format"] {
				t.Errorf("mtls %s%s lacks --log-level or --log-format", prefix, c.Name)
			}
		}
	}
	walk("", app.Commands)
	if n < 8 {
		t.Fatalf("only %d commands walked", n)
	}
	// It takes effect: a debug line from the proxy.
	code, _, errOut := runIn("proxy", "client", "--log-level", "debug", "--log-format", "json", "--listen", "127.0.0.1:0",
		"--target", "127.0.0.1:1", "--psk-identity", "a", "--psk", testPSK, "--suites", "NOPE")
	if code != 1 || !strings.Contains(errOut, `unknown cipher suite "NOPE"`) {
		t.Fatalf("proxy client --log-level debug: %d %s", code, errOut)
	}
}

func TestJSONLogDurationsAsText(t *testing.T) {
	var b bytes.Buffer
	l, err := newLogger(&b, "info", "json")
	if err != nil {
		t.Fatal(err)
	}
	l.Info("x", "drain", 1500*time.Millisecond)
	if !strings.Contains(b.String(), `"drain":"1.5s"`) {
		t.Fatalf("JSON duration: %s", b.String())
	}
}

func TestSafeDefaults(t *testing.T) {
	base := []string{"--psk-identity", "a", "--psk", testPSK}
	code, _, errOut := runIn(append([]string{"proxy", "server", "--listen", "127.0.0.1:0", "--target", "10.1.2.3:80", "--allow-all"}, base...)...)
	if code != 1 || !strings.Contains(errOut, "refusing --target") || !strings.Contains(errOut, "--unsafe-target") {
		t.Errorf("non-loopback target: %d %s", code, errOut)
	}
	code, _, errOut = runIn(append([]string{"proxy", "client", "--listen", "0.0.0.0:0", "--target", "127.0.0.1:1"}, base...)...)
	if code != 1 || !strings.Contains(errOut, "refusing --listen") || !strings.Contains(errOut, "--unsafe-listen") {
		t.Errorf("non-loopback client listen: %d %s", code, errOut)
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

func waitStderr(t *testing.T, p *proc, s string) string {
	t.Helper()
	for end := time.Now().Add(15 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if out := p.stderr.String(); strings.Contains(out, s) {
			return out
		}
		select {
		case <-p.done:
			t.Fatalf("exited before logging %q: %v\n%s", s, p.err, p.stderr.String())
		default:
		}
	}
	t.Fatalf("no %q in:\n%s", s, p.stderr.String())
	return ""
}

var addrRE = regexp.MustCompile(`msg="proxy listening" mode=\w+ addr=(\S+)`)

// echoUpstream serves an echo on loopback.
func echoUpstream(t *testing.T) string {
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

// The client exits non-zero when the server proxy could not reach its target.
func TestClientExitCodeTargetUnreachable(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := ln.Addr().String()
	ln.Close()
	p := startMTLS(t, nil, "proxy", "server", "--listen", "127.0.0.1:0", "--target", dead, "--allow-all",
		"--psk-identity", "a", "--psk", testPSK)
	addr := addrRE.FindStringSubmatch(waitStderr(t, p, "proxy listening"))[1]
	c := startMTLS(t, []byte("hello"), "client", "--connect", addr, "--psk-identity", "a", "--psk", testPSK)
	err := c.wait(t)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(c.stderr.String(), "mtls client: connection failed") {
		t.Fatalf("client through a proxy whose target is down: %v\n%s", err, c.stderr.String())
	}
}

func TestPSKFileStunnelFormatAndSecretWarnings(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "psk.txt")
	os.WriteFile(f, []byte("# stunnel PSKsecrets\nclient1:oaP4EishaeSaishei6rio6xeeph3az\nclient2:Zee7aich5eeph0ieb4Ahth\n"), 0o600)
	_, addr := startServer(t, "--psk-file", f)
	in := "through a stunnel-format key\n"
	code, out, errOut := runBin(t, nil, in, "client", "--connect", addr, "--psk-file", f, "--psk-identity", "client2")
	if code != 0 || out != in || strings.Contains(errOut, secretFlagWarning) {
		t.Fatalf("client with --psk-file (stunnel format): %d %q %s", code, out, errOut)
	}
	// A secret on the command line is warned about, MTLS_PSK is not.
	code, _, errOut = runBin(t, nil, "x", "client", "--connect", addr, "--psk-identity", "nobody", "--psk", testPSK)
	if code != 1 || !strings.Contains(errOut, "--psk"+secretFlagWarning) {
		t.Fatalf("--psk on the command line: %d %s", code, errOut)
	}
	code, _, errOut = runBin(t, []string{"MTLS_PSK=" + testPSK}, "x", "client", "--connect", addr, "--psk-identity", "nobody")
	if code != 1 || strings.Contains(errOut, secretFlagWarning) || !strings.Contains(errOut, "unknown_psk_identity") {
		t.Fatalf("MTLS_PSK: %d %s", code, errOut)
	}
	code, _, errOut = runIn("client", "--psk-file", f, "--psk-identity", "client9")
	if code != 1 || !strings.Contains(errOut, `has no key for --psk-identity "client9"`) {
		t.Fatalf("unknown identity in the file: %d %s", code, errOut)
	}
}

func TestOutStdoutOnlyForPermits(t *testing.T) {
	dir := t.TempDir()
	m := filepath.Join(dir, "m")
	if code, _, e := runIn("ta", "init", "--out", m); code != 0 {
		t.Fatal(e)
	}
	code, out, errOut := runIn("ta", "permit", "--master", m, "--id", "alice", "--out", "-")
	if code != 0 || !strings.HasPrefix(out, "-----BEGIN ") || !strings.Contains(errOut, "to stdout") {
		t.Fatalf("permit to stdout: %d %q %q", code, out, errOut)
	}
	code, out, errOut = runIn("ta", "issue", "--master", m, "--kind", "client", "--id", "alice", "--out", "-")
	if code != 1 || out != "" || !strings.Contains(errOut, "refusing to write") {
		t.Fatalf("secret to stdout: %d %q %q", code, out, errOut)
	}
	if _, err := os.Stat("-"); err == nil {
		t.Fatal("a file named - was written")
	}
}

func TestKeyPermissionHint(t *testing.T) {
	m := filepath.Join(t.TempDir(), "m")
	if code, _, e := runIn("ta", "init", "--out", m); code != 0 {
		t.Fatal(e)
	}
	os.Chmod(m, 0o644) // a Kubernetes Secret volume's default
	code, _, errOut := runIn("ta", "issue", "--master", m, "--kind", "server", "--out", m+".s")
	if code != 1 || !strings.Contains(errOut, "chmod 600 "+m) || !strings.Contains(errOut, "defaultMode: 0400") {
		t.Fatalf("0644 key: %d %s", code, errOut)
	}
}

func TestPINFile(t *testing.T) {
	dir := t.TempDir()
	path := func(n string) string { return filepath.Join(dir, n) }
	steps := [][]string{
		{"ta", "init", "--out", path("m1")},
		{"ta", "init", "--out", path("m2")},
		{"ta", "issue", "--master", path("m1"), "--kind", "client", "--id", "alice", "--out", path("a1")},
		{"ta", "issue", "--master", path("m2"), "--kind", "client", "--id", "alice", "--out", path("a2")},
		{"keys", "combine", "--out", path("a.key"), path("a1"), path("a2")},
		{"keys", "pin", "--in", path("a.key"), "--pin", "4711", "--out", path("a.token")},
	}
	for _, s := range steps {
		if code, _, e := runIn(s...); code != 0 {
			t.Fatalf("%v: %s", s, e)
		}
	}
	os.WriteFile(path("pin"), []byte("4711\n"), 0o600)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := ln.Addr().String()
	ln.Close()
	// The PIN is taken from the file: the client gets as far as connecting.
	code, _, errOut := runIn("client", "--connect", dead, "--key", path("a.token"), "--pin-file", path("pin"))
	if code != 1 || !strings.Contains(errOut, "connection refused") {
		t.Fatalf("--pin-file: %d %s", code, errOut)
	}
	code, _, errOut = runIn("client", "--connect", dead, "--key", path("a.token"), "--pin-file", path("pin"), "--pin", "4711")
	if code != 1 || !strings.Contains(errOut, "--pin and --pin-file are exclusive") {
		t.Fatalf("--pin with --pin-file: %d %s", code, errOut)
	}
	code, _, errOut = runIn("client", "--connect", dead, "--key", path("a.token"), "--pin-file", path("none"))
	if code != 1 || !strings.Contains(errOut, "--pin-file") {
		t.Fatalf("missing pin file: %d %s", code, errOut)
	}
}

// Ctrl-C during `mtls demo` leaves no temporary files (master shares).
func TestDemoRemovesFilesOnSignal(t *testing.T) {
	tmp := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, mtlsBin, "demo")
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	found := false
	for end := time.Now().Add(30 * time.Second); time.Now().Before(end) && !found; time.Sleep(5 * time.Millisecond) {
		m, _ := filepath.Glob(filepath.Join(tmp, "mtls-demo-*", "dta1.share"))
		found = len(m) > 0
	}
	if !found {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("the demo wrote no master share:\n%s", out.String())
	}
	cmd.Process.Signal(os.Interrupt)
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() == 0 {
		t.Errorf("interrupted demo: %v, want a non-zero exit", err)
	}
	if m, _ := filepath.Glob(filepath.Join(tmp, "mtls-demo-*")); len(m) != 0 {
		t.Fatalf("interrupted demo left %v:\n%s", m, out.String())
	}
}

// Socket activation: the binary takes its listening socket from
// LISTEN_FDS (fd 3), and reports READY, RELOADING and STOPPING to
// NOTIFY_SOCKET.
func TestSystemdActivationAndNotify(t *testing.T) {
	dir := t.TempDir()
	notifyPath := filepath.Join(dir, "notify")
	nc, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notifyPath, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	recv := func(want string) {
		t.Helper()
		nc.SetReadDeadline(time.Now().Add(15 * time.Second))
		b := make([]byte, 4096)
		n, err := nc.Read(b)
		if err != nil || !strings.HasPrefix(string(b[:n]), want) {
			t.Fatalf("notification %q, %v; want %q", b[:n], err, want)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lf, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // the child holds the socket (fd 3) from here on
	up := echoUpstream(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// LISTEN_PID must be the server's own pid: set by the shell that execs it.
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", `LISTEN_PID=$$ LISTEN_FDS=1 LISTEN_FDNAMES=mtls-proxy exec "$0" "$@"`,
		mtlsBin, "proxy", "server", "--listen", "systemd:mtls-proxy", "--target", up, "--allow-all",
		"--psk-identity", "a", "--psk", testPSK)
	cmd.ExtraFiles = []*os.File{lf}
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+notifyPath)
	var logs lockedBuf
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lf.Close()
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
	}()
	recv("READY=1")
	for end := time.Now().Add(5 * time.Second); !strings.Contains(logs.String(), "addr="+addr); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("not serving the passed socket %s", addr)
		}
	}
	dctx, dcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer dcancel()
	key, _ := parsePSK(testPSK)
	conn, err := (&mtls.Dialer{Config: &mtls.Config{PSKIdentity: "a", PSK: key}}).DialContext(dctx, "tcp", addr)
	if err != nil {
		t.Fatalf("dial the activated socket: %v", err)
	}
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	conn.Write([]byte("ping"))
	b := make([]byte, 4)
	if _, err := io.ReadFull(conn, b); err != nil || string(b) != "ping" {
		t.Fatalf("echo through the activated socket: %q %v", b, err)
	}
	conn.Close()

	cmd.Process.Signal(syscall.SIGHUP)
	recv("RELOADING=1\nMONOTONIC_USEC=")
	recv("READY=1")
	cmd.Process.Signal(syscall.SIGTERM)
	recv("STOPPING=1")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("after SIGTERM: %v", err)
	}
	if strings.Contains(logs.String(), "LISTEN_") {
		t.Fatal("activation variables leaked into the log")
	}
}

// UNIX sockets from the command line: a client-mode proxy listening on one,
// a server-mode proxy listening on one and forwarding to a UNIX target.
func TestProxyUnixSocketsCLI(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "app.sock")
	tl, err := net.Listen("unix", target)
	if err != nil {
		t.Fatal(err)
	}
	defer tl.Close()
	go func() {
		for {
			c, err := tl.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	srvSock, cliSock := filepath.Join(dir, "srv.sock"), filepath.Join(dir, "cli.sock")
	srv := startMTLS(t, nil, "proxy", "server", "--listen", "unix:"+srvSock, "--target", "unix:"+target, "--allow", "a",
		"--psk-identity", "a", "--psk", testPSK)
	waitStderr(t, srv, "proxy listening")
	cl := startMTLS(t, nil, "proxy", "client", "--listen", "unix:"+cliSock, "--target", "unix:"+srvSock,
		"--psk-identity", "a", "--psk", testPSK)
	waitStderr(t, cl, "proxy listening")
	c, err := net.Dial("unix", cliSock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	c.Write([]byte("over unix"))
	b := make([]byte, 9)
	if _, err := io.ReadFull(c, b); err != nil || string(b) != "over unix" {
		t.Fatalf("echo: %q %v", b, err)
	}
	out := waitStderr(t, srv, "connection open")
	if !regexp.MustCompile(`msg="connection open" conn=\d+ `).MatchString(out) {
		t.Fatalf("no connection id in the server log:\n%s", out)
	}
}

// One handshake timeout default everywhere: mtls server/client, the proxy
// and the library (10 s, as package proxy and mtls document).
func TestProxyHandshakeTimeoutDefault(t *testing.T) {
	if proxy.DefaultHandshakeTimeout != 10*time.Second || mtls.DefaultHandshakeTimeout != proxy.DefaultHandshakeTimeout {
		t.Fatalf("proxy.DefaultHandshakeTimeout = %v, mtls.DefaultHandshakeTimeout = %v, the documented default is 10 s", proxy.DefaultHandshakeTimeout, mtls.DefaultHandshakeTimeout)
	}
	flagSets := map[string][]cli.Flag{
		"proxy server": proxyFlags(true), "proxy client": proxyFlags(false),
		"server": credentialFlags(true), "client": credentialFlags(false),
	}
	for server, flags := range flagSets {
		found := false
		for _, f := range flags {
			if d, ok := f.(*cli.DurationFlag); ok && d.Name == "handshake-timeout" {
				found = true
				if d.Value != proxy.DefaultHandshakeTimeout {
					t.Errorf("%s: --handshake-timeout default %v, want %v", server, d.Value, proxy.DefaultHandshakeTimeout)
				}
			}
		}
		if !found {
			t.Errorf("%s: no --handshake-timeout", server)
		}
	}
	doc, err := os.ReadFile("../../proxy/server.go")
	if err != nil || !strings.Contains(string(doc), "HandshakeTimeout bounds the mtls handshake (default 10 s)") {
		t.Fatalf("package proxy documents another default: %v", err)
	}
}
