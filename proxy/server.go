package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/milagro-go/milagro/mtls"
)

// sourceAddr names a client for per-source limits: its IP address.
func sourceAddr(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}

// Server is the terminating side of the proxy: it accepts mtls connections,
// admits authenticated peers that pass the ACL and forwards their traffic
// to Target over plain TCP. Set the fields, call SetConfig, then Serve.
type Server struct {
	// Target is the service's HOST:PORT.
	Target string
	// HandshakeTimeout bounds the mtls handshake (default 10 s).
	HandshakeTimeout time.Duration
	// ConnectTimeout bounds dialling Target (default 10 s).
	ConnectTimeout time.Duration
	// IdleTimeout closes a connection with no data either way for that
	// long; 0 means never.
	IdleTimeout time.Duration
	// MaxConns caps concurrent established connections; 0 means no cap.
	// A connection counts once its handshake completed; it then waits for
	// a slot before the target is dialled. Connections still in their
	// handshake are bounded by MaxHandshakes instead, so silent clients
	// cannot take the slots of established ones.
	MaxConns int
	// MaxHandshakes bounds the connections in their handshake (0: 1024),
	// MaxHandshakesPerSource those from one IP address (0: 256; a client sidecar opens its connections from one address); beyond
	// either, a new connection is closed at once (metric result "busy").
	MaxHandshakes          int
	MaxHandshakesPerSource int
	// ProxyProtocol sends a PROXY protocol v2 header carrying the identity
	// (see AppendProxyV2) before any client data.
	ProxyProtocol bool
	// HTTPIdentityHeader, if set, switches to HTTP/1.x mode: the header is
	// stripped from requests and set to the peer's identity.
	HTTPIdentityHeader string
	// AllowConnect forwards CONNECT requests in HTTP identity mode (a
	// target that answers 2xx without Content-Length/Transfer-Encoding then
	// becomes an opaque tunnel). Off by default: the proxy answers CONNECT
	// with 405 and closes, since after a tunnel it can no longer vouch for
	// the identity of anything sent.
	AllowConnect bool
	// MaxConnLifetime closes a connection that long after it was accepted,
	// however busy; 0 means no limit.
	MaxConnLifetime time.Duration
	// CloseTimeout closes a connection that long after one side finished
	// sending (half-close) if the other has not finished; 0: no limit.
	CloseTimeout time.Duration
	// Logger gets one line per connection; nil means slog.Default().
	Logger *slog.Logger
	// Metrics, if set, records metrics.
	Metrics *Metrics
	// NewConn wraps an accepted connection; nil means mtls.Server.
	NewConn func(net.Conn, *mtls.Config) SecureConn
	// DialTarget dials Target; nil means a net.Dialer with ConnectTimeout.
	DialTarget func(ctx context.Context, network, addr string) (net.Conn, error)

	cur atomic.Pointer[serverState]
	loop

	hs      hsLimiter
	connSem chan struct{}
	// Milagro CS guards kept across SetConfig (reloads): the lockout and
	// the pairing gate belong to the server, not to one configuration.
	guardMu   sync.Mutex
	lockout   *mtls.Lockout
	gate      *mtls.FairGate
	deniedLog rateLog
}

type serverState struct {
	cfg *mtls.Config // the caller's Config with VerifyPeerIdentity set from acl
	acl *ACL
}

