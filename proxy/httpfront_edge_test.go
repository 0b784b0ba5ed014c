package proxy

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// HTTP identity mode: malformed input, unusual targets and upgrades, and the
// fuzz target.

// fuzzTransport answers every request 200 and records the identity
// headers and trailers it was given.
type fuzzTransport struct {
	mu  sync.Mutex
	bad []string
}

func (ft *fuzzTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
	ids := identityValues(r.Header)
	if len(ids) != 1 || ids[0] != testID || len(identityValues(r.Trailer)) != 0 ||
		r.Header.Get("Upgrade") != "" && !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		ft.mu.Lock()
		ft.bad = append(ft.bad, r.Method+" "+r.URL.String()+" "+strings.Join(ids, "|")+" up="+r.Header.Get("Upgrade"))
		ft.mu.Unlock()
	}
	return &http.Response{StatusCode: 200, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{}, Body: http.NoBody, ContentLength: 0, Request: r}, nil
}

// memConn is a connection whose reads come from a byte string and whose
// writes are discarded.
type memConn struct {
	net.Conn // nil: only the methods below are used
	r        *bytes.Reader
	once     sync.Once
	closed   chan struct{}
}

func (m *memConn) Read(b []byte) (int, error)       { return m.r.Read(b) }
func (m *memConn) Write(b []byte) (int, error)      { return len(b), nil }
func (m *memConn) Close() error                     { m.once.Do(func() { close(m.closed) }); return nil }
func (m *memConn) LocalAddr() net.Addr              { return pipeAddr{} }
func (m *memConn) RemoteAddr() net.Addr             { return pipeAddr{} }
func (m *memConn) SetDeadline(time.Time) error      { return nil }
func (m *memConn) SetReadDeadline(time.Time) error  { return nil }
func (m *memConn) SetWriteDeadline(time.Time) error { return nil }

// FuzzHTTPIdentity feeds any byte stream to HTTP identity mode (HTTP/1.1
// side) and checks that every request that reaches the target carries
// exactly the authenticated identity and no Upgrade off the allow list.
func FuzzHTTPIdentity(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: a\r\nX-Mtls-Identity: root\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTrailer: X-Mtls-Identity\r\n\r\n1\r\na\r\n0\r\nX-Mtls-Identity: t\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhiGET /x HTTP/1.0\r\nx_mtls_identity: y\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: h2c\r\nHTTP2-Settings: AAA\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade, X-Mtls-Identity\r\nUpgrade: websocket, h2c\r\n\r\n",
		"CONNECT a:1 HTTP/1.1\r\nHost: a:1\r\n\r\n",
		"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	s := &Server{Target: "127.0.0.1:1", HTTPIdentityHeader: testHdr, AllowConnect: true, Logger: quietLogger(f)}
	front, err := newHTTPFront(s)
	if err != nil {
		f.Fatal(err)
	}
	ft := &fuzzTransport{}
	front.rp.Transport = ft
	f.Fuzz(func(t *testing.T, in []byte) {
		ft.mu.Lock()
		ft.bad = nil
		ft.mu.Unlock()
		c := &memConn{r: bytes.NewReader(in), closed: make(chan struct{})}
		front.serveConn(context.Background(), c, testID, "http/1.1", nil)
		ft.mu.Lock()
		defer ft.mu.Unlock()
		if len(ft.bad) > 0 {
			t.Fatalf("target got %q from %q", ft.bad, in)
		}
	})
}

// A target that answers 101 to a request that asked for no upgrade does not
// switch the connection: the client gets 502, and its next request is
// parsed and carries alice's identity.
func TestHTTPIdentityUnaskedSwitchRefused(t *testing.T) {
	ln := listenLocal(t)
	var mu sync.Mutex
	var seen []string
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				c.SetDeadline(time.Now().Add(20 * time.Second))
				br := bufio.NewReader(c)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					mu.Lock()
					seen = append(seen, req.URL.Path+"="+strings.Join(identityValues(req.Header), ","))
					mu.Unlock()
					if req.URL.Path == "/a" {
						io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: foo\r\n\r\n")
						continue // keeps reading: a switched proxy would now send raw bytes
					}
					io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				}
			}()
		}
	}()
	c, _ := testFront(t, ln.Addr().String(), frontOpts{})
	io.WriteString(c, "GET /a HTTP/1.1\r\nHost: a\r\n\r\n")
	br := bufio.NewReader(c)
	if resp := readResponse(t, br, "GET"); resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("unasked 101 answered %s", resp.Status)
	}
	io.WriteString(c, "GET /admin HTTP/1.1\r\nHost: a\r\n"+testHdr+": admin\r\n\r\n")
	if resp := readResponse(t, br, "GET"); resp.StatusCode != 200 {
		t.Fatalf("next request answered %s", resp.Status)
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(seen, " ") != "/a="+testID+" /admin="+testID {
		t.Fatalf("back end saw %q", seen)
	}
}

