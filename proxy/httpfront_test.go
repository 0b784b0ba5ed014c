package proxy

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/h2c"
)

const (
	testHdr = "X-Mtls-Identity"
	testID  = "alice@example.com"
)

// seenReq is what a test back end saw of one request.
type seenReq struct {
	proto, method, path string
	ids                 []string // every value of a header matching testHdr leniently
	trailerIDs          []string
	body                string
	upgrade, connection string
}

// recorder is a back end handler that records requests and answers 200
// "ok" (with Content-Length).
type recorder struct {
	mu   sync.Mutex
	reqs []seenReq
	// reqSeen signals each request (buffered).
	reqSeen chan struct{}
}

func newRecorder() *recorder { return &recorder{reqSeen: make(chan struct{}, 100)} }

func identityValues(h http.Header) []string {
	var vs []string
	for k, v := range h {
		if normHeaderName(k) == normHeaderName(testHdr) {
			vs = append(vs, v...)
		}
	}
	return vs
}

func (rc *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s := seenReq{proto: r.Proto, method: r.Method, path: r.URL.Path, ids: identityValues(r.Header),
		trailerIDs: identityValues(r.Trailer), body: string(body),
		upgrade: r.Header.Get("Upgrade"), connection: strings.Join(r.Header.Values("Connection"), ",")}
	rc.mu.Lock()
	rc.reqs = append(rc.reqs, s)
	rc.mu.Unlock()
	select {
	case rc.reqSeen <- struct{}{}:
	default:
	}
	io.WriteString(w, "ok")
}

func (rc *recorder) seen() []seenReq {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]seenReq(nil), rc.reqs...)
}

// onlyAlice fails unless every request the back end saw carried exactly one
// identity header, alice's, and no identity trailer.
func onlyAlice(t *testing.T, reqs []seenReq) {
	t.Helper()
	onlyID(t, reqs, testID)
}

// onlyID is onlyAlice for identity id.
func onlyID(t *testing.T, reqs []seenReq, id string) {
	t.Helper()
	for i, r := range reqs {
		if len(r.ids) != 1 || r.ids[0] != id || len(r.trailerIDs) != 0 {
			t.Errorf("request %d (%s %s): identity headers %q, trailers %q", i, r.method, r.path, r.ids, r.trailerIDs)
		}
	}
}

// frontOpts configures testFront.
type frontOpts struct {
	allowConnect bool
	upgrades     []string
	targetProto  string
	alpn         string
}

// testFront serves HTTP identity mode (identity testID) on the server end
// of a local TCP connection, forwarding to target; it returns the client
// end and the metrics.
func testFront(t *testing.T, target string, o frontOpts) (net.Conn, *Metrics) {
	t.Helper()
	m := NewMetrics()
	s := &Server{Target: target, HTTPIdentityHeader: testHdr, AllowConnect: o.allowConnect,
		HTTPAllowUpgrade: o.upgrades, TargetProtocol: o.targetProto, Logger: quietLogger(t), Metrics: m}
	f, err := newHTTPFront(s)
	if err != nil {
		t.Fatal(err)
	}
	ln := listenLocal(t)
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	sc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); f.serveConn(ctx, sc, testID, o.alpn, nil) }()
	t.Cleanup(func() {
		c.Close()
		cancel()
		<-done
		f.closeTrans()
	})
	c.SetDeadline(time.Now().Add(20 * time.Second))
	return c, m
}

func backend(t *testing.T, h http.Handler) string {
	t.Helper()
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s.Listener.Addr().String()
}

// readResponse reads one response to a method request, with its body.
func readResponse(t *testing.T, br *bufio.Reader, method string) *http.Response {
	t.Helper()
	resp, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		t.Fatalf("reading response: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading response body: %v", err)
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp
}

// expectClosed fails unless the proxy closed the connection after what br
// has read.
func expectClosed(t *testing.T, br *bufio.Reader) {
	t.Helper()
	if b, err := br.ReadByte(); err == nil {
		t.Fatalf("connection still open: read %q", b)
	}
}

func refusedCount(m *Metrics, reason string) float64 {
	return metricValue(m.httpRef.WithLabelValues(reason))
}

