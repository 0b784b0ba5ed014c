package mtlshttp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"runtime"
	"sync"
	"time"
	"weak"

	"github.com/milagro-go/milagro/mtls"
	"golang.org/x/net/http2"
)

// net/http runs HTTP/2 only over a *tls.Conn, so Serve does the ALPN
// dispatch itself: each accepted connection is handshaken on its own
// goroutine; one that negotiated "h2" is served by golang.org/x/net/http2,
// every other one is handed to srv.Serve as HTTP/1.1.

// httpConn is what Serve and the transports hand to net/http and
// x/net/http2: the *mtls.Conn, with a crypto/tls ConnectionState so that
// net/http and http2 fill in Request.TLS / Response.TLS.
type httpConn struct{ *mtls.Conn }

// ConnectionState summarizes the connection as crypto/tls would.
func (h httpConn) ConnectionState() tls.ConnectionState {
	cs := h.Conn.ConnectionState()
	return tls.ConnectionState{
		Version:                    cs.Version,
		HandshakeComplete:          cs.HandshakeComplete,
		CipherSuite:                cs.CipherSuite,
		ServerName:                 cs.ServerName,
		NegotiatedProtocol:         cs.NegotiatedProtocol,
		NegotiatedProtocolIsMutual: true,
		TLSUnique:                  cs.TLSUnique,
	}
}

// asConn returns the *mtls.Conn behind c (nil if there is none).
func asConn(c net.Conn) *mtls.Conn {
	switch v := c.(type) {
	case *mtls.Conn:
		return v
	case httpConn:
		return v.Conn
	}
	return nil
}

// httpServers remembers the servers Serve has configured (once each),
// without keeping them alive: an entry goes when its server is collected.
var httpServers sync.Map // weak.Pointer[http.Server] → *httpServerState

type httpServerState struct {
	once     sync.Once
	h2       *http2.Server
	err      error
	shutdown chan struct{} // closed when srv.Shutdown runs its hooks
}

// configureHTTPServer adds, once per srv, mtls.ConnContext (given the
// *mtls.Conn inside the connection net/http holds) in front of
// srv.ConnContext and an HTTP/2 server registered for srv.Shutdown.
func configureHTTPServer(srv *http.Server) (*httpServerState, error) {
	key := weak.Make(srv)
	v, loaded := httpServers.LoadOrStore(key, &httpServerState{shutdown: make(chan struct{})})
	if !loaded {
		runtime.AddCleanup(srv, func(k weak.Pointer[http.Server]) { httpServers.Delete(k) }, key)
	}
	st := v.(*httpServerState)
	st.once.Do(func() {
		user := srv.ConnContext
		srv.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
			if mc := asConn(c); mc != nil {
				ctx = mtls.ConnContext(ctx, mc)
			}
			if user != nil {
				ctx = user(ctx, c)
			}
			return ctx
		}
		// RFC 7540's cipher blacklist is about certificate suites without
		// AEAD or forward secrecy; every mtls suite is AEAD (restrict
		// Config.CipherSuites to forward-secret suites if h2 must be).
		st.h2 = &http2.Server{PermitProhibitedCipherSuites: true}
		if err := http2.ConfigureServer(srv, st.h2); err != nil {
			st.err = fmt.Errorf("mtlshttp: configuring HTTP/2: %w", err)
		}
		shutdown := st.shutdown
		srv.RegisterOnShutdown(func() { close(shutdown) })
	})
	return st, st.err
}

