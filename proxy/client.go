package proxy

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync/atomic"
	"time"

	"github.com/milagro-go/milagro/mtls"
)

// Client is the originating side of the proxy: it accepts plain TCP
// (normally on 127.0.0.1) and forwards each connection over mtls to Target,
// a server-mode proxy or any mtls server. Set the fields, call SetConfig,
// then Serve.
type Client struct {
	// Target is the mtls server's HOST:PORT.
	Target string
	// HandshakeTimeout bounds dialling plus the mtls handshake (default 10 s).
	HandshakeTimeout time.Duration
	// ConnectTimeout bounds the TCP connection to Target (default 10 s).
	ConnectTimeout time.Duration
	// IdleTimeout closes a connection with no data either way; 0: never.
	IdleTimeout time.Duration
	// MaxConns caps concurrent connections (excess ones wait in the backlog).
	MaxConns int
	// MaxConnLifetime and CloseTimeout: as for Server.
	MaxConnLifetime time.Duration
	CloseTimeout    time.Duration
	// Logger gets one line per connection; nil means slog.Default().
	Logger *slog.Logger
	// Metrics, if set, records metrics.
	Metrics *Metrics
	// Dial opens the mtls connection and completes the handshake; nil means
	// an mtls.Dialer.
	Dial func(ctx context.Context, addr string, cfg *mtls.Config) (SecureConn, error)
	// Hint, if set, explains a failed handshake to the operator: what to
	// check on this side (the server's alert says little, by design). A
	// non-empty answer is logged with the failure as "check".
	Hint func(cfg *mtls.Config, err error) string

	cur atomic.Pointer[mtls.Config]
	sni atomic.Pointer[sniConfig] // cfg with ServerName set (withServerName)
	loop
}

// SetConfig installs the mtls client configuration for new connections
// (safe at any time; live connections keep theirs). Without a
// ClientSessionCache in cfg, the connections to Target resume sessions
// through a cache of this Client's, new with each SetConfig.
func (c *Client) SetConfig(cfg *mtls.Config) error {
	if cfg == nil {
		return errors.New("proxy: nil mtls.Config")
	}
	if cfg.ClientSessionCache == nil && !cfg.SessionTicketsDisabled {
		cfg = cfg.Clone()
		cfg.ClientSessionCache = mtls.NewLRUClientSessionCache(16)
	}
	c.cur.Store(cfg)
	return nil
}

func (c *Client) logger() *slog.Logger {
	if c.Logger != nil {
		return c.Logger
	}
	return slog.Default()
}

// Serve accepts plain TCP connections on ln until Shutdown, or until ctx is
// done (a hard stop).
func (c *Client) Serve(ctx context.Context, ln net.Listener) error {
	if c.cur.Load() == nil {
		return errors.New("proxy: Client.Serve before SetConfig")
	}
	if c.Target == "" {
		return errors.New("proxy: Client.Target is empty")
	}
	c.loop.maxConns = c.MaxConns
	return c.serve(ctx, ln, c.logger(), c.handle)
}

// Shutdown stops accepting, drains live connections until ctx is done, then
// closes them.
func (c *Client) Shutdown(ctx context.Context) error { return c.shutdown(ctx) }

// ActiveConns returns the number of connections being handled.
func (c *Client) ActiveConns() int { return c.Active() }

func (c *Client) dial(ctx context.Context, addr string, cfg *mtls.Config) (SecureConn, error) {
	if c.Dial != nil {
		return c.Dial(ctx, addr, cfg)
	}
	network, a := SplitNetworkAddr(addr)
	if cfg.ServerName == "" {
		cfg = c.withServerName(cfg, a)
	}
	nd := targetDialer(network, a) // no keepalive to a loopback server either
	nd.Timeout = orDefault(c.ConnectTimeout, DefaultConnectTimeout)
	d := mtls.Dialer{NetDialer: nd, Config: cfg}
	nc, err := d.DialContext(ctx, network, a)
	if err != nil {
		return nil, err
	}
	return nc.(*mtls.Conn), nil
}

