package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/milagro-go/milagro/dtls"
	"github.com/milagro-go/milagro/internal/listen"
	"github.com/milagro-go/milagro/proxy"
)

// `mtls proxy server --dtls --listen ADDR --target UDP-ADDR`: terminate DTLS
// and forward each peer's datagrams to a plain UDP service;
// `mtls proxy client --dtls --listen 127.0.0.1:PORT --target DTLS-ADDR`: the
// other way. Same ACL, status, metrics, reload and shutdown flags as the
// TCP proxy.

func runDTLSProxy(c *cli.Context, server bool) error {
	name := "proxy client"
	if server {
		name = "proxy server"
	}
	log := loggerOf(c) // with the command's --log-level and --log-format (cliutil.go), as the TCP runner
	for _, f := range []string{"proxy-protocol", "http-identity-header", "target-protocol", "http-allow-upgrade", "allow-connect", "alpn", "connect-timeout"} {
		if c.IsSet(f) {
			return cmdError(name, "", fmt.Errorf("--%s does not apply to --dtls (datagrams to a UDP target)", f))
		}
	}
	if c.Int("max-conns") < 0 {
		return cmdError(name, "", errors.New("invalid --max-conns: must not be negative"))
	}
	target := c.String("target")
	if _, _, err := net.SplitHostPort(target); err != nil {
		return cmdError(name, "", fmt.Errorf("invalid --target %q: %w", target, err))
	}
	// The same rule as the TCP proxy: the server forwards plaintext
	// datagrams to --target, so it must be on this host unless the
	// operator says otherwise.
	if server && !c.Bool("unsafe-target") {
		if err := proxy.CheckLocalAddr(target); err != nil {
			return cmdError(name, "", fmt.Errorf("refusing --target %s: the proxy forwards plaintext datagrams to it, so it must be a loopback address (give --unsafe-target to allow it)", err))
		}
	}
	loadCfg := func() (*dtls.Config, error) {
		cfg, err := dtlsConfigFromFlags(c, server)
		if err != nil {
			return nil, err
		}
		cfg.HandshakeTimeout = c.Duration("handshake-timeout")
		return cfg, nil
	}
	cfg, err := loadCfg()
	if err != nil {
		return cmdError(name, "", err)
	}
	metrics := proxy.NewMetrics()
	var (
		serve    func(ctx context.Context) error
		shutdown func(ctx context.Context) error
		reload   func() error
		addr     net.Addr
	)
	if server {
		spec := aclSpecFromFlags(c)
		acl, err := spec.Load()
		if err != nil {
			return proxyCmdError(name, err)
		}
		s := &proxy.UDPServer{Target: target, IdleTimeout: c.Duration("idle-timeout"),
			MaxConns: c.Int("max-conns"), Logger: log, Metrics: metrics}
		if err := s.SetConfig(cfg, acl); err != nil {
			return proxyCmdError(name, err)
		}
		for _, f := range []string{"max-handshakes", "max-handshakes-per-source"} {
			if c.Int(f) < 0 {
				return cmdError(name, "", fmt.Errorf("invalid --%s: must not be negative", f))
			}
		}
		// A peer holds a handshake slot from its first ClientHello; one
		// that does not return the cookie from its address loses it.
		ln, err := dtls.ListenWithOptions("udp", c.String("listen"), cfg, dtls.ListenOptions{
			MaxHandshakes: c.Int("max-handshakes"), MaxHandshakesPerSource: c.Int("max-handshakes-per-source"),
		})
		if err != nil {
			return cmdError(name, "", err)
		}
		addr = ln.Addr()
		log.Info("access control", "acl", acl.String())
		serve = func(ctx context.Context) error { return s.Serve(ctx, ln) }
		shutdown = s.Shutdown
		reload = serverReload(log, spec, loadCfg, s.SetConfig)
	} else {
		listen, err := clientListenAddr(c.String("listen"))
		if err != nil {
			return cmdError(name, "", err)
		}
		cl := &proxy.UDPClient{Target: target, IdleTimeout: c.Duration("idle-timeout"),
			MaxConns: c.Int("max-conns"), Logger: log, Metrics: metrics}
		if err := cl.SetConfig(cfg); err != nil {
			return cmdError(name, "", err)
		}
		pc, err := net.ListenPacket("udp", listen)
		if err != nil {
			return cmdError(name, "", err)
		}
		addr = pc.LocalAddr()
		// Checked on the bound socket, as the TCP proxy does: anyone who
		// reaches a non-loopback --listen sends datagrams that leave with
		// this proxy's identity.
		if u, ok := addr.(*net.UDPAddr); ok && !u.IP.IsLoopback() {
			if !c.Bool("unsafe-listen") {
				_ = pc.Close()
				return cmdError(name, "", fmt.Errorf("refusing --listen %s: client mode accepts plaintext datagrams and sends them with this proxy's identity, so it must listen on a loopback address (give --unsafe-listen to allow it)", addr))
			}
			log.Warn("--unsafe-listen: client mode forwards plaintext from --listen; it is reachable beyond this host", "listen", addr.String())
		}
		ctx, cancel := context.WithCancel(context.Background())
		serve = func(context.Context) error { return cl.Serve(ctx, pc) }
		shutdown = func(context.Context) error {
			cancel()
			return nil
		}
		reload = func() error {
			cfg, err := loadCfg()
			if err != nil {
				return err
			}
			if err := cl.SetConfig(cfg); err != nil {
				return err
			}
			log.Info("reloaded")
			return nil
		}
	}

	var (
		status *http.Server
		health *proxy.StatusHandler
	)
	if a := c.String("status"); a != "" {
		// The same status listener as the TCP runner: HOST:PORT, unix:
		// or systemd:, with a spare descriptor for the open-file limit.
		sl, err := listen.Listen(a)
		if err != nil {
			return cmdError(name, "--status", err)
		}
		sl = listen.Reserve(sl)
		// A UDP service cannot be probed without speaking its protocol:
		// /healthz reports the proxy's own state.
		health = &proxy.StatusHandler{Target: target, Metrics: metrics, NoProbe: true, Pprof: c.Bool("status-pprof")}
		status = &http.Server{Handler: health, ReadHeaderTimeout: 5 * time.Second}
		go status.Serve(sl)
		log.Info("status listening", "addr", sl.Addr().String())
	}
	loop := &proxyLoop{
		name: name, addr: addr.String(), log: log, metrics: metrics,
		listening: []any{"mode", map[bool]string{true: "server", false: "client"}[server],
			"proto", "dtls", "addr", addr.String(), "target", target},
		health: health, status: status,
		serve:    func() error { return serve(context.Background()) },
		shutdown: shutdown, waitServe: !server, reload: reload,
		drain: c.Duration("shutdown-timeout"), what: "sessions",
	}
	return loop.run()
}
