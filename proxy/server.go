package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/milagro-go/milagro/internal/admission"
	"github.com/milagro-go/milagro/mtls"
)

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
	// MaxHandshakesPerSource those from one source, an IPv4 address or an
	// IPv6 /64 (0: 256; a client sidecar opens its connections from one
	// address). When all are taken, a new source takes a slot from the
	// source holding the most (its oldest handshake is closed); beyond
	// that, a new connection is closed at once (metric result "busy").
	MaxHandshakes          int
	MaxHandshakesPerSource int
	// HelloTimeout bounds the handshake of a connection admitted while
	// more than three quarters of the handshake slots are taken (0:
	// DefaultHelloTimeout), so slow or silent connections give their
	// slots back quickly when they are scarce.
	HelloTimeout time.Duration
	// ProxyProtocol sends a PROXY protocol v2 header carrying the identity
	// (see AppendProxyV2) before any client data.
	ProxyProtocol bool
	// HTTPIdentityHeader, if set, switches to HTTP identity mode (see
	// docs/operators-guide.md): the connections are served as HTTP/2 when
	// the client chose "h2" by ALPN, as HTTP/1.1 otherwise, and every
	// request is forwarded to Target by net/http/httputil.ReverseProxy with
	// every client copy of the header deleted and the header set to the
	// peer identity. Set it before SetConfig, which then offers "h2" and
	// "http/1.1" by ALPN unless the Config names its own NextProtos.
	HTTPIdentityHeader string
	// TargetProtocol is what Target speaks in HTTP identity mode:
	// TargetHTTP1 (HTTP/1.1, the default) or TargetH2C (HTTP/2 over
	// cleartext with prior knowledge, as gRPC servers do).
	TargetProtocol string
	// HTTPAllowUpgrade lists the Upgrade protocols HTTP identity mode lets
	// through to an HTTP/1.1 target (nil: DefaultHTTPAllowUpgrade, i.e.
	// websocket; empty: none). Other offers, "h2c" always, are removed
	// and the request served as plain HTTP/1.1.
	HTTPAllowUpgrade []string
	// AllowConnect forwards CONNECT requests in HTTP identity mode as
	// ordinary requests (the proxy never opens a tunnel). Off by default:
	// the proxy answers CONNECT with 405 (closing an HTTP/1.1 connection).
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

	slots   admission.Slots // handshake slots (Max and PerSource set by Serve)
	connSem chan struct{}
	// Guards kept across SetConfig (reloads): failure budgets, lockout,
	// replay cache, pairing gate and tarpit belong to the server, not to
	// one configuration.
	guardMu   sync.Mutex
	lockout   *mtls.Lockout
	guards    *mtls.Guards
	deniedLog rateLog
	front     atomic.Pointer[httpFront] // HTTP identity mode, set by Serve
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
	if s.HTTPIdentityHeader != "" && c.NextProtos == nil {
		c.NextProtos = []string{"h2", "http/1.1"}
	}
	s.guardMu.Lock()
	if s.guards == nil {
		s.guards = cfg.Guards
		if s.guards == nil {
			s.guards = mtls.NewGuards(cfg.Time)
		}
	}
	if s.lockout == nil && !cfg.DisableCSLockout {
		s.lockout = cfg.CSLockout
		if s.lockout == nil {
			s.lockout = s.guards.Lockout
		}
		prev, m := s.lockout.OnLock, s.Metrics
		s.lockout.OnLock = func(ev mtls.LockEvent) {
			m.lockout()
			if prev != nil {
				prev(ev)
			}
		}
	}
	if c.Guards == nil {
		c.Guards = s.guards
	}
	s.Metrics.watchGuards(s.guards, &s.slots, s.lockout)
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
	if s.HTTPIdentityHeader != "" && s.front.Load() == nil {
		f, err := newHTTPFront(s)
		if err != nil {
			return err
		}
		s.front.CompareAndSwap(nil, f)
	}
	s.slots.Max, s.slots.PerSource = s.MaxHandshakes, s.MaxHandshakesPerSource
	if s.slots.Max <= 0 {
		s.slots.Max = defaultMaxHandshakes
	}
	if s.slots.PerSource <= 0 {
		s.slots.PerSource = defaultMaxHandshakesPerSource
	}
	if s.MaxConns > 0 && s.connSem == nil {
		s.connSem = make(chan struct{}, s.MaxConns)
	}
	s.deniedLog.every = time.Second
	return s.serve(ctx, ln, s.logger(), s.handle)
}

// Shutdown stops accepting, lets live connections finish until ctx is done,
// then closes them. It returns ctx.Err() if it had to close connections.
func (s *Server) Shutdown(ctx context.Context) error {
	if f := s.front.Load(); f != nil {
		// Idle HTTP/1.1 connections end now, HTTP/2 ones get GOAWAY.
		go f.shutdown(ctx)
	}
	return s.shutdown(ctx)
}

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
