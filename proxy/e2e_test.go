package proxy

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// proc is a running mtls binary whose JSON log lines are collected.
type proc struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	logs []map[string]any
	raw  strings.Builder
	cond chan struct{} // signalled on every new line
	done chan struct{} // closed when the process has exited
	err  error
}

// lastProc is the process startProc started last (benchmarks read its PID).
var lastProc *proc

func startProc(t testing.TB, args ...string) *proc {
	t.Helper()
	return startProcEnv(t, nil, args...)
}

// startProcEnv is startProc with extra environment variables.
func startProcEnv(t testing.TB, env []string, args ...string) *proc {
	t.Helper()
	bin := needBinary(t)
	p := &proc{cmd: exec.Command(bin, args...), cond: make(chan struct{}, 1), done: make(chan struct{})}
	if env != nil {
		p.cmd.Env = append(os.Environ(), env...)
	}
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 0, 4096), 1<<20)
		for sc.Scan() {
			var m map[string]any
			json.Unmarshal(sc.Bytes(), &m)
			p.mu.Lock()
			p.raw.WriteString(sc.Text() + "\n")
			if m != nil {
				p.logs = append(p.logs, m)
			}
			p.mu.Unlock()
			select {
			case p.cond <- struct{}{}:
			default:
			}
		}
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	lastProc = p
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("log of %v:\n%s", args, p.output())
		}
	})
	return p
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.raw.String()
}

// waitLog waits for a log line with msg whose attributes include kv pairs;
// it returns the line.
func (p *proc) waitLog(t testing.TB, msg string, kv ...string) map[string]any {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for seen := 0; ; {
		p.mu.Lock()
		for ; seen < len(p.logs); seen++ {
			m := p.logs[seen]
			if m["msg"] != msg {
				continue
			}
			ok := true
			for i := 0; i+1 < len(kv); i += 2 {
				if fmt.Sprint(m[kv[i]]) != kv[i+1] {
					ok = false
				}
			}
			if ok {
				p.mu.Unlock()
				return m
			}
		}
		p.mu.Unlock()
		select {
		case <-p.cond:
		case <-p.done:
			t.Fatalf("process exited (%v) before logging %q", p.err, msg)
		case <-deadline:
			t.Fatalf("no log %q %v", msg, kv)
		}
	}
}

func (p *proc) hasLog(msg string, kv ...string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, m := range p.logs {
		if m["msg"] != msg {
			continue
		}
		ok := true
		for i := 0; i+1 < len(kv); i += 2 {
			ok = ok && fmt.Sprint(m[kv[i]]) == kv[i+1]
		}
		if ok {
			return true
		}
	}
	return false
}

