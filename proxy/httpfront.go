package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"
)

// HTTP identity mode (Server.HTTPIdentityHeader) runs on Go's HTTP stack.
// Each authenticated connection is served by net/http (HTTP/1.1) or by
// golang.org/x/net/http2 (HTTP/2, when the client chose "h2" by ALPN), and
// every request is forwarded by net/http/httputil.ReverseProxy. In its
// Rewrite step every copy of the identity header the client sent - in any
// letter case, and with '_' for '-', since many back ends (CGI, WSGI, Rack,
// nginx with underscores_in_headers) read them alike - is deleted from the
// request and its trailers, and one header carrying the authenticated peer
// identity is set. The proxy parses every request itself and writes a new
// one to the target, so no framing the client chose (Transfer-Encoding and
// Content-Length together, duplicate lengths, obsolete line folding,
// pipelining) reaches the target as it was sent.
//
// Nothing the client sends after the request head can become a request of
// its own behind the proxy's back:
//   - An Upgrade passes only for the protocols of Server.HTTPAllowUpgrade
//     (default websocket), and only to an HTTP/1.1 target; then, once the
//     target answers 101, the connection carries that protocol both ways.
//     Any other offer is removed from the request (Upgrade, HTTP2-Settings
//     and their Connection tokens) and the request is served as a plain
//     HTTP/1.1 request: an "Upgrade: h2c" offer is never honoured, so a
//     client cannot switch to HTTP/2 frames the proxy does not read.
//   - The HTTP/2 connection preface ("PRI * HTTP/2.0") on a connection
//     that did not choose "h2" by ALPN is answered 400 and the connection
//     closed.
//   - CONNECT is answered 405 (and, over HTTP/1.1, the connection closed)
//     unless Server.AllowConnect; with it, CONNECT is forwarded as an
//     ordinary request and its answer as an ordinary response: the proxy
//     never opens a tunnel.
// Each refusal is counted in mtls_proxy_http_refused_total.

// Target protocols of HTTP identity mode (Server.TargetProtocol).
const (
	TargetHTTP1 = "http1" // HTTP/1.1 (the default)
	TargetH2C   = "h2c"   // HTTP/2 over cleartext TCP with prior knowledge (gRPC servers)
)

// DefaultHTTPAllowUpgrade is the Upgrade allow list of HTTP identity mode
// when Server.HTTPAllowUpgrade is nil.
var DefaultHTTPAllowUpgrade = []string{"websocket"}

// Reasons of mtls_proxy_http_refused_total.
const (
	refusedH2CUpgrade = "h2c_upgrade" // an Upgrade: h2c offer, removed
	refusedUpgrade    = "upgrade"     // another Upgrade not on the allow list, removed
	refusedH2Preface  = "h2_preface"  // PRI * HTTP/2.0 on an HTTP/1.1 connection: 400
	refusedConnect    = "connect"     // CONNECT without AllowConnect: 405
)

var httpRefusedReasons = []string{refusedH2CUpgrade, refusedUpgrade, refusedH2Preface, refusedConnect}

// ValidHeaderValue reports whether s can be sent as an HTTP header value
// without being able to inject anything: no control characters, no white
// space at either end. An identity that fails it is refused in HTTP
// identity mode.
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
	return name != "" && httpguts.ValidHeaderFieldName(name)
}

// normHeaderName is how lenient back ends compare header names: any case,
// '_' as '-'.
func normHeaderName(s string) string {
	return strings.ToLower(strings.ReplaceAll(s, "_", "-"))
}

// identityKey is the context key of the authenticated peer identity of the
// connection a request arrived on; logKey that of the connection's logger.
type (
	identityKey struct{}
	logKey      struct{}
)

// httpFront is HTTP identity mode of one Server.
type httpFront struct {
	header       string // the identity header, as configured
	norm         string // normHeaderName(header)
	allowConnect bool
	upgrades     map[string]bool // lower-case protocol names
	target       *url.URL
	rp           *httputil.ReverseProxy
	h1           *http.Server // every HTTP/1.1 connection (one Serve per connection)
	h2           *http2.Server
	log          *slog.Logger
	metrics      *Metrics
	closeTrans   func()
}