// Serve serves srv on l, a listener of *mtls.Conn from mtls.Listen or
// mtls.NewListener, speaking HTTP/2 on connections whose client chose "h2"
// by ALPN and HTTP/1.1 on the others. Give the listener's Config
// NextProtos: []string{"h2", "http/1.1"} to offer both.
//
// Handlers get the authenticated peer with mtls.PeerIdentity(r.Context())
// and the connection with RequestConnectionState(r); r.TLS is set too (no
// certificates in it). A handshake is bounded by srv.ReadHeaderTimeout,
// else srv.ReadTimeout, else the listener Config's HandshakeTimeout
// (mtls.DefaultHandshakeTimeout when zero). Serve chains mtls.ConnContext in front of
// srv.ConnContext on first use (so srv must not be serving yet) and
// registers the HTTP/2 connections with srv.Shutdown, which ends them
// gracefully (GOAWAY; unlike HTTP/1.1 connections, Shutdown does not wait
// for them to finish). srv.Close closes every connection (the HTTP/2 ones
// within a second).
//
// Like srv.Serve, Serve returns http.ErrServerClosed after Shutdown or
// Close.
func Serve(srv *http.Server, l net.Listener) error {
	if srv == nil || l == nil {
		return errors.New("mtlshttp: Serve needs a server and a listener")
	}
	st, err := configureHTTPServer(srv)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	hl := &httpListener{Listener: l, srv: srv, h2: st.h2, ctx: ctx, cancel: cancel,
		ready: make(chan net.Conn), errc: make(chan error), h2conns: map[*mtls.Conn]struct{}{}}
	hl.base = context.Background()
	if srv.BaseContext != nil {
		hl.base = srv.BaseContext(hl)
		if hl.base == nil {
			panic("mtlshttp: http.Server.BaseContext returned a nil context")
		}
	}
	go hl.acceptLoop()
	err = srv.Serve(hl)
	hl.Close()
	if errors.Is(err, http.ErrServerClosed) {
		go hl.closeH2UnlessShutdown(st.shutdown)
	}
	return err
}

// h2CloseGrace is how long Serve waits, after srv.Serve returned
// ErrServerClosed, for srv.Shutdown's hooks before it takes the stop for
// srv.Close and closes the HTTP/2 connections. (Shutdown starts its hooks
// before Serve can return, so they normally run at once.)
const h2CloseGrace = time.Second