func writePSKFile(t testing.TB) string {
	var b strings.Builder
	for id, k := range testKeys {
		fmt.Fprintf(&b, "%s:%s\n", id, hex.EncodeToString(k))
	}
	f := filepath.Join(t.TempDir(), "psk.txt")
	if err := os.WriteFile(f, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// proxyServer starts "mtls proxy server" and returns it with its address
// (and the status address when --status is among args).
func proxyServer(t testing.TB, target string, args ...string) (*proc, string, string) {
	t.Helper()
	all := append([]string{"proxy", "server", "--log-format", "json", "--listen", "127.0.0.1:0", "--target", target,
		"--psk-file", writePSKFile(t), "--suites", "PSK-AES128-GCM-SHA256"}, args...)
	p := startProc(t, all...)
	var status string
	for _, a := range args {
		if a == "--status" {
			status = fmt.Sprint(p.waitLog(t, "status listening")["addr"])
		}
	}
	addr := fmt.Sprint(p.waitLog(t, "proxy listening")["addr"])
	return p, addr, status
}

func proxyClient(t testing.TB, target, id string, args ...string) (*proc, string) {
	t.Helper()
	all := append([]string{"proxy", "client", "--log-format", "json", "--listen", "127.0.0.1:0", "--target", target,
		"--psk-identity", id, "--psk", hex.EncodeToString(testKeys[id]), "--suites", "PSK-AES128-GCM-SHA256"}, args...)
	p := startProc(t, all...)
	return p, fmt.Sprint(p.waitLog(t, "proxy listening")["addr"])
}

func TestE2ERefusesWithoutACL(t *testing.T) {
	bin := needBinary(t)
	cmd := exec.Command(bin, "proxy", "server", "--listen", "127.0.0.1:0", "--target", "127.0.0.1:1", "--psk-file", writePSKFile(t))
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "--allow-all") || !strings.Contains(string(out), "no access control") {
		t.Fatalf("server without ACL: err %v, output %q", err, out)
	}
}

func TestE2EAllowDeny(t *testing.T) {
	up := startUpstream(t, nil)
	srv, saddr, _ := proxyServer(t, up.addr(), "--allow", "alice", "--allow-prefix", "bo")
	_, alice := proxyClient(t, saddr, "alice")
	_, mallory := proxyClient(t, saddr, "mallory")

	c, err := net.Dial("tcp", alice)
	if err != nil {
		t.Fatal(err)
	}
	if got := roundTrip(t, c, []byte("hi from alice")); string(got) != "hi from alice" {
		t.Fatalf("alice: %q", got)
	}
	c.Close()
	srv.waitLog(t, "connection closed", "identity", "alice", "bytes_up", "13", "bytes_down", "13")

	b, err := dialRefused(t, mallory, []byte("let me in"))
	if len(b) != 0 || (err != nil && !isConnReset(err)) {
		t.Fatalf("mallory read %q, %v", b, err)
	}
	srv.waitLog(t, "access denied", "identity", "mallory", "reason", "not in the allow list")
	if n := up.count.Load(); n != 1 {
		t.Fatalf("upstream saw %d connections, want 1 (the denied peer must not reach it)", n)
	}
}

func isConnReset(err error) bool {
	return strings.Contains(err.Error(), "connection reset")
}

func TestE2EProxyProtocol(t *testing.T) {
	hdrs := make(chan *ppHeader, 1)
	up := startUpstream(t, func(c net.Conn) {
		h, err := readPPv2(c)
		if err != nil {
			c.Close()
			hdrs <- nil
			return
		}
		hdrs <- h
		echo(c)
	})
	_, saddr, _ := proxyServer(t, up.addr(), "--allow", "alice", "--proxy-protocol")
	c, err := dialMTLS(t, saddr, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if got := roundTrip(t, c, []byte("payload")); string(got) != "payload" {
		t.Fatalf("echo after header: %q", got)
	}
	h := <-hdrs
	if h == nil {
		t.Fatal("upstream could not parse a PROXY v2 header")
	}
	if h.Command != 1 || h.Family != 0x11 || h.Src.String() != c.LocalAddr().String() || h.Dst.String() != saddr {
		t.Fatalf("header %+v; want src %v dst %v", h, c.LocalAddr(), saddr)
	}
	if string(h.TLVs[PP2TypeIdentity]) != "alice" {
		t.Fatalf("identity TLV %q", h.TLVs[PP2TypeIdentity])
	}
	_, _, sub, err := sslSubTLVs(h.TLVs[PP2TypeSSL])
	if err != nil || sub[PP2SubtypeSSLCipher] != "TLS_PSK_WITH_AES_128_GCM_SHA256" || sub[PP2SubtypeSSLVer] != "TLSv1.2" {
		t.Fatalf("SSL TLV %q %v", sub, err)
	}
}

func TestE2EHTTPIdentityHeader(t *testing.T) {
	ln := listenLocal(t)
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var vs []string
		for k, v := range r.Header {
			if normHeaderName(k) == "x-mtls-identity" {
				vs = append(vs, k+"="+strings.Join(v, ","))
			}
		}
		body, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s %d", strings.Join(vs, ";"), r.URL.Path, len(body))
	})}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	_, saddr, _ := proxyServer(t, ln.Addr().String(), "--allow", "alice", "--http-identity-header", "X-Mtls-Identity")

	var dials int
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			dials++
			return dialMTLS(t, saddr, "alice")
		},
	}}
	defer client.CloseIdleConnections()
	for i, body := range []string{"", strings.Repeat("b", 100000)} {
		req, _ := http.NewRequest("POST", fmt.Sprintf("http://svc/req%d", i), strings.NewReader(body))
		req.Header.Set("X-Mtls-Identity", "admin")
		req.Header["X_mtls_identity"] = []string{"root"}
		if i == 1 {
			req.ContentLength = -1 // chunked
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if want := fmt.Sprintf("X-Mtls-Identity=alice /req%d %d", i, len(body)); string(got) != want {
			t.Fatalf("request %d: service saw %q, want %q", i, got, want)
		}
	}
	if dials != 1 {
		t.Errorf("%d connections for 2 keep-alive requests", dials)
	}
}

