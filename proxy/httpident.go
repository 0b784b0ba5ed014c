package proxy

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/textproto"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// HTTP identity mode (Server.HTTPIdentityHeader): the client-to-target byte
// stream is parsed as HTTP/1.x requests (keep-alive aware); every header the
// client sent whose name matches the identity header - case-insensitively,
// and treating '_' as '-' because many back ends (CGI, WSGI, Rack, nginx with
// underscores_in_headers) do - is removed, and one "NAME: identity" header
// is added. Request framing is re-emitted canonically (Content-Length or
// chunked, so no request smuggling through ambiguous framing), bodies are
// streamed. Responses flow back untouched but are parsed for their framing
// (httpresp.go), and only after the target switched protocols - a 101 to an
// Upgrade request, a 2xx to a CONNECT - is the rest of the connection
// forwarded opaquely; a refused Upgrade or CONNECT is followed by more
// parsed requests.

const (
	maxHeaderBytes = 1 << 20 // like net/http's DefaultMaxHeaderBytes
	httpBufSize    = 4 << 10
)

// ValidHeaderValue reports whether s can be sent as an HTTP header value
// without being able to inject anything (no control characters).
func ValidHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f {
			return false
		}
	}
	return s == strings.TrimSpace(s)
}

// ValidHeaderName reports whether name is an HTTP header field name (token).
func ValidHeaderName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			continue
		}
		if !strings.ContainsRune("!#$%&'*+-.^_`|~", rune(c)) {
			return false
		}
	}
	return true
}

func normHeaderName(s string) string {
	return strings.ToLower(strings.ReplaceAll(s, "_", "-"))
}

// headLimiter bounds how much the request head parser may read.
type headLimiter struct {
	r       io.Reader
	n       int64
	limited bool
}

func (h *headLimiter) Read(b []byte) (int, error) {
	if !h.limited {
		return h.r.Read(b)
	}
	if h.n <= 0 {
		return 0, errHeadTooLarge
	}
	if int64(len(b)) > h.n {
		b = b[:h.n]
	}
	n, err := h.r.Read(b)
	h.n -= int64(n)
	return n, err
}

var errHeadTooLarge = errors.New("HTTP request head too large")

// flushWriter flushes after every write so streamed bodies are not delayed.
type flushWriter struct{ bw *bufio.Writer }

func (f flushWriter) Write(b []byte) (int, error) {
	n, err := f.bw.Write(b)
	if err == nil {
		err = f.bw.Flush()
	}
	return n, err
}

// rewriteHTTP copies HTTP/1.x requests from src to dst, replacing header
// name (which must satisfy ValidHeaderName) with identity (which must
// satisfy ValidHeaderValue). It returns nil when src ends cleanly between
// requests. x follows the responses (respTracker): after an Upgrade or a
// CONNECT, rewriteHTTP forwards nothing more until the target's answer, and
// goes opaque only if the target switched protocols. A nil x treats every
// Upgrade and CONNECT as refused.
func rewriteHTTP(dst io.Writer, src io.Reader, name, identity string, x *httpExchange) error {
	lim := &headLimiter{r: src}
	br := bufio.NewReaderSize(lim, httpBufSize)
	want := normHeaderName(name)
	canon := textproto.CanonicalMIMEHeaderKey(name)
	for {
		lim.limited, lim.n = true, maxHeaderBytes+httpBufSize
		if _, err := br.Peek(1); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		req, err := http.ReadRequest(br)
		lim.limited = false
		if err != nil {
			return fmt.Errorf("bad HTTP request: %w", err)
		}
		for k := range req.Header {
			if normHeaderName(k) == want {
				delete(req.Header, k)
			}
		}
		dropConnectionOption(req.Header, want)
		if req.ProtoMajor != 1 {
			return fmt.Errorf("bad HTTP request: unsupported protocol %s", req.Proto)
		}
		if req.Method == http.MethodConnect && x != nil && x.refuseConnect != nil {
			return x.refuseConnect()
		}
		var kind uint8
		if req.Method == http.MethodHead {
			kind |= reqHead
		}
		if req.Method == http.MethodConnect {
			kind |= reqConnect
		} else if req.Header.Get("Upgrade") != "" && headerHasToken(req.Header, "Connection", "upgrade") {
			kind |= reqUpgrade
		}
		// No "Connection: close" is added to an Upgrade or CONNECT (it
		// was, when the rest was forwarded opaquely at once): the client's
		// next bytes now wait for the target's answer and are parsed as
		// HTTP unless it switched, so a target that refuses and keeps the
		// connection alive can no longer be handed a smuggled request,
		// while "close" would break keep-alive after every refused
		// upgrade (a WebSocket fallback, a curl h2c upgrade attempt).
		if x != nil {
			x.push(kind) // before the request is written: its response cannot come first
		}
		bw := bufWriterPool.Get().(*bufio.Writer)
		bw.Reset(dst)
		err = writeHead(bw, req, canon, want, identity)
		if err == nil {
			err = bw.Flush()
		}
		if err == nil {
			err = writeBody(bw, req, want)
		}
		if err == nil {
			err = bw.Flush()
		}
		bw.Reset(nil)
		bufWriterPool.Put(bw)
		if err != nil {
			return err
		}
		if kind&(reqUpgrade|reqConnect) != 0 && x != nil && x.awaitSwitch() {
			// The target switched protocols: whatever follows is not
			// HTTP any more, forward it as is. Until its answer the
			// client's next bytes were held back; if it refused, they
			// are parsed as the next request.
			if n := br.Buffered(); n > 0 {
				b, _ := br.Peek(n)
				if _, err := dst.Write(b); err != nil {
					return err
				}
			}
			return copyLowMem(dst, src, nil)
		}
	}
}

