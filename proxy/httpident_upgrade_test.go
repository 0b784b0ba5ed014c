package proxy

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// A back end that does not accept an Upgrade (or a CONNECT) answers it as an
// ordinary request and keeps reading HTTP from the connection. The bytes the
// proxy forwarded opaquely after such a request must not reach it as a
// request carrying a spoofed identity.
func TestHTTPIdentityRefusedUpgradeCannotSmuggle(t *testing.T) {
	for name, first := range map[string]string{
		"upgrade": "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: foo\r\n\r\n",
		"connect": "CONNECT a:80 HTTP/1.1\r\nHost: a:80\r\n\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			var mu sync.Mutex
			var seen []string
			backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				seen = append(seen, r.URL.Path+" "+r.Header.Get(testHdr))
				mu.Unlock()
				w.WriteHeader(http.StatusNotFound)
			}))
			defer backend.Close()
			up, err := net.Dial("tcp", backend.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer up.Close()
			in := first + "GET /admin HTTP/1.1\r\nHost: a\r\n" + testHdr + ": admin\r\n\r\n"
			if err := rewriteHTTP(up, strings.NewReader(in), testHdr, "alice@example.com"); err != nil {
				t.Fatal(err)
			}
			up.SetReadDeadline(time.Now().Add(2 * time.Second))
			io.Copy(io.Discard, up) // the back end's answers, until it closes or times out
			mu.Lock()
			defer mu.Unlock()
			for _, s := range seen {
				if strings.HasSuffix(s, " admin") {
					t.Fatalf("back end saw a smuggled request with a spoofed identity: %q", seen)
				}
			}
		})
	}
}

// A Connection header naming the identity header would make a target that
// honours hop-by-hop nominations (a reverse proxy such as
// httputil.ReverseProxy) drop the identity the proxy added.
func TestHTTPIdentityNotNominatedHopByHop(t *testing.T) {
	in := "GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, X-Mtls-Identity\r\nConnection: x_mtls_identity\r\n\r\n"
	out, err := rewrite(t, in)
	if err != nil {
		t.Fatal(err)
	}
	reqs, _ := parseRequests(t, out)
	if len(reqs) != 1 {
		t.Fatalf("%d requests forwarded:\n%s", len(reqs), out)
	}
	for _, v := range reqs[0].Header.Values("Connection") {
		for _, tok := range strings.Split(v, ",") {
			if normHeaderName(strings.TrimSpace(tok)) == normHeaderName(testHdr) {
				t.Fatalf("identity header nominated hop-by-hop: %q", reqs[0].Header.Values("Connection"))
			}
		}
	}
	if !headerHasToken(reqs[0].Header, "Connection", "keep-alive") {
		t.Fatalf("other Connection options lost: %q", reqs[0].Header.Values("Connection"))
	}
	if vs := identityValues(reqs[0].Header); len(vs) != 1 || vs[0] != "alice@example.com" {
		t.Fatalf("identity headers %q", vs)
	}
}

// An upgrade the target accepts still switches protocols.
func TestHTTPIdentityAcceptedUpgradeStillWorks(t *testing.T) {
	got := make(chan string, 1)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !headerHasToken(r.Header, "Connection", "upgrade") || r.Header.Get("Upgrade") != "echo" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		c, brw, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		brw.Flush()
		b := make([]byte, 5)
		if _, err := io.ReadFull(brw, b); err == nil {
			got <- string(b)
		}
	}))
	defer backend.Close()
	up, err := net.Dial("tcp", backend.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	in := "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\nhello"
	if err := rewriteHTTP(up, strings.NewReader(in), testHdr, "alice@example.com"); err != nil {
		t.Fatal(err)
	}
	select {
	case s := <-got:
		if s != "hello" {
			t.Fatalf("target read %q after the upgrade", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the target did not switch protocols")
	}
}
