package proxy

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// identPipe runs an HTTP identity mode pipe (identity alice@example.com)
// from a local client connection, which it returns, to target.
func identPipe(t *testing.T, target string) net.Conn {
	t.Helper()
	return identPipeWith(t, target, true)
}

// identPipeWith is identPipe with --allow-connect on or off.
func identPipeWith(t *testing.T, target string, allowConnect bool) net.Conn {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	a, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	b, err := net.Dial("tcp", target)
	if err != nil {
		t.Fatal(err)
	}
	p := &pipe{a: a, b: b}
	up := httpIdentity(p, testHdr, "alice@example.com", allowConnect)
	done := make(chan struct{})
	go func() { defer close(done); p.run(up) }()
	t.Cleanup(func() {
		c.Close()
		p.closeBoth()
		<-done
	})
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c
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

// rawBackend serves one connection with fn and returns its address.
func rawBackend(t *testing.T, fn func(c net.Conn, br *bufio.Reader)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		fn(c, bufio.NewReader(c))
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return ln.Addr().String()
}

// An accepted CONNECT switches: the tunnelled bytes - here something that
// looks like a request with a spoofed identity, which is the tunnel's own
// business - pass untouched both ways.
func TestHTTPIdentityAcceptedConnect(t *testing.T) {
	const tunnelled = "GET /x HTTP/1.1\r\n" + testHdr + ": admin\r\n\r\n"
	got := make(chan string, 1)
	addr := rawBackend(t, func(c net.Conn, br *bufio.Reader) {
		req, err := http.ReadRequest(br)
		if err != nil || req.Method != http.MethodConnect || req.Header.Get(testHdr) != "alice@example.com" {
			got <- "bad CONNECT"
			return
		}
		io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n")
		b := make([]byte, len(tunnelled))
		io.ReadFull(br, b)
		got <- string(b)
		io.WriteString(c, "HTTP/1.1 101 nonsense\r\n\r\nback")
	})
	c := identPipe(t, addr)
	io.WriteString(c, "CONNECT svc:443 HTTP/1.1\r\nHost: svc:443\r\n\r\n"+tunnelled)
	br := bufio.NewReader(c)
	// Not readResponse: the tunnel is no body.
	if resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect}); err != nil || resp.StatusCode != 200 {
		t.Fatalf("response %v, %v", resp, err)
	}
	if s := <-got; s != tunnelled {
		t.Fatalf("target read %q in the tunnel", s)
	}
	back, err := io.ReadAll(br)
	if err != nil || string(back) != "HTTP/1.1 101 nonsense\r\n\r\nback" {
		t.Fatalf("client read %q, %v in the tunnel", back, err)
	}
}