// SetConfig installs the mtls configuration and ACL used for new
// handshakes, and closes the live connections whose identity the new ACL
// no longer admits (a revocation takes effect at once; they are counted in
// mtls_proxy_revoked_connections_total). It is safe to call at any time
// (SIGHUP reload). cfg is not modified: a clone
// gets a VerifyPeerIdentity that applies acl (then cfg's own, if any), so a
// denied peer fails inside the handshake and never reaches the target.
func (s *Server) SetConfig(cfg *mtls.Config, acl *ACL) error {
	if cfg == nil {
		return errors.New("proxy: nil mtls.Config")
	}
	if acl == nil {
		return ErrNoACL
	}
	c := cfg.Clone()
	s.guardMu.Lock()
	if s.gate == nil {
		s.gate = &mtls.FairGate{}
	}
	if s.lockout == nil && !cfg.DisableCSLockout {
		s.lockout = cfg.CSLockout
		if s.lockout == nil {
			s.lockout = mtls.NewLockout()
		}
		prev, m := s.lockout.OnLock, s.Metrics
		s.lockout.OnLock = func(id string, until time.Time) {
			m.lockout()
			if prev != nil {
				prev(id, until)
			}
		}
	}
	if c.PairingGate == nil {
		c.PairingGate = s.gate
	}
	if !cfg.DisableCSLockout {
		c.CSLockout = s.lockout // the first one's settings; counts survive reloads
	}
	s.guardMu.Unlock()
	inner := cfg.VerifyPeerIdentity
	m := s.Metrics
	c.VerifyPeerIdentity = func(id string) error {
		if err := acl.Check(id); err != nil {
			m.denied()
			return err
		}
		if inner != nil {
			return inner(id)
		}
		return nil
	}
	s.cur.Store(&serverState{cfg: c, acl: acl})
	if n := s.revoke(func(id string) bool { return acl.Check(id) == nil }); n > 0 {
		s.Metrics.revokedConns(n)
		s.logger().Warn("closed live connections of identities the ACL no longer admits", "count", n)
	}
	return nil
}

func (s *Server) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

// Serve accepts connections on ln until Shutdown, or until ctx is done
// (which closes every connection at once). It returns ErrServerClosed
// after Shutdown.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if s.cur.Load() == nil {
		return errors.New("proxy: Server.Serve before SetConfig")
	}
	if s.Target == "" {
		return errors.New("proxy: Server.Target is empty")
	}
	if h := s.HTTPIdentityHeader; h != "" && !ValidHeaderName(h) {
		return fmt.Errorf("proxy: invalid HTTP header name %q", h)
	}
	if s.HTTPIdentityHeader != "" && s.ProxyProtocol {
		return errors.New("proxy: choose one of PROXY protocol and HTTP identity header")
	}
	s.hs.max = s.MaxHandshakes
	if s.hs.max <= 0 {
		s.hs.max = defaultMaxHandshakes
	}
	s.hs.perSource = s.MaxHandshakesPerSource
	if s.hs.perSource <= 0 {
		s.hs.perSource = defaultMaxHandshakesPerSource
	}
	if s.MaxConns > 0 && s.connSem == nil {
		s.connSem = make(chan struct{}, s.MaxConns)
	}
	s.deniedLog.every = time.Second
	return s.serve(ctx, ln, s.logger(), s.handle)
}

// Shutdown stops accepting, lets live connections finish until ctx is done,
// then closes them. It returns ctx.Err() if it had to close connections.
func (s *Server) Shutdown(ctx context.Context) error { return s.shutdown(ctx) }

// ActiveConns returns the number of connections being handled.
func (s *Server) ActiveConns() int { return s.Active() }

// Defaults of Server and Client (and of the mtls proxy command's flags).
const (
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultConnectTimeout   = 10 * time.Second
)

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

