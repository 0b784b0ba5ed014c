package proxy

import (
	"context"
	"crypto/rand"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/milagro-go/milagro/mtls"
	"github.com/milagro-go/milagro/pairing"
)

// The client-mode proxy caches its session to the target; the second
// connection resumes it, both sides count it; after an ACL reload that
// drops the identity its ticket no longer gets it in.
func TestProxyResumption(t *testing.T) {
	up := startUpstream(t, echo)
	acl, err := NewACL([]string{"alice"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	sm, cm := NewMetrics(), NewMetrics()
	srv := &Server{Target: up.addr(), Metrics: sm}
	saddr := startServer(t, srv, acl)
	caddr := startClient(t, &Client{Target: saddr, Metrics: cm}, "alice")
	for i := 0; i < 3; i++ {
		c, err := net.Dial("tcp", caddr)
		if err != nil {
			t.Fatal(err)
		}
		if got := roundTrip(t, c, []byte("hello")); string(got) != "hello" {
			t.Fatalf("connection %d: %q", i, got)
		}
		c.Close()
	}
	if s, c := metricValue(sm.resumed), metricValue(cm.resumed); s != 2 || c != 2 {
		t.Fatalf("resumed handshakes: server %v, client %v; want 2 each", s, c)
	}
	bob, err := NewACL([]string{"bob"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.SetConfig(pskServerConfig(), bob); err != nil {
		t.Fatal(err)
	}
	before := up.count.Load()
	if b, _ := dialRefused(t, caddr, []byte("after the reload")); len(b) != 0 {
		t.Fatalf("denied client read %q", b)
	}
	if !waitFor(5*time.Second, func() bool { return metricValue(sm.aclDenials) == 1 }) {
		t.Fatalf("ACL denials %v, want 1", metricValue(sm.aclDenials))
	}
	if metricValue(sm.resumed) != 2 || up.count.Load() != before {
		t.Fatal("a dropped identity resumed its session")
	}
}

// TestProxyResumptionOnlyRetry: a client-mode proxy resumes a Milagro CS
// session with a resumption-only hello; when the server's ticket keys
// change, the server refuses it (counted as resumption_refused, not as a
// broken handshake), and the proxy reconnects once with a full handshake,
// transparently to the local client, and counts the retry.
func TestProxyResumptionOnlyRetry(t *testing.T) {
	ta, err := pairing.NewMasterShare(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	secret, _ := pairing.CombineCSServerSecrets(ta.IssueCSServerSecret())
	keyShare, _ := ta.IssueCSClientKey("alice@example.com")
	key, _ := pairing.CombineCSClientKeys(keyShare)
	up := startUpstream(t, echo)
	sm, cm := NewMetrics(), NewMetrics()
	srv := &Server{Target: up.addr(), Metrics: sm}
	saddr := startServer(t, srv, AllowAll())
	serverCfg := func(k byte) *mtls.Config {
		return &mtls.Config{CSServerKeys: []*pairing.CSServerSecret{secret}, PermitMode: pairing.PermitsOptional,
			TicketKeys: func() [][32]byte { return [][32]byte{{k}} }}
	}
	if err := srv.SetConfig(serverCfg(1), AllowAll()); err != nil {
		t.Fatal(err)
	}
	cl := &Client{Target: saddr, Metrics: cm}
	caddr := startClient(t, cl, "alice")
	if err := cl.SetConfig(&mtls.Config{CSKey: key}); err != nil {
		t.Fatal(err)
	}
	send := func(i int) {
		t.Helper()
		c, err := net.Dial("tcp", caddr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if got := roundTrip(t, c, []byte("hello")); string(got) != "hello" {
			t.Fatalf("connection %d: %q", i, got)
		}
	}
	send(0)
	send(1)
	if metricValue(cm.resumed) != 1 || metricValue(cm.retried) != 0 {
		t.Fatalf("resumed %v, retried %v; want 1, 0", metricValue(cm.resumed), metricValue(cm.retried))
	}
	if err := srv.SetConfig(serverCfg(2), AllowAll()); err != nil {
		t.Fatal(err)
	}
	send(2)
	if metricValue(cm.retried) != 1 || metricValue(cm.resumed) != 1 {
		t.Fatalf("after the key change: retried %v, resumed %v; want 1, 1", metricValue(cm.retried), metricValue(cm.resumed))
	}
	if !waitFor(5*time.Second, func() bool { return metricValue(sm.hsFailures.WithLabelValues("resumption_refused")) == 1 }) {
		t.Fatalf("server counted %v refused resumptions, want 1", metricValue(sm.hsFailures.WithLabelValues("resumption_refused")))
	}
	send(3) // the reconnection's new session resumes
	if metricValue(cm.resumed) != 2 || metricValue(cm.retried) != 1 {
		t.Fatalf("resumed %v, retried %v; want 2, 1", metricValue(cm.resumed), metricValue(cm.retried))
	}
}

// countLogs counts the log lines with msg so far.
func (p *proc) countLogs(msg string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, m := range p.logs {
		if m["msg"] == msg {
			n++
		}
	}
	return n
}

// TestE2ETicketKeyFileReload: `mtls proxy server --ticket-key-file` resumes
// sessions under the file's keys and re-reads it on SIGHUP: after the key
// changes, an old ticket gets a full handshake; the new ticket resumes.
func TestE2ETicketKeyFileReload(t *testing.T) {
	up := startUpstream(t, echo)
	keys := filepath.Join(t.TempDir(), "tickets.keys")
	if err := os.WriteFile(keys, []byte(strings.Repeat("11", 32)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv, saddr, _ := proxyServer(t, up.addr(), "--allow-all", "--ticket-key-file", keys)
	cfg := pskClientConfig("alice")
	cfg.ClientSessionCache = mtls.NewLRUClientSessionCache(4)
	try := func(want bool) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, err := (&mtls.Dialer{Config: cfg}).DialContext(ctx, "tcp", saddr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if got := c.(*mtls.Conn).ConnectionState().DidResume; got != want {
			t.Fatalf("resumed %v, want %v", got, want)
		}
		if got := roundTrip(t, c, []byte("x")); string(got) != "x" {
			t.Fatalf("echo %q", got)
		}
	}
	reload := func() {
		t.Helper()
		n := srv.countLogs("reloaded")
		srv.cmd.Process.Signal(syscall.SIGHUP)
		if !waitFor(10*time.Second, func() bool { return srv.countLogs("reloaded") > n }) {
			t.Fatalf("no reload:\n%s", srv.output())
		}
	}
	try(false)
	try(true)
	reload() // same keys: sessions survive the reload
	try(true)
	if err := os.WriteFile(keys, []byte(strings.Repeat("22", 32)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	reload()
	try(false)
	try(true)
	// A broken key file keeps the previous keys.
	os.WriteFile(keys, []byte("not a key\n"), 0o600)
	srv.cmd.Process.Signal(syscall.SIGHUP)
	srv.waitLog(t, "reload failed; keeping the previous configuration")
	try(true)
}
