package main

import (
	"context"
	"fmt"
	"net"

	"github.com/milagro-go/milagro/dtls"
	"github.com/milagro-go/milagro/proxy"
)

// `mtls proxy server --dtls --listen ADDR --target UDP-ADDR`: terminate DTLS
// and forward each peer's datagrams to a plain UDP service;
// `mtls proxy client --dtls --listen 127.0.0.1:PORT --target DTLS-ADDR`: the
// other way. The runner is the TCP proxy's (proxy_run.go): same ACL,
// status, metrics, reload, shutdown and --unsafe-* rules; dtlsProxy is the
// part that differs.

// dtlsProxy is the DTLS-over-UDP transport of `mtls proxy`: proxy.UDPServer
// on a dtls.Listener, or proxy.UDPClient on a UDP socket.
type dtlsProxy struct {
	s   *proxy.UDPServer // server mode
	cl  *proxy.UDPClient // client mode
	cfg *dtls.Config     // the first configuration, which the listener starts with
}

func (t *dtlsProxy) rules() proxyRules {
	return proxyRules{
		proto:      "dtls",
		what:       "sessions",
		refused:    []string{"proxy-protocol", "http-identity-header", "target-protocol", "http-allow-upgrade", "allow-connect", "alpn", "connect-timeout"},
		refusedWhy: "--dtls (datagrams to a UDP target)",
		targetRule: "the proxy forwards plaintext datagrams to it, so it must be a loopback address",
		listenRule: "client mode accepts plaintext datagrams and sends them with this proxy's identity, so it must listen on a loopback address",
	}
}

func (t *dtlsProxy) setup(r *proxyRun) (proxyInstall, error) {
	c := r.c
	if r.server {
		for _, f := range []string{"max-handshakes", "max-handshakes-per-source"} {
			if c.Int(f) < 0 {
				return nil, fmt.Errorf("invalid --%s: must not be negative", f)
			}
		}
	}
	cfg, err := t.config(r)
	if err != nil {
		return nil, err
	}
	t.cfg = cfg
	if r.server {
		t.s = &proxy.UDPServer{Target: r.target, IdleTimeout: c.Duration("idle-timeout"),
			MaxConns: c.Int("max-conns"), Logger: r.log, Metrics: r.metrics}
	} else {
		t.cl = &proxy.UDPClient{Target: r.target, IdleTimeout: c.Duration("idle-timeout"),
			MaxConns: c.Int("max-conns"), Logger: r.log, Metrics: r.metrics}
	}
	return t.installer(r, cfg), nil
}

func (t *dtlsProxy) load(r *proxyRun) (proxyInstall, error) {
	cfg, err := t.config(r)
	if err != nil {
		return nil, err
	}
	return t.installer(r, cfg), nil
}

func (t *dtlsProxy) config(r *proxyRun) (*dtls.Config, error) {
	cfg, err := dtlsConfigFromFlags(r.c, r.server)
	if err != nil {
		return nil, err
	}
	cfg.HandshakeTimeout = r.c.Duration("handshake-timeout")
	return cfg, nil
}

func (t *dtlsProxy) installer(r *proxyRun, cfg *dtls.Config) proxyInstall {
	if r.server {
		return func(acl *proxy.ACL) error { return t.s.SetConfig(cfg, acl) }
	}
	return func(*proxy.ACL) error { return t.cl.SetConfig(cfg) }
}

func (t *dtlsProxy) listen(r *proxyRun, addr string) (*proxyServing, error) {
	if r.server {
		// A peer holds a handshake slot from its first ClientHello; one
		// that does not return the cookie from its address loses it.
		ln, err := dtls.ListenWithOptions("udp", addr, t.cfg, dtls.ListenOptions{
			MaxHandshakes: r.c.Int("max-handshakes"), MaxHandshakesPerSource: r.c.Int("max-handshakes-per-source"),
		})
		if err != nil {
			return nil, err
		}
		return &proxyServing{
			addr: ln.Addr(), close: ln.Close,
			serve:    func() error { return t.s.Serve(context.Background(), ln) },
			shutdown: t.s.Shutdown,
		}, nil
	}
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return nil, err
	}
	// The client serves until its context ends: shutdown ends it, and the
	// loop waits for Serve to have closed the sessions.
	ctx, cancel := context.WithCancel(r.ctx)
	return &proxyServing{
		addr: pc.LocalAddr(),
		close: func() error {
			cancel()
			return pc.Close()
		},
		serve: func() error { return t.cl.Serve(ctx, pc) },
		shutdown: func(context.Context) error {
			cancel()
			return nil
		},
		waitServe: true,
	}, nil
}

// status: a UDP service cannot be probed without speaking its protocol, so
// /healthz reports the proxy's own state.
func (t *dtlsProxy) status(h *proxy.StatusHandler) {
	h.NoProbe = true
}