func TestHTTPIdentityKeepAliveAndSpoofing(t *testing.T) {
	rec := newRecorder()
	c, _ := testFront(t, backend(t, rec), frontOpts{})
	in := "GET /a HTTP/1.1\r\nHost: svc\r\nX-Mtls-Identity: admin\r\nx-mtls-identity: root\r\nX_Mtls_Identity: root2\r\nx_mtls_IDENTITY: root3\r\nAccept: */*\r\n\r\n" +
		"POST /b?q=1 HTTP/1.1\r\nHost: svc\r\nContent-Length: 5\r\n\r\nhello" +
		"PUT /c HTTP/1.1\r\nHost: svc\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum, X-Mtls-Identity\r\n\r\n3\r\nabc\r\n4\r\ndefg\r\n0\r\nX-Sum: 7\r\nX-Mtls-Identity: spoof\r\n\r\n" +
		"GET /d HTTP/1.1\r\nHost: svc\r\nConnection: keep-alive, X-Mtls-Identity\r\nConnection: x_mtls_identity\r\n\r\n" +
		"GET /e HTTP/1.0\r\n\r\n"
	if _, err := io.WriteString(c, in); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	for i, m := range []string{"GET", "POST", "PUT", "GET", "GET"} {
		if resp := readResponse(t, br, m); resp.StatusCode != 200 {
			t.Fatalf("response %d: %s", i, resp.Status)
		}
	}
	expectClosed(t, br) // after the HTTP/1.0 request
	reqs := rec.seen()
	if len(reqs) != 5 {
		t.Fatalf("back end saw %d requests: %+v", len(reqs), reqs)
	}
	onlyAlice(t, reqs)
	if reqs[1].body != "hello" || reqs[2].body != "abcdefg" || reqs[3].path != "/d" || reqs[4].path != "/e" {
		t.Errorf("requests altered: %+v", reqs)
	}
}

// Request smuggling: framings a back end could read differently from the
// proxy never reach it as sent, and whatever the proxy takes for the next
// request carries the real identity. Each case is followed by a pipelined
// request with a spoofed identity.
func TestHTTPIdentitySmuggling(t *testing.T) {
	next := "GET /admin HTTP/1.1\r\nHost: a\r\n" + testHdr + ": admin\r\n\r\n"
	for name, first := range map[string]string{
		"TE+CL":        "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"duplicate CL": "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nContent-Length: 40\r\n\r\n",
		"TE not last":  "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
		"obs-fold":     "GET /x HTTP/1.1\r\nHost: a\r\nX-A: b\r\n X-Mtls-Identity: root\r\n\r\n",
		"bare LF":      "GET /x HTTP/1.1\nHost: a\nX-Mtls-Identity: root\n\n",
		"space name":   "GET /x HTTP/1.1\r\nHost: a\r\nX-Mtls-Identity : root\r\n\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			rec := newRecorder()
			c, _ := testFront(t, backend(t, rec), frontOpts{})
			io.WriteString(c, first+next)
			c.(*net.TCPConn).CloseWrite()
			io.Copy(io.Discard, c) // until the proxy closes
			reqs := rec.seen()
			onlyAlice(t, reqs)
			for _, r := range reqs {
				if r.method == "POST" && r.body != "" {
					t.Errorf("body %q reached the back end", r.body)
				}
			}
		})
	}
}

// After a refusal the connection is either closed (CONNECT) or parsed on as
// HTTP (a removed Upgrade offer): the pipelined request with a spoofed
// identity never reaches the back end as written.
func TestHTTPIdentityPipeliningAfterRefusal(t *testing.T) {
	spoof := "GET /admin HTTP/1.1\r\nHost: a\r\n" + testHdr + ": admin\r\n\r\n"
	t.Run("connect", func(t *testing.T) {
		rec := newRecorder()
		c, m := testFront(t, backend(t, rec), frontOpts{})
		io.WriteString(c, "GET /first HTTP/1.1\r\nHost: a\r\n\r\nCONNECT a:80 HTTP/1.1\r\nHost: a:80\r\n\r\n"+spoof)
		br := bufio.NewReader(c)
		if resp := readResponse(t, br, "GET"); resp.StatusCode != 200 {
			t.Fatal(resp.Status)
		}
		resp := readResponse(t, br, "CONNECT")
		if resp.StatusCode != http.StatusMethodNotAllowed || !resp.Close {
			t.Fatalf("CONNECT answered %s (close %v)", resp.Status, resp.Close)
		}
		expectClosed(t, br)
		if reqs := rec.seen(); len(reqs) != 1 || reqs[0].path != "/first" {
			t.Fatalf("back end saw %+v", reqs)
		}
		onlyAlice(t, rec.seen())
		if n := refusedCount(m, refusedConnect); n != 1 {
			t.Errorf("connect refusals counted %v", n)
		}
	})
	for name, up := range map[string]string{"unlisted upgrade": "foo", "h2c": "h2c"} {
		t.Run(name, func(t *testing.T) {
			rec := newRecorder()
			c, _ := testFront(t, backend(t, rec), frontOpts{})
			io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: "+up+
				"\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n"+spoof)
			br := bufio.NewReader(c)
			for i := 0; i < 2; i++ {
				if resp := readResponse(t, br, "GET"); resp.StatusCode != 200 {
					t.Fatalf("response %d: %s", i, resp.Status)
				}
			}
			reqs := rec.seen()
			if len(reqs) != 2 || reqs[1].path != "/admin" {
				t.Fatalf("back end saw %+v", reqs)
			}
			onlyAlice(t, reqs)
			if reqs[0].upgrade != "" || strings.Contains(strings.ToLower(reqs[0].connection), "upgrade") {
				t.Errorf("Upgrade offer reached the back end: %+v", reqs[0])
			}
		})
	}
}

