package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/milagro-go/milagro/ciphersuite"
	"github.com/milagro-go/milagro/mtls"
)

// lockedWriter collects log output from several goroutines.
type lockedWriter struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *lockedWriter) lines(t *testing.T) []map[string]any {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(w.b.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

func TestConnIDOnEveryLine(t *testing.T) {
	up := startUpstream(t, nil)
	w := &lockedWriter{}
	s := &Server{Target: up.addr(), Logger: slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	addr := startServer(t, s, NewACLMust(t, "alice"))
	for _, id := range []string{"alice", "alice", "bob"} {
		c, err := dialMTLS(t, addr, id)
		if err == nil {
			roundTrip(t, c, []byte("x"))
			c.Close()
		}
	}
	if !waitFor(5*time.Second, func() bool { return s.ActiveConns() == 0 && strings.Count(w.b.String(), "\n") >= 5 }) {
		t.Fatalf("connections did not end:\n%s", w.b.String())
	}
	ids := map[float64]int{}
	for _, m := range w.lines(t) {
		if m["mode"] == nil {
			continue // not a connection's line
		}
		id, ok := m["conn"].(float64)
		if !ok {
			t.Errorf("connection log line without a conn id: %v", m)
		}
		ids[id]++
	}
	if len(ids) != 3 {
		t.Fatalf("conn ids %v, want 3 distinct", ids)
	}
}

// NewACLMust builds an ACL of identities.
func NewACLMust(t testing.TB, ids ...string) *ACL {
	a, err := NewACL(ids, nil)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestFailureReason(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{&DeniedError{ID: "x"}, "denied"},
		{context.DeadlineExceeded, "timeout"},
		{io.EOF, "peer_closed"},
		{fmt.Errorf("read: %w", io.ErrUnexpectedEOF), "peer_closed"},
		{&net.OpError{Op: "read", Err: os.NewSyscallError("read", syscall.ECONNRESET)}, "reset"},
		{&mtls.AlertError{Alert: ciphersuite.AlertUnknownPSKIdentity}, "unknown_identity"},
		{&mtls.AlertError{Alert: ciphersuite.AlertBadRecordMAC}, "bad_key"},
		{&mtls.AlertError{Alert: ciphersuite.AlertHandshakeFailure}, "negotiation"},
		{&mtls.AlertError{Alert: ciphersuite.AlertDecodeError}, "protocol"},
		{&mtls.AlertError{Alert: ciphersuite.AlertDecodeError, Remote: true}, "remote_alert"},
		{errors.New("something"), "other"},
	} {
		got := failureReason(tc.err)
		if got != tc.want {
			t.Errorf("failureReason(%v) = %q, want %q", tc.err, got, tc.want)
		}
		found := false
		for _, r := range failureReasons {
			found = found || r == got
		}
		if !found {
			t.Errorf("reason %q is not in the bounded label set", got)
		}
	}
}

// A TCP connect-and-close (the client-mode proxy's /healthz probe) is not
// a failed handshake; a peer with an unknown identity is, by reason.
func TestProbeIsNotAFailedHandshake(t *testing.T) {
	up := startUpstream(t, nil)
	m := NewMetrics()
	s := &Server{Target: up.addr(), Metrics: m}
	addr := startServer(t, s, AllowAll())
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if !waitFor(5*time.Second, func() bool {
		return metricValue(m.connections.WithLabelValues("closed_before_handshake")) == 1
	}) {
		t.Fatal("the probe was not counted as closed_before_handshake")
	}
	if v := metricValue(m.handshakes.WithLabelValues("unknown", resultError, "false")); v != 0 {
		t.Fatalf("probe counted as %v failed handshakes", v)
	}
	cfg := pskClientConfig("alice")
	cfg.PSKIdentity = "nobody"
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := (&mtls.Dialer{Config: cfg}).DialContext(ctx, "tcp", addr); err == nil {
		t.Fatal("unknown identity admitted")
	}
	if !waitFor(5*time.Second, func() bool { return metricValue(m.hsFailures.WithLabelValues("unknown_identity")) == 1 }) {
		t.Fatal("unknown identity not counted by reason")
	}
}

func TestMaxConnLifetime(t *testing.T) {
	up := startUpstream(t, nil)
	m := NewMetrics()
	s := &Server{Target: up.addr(), Metrics: m, MaxConnLifetime: 400 * time.Millisecond}
	addr := startServer(t, s, AllowAll())
	start := time.Now() // before the proxy accepts: its lifetime starts later
	c, err := dialMTLS(t, addr, "alice")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Busy, not idle: keep echoing until the proxy ends the connection.
	c.SetDeadline(time.Now().Add(30 * time.Second))
	buf := make([]byte, 4)
	var rerr error
	for rerr == nil {
		if _, err := c.Write([]byte("ping")); err != nil {
			break
		}
		_, rerr = io.ReadFull(c, buf)
		time.Sleep(20 * time.Millisecond)
	}
	if isTimeoutErr(rerr) {
		t.Fatalf("the proxy never ended the connection: %v", rerr)
	}
	if d := time.Since(start); d < 400*time.Millisecond {
		t.Fatalf("connection ended after %v, before its lifetime (400ms)", d)
	}
	if !waitFor(5*time.Second, func() bool { return metricValue(m.connections.WithLabelValues("lifetime")) == 1 }) {
		t.Fatal("not counted as ended by lifetime")
	}
}

// Once the client half-closed, a target that never finishes is cut after
// CloseTimeout.
func TestCloseTimeout(t *testing.T) {
	up := startUpstream(t, func(c net.Conn) {
		io.Copy(io.Discard, c) // reads to EOF, never closes its side
		time.Sleep(10 * time.Second)
		c.Close()
	})
	s := &Server{Target: up.addr(), CloseTimeout: 300 * time.Millisecond}
	addr := startServer(t, s, AllowAll())
	c, err := dialMTLS(t, addr, "alice")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("bye"))
	start := time.Now() // before the proxy sees the half-close
	c.CloseWrite()
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.ReadAll(c); isTimeoutErr(err) {
		t.Fatalf("the proxy never cut the connection: %v", err)
	}
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Fatalf("closed %v after the half-close, before CloseTimeout (300ms)", d)
	}
}

func TestSetConfigRevokesLiveConnections(t *testing.T) {
	up := startUpstream(t, nil)
	m := NewMetrics()
	s := &Server{Target: up.addr(), Metrics: m}
	addr := startServer(t, s, NewACLMust(t, "alice", "bob"))
	alice, err := dialMTLS(t, addr, "alice")
	if err != nil {
		t.Fatal(err)
	}
	defer alice.Close()
	bob, err := dialMTLS(t, addr, "bob")
	if err != nil {
		t.Fatal(err)
	}
	defer bob.Close()
	// Both established end to end.
	for _, c := range []*mtls.Conn{alice, bob} {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		c.Write([]byte("1"))
		if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SetConfig(pskServerConfig(), NewACLMust(t, "bob")); err != nil {
		t.Fatal(err)
	}
	alice.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := alice.Read(make([]byte, 1)); err == nil || isTimeoutErr(err) {
		t.Fatalf("alice's connection survived her removal: %v", err)
	}
	bob.Write([]byte("2"))
	if _, err := io.ReadFull(bob, make([]byte, 1)); err != nil {
		t.Fatalf("bob's connection was closed too: %v", err)
	}
	if v := metricValue(m.revoked); v != 1 {
		t.Fatalf("revoked = %v, want 1", v)
	}
}

func TestEmptyAllowFile(t *testing.T) {
	f := filepath.Join(t.TempDir(), "allow")
	os.WriteFile(f, []byte("# nobody yet\n\n"), 0o600)
	if _, err := (ACLSpec{Files: []string{f}}).Load(); !errors.Is(err, ErrEmptyAllowFile) {
		t.Fatalf("empty allow file: %v, want ErrEmptyAllowFile", err)
	}
	acl, err := (ACLSpec{Files: []string{f}, AllowEmpty: true}).Load()
	if err != nil {
		t.Fatal(err)
	}
	if acl.Check("alice") == nil {
		t.Fatal("an empty allow file admitted alice")
	}
}

func TestStatusReloadDrainingHealth(t *testing.T) {
	up := startUpstream(t, nil)
	m := NewMetrics()
	h := &StatusHandler{Target: up.addr(), Metrics: m}
	get := func(path string) (int, string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		return rec.Code, rec.Body.String()
	}
	if code, body := get("/healthz"); code != 200 || body != "ok\n" {
		t.Fatalf("healthy: %d %q", code, body)
	}
	m.Reloaded(errors.New("allow file /etc/allow lists no identity"))
	code, body := get("/healthz")
	if code != 503 || !strings.HasPrefix(body, "degraded: the reload at ") || !strings.Contains(body, "lists no identity") {
		t.Fatalf("after a failed reload: %d %q", code, body)
	}
	_, metrics := get("/metrics")
	for _, want := range []string{
		`mtls_proxy_reloads_total{result="failed"} 1`,
		`mtls_proxy_reloads_total{result="ok"} 0`,
		`mtls_proxy_last_reload_success 0`,
		`mtls_proxy_last_reload_timestamp_seconds{result="failed"} 1.`,
		`mtls_proxy_handshake_failures_total{reason="timeout"} 0`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	m.Reloaded(nil)
	if code, _ := get("/healthz"); code != 200 {
		t.Fatalf("after a good reload: %d", code)
	}
	if _, metrics := get("/metrics"); !strings.Contains(metrics, `mtls_proxy_reloads_total{result="ok"} 1`) ||
		!strings.Contains(metrics, "mtls_proxy_last_reload_success 1") {
		t.Fatal("successful reload not counted")
	}
	h.SetDraining()
	if code, body := get("/healthz"); code != 503 || body != "draining\n" {
		t.Fatalf("draining: %d %q", code, body)
	}
}

// At the open-file limit /healthz keeps the last result instead of
// reporting a healthy target as unreachable (in a child process: it lowers
// RLIMIT_NOFILE).
func TestHealthzAtFDLimit(t *testing.T) {
	if os.Getenv("PROXY_FDLIMIT_CHILD") == "1" {
		healthzFDLimitChild(t)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestHealthzAtFDLimit$", "-test.v")
	cmd.Env = append(os.Environ(), "PROXY_FDLIMIT_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "fd limit ok") {
		t.Fatalf("child: %v\n%s", err, out)
	}
}

func healthzFDLimitChild(t *testing.T) {
	up := startUpstream(t, nil)
	h := &StatusHandler{Target: up.addr(), CacheFor: time.Nanosecond}
	if err := h.health(context.Background()); err != nil {
		t.Fatal(err)
	}
	var lim syscall.Rlimit
	syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
	lim.Cur = 64
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	var hog []*os.File
	defer func() {
		for _, f := range hog {
			f.Close()
		}
	}()
	for {
		f, err := os.Open(os.DevNull)
		if err != nil {
			break
		}
		hog = append(hog, f)
	}
	time.Sleep(time.Millisecond)
	if err := h.health(context.Background()); err != nil {
		t.Fatalf("at the fd limit /healthz reports the target unreachable: %v", err)
	}
	t.Log("fd limit ok")
}

func TestCheckLocalAddr(t *testing.T) {
	for addr, ok := range map[string]bool{
		"127.0.0.1:80": true, "[::1]:80": true, "localhost:80": true, "unix:/run/x.sock": true,
		"127.9.9.9:1": true, "0.0.0.0:80": false, ":80": false, "10.0.0.1:80": false,
		"db.internal:5432": false, "unix:": false, "nonsense": false,
	} {
		if err := CheckLocalAddr(addr); (err == nil) != ok {
			t.Errorf("CheckLocalAddr(%q) = %v, want ok=%v", addr, err, ok)
		}
	}
}

// UNIX sockets on every side: the client proxy listens on one, dials the
// server proxy on one, which forwards to a target on one.
func TestUnixSocketsBothSides(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "target.sock")
	tln, err := net.Listen("unix", target)
	if err != nil {
		t.Fatal(err)
	}
	defer tln.Close()
	go func() {
		for {
			c, err := tln.Accept()
			if err != nil {
				return
			}
			go func() {
				io.Copy(c, c)
				c.(*net.UnixConn).CloseWrite()
				c.Close()
			}()
		}
	}()
	serve := func(ln net.Listener, run func(context.Context, net.Listener) error, stop func(context.Context) error) {
		go run(context.Background(), ln)
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			stop(ctx)
		})
	}
	s := &Server{Target: "unix:" + target, Logger: quietLogger(t)}
	if err := s.SetConfig(pskServerConfig(), AllowAll()); err != nil {
		t.Fatal(err)
	}
	sln, err := net.Listen("unix", filepath.Join(dir, "server.sock"))
	if err != nil {
		t.Fatal(err)
	}
	serve(sln, s.Serve, s.Shutdown)
	c := &Client{Target: "unix:" + filepath.Join(dir, "server.sock"), Logger: quietLogger(t)}
	if err := c.SetConfig(pskClientConfig("alice")); err != nil {
		t.Fatal(err)
	}
	cln, err := net.Listen("unix", filepath.Join(dir, "client.sock"))
	if err != nil {
		t.Fatal(err)
	}
	serve(cln, c.Serve, c.Shutdown)

	conn, err := net.Dial("unix", filepath.Join(dir, "client.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	msg := bytes.Repeat([]byte("unix sockets end to end "), 5000)
	if got := roundTrip(t, conn, msg); !bytes.Equal(got, msg) {
		t.Fatalf("echo through UNIX sockets: %d bytes back, want %d", len(got), len(msg))
	}
}
