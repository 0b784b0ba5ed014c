package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
)

const testHdr = "X-Mtls-Identity"

// readAll parses every request in out, with bodies.
func parseRequests(t testing.TB, out []byte) ([]*http.Request, [][]byte) {
	t.Helper()
	br := bufio.NewReader(bytes.NewReader(out))
	var reqs []*http.Request
	var bodies [][]byte
	for {
		if _, err := br.Peek(1); err == io.EOF {
			return reqs, bodies
		}
		req, err := http.ReadRequest(br)
		if err != nil {
			t.Fatalf("output does not parse as HTTP: %v\n%q", err, out)
		}
		body, err := io.ReadAll(req.Body)
		if err != nil {
			t.Fatalf("output body: %v\n%q", err, out)
		}
		reqs = append(reqs, req)
		bodies = append(bodies, body)
	}
}

// identityValues returns every value of a header matching testHdr the way a
// lenient back end would ('_' as '-', any case).
func identityValues(h http.Header) []string {
	var vs []string
	for k, v := range h {
		if normHeaderName(k) == normHeaderName(testHdr) {
			vs = append(vs, v...)
		}
	}
	return vs
}

func rewrite(t *testing.T, in string) ([]byte, error) {
	t.Helper()
	var out bytes.Buffer
	err := rewriteHTTP(&out, strings.NewReader(in), testHdr, "alice@example.com", nil)
	return out.Bytes(), err
}

func TestHTTPIdentityKeepAliveAndSpoofing(t *testing.T) {
	in := "GET /a HTTP/1.1\r\nHost: svc\r\nX-Mtls-Identity: admin\r\nx-mtls-identity: root\r\nX_Mtls_Identity: root2\r\nAccept: */*\r\n\r\n" +
		"POST /b?q=1 HTTP/1.1\r\nHost: svc\r\nContent-Length: 5\r\n\r\nhello" +
		"PUT /c HTTP/1.1\r\nHost: svc\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum, X-Mtls-Identity\r\n\r\n3\r\nabc\r\n4\r\ndefg\r\n0\r\nX-Sum: 7\r\nX-Mtls-Identity: spoof\r\n\r\n" +
		"GET /d HTTP/1.0\r\n\r\n"
	out, err := rewrite(t, in)
	if err != nil {
		t.Fatal(err)
	}
	reqs, bodies := parseRequests(t, out)
	if len(reqs) != 4 {
		t.Fatalf("%d requests forwarded, want 4:\n%s", len(reqs), out)
	}
	for i, r := range reqs {
		if vs := identityValues(r.Header); len(vs) != 1 || vs[0] != "alice@example.com" {
			t.Errorf("request %d: identity headers %q", i, vs)
		}
		if vs := identityValues(r.Trailer); len(vs) != 0 {
			t.Errorf("request %d: spoofed trailer survived: %q", i, vs)
		}
	}
	if reqs[0].URL.Path != "/a" || reqs[0].Host != "svc" || reqs[0].Header.Get("Accept") != "*/*" {
		t.Errorf("request 0 altered: %+v", reqs[0])
	}
	if reqs[1].RequestURI != "/b?q=1" || string(bodies[1]) != "hello" {
		t.Errorf("request 1: %q %q", reqs[1].RequestURI, bodies[1])
	}
	if string(bodies[2]) != "abcdefg" || reqs[2].Trailer.Get("X-Sum") != "7" || len(reqs[2].TransferEncoding) == 0 {
		t.Errorf("request 2: body %q trailer %v te %v", bodies[2], reqs[2].Trailer, reqs[2].TransferEncoding)
	}
	if reqs[3].ProtoMinor != 0 {
		t.Errorf("request 3 proto %s", reqs[3].Proto)
	}
	if bytes.Contains(out, []byte("admin")) || bytes.Contains(out, []byte("root")) || bytes.Contains(out, []byte("spoof")) {
		t.Errorf("spoofed value forwarded:\n%s", out)
	}
}

func TestHTTPIdentitySmugglingFraming(t *testing.T) {
	// Both framings: Go picks chunked; the target must see one framing only.
	in := "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
	out, err := rewrite(t, in)
	if err == nil {
		if bytes.Count(bytes.ToLower(out), []byte("content-length")) != 0 {
			t.Fatalf("both framings forwarded:\n%s", out)
		}
	}
	// Obsolete line folding cannot smuggle a second header line.
	out, err = rewrite(t, "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n X-Mtls-Identity: root\r\n\r\n")
	if err == nil {
		reqs, _ := parseRequests(t, out)
		for _, r := range reqs {
			if vs := identityValues(r.Header); len(vs) != 1 || vs[0] != "alice@example.com" {
				t.Fatalf("identity headers %q", vs)
			}
		}
	}
}