// newHTTPFront builds HTTP identity mode for s (called by Serve).
func newHTTPFront(s *Server) (*httpFront, error) {
	f := &httpFront{
		header:       s.HTTPIdentityHeader,
		norm:         normHeaderName(s.HTTPIdentityHeader),
		allowConnect: s.AllowConnect,
		upgrades:     map[string]bool{},
		log:          s.logger(),
		metrics:      s.Metrics,
	}
	ups := s.HTTPAllowUpgrade
	if ups == nil {
		ups = DefaultHTTPAllowUpgrade
	}
	for _, u := range ups {
		if !ValidHeaderName(u) {
			return nil, fmt.Errorf("proxy: invalid Upgrade protocol %q in the allow list", u)
		}
		if strings.EqualFold(u, "h2c") {
			return nil, errors.New("proxy: h2c cannot be on the Upgrade allow list: the proxy does not read HTTP/2 after an upgrade")
		}
		f.upgrades[strings.ToLower(u)] = true
	}

	network, addr := SplitNetworkAddr(s.Target)
	f.target = &url.URL{Scheme: "http", Host: addr}
	if network == "unix" {
		f.target.Host = "localhost"
	}
	dialTarget := s.DialTarget
	if dialTarget == nil {
		d := &net.Dialer{}
		dialTarget = d.DialContext
	}
	connectTimeout := orDefault(s.ConnectTimeout, DefaultConnectTimeout)
	// Every back-end connection goes to Target, whatever the request says.
	dial := func(ctx context.Context, _, _ string) (net.Conn, error) {
		ctx, cancel := context.WithTimeout(ctx, connectTimeout)
		defer cancel()
		return dialTarget(ctx, network, addr)
	}
	var transport http.RoundTripper
	switch s.TargetProtocol {
	case "", TargetHTTP1:
		t := &http.Transport{
			DialContext:           dial,
			MaxIdleConns:          1024,
			MaxIdleConnsPerHost:   1024,
			IdleConnTimeout:       90 * time.Second,
			ExpectContinueTimeout: time.Second,
			DisableCompression:    true,
		}
		t.Protocols = new(http.Protocols)
		t.Protocols.SetHTTP1(true)
		transport, f.closeTrans = t, t.CloseIdleConnections
	case TargetH2C:
		t := &http2.Transport{
			AllowHTTP:          true,
			DisableCompression: true,
			DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
				return dial(ctx, network, addr)
			},
		}
		transport, f.closeTrans = t, t.CloseIdleConnections
		f.upgrades = map[string]bool{} // HTTP/2 has no Upgrade
	default:
		return nil, fmt.Errorf("proxy: unknown target protocol %q (want %s or %s)", s.TargetProtocol, TargetHTTP1, TargetH2C)
	}
	errLog := slog.NewLogLogger(f.log.Handler(), slog.LevelDebug)
	f.rp = &httputil.ReverseProxy{
		Rewrite:   f.rewrite,
		Transport: transport,
		// FlushInterval 0: a response of unknown length (gRPC, HTTP/2
		// without content-length, server-sent events) is flushed after
		// every write; one with a Content-Length when it is complete.
		ErrorLog:     errLog,
		ErrorHandler: f.proxyError,
		BufferPool:   rpBuffers{},
	}
	f.h2 = &http2.Server{IdleTimeout: s.IdleTimeout, PermitProhibitedCipherSuites: true}
	f.h1 = &http.Server{
		Handler:     f,
		IdleTimeout: s.IdleTimeout,
		ErrorLog:    errLog,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			if fc, ok := c.(*frontConn); ok {
				ctx = context.WithValue(ctx, identityKey{}, fc.id)
				ctx = context.WithValue(ctx, logKey{}, fc.log)
			}
			return ctx
		},
	}
	if s.IdleTimeout > 0 {
		f.h1.ReadHeaderTimeout = s.IdleTimeout
	}
	// The HTTP/2 connections are registered with h1 so that h1.Shutdown
	// ends them gracefully (GOAWAY) too.
	if err := http2.ConfigureServer(f.h1, f.h2); err != nil {
		return nil, fmt.Errorf("proxy: configuring HTTP/2: %w", err)
	}
	// Serve gets plain connections only: no HTTP/2 hand-off of any kind
	// (ConfigureServer also registers an unencrypted one).
	f.h1.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){}
	f.h1.Protocols = new(http.Protocols)
	f.h1.Protocols.SetHTTP1(true)
	return f, nil
}

// rpBuffers lends ReverseProxy its 32 KiB copy buffers (without a pool it
// allocates one per response).
type rpBuffers struct{}

var rpBufferPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func (rpBuffers) Get() []byte  { return *rpBufferPool.Get().(*[]byte) }
func (rpBuffers) Put(b []byte) { rpBufferPool.Put(&b) }

// shutdown ends idle HTTP/1.1 connections, lets the others finish their
// request, and sends GOAWAY on the HTTP/2 ones.
func (f *httpFront) shutdown(ctx context.Context) {
	f.h1.Shutdown(ctx)
	f.closeTrans()
}

// serveConn serves c, authenticated as id, until it closes: HTTP/2 if its
// ALPN protocol is "h2", HTTP/1.1 otherwise. log (nil: the Server's) gets
// the connection's refusals.
func (f *httpFront) serveConn(ctx context.Context, c net.Conn, id, alpn string, log *slog.Logger) {
	if log == nil {
		log = f.log
	}
	if alpn == "h2" {
		ctx = context.WithValue(ctx, identityKey{}, id)
		ctx = context.WithValue(ctx, logKey{}, log)
		f.h2.ServeConn(c, &http2.ServeConnOpts{Context: ctx, BaseConfig: f.h1, Handler: f})
		return
	}
	fc := &frontConn{Conn: c, id: id, log: log, done: make(chan struct{})}
	ln := &oneConnListener{c: fc, closed: make(chan struct{})}
	go func() {
		f.h1.Serve(ln)
		if ln.untaken() {
			fc.Close() // h1 was shut down before it took the connection
		}
	}()
	select {
	case <-fc.done:
	case <-ctx.Done():
		c.Close()
		<-fc.done
	}
	ln.Close()
}

// frontConn is an HTTP/1.1 connection with its peer identity; done closes
// when net/http (or a hijacker) closes it.
type frontConn struct {
	net.Conn
	id   string
	log  *slog.Logger
	once sync.Once
	done chan struct{}
}

func (c *frontConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { close(c.done) })
	return err
}

// oneConnListener hands one connection to http.Server.Serve, then blocks
// until closed.
type oneConnListener struct {
	mu     sync.Mutex
	c      net.Conn
	once   sync.Once
	closed chan struct{}
}

func (l *oneConnListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	c := l.c
	l.c = nil
	l.mu.Unlock()
	if c != nil {
		return c, nil
	}
	<-l.closed
	return nil, net.ErrClosed
}

// untaken reports whether Accept never handed out the connection.
func (l *oneConnListener) untaken() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.c != nil
}

func (l *oneConnListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *oneConnListener) Addr() net.Addr { return pipeAddr{} }

type pipeAddr struct{}

func (pipeAddr) Network() string { return "mtls" }
func (pipeAddr) String() string  { return "mtls" }

// ServeHTTP is the front of every request: the refusals, then the reverse
// proxy.
func (f *httpFront) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id, _ := r.Context().Value(identityKey{}).(string)
	if id == "" || !ValidHeaderValue(id) {
		// Cannot happen (the connection is refused first); fail closed.
		http.Error(w, "no identity", http.StatusInternalServerError)
		return
	}
	if r.ProtoMajor == 2 && r.Method == "PRI" && r.TLS == nil && r.RequestURI == "*" {
		// net/http hands the HTTP/2 preface to the handler of an
		// HTTP/1.1 connection; http2 never does.
		f.refused(r, refusedH2Preface, slog.LevelInfo)
		w.Header().Set("Connection", "close")
		http.Error(w, "HTTP/2 through this proxy needs ALPN h2 (mtls proxy client --alpn h2)", http.StatusBadRequest)
		return
	}
	if r.Method == http.MethodConnect && !f.allowConnect {
		f.refused(r, refusedConnect, slog.LevelInfo)
		w.Header().Set("Allow", "GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH")
		if r.ProtoMajor == 1 {
			w.Header().Set("Connection", "close")
		}
		http.Error(w, "CONNECT is not allowed through this identity proxy", http.StatusMethodNotAllowed)
		return
	}
	if r.Method == http.MethodConnect {
		// A CONNECT has no content (RFC 9110 §9.3.6): nothing the client
		// sends after it (an HTTP/2 stream's data) goes to the target,
		// which might take it for a tunnel.
		r.Body, r.ContentLength = http.NoBody, 0
	}
	if r.ProtoMajor == 1 {
		offer := r.Header.Get("Upgrade")
		if reason := f.filterUpgrade(r.Header); reason != "" {
			f.refused(r, reason, slog.LevelDebug, "upgrade", offer)
		} else if offer != "" {
			w = upgradeWriter{w}
		}
	}
	f.rp.ServeHTTP(w, r)
}