// Against an h2c-capable back end, an "Upgrade: h2c" offer is removed: the
// request is served over HTTP/1.1 (no 101), so the client never gets to
// speak HTTP/2 frames the proxy does not read; counted.
func TestHTTPIdentityH2CUpgradeRemoved(t *testing.T) {
	rec := newRecorder()
	h2cBackend := backend(t, h2c.NewHandler(rec, &http2.Server{}))
	c, m := testFront(t, h2cBackend, frontOpts{})
	io.WriteString(c, "GET /a HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"+
		"HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n"+testHdr+": admin\r\n\r\n")
	br := bufio.NewReader(c)
	resp := readResponse(t, br, "GET")
	if resp.StatusCode != 200 || resp.ProtoMajor != 1 {
		t.Fatalf("h2c upgrade answered %s %s", resp.Proto, resp.Status)
	}
	reqs := rec.seen()
	if len(reqs) != 1 || reqs[0].proto != "HTTP/1.1" {
		t.Fatalf("back end saw %+v", reqs)
	}
	onlyAlice(t, reqs)
	if n := refusedCount(m, refusedH2CUpgrade); n != 1 {
		t.Errorf("h2c refusals counted %v", n)
	}
}

// The HTTP/2 preface on a connection that chose http/1.1 is refused: 400,
// closed, counted; the back end sees nothing.
func TestHTTPIdentityH2PrefaceRefused(t *testing.T) {
	rec := newRecorder()
	c, m := testFront(t, backend(t, h2c.NewHandler(rec, &http2.Server{})), frontOpts{alpn: "http/1.1"})
	io.WriteString(c, http2.ClientPreface)
	br := bufio.NewReader(c)
	resp := readResponse(t, br, "PRI")
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("preface answered %s", resp.Status)
	}
	expectClosed(t, br)
	if reqs := rec.seen(); len(reqs) != 0 {
		t.Fatalf("back end saw %+v", reqs)
	}
	if n := refusedCount(m, refusedH2Preface); n != 1 {
		t.Errorf("preface refusals counted %v", n)
	}
}

// With AllowConnect, CONNECT is forwarded as an ordinary request: a 200
// with a body is no tunnel, and the next pipelined request is parsed and
// carries alice's identity.
func TestHTTPIdentityAllowConnect(t *testing.T) {
	rec := newRecorder()
	c, _ := testFront(t, backend(t, rec), frontOpts{allowConnect: true})
	io.WriteString(c, "CONNECT svc:443 HTTP/1.1\r\nHost: svc:443\r\n\r\nGET /admin HTTP/1.1\r\nHost: a\r\n"+testHdr+": bob\r\n\r\n")
	br := bufio.NewReader(c)
	for i, m := range []string{"CONNECT", "GET"} {
		if resp := readResponse(t, br, m); resp.StatusCode != 200 {
			t.Fatalf("response %d: %s", i, resp.Status)
		}
	}
	reqs := rec.seen()
	if len(reqs) != 2 || reqs[0].method != "CONNECT" || reqs[1].path != "/admin" {
		t.Fatalf("back end saw %+v", reqs)
	}
	onlyAlice(t, reqs)
}

// With AllowConnect, an HTTP/2 CONNECT reaches the target as a request
// without content: the stream's data never does.
func TestHTTPIdentityAllowConnectHTTP2(t *testing.T) {
	rec := newRecorder()
	c, _ := testFront(t, backend(t, rec), frontOpts{allowConnect: true, alpn: "h2"})
	cc, err := (&http2.Transport{}).NewClientConn(c)
	if err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	req, _ := http.NewRequest("CONNECT", "http://svc:443", pr)
	req.Header.Set(testHdr, "admin")
	go func() {
		io.WriteString(pw, "GET /admin HTTP/1.1\r\nHost: a\r\n"+testHdr+": admin\r\n\r\n")
		pw.Close()
	}()
	resp, err := cc.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	reqs := rec.seen()
	if len(reqs) != 1 || reqs[0].method != "CONNECT" || reqs[0].body != "" {
		t.Fatalf("back end saw %+v", reqs)
	}
	onlyAlice(t, reqs)
}