// handle serves one accepted connection in two phases, as Server.handle:
// open (dial, handshake, its error handling and logging) runs here, the
// forwarding on a goroutine of its own that keeps a small stack while it
// waits on an idle connection for hours (detach).
func (c *Client) handle(ctx context.Context, local net.Conn, t *tracked) {
	c.Metrics.connOpen()
	cc, result := c.open(ctx, local, t)
	if cc == nil {
		c.Metrics.connClose(result)
		return
	}
	t.detach(func() { c.Metrics.connClose(cc.forward()) })
}

// clientConn is a client connection open and ready to forward.
type clientConn struct {
	p     *pipe
	sc    SecureConn
	log   *slog.Logger
	start time.Time
}

// forward runs the pipe until both directions end and returns the
// connection's result for the metrics. An upstream that failed (a
// server-mode proxy that could not reach its target resets the
// connection) counts as closed_with_error.
func (cc *clientConn) forward() string {
	err := cc.p.run(nil)
	cc.sc.Close()
	return logClosed(cc.log, cc.p, err, cc.start)
}

// open dials the mtls server for one accepted connection and returns it
// ready to forward, or nil and the result to count.
func (c *Client) open(ctx context.Context, local net.Conn, t *tracked) (*clientConn, string) {
	start := time.Now()
	log := c.logger().With("conn", t.id, "mode", "client", "remote", remoteString(local))

	cfg := c.cur.Load()
	hctx, cancel := context.WithTimeout(ctx, orDefault(c.HandshakeTimeout, DefaultHandshakeTimeout)+orDefault(c.ConnectTimeout, DefaultConnectTimeout))
	forget := t.addUntil(cancel)
	sc, err := c.dial(hctx, c.Target, cfg)
	cancel()
	forget()
	hsDur := time.Since(start)
	if err != nil {
		res := resultError
		if errors.Is(err, context.DeadlineExceeded) || isTimeoutErr(err) {
			res = resultTimeout
		}
		var ae *mtls.AlertError
		if errors.As(err, &ae) && ae.Remote {
			res = resultDenied
		}
		c.Metrics.handshake("", res, hsDur)
		c.Metrics.failure(failureReason(err))
		// The local client must see a failure, not a clean end of stream.
		if tc, ok := local.(*net.TCPConn); ok {
			tc.SetLinger(0)
		}
		args := []any{"target", c.Target, "err", err}
		if c.Hint != nil {
			if h := c.Hint(cfg, err); h != "" {
				args = append(args, "check", h)
			}
		}
		log.Warn("cannot open mtls connection to target; closing", args...)
		return nil, res
	}
	t.add(func() { sc.Close() })
	cs := sc.ConnectionState()
	c.Metrics.handshakeOK(cs, hsDur)
	log = log.With("identity", cs.PeerIdentity, "local_identity", cs.LocalIdentity, "suite", cs.CipherSuiteName, "pq", cs.PostQuantum)
	log.Info("connection open", "target", c.Target, "alpn", cs.NegotiatedProtocol)
	p := &pipe{a: local, b: sc, idle: c.IdleTimeout, onBytes: c.Metrics.bytesFunc(),
		lifetime: remaining(c.MaxConnLifetime, start), closeTimeout: c.CloseTimeout}
	return &clientConn{p: p, sc: sc, log: log, start: start}, resultOK
}

// sniConfig is a Config with ServerName set, for one base Config and address.
type sniConfig struct {
	base *mtls.Config
	addr string
	cfg  *mtls.Config
}

// withServerName returns cfg with ServerName set to the host of addr, as
// the mtls dialer would set it on a copy of cfg for each connection; the
// copy is made once per configuration and address, not per connection
// (each connection keeps its Config for its lifetime).
func (c *Client) withServerName(cfg *mtls.Config, addr string) *mtls.Config {
	if s := c.sni.Load(); s != nil && s.base == cfg && s.addr == addr {
		return s.cfg
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	named := cfg.Clone()
	named.ServerName = host
	c.sni.Store(&sniConfig{base: cfg, addr: addr, cfg: named})
	return named
}