// dropConnectionOption removes the connection option naming the identity
// header (normalized name want): a target that honours hop-by-hop
// nominations would otherwise drop the identity header the proxy adds.
func dropConnectionOption(h http.Header, want string) {
	vs := h.Values("Connection")
	if len(vs) == 0 {
		return
	}
	var keep []string
	dropped := false
	for _, v := range vs {
		for _, t := range strings.Split(v, ",") {
			t = strings.TrimSpace(t)
			switch {
			case normHeaderName(t) == want:
				dropped = true
			case t != "":
				keep = append(keep, t)
			}
		}
	}
	switch {
	case !dropped:
	case len(keep) == 0:
		h.Del("Connection")
	default:
		h.Set("Connection", strings.Join(keep, ", "))
	}
}

func headerHasToken(h http.Header, key, token string) bool {
	for _, v := range h.Values(key) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

func writeHead(bw *bufio.Writer, req *http.Request, name, stripName, identity string) error {
	uri := req.RequestURI
	if uri == "" || strings.ContainsAny(uri, " \r\n") {
		return errors.New("bad request URI")
	}
	fmt.Fprintf(bw, "%s %s HTTP/%d.%d\r\n", req.Method, uri, req.ProtoMajor, req.ProtoMinor)
	if req.Host != "" {
		if !ValidHeaderValue(req.Host) {
			return errors.New("bad Host")
		}
		fmt.Fprintf(bw, "Host: %s\r\n", req.Host)
	}
	h := req.Header
	h.Del("Content-Length")
	h.Del("Transfer-Encoding")
	h.Del("Trailer")
	if err := h.Write(bw); err != nil {
		return err
	}
	chunked := len(req.TransferEncoding) > 0 && req.TransferEncoding[0] == "chunked"
	switch {
	case chunked:
		bw.WriteString("Transfer-Encoding: chunked\r\n")
		if len(req.Trailer) > 0 {
			var keys []string
			for k := range req.Trailer {
				if normHeaderName(k) != stripName && ValidHeaderName(k) {
					keys = append(keys, k)
				}
			}
			sort.Strings(keys)
			if len(keys) > 0 {
				fmt.Fprintf(bw, "Trailer: %s\r\n", strings.Join(keys, ", "))
			}
		}
	case req.ContentLength > 0 || (req.ContentLength == 0 && methodWantsLength(req.Method)):
		fmt.Fprintf(bw, "Content-Length: %s\r\n", strconv.FormatInt(req.ContentLength, 10))
	}
	fmt.Fprintf(bw, "%s: %s\r\n\r\n", name, identity)
	return nil
}

func methodWantsLength(m string) bool {
	return m == http.MethodPost || m == http.MethodPut || m == http.MethodPatch
}

var bufWriterPool = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, httpBufSize) }}

func writeBody(bw *bufio.Writer, req *http.Request, stripName string) error {
	if req.Body == nil || req.Body == http.NoBody {
		return nil
	}
	defer req.Body.Close()
	chunked := len(req.TransferEncoding) > 0 && req.TransferEncoding[0] == "chunked"
	if !chunked {
		return copyBody(flushWriter{bw}, req.Body)
	}
	cw := httputil.NewChunkedWriter(flushWriter{bw})
	if err := copyBody(cw, req.Body); err != nil {
		return err
	}
	if err := cw.Close(); err != nil { // writes "0\r\n"
		return err
	}
	for k, vs := range req.Trailer {
		if normHeaderName(k) == stripName {
			continue // a spoofed identity in a trailer
		}
		if !ValidHeaderName(k) {
			return errors.New("bad trailer name")
		}
		for _, v := range vs {
			if !ValidHeaderValue(strings.TrimSpace(v)) {
				return errors.New("bad trailer value")
			}
			fmt.Fprintf(bw, "%s: %s\r\n", k, strings.TrimSpace(v))
		}
	}
	_, err := bw.WriteString("\r\n")
	return err
}

// copyBody streams a request body without holding a big buffer while the
// client is slow; a body shorter than announced is an error.
func copyBody(dst io.Writer, body io.Reader) error {
	return copyLowMem(dst, body, nil)
}