// closeH2UnlessShutdown closes the HTTP/2 connections when the server was
// stopped by Close (Shutdown ends them gracefully with GOAWAY instead).
func (hl *httpListener) closeH2UnlessShutdown(shutdown <-chan struct{}) {
	t := time.NewTimer(h2CloseGrace)
	defer t.Stop()
	select {
	case <-shutdown:
		return
	case <-t.C:
	}
	hl.mu.Lock()
	hl.closed = true
	conns := make([]*mtls.Conn, 0, len(hl.h2conns))
	for c := range hl.h2conns {
		conns = append(conns, c)
	}
	hl.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

// httpListener accepts mtls connections, handshakes them concurrently and
// returns only the HTTP/1.1 ones from Accept (h2 ones it serves itself).
type httpListener struct {
	net.Listener
	srv       *http.Server
	h2        *http2.Server
	base      context.Context
	ctx       context.Context // cancelled by Close: aborts pending handshakes
	cancel    context.CancelFunc
	ready     chan net.Conn
	errc      chan error
	closeOnce sync.Once

	mu      sync.Mutex
	h2conns map[*mtls.Conn]struct{} // being served by h2
	closed  bool                    // srv.Close: no more h2 connections
}

func (hl *httpListener) Accept() (net.Conn, error) {
	select {
	case c := <-hl.ready:
		return c, nil
	case err := <-hl.errc:
		return nil, err
	case <-hl.ctx.Done():
		return nil, net.ErrClosed
	}
}

func (hl *httpListener) Close() error {
	err := net.ErrClosed
	hl.closeOnce.Do(func() {
		hl.cancel()
		err = hl.Listener.Close()
	})
	return err
}

func (hl *httpListener) acceptLoop() {
	for {
		c, err := hl.Listener.Accept()
		if err != nil {
			select {
			case hl.errc <- err:
			case <-hl.ctx.Done():
				return
			}
			if te, ok := err.(interface{ Temporary() bool }); ok && te.Temporary() {
				continue // srv.Serve backs off and calls Accept again
			}
			return
		}
		go hl.handshake(c)
	}
}

// handshakeContext bounds a handshake by the server's header or read
// timeout; without either, the Conn's own Config.HandshakeTimeout applies
// (HandshakeContext uses it when ctx has no deadline).
func (hl *httpListener) handshakeContext() (context.Context, context.CancelFunc) {
	switch {
	case hl.srv.ReadHeaderTimeout > 0:
		return context.WithTimeout(hl.ctx, hl.srv.ReadHeaderTimeout)
	case hl.srv.ReadTimeout > 0:
		return context.WithTimeout(hl.ctx, hl.srv.ReadTimeout)
	}
	return context.WithCancel(hl.ctx)
}

// logf logs like net/http: to srv.ErrorLog, else the standard logger.
func (hl *httpListener) logf(format string, args ...any) {
	if l := hl.srv.ErrorLog; l != nil {
		l.Printf(format, args...)
		return
	}
	log.Printf(format, args...)
}

func (hl *httpListener) handshake(raw net.Conn) {
	c := asConn(raw)
	if c == nil {
		hl.logf("mtlshttp: Serve needs a listener from mtls.Listen or mtls.NewListener; got a %T", raw)
		raw.Close()
		return
	}
	ctx, cancel := hl.handshakeContext()
	err := c.HandshakeContext(ctx)
	cancel()
	if err != nil {
		hl.logf("mtlshttp: handshake error from %s: %v", c.RemoteAddr(), err)
		c.Close()
		return
	}
	hc := httpConn{c}
	if c.ConnectionState().NegotiatedProtocol == "h2" {
		ctx := context.WithValue(hl.base, http.ServerContextKey, hl.srv)
		ctx = context.WithValue(ctx, http.LocalAddrContextKey, c.LocalAddr())
		ctx = hl.srv.ConnContext(ctx, hc) // includes ConnContext (configureHTTPServer)
		hl.mu.Lock()
		if hl.closed || hl.ctx.Err() != nil { // the server stopped meanwhile
			hl.mu.Unlock()
			c.Close()
			return
		}
		hl.h2conns[c] = struct{}{}
		hl.mu.Unlock()
		hl.h2.ServeConn(hc, &http2.ServeConnOpts{Context: ctx, BaseConfig: hl.srv})
		hl.mu.Lock()
		delete(hl.h2conns, c)
		hl.mu.Unlock()
		return
	}
	select {
	case hl.ready <- hc:
	case <-hl.ctx.Done():
		c.Close()
	}
}

// NewTransport returns an HTTP/1.1 transport whose https:// requests go
// over mtls connections made with config (cloned; NextProtos defaults to
// "http/1.1"). For HTTP/2 use NewHTTP2Transport.
func NewTransport(config *mtls.Config) *http.Transport {
	cfg := config.Clone()
	if cfg.NextProtos == nil {
		cfg.NextProtos = []string{"http/1.1"}
	}
	return &http.Transport{
		DialTLSContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := dial(ctx, network, addr, cfg)
			if err != nil {
				return nil, err
			}
			rememberTransportConn(c)
			return httpConn{c}, nil
		},
		MaxIdleConns:          100,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
}

// NewHTTP2Transport returns an HTTP/2 transport (golang.org/x/net/http2)
// whose https:// requests go over mtls connections made with config
// (cloned; NextProtos defaults to "h2"). A server that does not choose "h2"
// by ALPN fails the dial.
func NewHTTP2Transport(config *mtls.Config) *http2.Transport {
	cfg := config.Clone()
	if cfg.NextProtos == nil {
		cfg.NextProtos = []string{"h2"}
	}
	return &http2.Transport{
		DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			c, err := dial(ctx, network, addr, cfg)
			if err != nil {
				return nil, err
			}
			if p := c.ConnectionState().NegotiatedProtocol; p != "h2" {
				c.Close()
				return nil, fmt.Errorf("mtlshttp: server %s did not choose h2 by ALPN (negotiated %q)", addr, p)
			}
			rememberTransportConn(c)
			return httpConn{c}, nil
		},
	}
}

// dial connects with cfg and runs the client handshake, bounded by ctx.
func dial(ctx context.Context, network, addr string, cfg *mtls.Config) (*mtls.Conn, error) {
	c, err := (&mtls.Dialer{Config: cfg}).DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return c.(*mtls.Conn), nil
}

// RequestConnectionState is the mtls analogue of r.TLS: the state of the
// connection r arrived on, over HTTP/1.1 or HTTP/2, when the server stores
// it with mtls.ConnContext (Serve does).
func RequestConnectionState(r *http.Request) (mtls.ConnectionState, bool) {
	return mtls.ConnectionStateFromContext(r.Context())
}
