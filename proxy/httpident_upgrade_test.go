package proxy

import (
	"bufio"
	"io"
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
			c := identPipe(t, backend.Listener.Addr().String())
			in := first + "GET /admin HTTP/1.1\r\nHost: a\r\n" + testHdr + ": admin\r\n\r\n"
			if _, err := io.WriteString(c, in); err != nil {
				t.Fatal(err)
			}
			br := bufio.NewReader(c)
			for i := 0; i < 2; i++ {
				resp := readResponse(t, br, "GET")
				if resp.StatusCode != http.StatusNotFound {
					t.Fatalf("response %d: %s", i, resp.Status)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if len(seen) != 2 || seen[1] != "/admin alice@example.com" {
				t.Fatalf("back end saw %q, want the second request with the real identity", seen)
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
		c.Write([]byte("GET / HTTP/1.1\r\n\r\nworld")) // opaque: no HTTP framing

	}))
	defer backend.Close()
	c := identPipe(t, backend.Listener.Addr().String())
	in := "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\nhello"
	if _, err := io.WriteString(c, in); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	if resp := readResponse(t, br, "GET"); resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("response %s", resp.Status)
	}
	select {
	case s := <-got:
		if s != "hello" {
			t.Fatalf("target read %q after the upgrade", s)
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		back, err := io.ReadAll(br)
		if err != nil || string(back) != "GET / HTTP/1.1\r\n\r\nworld" {
			t.Fatalf("client read %q, %v after the upgrade", back, err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the target did not switch protocols")
	}
}

// A net/http back end with a catch-all handler answers
// CONNECT with an ordinary 200 and a Content-Length, and keeps reading
// HTTP. With --allow-connect the proxy must not take that for a tunnel: the
// client's next pipelined request reaches the back end with alice's
// identity, never the one the client wrote. Without it (the default) the
// proxy answers 405 and closes; the back end sees nothing.
func TestHTTPIdentityConnectSmuggling(t *testing.T) {
	newBackend := func() (*httptest.Server, func() []string) {
		var mu sync.Mutex
		var seen []string
		b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			seen = append(seen, r.Method+" "+r.Header.Get(testHdr))
			mu.Unlock()
			io.WriteString(w, "ok") // 200 with Content-Length: 2, whatever the method
		}))
		return b, func() []string { mu.Lock(); defer mu.Unlock(); return append([]string(nil), seen...) }
	}
	attack := "CONNECT /x HTTP/1.1\r\nHost: a\r\n\r\n" + "GET /admin HTTP/1.1\r\nHost: a\r\n" + testHdr + ": bob\r\n\r\n"

	t.Run("allow-connect", func(t *testing.T) {
		backend, seen := newBackend()
		defer backend.Close()
		c := identPipeWith(t, backend.Listener.Addr().String(), true)
		io.WriteString(c, attack)
		br := bufio.NewReader(c)
		for i, m := range []string{"CONNECT", "GET"} {
			if resp := readResponse(t, br, m); resp.StatusCode != 200 {
				t.Fatalf("response %d: %s", i, resp.Status)
			}
		}
		got := seen()
		if len(got) != 2 || got[1] != "GET alice@example.com" {
			t.Fatalf("back end saw %q, want the GET with alice's identity", got)
		}
	})
	t.Run("default refuses CONNECT", func(t *testing.T) {
		backend, seen := newBackend()
		defer backend.Close()
		c := identPipeWith(t, backend.Listener.Addr().String(), false)
		io.WriteString(c, "GET /first HTTP/1.1\r\nHost: a\r\n\r\n"+attack)
		br := bufio.NewReader(c)
		if resp := readResponse(t, br, "GET"); resp.StatusCode != 200 {
			t.Fatal(resp.Status)
		}
		resp := readResponse(t, br, "CONNECT")
		if resp.StatusCode != http.StatusMethodNotAllowed || !resp.Close {
			t.Fatalf("CONNECT answered %s (close %v)", resp.Status, resp.Close)
		}
		if _, err := br.ReadByte(); err == nil {
			t.Fatal("the connection stayed open after the refused CONNECT")
		}
		if got := seen(); len(got) != 1 || got[0] != "GET alice@example.com" {
			t.Fatalf("back end saw %q", got)
		}
	})
}
