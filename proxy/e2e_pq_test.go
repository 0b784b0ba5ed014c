package proxy

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
)

// TestE2EMilagroPQ runs the proxy pair with --pq: a requiring server
// proxy and a client proxy with the default (prefer) forward over a hybrid
// session, counted with pq="true" on both sides; a client proxy with --pq
// off is refused and its connection never reaches the target.
func TestE2EMilagroPQ(t *testing.T) {
	server, clients := milagroKeys(t, "alice@example.com")
	up := startUpstream(t, nil)
	srv := startProc(t, "--log-format", "json", "proxy", "server", "--listen", "127.0.0.1:0", "--target", up.addr(),
		"--key", server, "--allow", "alice@example.com", "--pq", "require", "--status", "127.0.0.1:0")
	status := fmt.Sprint(srv.waitLog(t, "status listening")["addr"])
	saddr := fmt.Sprint(srv.waitLog(t, "proxy listening")["addr"])
	start := func(pq string) (*proc, string) {
		p := startProc(t, "--log-format", "json", "proxy", "client", "--listen", "127.0.0.1:0", "--target", saddr,
			"--key", clients["alice@example.com"], "--pq", pq, "--status", "127.0.0.1:0")
		st := fmt.Sprint(p.waitLog(t, "status listening")["addr"])
		return p, fmt.Sprint(p.waitLog(t, "proxy listening")["addr"]) + " " + st
	}
	_, prefer := start("prefer")
	_, off := start("off")
	preferAddr, preferStatus, _ := strings.Cut(prefer, " ")
	offAddr, _, _ := strings.Cut(off, " ")

	c, err := net.Dial("tcp", preferAddr)
	if err != nil {
		t.Fatal(err)
	}
	if got := roundTrip(t, c, []byte("hybrid")); string(got) != "hybrid" {
		t.Fatalf("prefer: %q", got)
	}
	c.Close()
	srv.waitLog(t, "connection closed", "identity", "alice@example.com")

	if b, _ := dialRefused(t, offAddr, nil); len(b) != 0 {
		t.Fatalf("off client read %q", b)
	}
	if n := up.count.Load(); n != 1 {
		t.Fatalf("upstream saw %d connections, want 1", n)
	}
	const ok = `mtls_proxy_handshakes_total{pq="true",result="ok",suite="TLS_MILAGRO_CS_WITH_AES_128_GCM_SHA256"} 1`
	for _, st := range []string{status, preferStatus} {
		resp, err := http.Get("http://" + st + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		m, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(m), ok) {
			t.Fatalf("%s/metrics lacks %s:\n%.3000s", st, ok, m)
		}
	}
}