func (s *Server) handle(ctx context.Context, raw net.Conn, t *tracked) {
	start := time.Now()
	log := s.logger().With("conn", t.id, "mode", "server", "remote", remoteString(raw))
	s.Metrics.connOpen()
	result := resultError
	defer func() { s.Metrics.connClose(result) }()

	source := sourceAddr(raw.RemoteAddr())
	s.guardMu.Lock()
	gate := s.gate
	s.guardMu.Unlock()
	admitRelease, admitted := gate.Admit(source)
	if !admitted {
		// This address's CS proofs kept failing: closed before any work.
		result = resultBusy
		s.Metrics.handshake("", resultBusy, 0)
		raw.Close()
		return
	}
	defer admitRelease()
	if !s.hs.admit(source) {
		result = resultBusy
		s.Metrics.handshake("", resultBusy, 0)
		if ok, n := s.deniedLog.allow(time.Now()); ok {
			log.Warn("too many handshakes in progress; connection closed", "pending", s.hs.pending(), "suppressed", n)
		}
		raw.Close()
		return
	}
	hsDone := false
	releaseHS := func() {
		if !hsDone {
			hsDone = true
			s.hs.release(source)
		}
	}
	defer releaseHS()

	st := s.cur.Load()
	newConn := s.NewConn
	if newConn == nil {
		newConn = func(c net.Conn, cfg *mtls.Config) SecureConn { return mtls.Server(c, cfg) }
	}
	sc := newConn(raw, st.cfg)
	t.add(func() { sc.Close() })
	defer sc.Close()

	hctx, cancel := context.WithTimeout(ctx, orDefault(s.HandshakeTimeout, DefaultHandshakeTimeout))
	// A peer that closes before sending a byte (a TCP health probe, such
	// as a client-mode proxy's /healthz, or a port scan) tried no
	// handshake: tell it apart without a buffer (Linux: a one-byte peek).
	if wait := readinessWaiter(raw); wait != nil {
		dl, _ := hctx.Deadline()
		raw.SetReadDeadline(dl)
		werr := wait()
		raw.SetReadDeadline(time.Time{})
		if werr == io.EOF {
			cancel()
			result = "closed_before_handshake"
			log.Debug("closed before the handshake")
			return
		}
	}
	var err error
	onShortStack(func() { err = sc.HandshakeContext(hctx) })
	cancel()
	releaseHS()
	admitRelease()
	hsDur := time.Since(start)
	if err != nil {
		var de *DeniedError
		reason := failureReason(err)
		switch {
		case errors.As(err, &de):
			result = resultDenied
			s.Metrics.handshake("", resultDenied, hsDur)
			log.Warn("access denied", "identity", de.ID, "reason", de.Reason)
		case reason == "denied":
			// A proof that does not verify, a lockout, a replay, a
			// permit or clock refusal: denied, and logged at a bounded
			// rate (a flood of forged hellos must not flood the log).
			result = resultDenied
			s.Metrics.handshake("", resultDenied, hsDur)
			if ok, n := s.deniedLog.allow(time.Now()); ok {
				log.Warn("handshake denied", "err", err, "similar_suppressed", n)
			} else {
				log.Debug("handshake denied", "err", err)
			}
		case reason == "timeout":
			result = resultTimeout
			s.Metrics.handshake("", resultTimeout, hsDur)
			log.Info("handshake timed out", "after", hsDur.Round(time.Millisecond))
		default:
			s.Metrics.handshake("", resultError, hsDur)
			log.Info("handshake failed", "err", err, "reason", reason)
		}
		s.Metrics.failure(reason)
		return
	}
	cs := sc.ConnectionState()
	id := cs.PeerIdentity
	log = log.With("identity", id, "suite", cs.CipherSuiteName)
	t.setIdentity(id)
	// Defence in depth: the ACL already ran inside the handshake. The
	// current ACL is checked: a reload during the handshake applies.
	if err := s.cur.Load().acl.Check(id); err != nil {
		result = resultDenied
		s.Metrics.denied()
		s.Metrics.handshake(cs.CipherSuiteName, resultDenied, hsDur)
		log.Warn("access denied after handshake", "reason", err)
		return
	}
	s.Metrics.handshakeOK(cs, hsDur)
	if s.connSem != nil {
		select {
		case s.connSem <- struct{}{}:
			defer func() { <-s.connSem }()
		case <-ctx.Done():
			return
		case <-s.done:
			return
		}
	}
	if s.HTTPIdentityHeader != "" && !ValidHeaderValue(id) {
		log.Warn("identity cannot be sent in an HTTP header; closing")
		return
	}
	var header []byte
	if s.ProxyProtocol {
		header, err = AppendProxyV2(nil, ProxyInfo{
			Src: raw.RemoteAddr(), Dst: raw.LocalAddr(),
			Identity: id, Version: "TLSv1.2", Cipher: cs.CipherSuiteName,
		})
		if err != nil {
			log.Warn("cannot build PROXY header; closing", "err", err)
			return
		}
	}

	dial := s.DialTarget
	if dial == nil {
		d := &net.Dialer{}
		dial = d.DialContext
	}
	dctx, cancel := context.WithTimeout(ctx, orDefault(s.ConnectTimeout, DefaultConnectTimeout))
	t.add(cancel)
	var up net.Conn
	network, addr := SplitNetworkAddr(s.Target)
	onShortStack(func() { up, err = dial(dctx, network, addr) })
	cancel()
	if err != nil {
		result = "target_unreachable"
		log.Warn("cannot reach target; resetting the connection", "target", s.Target, "err", err)
		// No close_notify: the peer must see a failure, not an empty but
		// complete stream (a client would exit 0, a client-mode proxy
		// would count it as ok).
		if tc, ok := raw.(*net.TCPConn); ok {
			tc.SetLinger(0)
		}
		raw.Close()
		return
	}
	t.add(func() { up.Close() })
	defer up.Close()
	if header != nil {
		if _, err := up.Write(header); err != nil {
			log.Warn("writing PROXY header failed", "err", err)
			return
		}
	}
	log.Info("connection open", "target", s.Target)
	p := &pipe{a: sc, b: up, idle: s.IdleTimeout, onBytes: s.Metrics.bytesFunc(),
		lifetime: remaining(s.MaxConnLifetime, start), closeTimeout: s.CloseTimeout}
	var upCopy func(dst io.Writer, src io.Reader) error
	if name := s.HTTPIdentityHeader; name != "" {
		upCopy = httpIdentity(p, name, id, s.AllowConnect)
	}
	err = p.run(upCopy)
	result = resultOK
	attrs := []any{"bytes_up", p.up.Load(), "bytes_down", p.down.Load(),
		"duration", time.Since(start).Round(time.Millisecond)}
	switch {
	case err == errLifetime:
		result = "lifetime"
		attrs = append(attrs, "err", err)
	case err != nil:
		result = "closed_with_error"
		attrs = append(attrs, "err", err)
	}
	log.Info("connection closed", attrs...)
}

