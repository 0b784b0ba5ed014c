package proxy

import (
	"io"
	"net"
	"testing"
	"time"
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
	c, err := net.Dial("tcp", caddr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	c.Write([]byte("after the reload"))
	if b, _ := io.ReadAll(c); len(b) != 0 {
		t.Fatalf("denied client read %q", b)
	}
	c.Close()
	if !waitFor(5*time.Second, func() bool { return metricValue(sm.aclDenials) == 1 }) {
		t.Fatalf("ACL denials %v, want 1", metricValue(sm.aclDenials))
	}
	if metricValue(sm.resumed) != 2 || up.count.Load() != before {
		t.Fatal("a dropped identity resumed its session")
	}
}