// upgradeWriter passes, after a protocol switch, the bytes the client sent
// behind its Upgrade request before the 101 (already read into net/http's
// buffer) on to the target: ReverseProxy copies from the hijacked
// connection only.
type upgradeWriter struct{ http.ResponseWriter }

func (u upgradeWriter) Unwrap() http.ResponseWriter { return u.ResponseWriter }

func (u upgradeWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(u.ResponseWriter).Hijack()
	if err != nil || brw.Reader.Buffered() == 0 {
		return c, brw, err
	}
	return &bufferedConn{Conn: c, r: brw.Reader}, brw, nil
}

// bufferedConn reads what r holds, then from the connection.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (b *bufferedConn) Read(p []byte) (int, error) {
	if b.r != nil {
		if n := b.r.Buffered(); n > 0 {
			return b.r.Read(p[:min(len(p), n)])
		}
		b.r = nil
	}
	return b.Conn.Read(p)
}

// refused counts and logs a refusal.
func (f *httpFront) refused(r *http.Request, reason string, level slog.Level, attrs ...any) {
	f.metrics.httpRefused(reason)
	log, _ := r.Context().Value(logKey{}).(*slog.Logger)
	if log == nil {
		log = f.log
	}
	log.Log(r.Context(), level, "HTTP request refused or its protocol switch removed",
		append([]any{"reason", reason, "method", r.Method, "proto", r.Proto}, attrs...)...)
}

// filterUpgrade removes an Upgrade offer unless it names exactly one
// protocol of the allow list (with "Connection: upgrade"); it returns the
// reason of a removal ("" if none).
func (f *httpFront) filterUpgrade(h http.Header) (reason string) {
	ups := h.Values("Upgrade")
	connUp := httpguts.HeaderValuesContainsToken(h["Connection"], "upgrade")
	if len(ups) == 0 && !connUp && len(h.Values("Http2-Settings")) == 0 {
		return ""
	}
	var protos []string
	for _, v := range ups {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				protos = append(protos, p)
			}
		}
	}
	if connUp && len(protos) == 1 && f.upgrades[strings.ToLower(protoName(protos[0]))] && len(h.Values("Http2-Settings")) == 0 {
		return ""
	}
	if len(protos) > 0 || connUp {
		reason = refusedUpgrade
	}
	for _, p := range protos {
		if strings.EqualFold(protoName(p), "h2c") {
			reason = refusedH2CUpgrade
		}
	}
	h.Del("Upgrade")
	h.Del("Http2-Settings")
	var keep []string
	for _, v := range h.Values("Connection") {
		for _, t := range strings.Split(v, ",") {
			t = strings.TrimSpace(t)
			if t != "" && !strings.EqualFold(t, "upgrade") && !strings.EqualFold(t, "http2-settings") {
				keep = append(keep, t)
			}
		}
	}
	h.Del("Connection")
	if len(keep) > 0 {
		h.Set("Connection", strings.Join(keep, ", "))
	}
	return reason
}

// protoName is the name of an Upgrade protocol token (without "/version").
func protoName(p string) string {
	name, _, _ := strings.Cut(p, "/")
	return name
}

// rewrite makes the request to the target: its URL and, after every copy
// the client sent is deleted, the identity header. The client's Host is
// kept.
func (f *httpFront) rewrite(pr *httputil.ProxyRequest) {
	pr.SetURL(f.target)
	pr.Out.Host = pr.In.Host
	id, _ := pr.In.Context().Value(identityKey{}).(string)
	for k := range pr.Out.Header {
		if normHeaderName(k) == f.norm {
			delete(pr.Out.Header, k)
		}
	}
	for k := range pr.Out.Trailer {
		if normHeaderName(k) == f.norm {
			delete(pr.Out.Trailer, k)
		}
	}
	pr.Out.Header[f.header] = []string{id}
}

// proxyError answers a request the target could not take: 502.
func (f *httpFront) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	if !errors.Is(err, context.Canceled) {
		f.log.Info("HTTP request to target failed", "target", f.target.Host, "method", r.Method, "err", err)
	}
	w.WriteHeader(http.StatusBadGateway)
}