// Pipelined requests with every response framing; the client gets the
// target's bytes exactly, the responses are matched in order (a refused
// Upgrade at the end is recognised as refused even though a body before it
// contains a fake 101 status line), and the request after it carries the
// real identity.
func TestHTTPIdentityPipelinedFramings(t *testing.T) {
	reqs := "GET /chunked HTTP/1.1\r\nHost: a\r\n\r\n" +
		"GET /length HTTP/1.1\r\nHost: a\r\n\r\n" +
		"DELETE /nocontent HTTP/1.1\r\nHost: a\r\n\r\n" +
		"HEAD /head HTTP/1.1\r\nHost: a\r\n\r\n" +
		"GET /notmodified HTTP/1.1\r\nHost: a\r\n\r\n" +
		"GET /early HTTP/1.1\r\nHost: a\r\n\r\n" +
		"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n" +
		"GET /admin HTTP/1.1\r\nHost: a\r\n" + testHdr + ": admin\r\n\r\n"
	resps := []string{
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n5;ext=1\r\nHTTP/\r\n1b\r\n1.1 101 Switching Protocols\r\n0\r\nX-T: 1\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 38\r\n\r\nHTTP/1.1 101 Switching Protocols\r\n\r\n\r\n",
		"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n",
		"HTTP/1.1 304 Not Modified\r\nContent-Length: 7\r\n\r\n",
		"HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok",
		"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ndone",
	}
	methods := []string{"GET", "GET", "DELETE", "HEAD", "GET", "GET", "GET", "GET"}
	var mu sync.Mutex
	var seen []string
	addr := rawBackend(t, func(c net.Conn, br *bufio.Reader) {
		for i := range resps {
			req, err := http.ReadRequest(br)
			if err != nil {
				t.Errorf("target: request %d: %v", i, err)
				return
			}
			mu.Lock()
			seen = append(seen, req.URL.Path+" "+strings.Join(identityValues(req.Header), ","))
			mu.Unlock()
			io.WriteString(c, resps[i])
		}
	})
	c := identPipe(t, addr)
	if _, err := io.WriteString(c, reqs); err != nil {
		t.Fatal(err)
	}
	c.(*net.TCPConn).CloseWrite()
	all, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.Join(resps, ""); string(all) != want {
		t.Fatalf("client got\n%q\nwant\n%q", all, want)
	}
	br := bufio.NewReader(bytes.NewReader(all))
	wantStatus := []int{200, 200, 204, 200, 304, 200, 400, 200}
	for i, m := range methods {
		resp := readResponse(t, br, m)
		if resp.StatusCode == 103 {
			resp = readResponse(t, br, m)
		}
		if resp.StatusCode != wantStatus[i] {
			t.Errorf("response %d: %s", i, resp.Status)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != len(resps) {
		t.Fatalf("target saw %q", seen)
	}
	for _, s := range seen {
		if !strings.HasSuffix(s, " alice@example.com") {
			t.Fatalf("target saw %q", seen)
		}
	}
}

// The bytes after an Upgrade are held back until the target answers; a
// refusal after 100 Continue and an interim 103 still counts as a refusal.
func TestHTTPIdentityHoldsBackUntilAnswer(t *testing.T) {
	result := make(chan string, 1)
	addr := rawBackend(t, func(c net.Conn, br *bufio.Reader) {
		req, err := http.ReadRequest(br)
		if err != nil {
			result <- err.Error()
			return
		}
		io.Copy(io.Discard, req.Body)
		c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		if _, err := br.Peek(1); err == nil {
			result <- "bytes after the Upgrade forwarded before the answer"
			return
		}
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\n\r\n")
		io.WriteString(c, "HTTP/1.1 426 Upgrade Required\r\nContent-Length: 3\r\n\r\nno!")
		req, err = http.ReadRequest(br)
		if err != nil {
			result <- err.Error()
			return
		}
		result <- req.URL.Path + " " + strings.Join(identityValues(req.Header), ",")
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
	})
	c := identPipe(t, addr)
	io.WriteString(c, "POST /up HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: x\r\nContent-Length: 2\r\n\r\nhi"+
		"GET /admin HTTP/1.1\r\nHost: a\r\n"+testHdr+": admin\r\n\r\n")
	if s := <-result; s != "/admin alice@example.com" {
		t.Fatal(s)
	}
	br := bufio.NewReader(c)
	for _, want := range []int{100, 103, 426, 200} {
		if resp := readResponse(t, br, "POST"); resp.StatusCode != want {
			t.Fatalf("got %s, want %d", resp.Status, want)
		}
	}
}

// Expect: 100-continue against net/http, then a refused Upgrade and a
// smuggling attempt: the identity stays the real one throughout.
func TestHTTPIdentity100Continue(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		seen = append(seen, r.URL.Path+" "+string(body)+" "+strings.Join(identityValues(r.Header), ","))
		mu.Unlock()
		io.WriteString(w, "ok")
	}))
	defer backend.Close()
	c := identPipe(t, backend.Listener.Addr().String())
	br := bufio.NewReader(c)
	io.WriteString(c, "PUT /put HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")
	if resp := readResponse(t, br, "PUT"); resp.StatusCode != 100 {
		t.Fatalf("got %s, want 100", resp.Status)
	}
	io.WriteString(c, "body"+"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"+
		"GET /admin HTTP/1.1\r\nHost: a\r\n"+testHdr+": admin\r\n\r\n")
	for i := 0; i < 3; i++ {
		if resp := readResponse(t, br, "GET"); resp.StatusCode != 200 {
			t.Fatalf("response %d: %s", i, resp.Status)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	want := []string{"/put body alice@example.com", "/ws  alice@example.com", "/admin  alice@example.com"}
	if strings.Join(seen, "|") != strings.Join(want, "|") {
		t.Fatalf("target saw %q, want %q", seen, want)
	}
}

// A response delimited by the close of the connection reaches the client
// whole; after it nothing can be matched, so a later Upgrade is refused.
func TestHTTPIdentityResponseUntilClose(t *testing.T) {
	body := "HTTP/1.1 101 Switching Protocols\r\n\r\n" + strings.Repeat("x", 100000)
	addr := rawBackend(t, func(c net.Conn, br *bufio.Reader) {
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n"+body)
	})
	c := identPipe(t, addr)
	io.WriteString(c, "GET / HTTP/1.0\r\nHost: a\r\n\r\n")
	resp := readResponse(t, bufio.NewReader(c), "GET")
	if b, _ := io.ReadAll(resp.Body); string(b) != body {
		t.Fatalf("body of %d bytes, want %d", len(b), len(body))
	}

	x := newHTTPExchange()
	var out bytes.Buffer
	rt := newRespTracker(&out, x)
	x.push(0)
	rt.Write([]byte("HTTP/1.1 200 OK\r\n\r\nHTTP/1.1 101 Switching Protocols\r\n\r\n"))
	x.push(reqUpgrade)
	if x.awaitSwitch() {
		t.Fatal("upgrade confirmed after a response delimited by the close")
	}
}

// trackerResult is where the tracker ended up.
type trackerResult struct {
	responses int
	verdict   int8
	done      bool
	state     int
}

// track feeds a response stream for requests of the given kinds, in pieces
// of piece bytes, or if piece is 0 in two parts cut at cut. ok reports that
// the stream was forwarded unchanged.
func track(kinds []uint8, stream []byte, piece, cut int) (res trackerResult, ok bool) {
	x := newHTTPExchange()
	for _, k := range kinds {
		x.push(k)
	}
	cw := &cmpWriter{want: stream}
	rt := newRespTracker(cw, x)
	write := func(b []byte) {
		rt.Write(b)
		if len(rt.line) > maxHeaderBytes {
			panic("line buffer over the limit")
		}
	}
	if piece > 0 {
		for i := 0; i < len(stream); i += piece {
			write(stream[i:min(i+piece, len(stream))])
		}
	} else {
		write(stream[:cut])
		write(stream[cut:])
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	return trackerResult{rt.responses, x.verdict, x.done, rt.state}, !cw.bad && len(cw.want) == 0
}

// cmpWriter checks that what is written is want, without keeping it.
type cmpWriter struct {
	want []byte
	bad  bool
}

func (c *cmpWriter) Write(b []byte) (int, error) {
	if len(b) > len(c.want) || !bytes.Equal(b, c.want[:len(b)]) {
		c.bad = true
		return len(b), nil
	}
	c.want = c.want[len(b):]
	return len(b), nil
}

func TestRespTracker(t *testing.T) {
	for _, tc := range []struct {
		name   string
		kinds  []uint8
		stream string
		want   trackerResult
	}{
		{"length", []uint8{0, 0}, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", trackerResult{2, 0, false, rsStatus}},
		{"chunked", []uint8{0}, "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\nT: 1\r\n\r\n", trackerResult{1, 0, false, rsStatus}},
		{"bare LF", []uint8{0}, "HTTP/1.1 200 OK\nContent-Length: 1\n\nx", trackerResult{1, 0, false, rsStatus}},
		{"head", []uint8{reqHead, 0}, "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nHTTP/1.1 204 No\r\n\r\n", trackerResult{2, 0, false, rsStatus}},
		{"upgrade ok", []uint8{0, reqUpgrade}, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nHTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 101 Switching Protocols\r\n\r\nxx", trackerResult{2, 1, true, rsOpaque}},
		{"upgrade refused", []uint8{reqUpgrade}, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", trackerResult{1, -1, false, rsStatus}},
		{"connect ok", []uint8{reqConnect}, "HTTP/1.1 200 Connection Established\r\n\r\nGET /", trackerResult{1, 1, true, rsOpaque}},
		// RFC 9110 §9.3.6: a 2xx with Content-Length or Transfer-Encoding
		// is an ordinary HTTP message, not a tunnel.
		{"connect 200 with length", []uint8{reqConnect}, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nGET /", trackerResult{1, -1, false, rsStatus}},
		{"connect 200 chunked", []uint8{reqConnect}, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", trackerResult{1, -1, false, rsStatus}},
		{"connect refused", []uint8{reqConnect}, "HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\nno", trackerResult{1, -1, false, rsStatus}},
		{"101 unasked", []uint8{0, reqUpgrade}, "HTTP/1.1 101 Switching Protocols\r\n\r\n", trackerResult{0, -1, true, rsOpaque}},
		{"unsolicited", nil, "HTTP/1.1 408 Request Timeout\r\n\r\n", trackerResult{0, -1, true, rsOpaque}},
		{"until close", []uint8{0, reqUpgrade}, "HTTP/1.1 200 OK\r\n\r\nHTTP/1.1 101 Switching Protocols\r\n\r\n", trackerResult{0, -1, true, rsOpaque}},
		{"te not chunked", []uint8{0, reqUpgrade}, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", trackerResult{0, -1, true, rsOpaque}},
		{"te wins", []uint8{0}, "HTTP/1.1 200 OK\r\nContent-Length: 99\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", trackerResult{1, 0, false, rsStatus}},
		{"two lengths", []uint8{reqUpgrade}, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", trackerResult{0, -1, true, rsOpaque}},
		{"signed length", []uint8{0}, "HTTP/1.1 200 OK\r\nContent-Length: -0\r\n\r\n", trackerResult{0, -1, true, rsOpaque}},
		{"same lengths", []uint8{0}, "HTTP/1.1 200 OK\r\nContent-Length: 1, 1\r\n\r\nx", trackerResult{1, 0, false, rsStatus}},
		{"folding", []uint8{0}, "HTTP/1.1 200 OK\r\nA: b\r\n c\r\nContent-Length: 0\r\n\r\n", trackerResult{0, -1, true, rsOpaque}},
		{"bad status", []uint8{0}, "HTTP/2 200\r\n\r\n", trackerResult{0, -1, true, rsOpaque}},
		{"bad chunk", []uint8{0}, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", trackerResult{0, -1, true, rsOpaque}},
		{"chunk CRLF missing", []uint8{0}, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n", trackerResult{0, -1, true, rsOpaque}},
		{"huge head", []uint8{reqUpgrade}, "HTTP/1.1 200 OK\r\nA: " + strings.Repeat("a", maxHeaderBytes) + "\r\n\r\n", trackerResult{0, -1, true, rsOpaque}},
	} {
		for _, piece := range []int{len(tc.stream), 1, 7} {
			got, ok := track(tc.kinds, []byte(tc.stream), piece, 0)
			if got != tc.want {
				t.Errorf("%s (pieces of %d): got %+v, want %+v", tc.name, piece, got, tc.want)
			}
			if !ok {
				t.Errorf("%s (pieces of %d): stream altered", tc.name, piece)
			}
		}
	}
}

// FuzzRespTracker checks that the response framing parser survives any
// input, forwards it unchanged, bounds its line buffer and reaches the same
// result however the stream is split into reads.
func FuzzRespTracker(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n0\r\nT: 1\r\n\r\n",
		"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: <a>\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
		"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\nopaque",
		"HTTP/1.1 200 Connection established\r\n\r\nGET / HTTP/1.1\r\n\r\n",
		"HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\nHTTP/1.0 200 OK\r\n\r\nrest",
		"HTTP/1.1 200 OK\r\nContent-Length: 1, 1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
		"HTTP/1.1 404 Not Found\nContent-Length: 0\n\n",
	} {
		f.Add([]byte(s), []byte{0, reqHead, reqUpgrade, reqConnect}, uint16(7))
	}
	f.Fuzz(func(t *testing.T, stream, kinds []byte, cut uint16) {
		if len(kinds) > 64 {
			kinds = kinds[:64]
		}
		if len(stream) > 4<<10 {
			stream = stream[:4<<10] // keeps the byte-by-byte run (and minimization) fast
		}
		ks := make([]uint8, len(kinds))
		for i, k := range kinds {
			ks[i] = k & (reqHead | reqUpgrade | reqConnect)
		}
		a, okA := track(ks, stream, len(stream)+1, 0)
		b, okB := track(ks, stream, 1, 0)
		c, okC := track(ks, stream, 0, int(cut)%(len(stream)+1))
		if a != b || a != c {
			t.Fatalf("split changes the result: whole %+v, bytewise %+v, cut %+v", a, b, c)
		}
		if !okA || !okB || !okC {
			t.Fatal("stream altered")
		}
		if a.verdict > 0 && a.state != rsOpaque {
			t.Fatalf("switched but still parsing: %+v", a)
		}
	})
}

// idleProbe is a client-side writer that notes, at each write, whether the
// exchange already counts every request as answered.
type idleProbe struct {
	x        *httpExchange
	buf      bytes.Buffer
	idleSeen []bool
}

func (p *idleProbe) Write(b []byte) (int, error) {
	p.x.mu.Lock()
	p.idleSeen = append(p.idleSeen, p.x.head == len(p.x.q))
	p.x.mu.Unlock()
	return p.buf.Write(b)
}

// TestRespTrackerAnswersAfterWriting: a request counts as answered only
// once its response has reached the client. Otherwise the 405 for a
// pipelined CONNECT (written when the exchange goes idle) could overtake
// the response to the request before it, and the client would take the
// 405 for that request's answer (found under load by
// TestHTTPIdentityConnectSmuggling).
func TestRespTrackerAnswersAfterWriting(t *testing.T) {
	x := newHTTPExchange()
	p := &idleProbe{x: x}
	tr := newRespTracker(p, x)
	x.push(0)
	resp := "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
	for _, chunk := range []string{resp[:10], resp[10 : len(resp)-1], resp[len(resp)-1:]} {
		if _, err := tr.Write([]byte(chunk)); err != nil {
			t.Fatal(err)
		}
	}
	for i, idle := range p.idleSeen {
		if idle {
			t.Fatalf("write %d of the response: the request already counted as answered", i)
		}
	}
	x.mu.Lock()
	idle := x.head == len(x.q)
	x.mu.Unlock()
	if !idle || p.buf.String() != resp {
		t.Fatalf("after the response: idle %v, client got %q", idle, p.buf.String())
	}
}