func TestE2ETargetDownAndStatus(t *testing.T) {
	ln := listenLocal(t)
	dead := ln.Addr().String()
	ln.Close()
	srv, saddr, status := proxyServer(t, dead, "--allow-all", "--status", "127.0.0.1:0", "--connect-timeout", "1s")
	_, caddr := proxyClient(t, saddr, "alice")
	b, err := dialRefused(t, caddr, nil)
	// The failure reaches the local client as a reset, not a clean close
	// (which it would take for an empty but complete answer).
	if !errors.Is(err, syscall.ECONNRESET) || len(b) != 0 {
		t.Fatalf("target down: client read %q, %v; want a reset", b, err)
	}
	srv.waitLog(t, "cannot reach target; resetting the connection", "identity", "alice")
	resp, err := http.Get("http://" + status + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 {
		t.Fatalf("/healthz = %d, want 503", resp.StatusCode)
	}
	resp, err = http.Get("http://" + status + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	m, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(m), `mtls_proxy_handshakes_total{pq="false",result="ok",suite="TLS_PSK_WITH_AES_128_GCM_SHA256"} 1`) {
		t.Fatalf("/metrics lacks the handshake count:\n%.2000s", m)
	}
}

func TestE2ESighupReload(t *testing.T) {
	up := startUpstream(t, nil)
	allow := filepath.Join(t.TempDir(), "allow")
	os.WriteFile(allow, []byte("# who may connect\nalice\n"), 0o600)
	srv, saddr, _ := proxyServer(t, up.addr(), "--allow-file", allow)

	live, err := dialMTLS(t, saddr, "alice")
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	// An echo through the proxy: alice's connection is established on the
	// proxy's side too (not still in its handshake) before the reload.
	live.SetDeadline(time.Now().Add(10 * time.Second))
	echo := make([]byte, 4)
	if _, err := live.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(live, echo); err != nil || string(echo) != "ping" {
		t.Fatalf("echo through the proxy: %q, %v", echo, err)
	}
	live.SetDeadline(time.Time{})
	if _, err := dialMTLS(t, saddr, "bob"); err == nil {
		t.Fatal("bob admitted before reload")
	}
	os.WriteFile(allow, []byte("prefix:bo\n"), 0o600)
	srv.cmd.Process.Signal(syscall.SIGHUP)
	srv.waitLog(t, "reloaded")
	c, err := dialMTLS(t, saddr, "bob")
	if err != nil {
		t.Fatalf("bob after reload: %v", err)
	}
	c.Close()
	if _, err := dialMTLS(t, saddr, "alice"); err == nil {
		t.Fatal("a new alice connection admitted after reload removed her")
	}
	// Removing alice from the ACL revokes her live connection too.
	srv.waitLog(t, "closed live connections of identities the ACL no longer admits")
	live.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := live.Read(make([]byte, 1)); err == nil || isTimeoutErr(err) {
		t.Fatalf("alice's live connection survived the reload that removed her: %v", err)
	}
	// A broken allow file keeps the previous ACL.
	os.WriteFile(allow, []byte("prefix:\n"), 0o600)
	srv.cmd.Process.Signal(syscall.SIGHUP)
	srv.waitLog(t, "reload failed; keeping the previous configuration")
	if c, err := dialMTLS(t, saddr, "bob"); err != nil {
		t.Fatalf("bob after a failed reload: %v", err)
	} else {
		c.Close()
	}
}

func TestE2ESigtermDrains(t *testing.T) {
	up := startUpstream(t, nil)
	srv, saddr, _ := proxyServer(t, up.addr(), "--allow-all", "--shutdown-timeout", "10s")
	live, err := dialMTLS(t, saddr, "alice")
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	srv.cmd.Process.Signal(syscall.SIGTERM)
	srv.waitLog(t, "shutting down")
	refused := waitFor(3*time.Second, func() bool {
		c, err := net.DialTimeout("tcp", saddr, time.Second)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	if !refused {
		t.Fatal("new connections still accepted after SIGTERM")
	}
	time.Sleep(200 * time.Millisecond)
	select {
	case <-srv.done:
		t.Fatal("exited with a live connection inside --shutdown-timeout")
	default:
	}
	if got := roundTrip(t, live, []byte("finishing")); string(got) != "finishing" {
		t.Fatalf("live connection while draining: %q", got)
	}
	live.Close()
	select {
	case <-srv.done:
		if srv.err != nil {
			t.Fatalf("exit: %v", srv.err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("did not exit after the last connection ended")
	}

	// A connection that outlives --shutdown-timeout is closed.
	srv2, saddr2, _ := proxyServer(t, up.addr(), "--allow-all", "--shutdown-timeout", "300ms")
	c, err := dialMTLS(t, saddr2, "alice")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	srv2.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-srv2.done:
	case <-time.After(5 * time.Second):
		t.Fatal("did not exit after --shutdown-timeout")
	}
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Fatalf("exited after %v, before --shutdown-timeout", d)
	}
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil || isTimeoutErr(err) {
		t.Fatalf("connection survived the shutdown: %v", err)
	}
}

// TestE2ESighupReloadsKeys: SIGHUP re-reads the credentials (--psk-file
// here; --key files the same way) for new handshakes.
func TestE2ESighupReloadsKeys(t *testing.T) {
	up := startUpstream(t, nil)
	pskFile := filepath.Join(t.TempDir(), "psk.txt")
	line := func(id string) string { return id + ":" + hex.EncodeToString(testKeys[id]) + "\n" }
	os.WriteFile(pskFile, []byte(line("alice")), 0o600)
	srv := startProc(t, "proxy", "server", "--log-format", "json", "--listen", "127.0.0.1:0", "--target", up.addr(),
		"--psk-file", pskFile, "--allow-all")
	saddr := fmt.Sprint(srv.waitLog(t, "proxy listening")["addr"])
	if _, err := dialMTLS(t, saddr, "bob"); err == nil {
		t.Fatal("bob admitted without a key")
	}
	live, err := dialMTLS(t, saddr, "alice")
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	os.WriteFile(pskFile, []byte(line("bob")), 0o600)
	srv.cmd.Process.Signal(syscall.SIGHUP)
	srv.waitLog(t, "reloaded")
	c, err := dialMTLS(t, saddr, "bob")
	if err != nil {
		t.Fatalf("bob after reload: %v", err)
	}
	c.Close()
	if _, err := dialMTLS(t, saddr, "alice"); err == nil {
		t.Fatal("alice's removed key still accepted")
	}
	if got := roundTrip(t, live, []byte("kept")); string(got) != "kept" {
		t.Fatalf("live connection after the key reload: %q", got)
	}
}
