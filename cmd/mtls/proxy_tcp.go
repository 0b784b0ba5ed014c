package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/milagro-go/milagro/internal/listen"
	"github.com/milagro-go/milagro/mtls"
	"github.com/milagro-go/milagro/proxy"
)

// tcpProxy is the TLS-over-TCP transport of `mtls proxy` (proxy_run.go):
// proxy.Server or proxy.Client on a listener of package listen (HOST:PORT,
// unix:/path, systemd:NAME), with --renewal and HTTP identity mode.
type tcpProxy struct {
	s   *proxy.Server // server mode
	cl  *proxy.Client // client mode
	ren *renewal      // --renewal; nil without
}

func (t *tcpProxy) rules() proxyRules {
	return proxyRules{
		what:       "connections",
		unixTarget: true,
		targetRule: "the proxy forwards plaintext to it, so it must be a loopback address or unix:/path",
		listenRule: "client mode accepts plaintext and connects with this proxy's identity, so it must listen on a loopback address or unix:/path",
	}
}

func (t *tcpProxy) setup(r *proxyRun) (proxyInstall, error) {
	c := r.c
	var (
		tp       string
		upgrades []string
	)
	if r.server {
		var err error
		if tp, upgrades, err = httpIdentityFlags(r); err != nil {
			return nil, err
		}
	}
	cfg, err := configFromFlags(c, r.server)
	if err != nil {
		return nil, err
	}
	// The first renewal is checked against the keys just read; it keeps
	// running (its permits plugged into every reloaded configuration)
	// until the command returns.
	if t.ren, err = startRenewal(r.ctx, c, cfg, r.server, true, r.metrics.Registry); err != nil { // --renewal: renewal_flag.go
		return nil, err
	}
	if r.server {
		t.s = &proxy.Server{
			Target: r.target, HandshakeTimeout: c.Duration("handshake-timeout"),
			ConnectTimeout: c.Duration("connect-timeout"), IdleTimeout: c.Duration("idle-timeout"),
			MaxConns: c.Int("max-conns"), ProxyProtocol: c.Bool("proxy-protocol"),
			MaxHandshakes: c.Int("max-handshakes"), MaxHandshakesPerSource: c.Int("max-handshakes-per-source"),
			MaxConnLifetime: c.Duration("max-conn-lifetime"), CloseTimeout: c.Duration("close-timeout"),
			HTTPIdentityHeader: c.String("http-identity-header"),
			AllowConnect:       c.Bool("allow-connect"),
			TargetProtocol:     tp, HTTPAllowUpgrade: upgrades,
			Logger: r.log, Metrics: r.metrics,
		}
	} else {
		t.cl = &proxy.Client{
			Target: r.target, HandshakeTimeout: c.Duration("handshake-timeout"),
			ConnectTimeout: c.Duration("connect-timeout"), IdleTimeout: c.Duration("idle-timeout"),
			MaxConns: c.Int("max-conns"), Logger: r.log, Metrics: r.metrics, Hint: hintForLog,
			MaxConnLifetime: c.Duration("max-conn-lifetime"), CloseTimeout: c.Duration("close-timeout"),
		}
	}
	return t.installer(r, cfg)
}

func (t *tcpProxy) load(r *proxyRun) (proxyInstall, error) {
	cfg, err := configFromFlags(r.c, r.server)
	if err != nil {
		return nil, err
	}
	return t.installer(r, cfg)
}

// installer completes a configuration read from the flags (--renewal's
// permits, client mode's ALPN) and returns what applies it.
func (t *tcpProxy) installer(r *proxyRun, cfg *mtls.Config) (proxyInstall, error) {
	t.ren.apply(cfg)
	if r.server {
		return func(acl *proxy.ACL) error { return t.s.SetConfig(cfg, acl) }, nil
	}
	if err := setClientALPN(cfg, r.c.String("alpn")); err != nil {
		return nil, err
	}
	return func(*proxy.ACL) error { return t.cl.SetConfig(cfg) }, nil
}

func (t *tcpProxy) listen(r *proxyRun, addr string) (*proxyServing, error) {
	ln, err := listen.Listen(addr)
	if err != nil {
		return nil, err
	}
	sv := &proxyServing{addr: ln.Addr(), close: ln.Close}
	if r.server {
		sv.serve = func() error { return t.s.Serve(context.Background(), ln) }
		sv.shutdown = t.s.Shutdown
	} else {
		sv.serve = func() error { return t.cl.Serve(context.Background(), ln) }
		sv.shutdown = t.cl.Shutdown
	}
	return sv, nil
}

func (t *tcpProxy) status(h *proxy.StatusHandler) {
	h.Degraded = t.ren.statusCheck()
}

// httpIdentityFlags checks the flags of HTTP identity mode and returns
// --target-protocol and the upgrades --http-allow-upgrade lets through.
func httpIdentityFlags(r *proxyRun) (tp string, upgrades []string, err error) {
	c := r.c
	if h := c.String("http-identity-header"); h != "" && !proxy.ValidHeaderName(h) {
		return "", nil, fmt.Errorf("invalid --http-identity-header %q: not an HTTP header name", h)
	}
	if c.String("http-identity-header") != "" && c.Bool("proxy-protocol") {
		return "", nil, errors.New("--proxy-protocol and --http-identity-header are exclusive")
	}
	if c.String("http-identity-header") == "" {
		for _, f := range []string{"target-protocol", "http-allow-upgrade", "allow-connect"} {
			if c.IsSet(f) {
				return "", nil, fmt.Errorf("--%s applies to HTTP identity mode: give --http-identity-header too", f)
			}
		}
	}
	tp = c.String("target-protocol")
	if tp != proxy.TargetHTTP1 && tp != proxy.TargetH2C {
		return "", nil, fmt.Errorf("invalid --target-protocol %q: want http1 or h2c", tp)
	}
	upgrades = []string{}
	for _, u := range c.StringSlice("http-allow-upgrade") {
		switch {
		case u == "none":
		case !proxy.ValidHeaderName(u) || strings.EqualFold(u, "h2c"):
			return "", nil, fmt.Errorf("invalid --http-allow-upgrade %q: a protocol token other than h2c (the proxy does not read HTTP/2 after an upgrade)", u)
		default:
			upgrades = append(upgrades, u)
		}
	}
	return tp, upgrades, nil
}

// setClientALPN makes a client-mode proxy offer exactly proto by ALPN (the
// protocol its local application speaks), or nothing for "none".
func setClientALPN(cfg *mtls.Config, proto string) error {
	switch proto {
	case "none":
		cfg.NextProtos = nil
	case "http/1.1", "h2":
		cfg.NextProtos = []string{proto}
	default:
		if len(proto) == 0 || len(proto) > 255 {
			return fmt.Errorf("invalid --alpn %q", proto)
		}
		cfg.NextProtos = []string{proto}
	}
	return nil
}