// Without a response showing the switch (here: no tracker at all), what
// follows an Upgrade is parsed as HTTP, never forwarded opaquely.
func TestHTTPIdentityUpgradeWithoutSwitchIsParsed(t *testing.T) {
	in := "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\nX-Mtls-Identity: x\r\n\r\n" +
		"GET /admin HTTP/1.1\r\nHost: a\r\nX-Mtls-Identity: admin\r\n\r\n"
	out, err := rewrite(t, in)
	if err != nil {
		t.Fatal(err)
	}
	reqs, _ := parseRequests(t, out)
	if len(reqs) != 2 || reqs[1].URL.Path != "/admin" {
		t.Fatalf("%d requests forwarded:\n%s", len(reqs), out)
	}
	for i, r := range reqs {
		if vs := identityValues(r.Header); len(vs) != 1 || vs[0] != "alice@example.com" {
			t.Errorf("request %d: identity headers %q", i, vs)
		}
	}
	if headerHasToken(reqs[0].Header, "Connection", "close") {
		t.Errorf("Connection: close added: %q", reqs[0].Header.Values("Connection"))
	}
	if _, err := rewrite(t, "GET /ws HTTP/1.1\r\nConnection: upgrade\r\nUpgrade: x\r\n\r\n\x81\x05hello"); err == nil {
		t.Error("frames after an unconfirmed upgrade accepted as HTTP")
	}
}

func TestHTTPIdentityErrors(t *testing.T) {
	for name, in := range map[string]string{
		"garbage":    "\x16\x03\x01\x00\x05hello",
		"http2":      "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
		"huge head":  "GET / HTTP/1.1\r\nX-A: " + strings.Repeat("a", maxHeaderBytes+10000) + "\r\n\r\n",
		"short body": "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc",
	} {
		if _, err := rewrite(t, in); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if out, err := rewrite(t, ""); err != nil || len(out) != 0 {
		t.Errorf("empty stream: %v %q", err, out)
	}
}

func TestHeaderValidation(t *testing.T) {
	if ValidHeaderValue("a\r\nb") || ValidHeaderValue("a\x00") || ValidHeaderValue(" a") || !ValidHeaderValue("alice@example.com") || !ValidHeaderValue("é") {
		t.Error("ValidHeaderValue")
	}
	if ValidHeaderName("") || ValidHeaderName("a b") || ValidHeaderName("a:b") || !ValidHeaderName("X-Id_1") {
		t.Error("ValidHeaderName")
	}
}

// errWriter fails after n bytes, to check error propagation.
type errWriter struct{ n int }

func (e *errWriter) Write(b []byte) (int, error) {
	if len(b) > e.n {
		return 0, errors.New("write failed")
	}
	e.n -= len(b)
	return len(b), nil
}

func TestHTTPIdentityWriteError(t *testing.T) {
	in := "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n" + strings.Repeat("x", 100000)
	if err := rewriteHTTP(&errWriter{n: 1000}, strings.NewReader(in), testHdr, "id", nil); err == nil {
		t.Fatal("write error swallowed")
	}
}

func FuzzHTTPIdentity(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: a\r\nX-Mtls-Identity: root\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\nX-Mtls-Identity: t\r\n\r\n",
		"POST / HTTP/1.1\r\nContent-Length: 2\r\n\r\nhiGET /x HTTP/1.0\r\nx_mtls_identity: y\r\n\r\n",
		"GET / HTTP/1.1\r\nConnection: upgrade\r\nUpgrade: x\r\n\r\nraw",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var out bytes.Buffer
		// Without a response tracker every Upgrade and CONNECT counts as
		// refused: the whole stream is parsed.
		err := rewriteHTTP(&out, bytes.NewReader(in), testHdr, "alice", nil)
		if err != nil {
			return // partial output after an error is cut off by the caller closing
		}
		reqs, _ := parseRequests(t, out.Bytes())
		for _, r := range reqs {
			if vs := identityValues(r.Header); len(vs) != 1 || vs[0] != "alice" {
				t.Fatalf("identity headers %q in\n%q", vs, out.Bytes())
			}
			if vs := identityValues(r.Trailer); len(vs) != 0 {
				t.Fatalf("identity trailer %q", vs)
			}
		}
	})
}
