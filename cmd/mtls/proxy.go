package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/milagro-go/milagro/proxy"
)

// mtls proxy server|client: the sidecar (package proxy) on the command line.

func init() {
	register(&cli.Command{
		Name:  "proxy",
		Usage: "sidecar proxy: terminate mtls in front of a TCP service, or originate it for a local client",
		Subcommands: []*cli.Command{
			{
				Name:      "server",
				Usage:     "accept mtls on --listen, check the peer identity against the ACL, forward to --target",
				UsageText: "mtls proxy server --listen ADDR --target HOST:PORT (--psk-file F | --key server.key ...) (--allow ID | --allow-prefix P | --allow-file F | --allow-all) [options]",
				Flags:     proxyFlags(true),
				Action:    func(c *cli.Context) error { return runProxy(c, true) },
			},
			{
				Name:      "client",
				Usage:     "accept plain TCP on --listen (127.0.0.1), originate mtls to --target",
				UsageText: "mtls proxy client --listen 127.0.0.1:PORT --target HOST:PORT (--psk-identity ID --psk HEX | --key alice.key ...) [options]",
				Flags:     proxyFlags(false),
				Action:    func(c *cli.Context) error { return runProxy(c, false) },
			},
		},
	})
}

// proxyFlags returns the credential flags of creds.go plus the proxy's own;
// a name creds.go already defines (e.g. --handshake-timeout) is reused.
func proxyFlags(server bool) []cli.Flag {
	fs := credentialFlags(server)
	have := map[string]bool{}
	for _, f := range fs {
		for _, n := range f.Names() {
			have[n] = true
		}
	}
	// replace puts the proxy's definition in place of an earlier one of the
	// same name (the Milagro flags' --allow: same meaning, but in the proxy
	// no ACL at all is an error, not "every authenticated peer").
	replace := func(f cli.Flag) {
		for i, old := range fs {
			for _, n := range old.Names() {
				if n == f.Names()[0] {
					fs[i] = f
					return
				}
			}
		}
		fs = append(fs, f)
		for _, n := range f.Names() {
			have[n] = true
		}
	}
	add := func(f cli.Flag) {
		for _, n := range f.Names() {
			if have[n] {
				return
			}
		}
		for _, n := range f.Names() {
			have[n] = true
		}
		fs = append(fs, f)
	}
	cat := "proxy"
	listenUsage := "accept mtls on `ADDR` (HOST:PORT)"
	if !server {
		listenUsage = "accept plain TCP on `ADDR`; a bare :PORT binds 127.0.0.1"
	}
	add(&cli.StringFlag{Name: "listen", Category: cat, Required: true, Usage: listenUsage})
	add(&cli.StringFlag{Name: "target", Category: cat, Required: true, Usage: "forward to `HOST:PORT`"})
	add(&cli.StringFlag{Name: "status", Category: cat, Usage: "serve /healthz and /metrics (Prometheus) on `ADDR`"})
	add(&cli.StringFlag{Name: "log-format", Category: cat, Usage: "log format: text or json (overrides the global flag)"})
	add(&cli.DurationFlag{Name: "shutdown-timeout", Category: cat, Value: 30 * time.Second, Usage: "on SIGTERM/SIGINT, let live connections finish for this long, then close them"})
	add(&cli.IntFlag{Name: "max-conns", Category: cat, Usage: "maximum concurrent connections; excess ones wait in the listen backlog (0: no limit)"})
	add(&cli.DurationFlag{Name: "handshake-timeout", Category: cat, Value: 10 * time.Second, Usage: "bound on each mtls handshake"})
	add(&cli.DurationFlag{Name: "idle-timeout", Category: cat, Usage: "close a connection idle in both directions for this long (0: never)"})
	add(&cli.DurationFlag{Name: "connect-timeout", Category: cat, Value: 10 * time.Second, Usage: "bound on connecting to --target"})
	if server {
		acl := "access control"
		replace(&cli.StringSliceFlag{Name: "allow", Category: acl, Usage: "admit the peer identity `ID` (repeatable)"})
		add(&cli.StringSliceFlag{Name: "allow-prefix", Category: acl, Usage: "admit identities starting with `P` (repeatable)"})
		add(&cli.StringSliceFlag{Name: "allow-file", Category: acl, Usage: "admit the identities in `FILE`: one per line, 'prefix:P' lines, # comments; re-read on SIGHUP"})
		add(&cli.BoolFlag{Name: "allow-all", Category: acl, Usage: "admit every authenticated identity (must be explicit)"})
		add(&cli.BoolFlag{Name: "proxy-protocol", Category: cat, Usage: "send a PROXY protocol v2 header with the identity in TLV 0xE0 (and PP2_TYPE_SSL) to the target"})
		add(&cli.StringFlag{Name: "http-identity-header", Category: cat, Usage: "HTTP/1.1 mode: strip `NAME` from client requests and set it to the peer identity"})
	}
	return fs
}

func aclSpecFromFlags(c *cli.Context) proxy.ACLSpec {
	return proxy.ACLSpec{
		IDs:      c.StringSlice("allow"),
		Prefixes: c.StringSlice("allow-prefix"),
		Files:    c.StringSlice("allow-file"),
		All:      c.Bool("allow-all"),
	}
}