// Expect: 100-continue: the client's body follows the interim response;
// the identity is alice's throughout.
func TestHTTPIdentity100Continue(t *testing.T) {
	rec := newRecorder()
	c, _ := testFront(t, backend(t, rec), frontOpts{})
	io.WriteString(c, "POST /x HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n"+testHdr+": admin\r\n\r\n")
	br := bufio.NewReader(c)
	line, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "HTTP/1.1 100") {
		t.Fatalf("interim response %q, %v", line, err)
	}
	if _, err := br.ReadString('\n'); err != nil { // the empty line
		t.Fatal(err)
	}
	io.WriteString(c, "hello")
	// The target's own 100 Continue is relayed too: skip interim answers.
	resp := readResponse(t, br, "POST")
	for resp.StatusCode == http.StatusContinue {
		resp = readResponse(t, br, "POST")
	}
	if resp.StatusCode != 200 {
		t.Fatal(resp.Status)
	}
	reqs := rec.seen()
	if len(reqs) != 1 || reqs[0].body != "hello" {
		t.Fatalf("back end saw %+v", reqs)
	}
	onlyAlice(t, reqs)
}

// An HTTP/2 connection (ALPN h2) is served as HTTP/2; the identity is
// rewritten on every stream, to an HTTP/1.1 and to an h2c back end.
func TestHTTPIdentityHTTP2(t *testing.T) {
	for _, tp := range []string{TargetHTTP1, TargetH2C} {
		t.Run(tp, func(t *testing.T) {
			rec := newRecorder()
			c, _ := testFront(t, backend(t, h2c.NewHandler(rec, &http2.Server{})), frontOpts{alpn: "h2", targetProto: tp})
			cc, err := (&http2.Transport{}).NewClientConn(c)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range []string{"/a", "/b"} {
				req, _ := http.NewRequest("POST", "http://svc"+p, strings.NewReader("body"))
				req.Header.Set(testHdr, "admin")
				req.Header["x_mtls_identity"] = []string{"root"}
				req.Trailer = http.Header{testHdr: {"trailer-spoof"}}
				resp, err := cc.RoundTrip(req)
				if err != nil {
					t.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || resp.ProtoMajor != 2 {
					t.Fatalf("%s: %s %s", p, resp.Proto, resp.Status)
				}
			}
			reqs := rec.seen()
			if len(reqs) != 2 {
				t.Fatalf("back end saw %+v", reqs)
			}
			onlyAlice(t, reqs)
			want := map[string]string{TargetHTTP1: "HTTP/1.1", TargetH2C: "HTTP/2.0"}[tp]
			if reqs[0].proto != want || reqs[0].body != "body" {
				t.Errorf("back end saw %+v, want %s", reqs[0], want)
			}
		})
	}
}

func TestHeaderValidation(t *testing.T) {
	for _, bad := range []string{"a\r\nb", "a\x00", "a\x7f", " a", "a\t", "a\nX-Mtls-Identity: admin"} {
		if ValidHeaderValue(bad) {
			t.Errorf("ValidHeaderValue(%q)", bad)
		}
	}
	if !ValidHeaderValue("alice@example.com") || !ValidHeaderValue("é") {
		t.Error("ValidHeaderValue refuses a good identity")
	}
	if ValidHeaderName("") || ValidHeaderName("a b") || ValidHeaderName("a:b") || !ValidHeaderName("X-Id_1") {
		t.Error("ValidHeaderName")
	}
}

// An identity that cannot be a header value never reaches a handler: the
// handler fails closed even if one did.
func TestHTTPIdentityHandlerFailsClosed(t *testing.T) {
	rec := newRecorder()
	s := &Server{Target: backend(t, rec), HTTPIdentityHeader: testHdr, Logger: quietLogger(t)}
	f, err := newHTTPFront(s)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"", "alice\r\nX-Mtls-Identity: admin"} {
		req := httptest.NewRequest("GET", "http://svc/", nil)
		req = req.WithContext(context.WithValue(req.Context(), identityKey{}, id))
		w := httptest.NewRecorder()
		f.ServeHTTP(w, req)
		if w.Code != http.StatusInternalServerError {
			t.Errorf("identity %q: %d", id, w.Code)
		}
	}
	if reqs := rec.seen(); len(reqs) != 0 {
		t.Fatalf("back end saw %+v", reqs)
	}
}

func TestHTTPFrontConfigErrors(t *testing.T) {
	for name, s := range map[string]*Server{
		"protocol": {Target: "127.0.0.1:1", HTTPIdentityHeader: testHdr, TargetProtocol: "h3"},
		"h2c":      {Target: "127.0.0.1:1", HTTPIdentityHeader: testHdr, HTTPAllowUpgrade: []string{"H2C"}},
		"token":    {Target: "127.0.0.1:1", HTTPIdentityHeader: testHdr, HTTPAllowUpgrade: []string{"a b"}},
	} {
		if _, err := newHTTPFront(s); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