// Malformed input is answered with an error and the connection closed;
// nothing reaches the back end as a complete request.
func TestHTTPIdentityErrors(t *testing.T) {
	for name, tc := range map[string]struct {
		in     string
		status int
	}{
		"garbage":   {"\x16\x03\x01\x00\x05hello\r\n\r\n", http.StatusBadRequest},
		"huge head": {"GET / HTTP/1.1\r\nHost: a\r\nX-A: " + strings.Repeat("a", 1<<20+10000) + "\r\n\r\n", http.StatusRequestHeaderFieldsTooLarge},
		"http/0.9":  {"GET /\r\n\r\n", http.StatusBadRequest},
		"http/3.0":  {"GET / HTTP/3.0\r\nHost: a\r\n\r\n", http.StatusHTTPVersionNotSupported},
		"no host":   {"GET / HTTP/1.1\r\n\r\n", http.StatusBadRequest},
		"bad value": {"GET / HTTP/1.1\r\nHost: a\r\nX-A: a\x00b\r\n\r\n", http.StatusBadRequest},
	} {
		t.Run(name, func(t *testing.T) {
			rec := newRecorder()
			c, _ := testFront(t, backend(t, rec), frontOpts{})
			go io.WriteString(c, tc.in) // the proxy may answer before reading it all
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, &http.Request{Method: "GET"})
			if err == nil {
				_, err = io.ReadAll(resp.Body)
			}
			switch {
			case err != nil && name == "huge head" && isConnReset(err):
				// net/http answered and closed with the rest of the head
				// unread: the kernel may reset before the answer is read.
			case err != nil:
				t.Fatal(err)
			case resp.StatusCode != tc.status:
				t.Fatalf("answered %s, want %d", resp.Status, tc.status)
			default:
				expectClosed(t, br)
			}
			if reqs := rec.seen(); len(reqs) != 0 {
				t.Fatalf("back end saw %+v", reqs)
			}
		})
	}
	// A body shorter than announced never reaches the back end as a
	// complete request: its read of the body fails.
	bodyErr := make(chan error, 1)
	c, _ := testFront(t, backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := io.ReadAll(r.Body)
		bodyErr <- err
	})), frontOpts{})
	io.WriteString(c, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc")
	c.(*net.TCPConn).CloseWrite()
	if err := <-bodyErr; err == nil {
		t.Fatal("a short body reached the back end as complete")
	}
}

// A type on the allow list (here a custom one) switches the connection once
// the target answers 101; what follows passes both ways untouched.
func TestHTTPIdentityCustomUpgrade(t *testing.T) {
	got := make(chan string, 1)
	back := backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "echo" || identityValues(r.Header)[0] != testID {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		c, brw, err := http.NewResponseController(w).Hijack()
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
		c.Write([]byte("GET / HTTP/1.1\r\n\r\nworld"))
	}))
	c, _ := testFront(t, back, frontOpts{upgrades: []string{"Echo"}})
	io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\nhello")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: "GET"})
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade answered %v, %v", resp, err)
	}
	if s := <-got; s != "hello" {
		t.Fatalf("target read %q after the upgrade", s)
	}
	// The target's bytes, read exactly: after the target closes, the
	// client still holds its side open.
	back2 := make([]byte, len("GET / HTTP/1.1\r\n\r\nworld"))
	if _, err := io.ReadFull(br, back2); err != nil || string(back2) != "GET / HTTP/1.1\r\n\r\nworld" {
		t.Fatalf("client read %q, %v after the upgrade", back2, err)
	}
}

// A response delimited by the close of the target's connection reaches the
// client whole.
func TestHTTPIdentityResponseUntilClose(t *testing.T) {
	ln := listenLocal(t)
	done := make(chan struct{})
	t.Cleanup(func() { ln.Close(); <-done })
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\n\r\n"+strings.Repeat("z", 100000))
	}()
	c, _ := testFront(t, ln.Addr().String(), frontOpts{})
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	resp := readResponse(t, bufio.NewReader(c), "GET")
	if b, _ := io.ReadAll(resp.Body); resp.StatusCode != 200 || len(b) != 100000 {
		t.Fatalf("%s with %d bytes", resp.Status, len(b))
	}
}

// A UNIX socket target works in HTTP identity mode; the client's Host is
// kept.
func TestHTTPIdentityUnixTarget(t *testing.T) {
	path := t.TempDir() + "/svc.sock"
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	hosts := make(chan string, 1)
	rec := newRecorder()
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hosts <- r.Host
		rec.ServeHTTP(w, r)
	})}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	c, _ := testFront(t, "unix:"+path, frontOpts{})
	io.WriteString(c, "GET /u HTTP/1.1\r\nHost: svc.example\r\n"+testHdr+": admin\r\n\r\n")
	if resp := readResponse(t, bufio.NewReader(c), "GET"); resp.StatusCode != 200 {
		t.Fatal(resp.Status)
	}
	if h := <-hosts; h != "svc.example" {
		t.Errorf("Host %q reached the back end", h)
	}
	onlyAlice(t, rec.seen())
}