// clientListenAddr binds a bare :PORT to loopback: client mode forwards
// plaintext and must not be reachable from the network by accident.
func clientListenAddr(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("invalid --listen %q: %w", addr, err)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port), nil
}

func runProxy(c *cli.Context, server bool) error {
	name := "proxy client"
	if server {
		name = "proxy server"
	}
	log := logger // with the command's --log-level and --log-format (cliutil.go)
	if c.Int("max-conns") < 0 {
		return cmdError(name, "", errors.New("invalid --max-conns: must not be negative"))
	}
	cfg, err := configFromFlags(c, server)
	if err != nil {
		return cmdError(name, "", err)
	}
	metrics := proxy.NewMetrics()
	target := c.String("target")
	if _, _, err := net.SplitHostPort(target); err != nil {
		return cmdError(name, "", fmt.Errorf("invalid --target %q: %w", target, err))
	}
	hsTimeout := c.Duration("handshake-timeout")

	var (
		serve    func(context.Context, net.Listener) error
		shutdown func(context.Context) error
		reload   func() error
		listen   = c.String("listen")
	)
	if server {
		if h := c.String("http-identity-header"); h != "" && !proxy.ValidHeaderName(h) {
			return cmdError(name, "", fmt.Errorf("invalid --http-identity-header %q: not an HTTP header name", h))
		}
		if c.String("http-identity-header") != "" && c.Bool("proxy-protocol") {
			return cmdError(name, "", errors.New("--proxy-protocol and --http-identity-header are exclusive"))
		}
		spec := aclSpecFromFlags(c)
		acl, err := spec.Load()
		if err != nil {
			return proxyCmdError(name, err)
		}
		s := &proxy.Server{
			Target: target, HandshakeTimeout: hsTimeout,
			ConnectTimeout: c.Duration("connect-timeout"), IdleTimeout: c.Duration("idle-timeout"),
			MaxConns: c.Int("max-conns"), ProxyProtocol: c.Bool("proxy-protocol"),
			HTTPIdentityHeader: c.String("http-identity-header"),
			Logger:             log, Metrics: metrics,
		}
		if err := s.SetConfig(cfg, acl); err != nil {
			return proxyCmdError(name, err)
		}
		log.Info("access control", "acl", acl.String())
		serve, shutdown = s.Serve, s.Shutdown
		reload = func() error {
			cfg, err := configFromFlags(c, true)
			if err != nil {
				return err
			}
			acl, err := spec.Load()
			if err != nil {
				return err
			}
			if err := s.SetConfig(cfg, acl); err != nil {
				return err
			}
			log.Info("reloaded", "acl", acl.String())
			return nil
		}
	} else {
		if listen, err = clientListenAddr(listen); err != nil {
			return cmdError(name, "", err)
		}
		cl := &proxy.Client{
			Target: target, HandshakeTimeout: hsTimeout,
			ConnectTimeout: c.Duration("connect-timeout"), IdleTimeout: c.Duration("idle-timeout"),
			MaxConns: c.Int("max-conns"), Logger: log, Metrics: metrics,
		}
		if err := cl.SetConfig(cfg); err != nil {
			return cmdError(name, "", err)
		}
		serve, shutdown = cl.Serve, cl.Shutdown
		reload = func() error {
			cfg, err := configFromFlags(c, false)
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

	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return cmdError(name, "", err)
	}
	if !server {
		if tcp, ok := ln.Addr().(*net.TCPAddr); ok && !tcp.IP.IsLoopback() {
			log.Warn("client mode forwards plaintext from --listen; it is reachable beyond this host", "listen", ln.Addr().String())
		}
	}
	var status *http.Server
	if addr := c.String("status"); addr != "" {
		sl, err := net.Listen("tcp", addr)
		if err != nil {
			ln.Close()
			return cmdError(name, "--status", err)
		}
		status = &http.Server{
			Handler:           &proxy.StatusHandler{Target: target, Metrics: metrics},
			ReadHeaderTimeout: 5 * time.Second,
		}
		go status.Serve(sl)
		log.Info("status listening", "addr", sl.Addr().String())
	}

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	errc := make(chan error, 1)
	go func() { errc <- serve(context.Background(), ln) }()
	log.Info("proxy listening", "mode", map[bool]string{true: "server", false: "client"}[server],
		"addr", ln.Addr().String(), "target", target)

	for {
		select {
		case err := <-errc:
			if status != nil {
				status.Close()
			}
			return cmdError(name, "serve", err)
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				if err := reload(); err != nil {
					log.Error("reload failed; keeping the previous configuration", "err", err)
				}
				continue
			}
			timeout := c.Duration("shutdown-timeout")
			log.Info("shutting down", "signal", sig.String(), "drain", timeout)
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			err := shutdown(ctx)
			cancel()
			if status != nil {
				status.Close()
			}
			if err != nil {
				log.Warn("drain timed out; closed the remaining connections")
			}
			log.Info("stopped")
			return nil
		}
	}
}

// proxyCmdError is cmdError for errors of package proxy (without its prefix).
func proxyCmdError(name string, err error) error {
	return &commandError{msg: "mtls " + name + ": " + strings.TrimPrefix(err.Error(), "proxy: "), err: err}
}