// httpIdentity sets p up for HTTP identity mode and returns its a→b copy:
// requests are rewritten, responses followed (respTracker) so that an
// Upgrade or CONNECT goes opaque only once the target switched protocols.
func httpIdentity(p *pipe, name, id string, allowConnect bool) func(dst io.Writer, src io.Reader) error {
	x := newHTTPExchange()
	if !allowConnect {
		x.refuseConnect = func() error {
			// Answer after the responses to earlier pipelined requests.
			x.waitIdle()
			_, err := io.WriteString(p.a, connectRefused)
			if err == nil {
				err = errConnectRefused
			}
			return err
		}
	}
	p.downWrap = func(w io.Writer) io.Writer { return newRespTracker(w, x) }
	p.downDone = x.stop
	return func(dst io.Writer, src io.Reader) error { return rewriteHTTP(dst, src, name, id, x) }
}

const connectRefused = "HTTP/1.1 405 Method Not Allowed\r\nAllow: GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\nContent-Length: 51\r\nConnection: close\r\n\r\n" +
	"CONNECT is not allowed through this identity proxy\n"

var errConnectRefused = errors.New("CONNECT refused in HTTP identity mode (enable with --allow-connect)")

func isTimeoutErr(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// remaining returns what is left of lifetime since start (at least 1 ns);
// 0 when lifetime is 0 (no limit).
func remaining(lifetime time.Duration, start time.Time) time.Duration {
	if lifetime <= 0 {
		return 0
	}
	return max(lifetime-time.Since(start), 1)
}

// remoteString is the peer address for logs ("@" for an unnamed UNIX peer).
func remoteString(c net.Conn) string {
	if a := c.RemoteAddr(); a != nil && a.String() != "" {
		return a.String()
	}
	return "@"
}
