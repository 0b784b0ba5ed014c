package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/milagro-go/milagro/internal/listen"
	"github.com/milagro-go/milagro/proxy"
)

// One runner for `mtls proxy server|client`, over TCP (TLS) and with
// --dtls (UDP): runProxy checks the flags common to both, loads the ACL,
// opens --status, refuses a client-mode --listen beyond loopback, and hands
// the proxy to proxyLoop (signals, reload, drain, sd_notify). What differs
// between the transports sits behind proxyTransport: proxy_tcp.go and
// dtls_proxy.go.

// proxyTransport is the transport-specific half of a proxy command.
type proxyTransport interface {
	// rules are the transport's fixed facts and messages.
	rules() proxyRules
	// setup checks the transport's own flags, reads the configuration from
	// the flags and files and builds the proxy server or client, not yet
	// listening. install applies that first configuration.
	setup(r *proxyRun) (install proxyInstall, err error)
	// load reads the configuration from the flags and files again (SIGHUP).
	load(r *proxyRun) (install proxyInstall, err error)
	// listen binds addr (client mode: already through clientListenAddr).
	listen(r *proxyRun, addr string) (*proxyServing, error)
	// status fills in the transport's part of the /healthz handler.
	status(h *proxy.StatusHandler)
}

// proxyInstall applies a configuration read by setup or load, with the ACL
// in server mode (nil in client mode): all of it or nothing.
type proxyInstall func(acl *proxy.ACL) error

// proxyRules are what the runner says and checks differently per transport.
type proxyRules struct {
	proto string // logged as "proto" in "proxy listening"; "" for TCP
	what  string // what a drain that timed out closed: "connections", "sessions"

	// refused are flags that do not apply to the transport, refusedWhy
	// completes "--FLAG does not apply to ...".
	refused    []string
	refusedWhy string

	unixTarget bool   // --target may be unix:/path
	targetRule string // why a server's --target must be on this host
	listenRule string // why a client's --listen must be loopback
}

// proxyServing is a bound listener and how to run and stop the proxy on it.
type proxyServing struct {
	addr     net.Addr
	close    func() error // closes the listener if start-up fails before serve
	serve    func() error // runs until shutdown
	shutdown func(context.Context) error
	// waitServe: shutdown only tells serve to stop; wait for it to return.
	waitServe bool
}

// proxyRun is what a proxy command knows while it starts.
type proxyRun struct {
	c       *cli.Context
	server  bool
	name    string // "proxy server", "proxy client"
	log     *slog.Logger
	metrics *proxy.Metrics
	target  string
	ctx     context.Context // ends when the command returns
}

func runProxy(c *cli.Context, server bool) error {
	var t proxyTransport = &tcpProxy{}
	if c.Bool("dtls") {
		t = &dtlsProxy{}
	}
	r := &proxyRun{
		c: c, server: server, name: "proxy client",
		log:     loggerOf(c), // with the command's --log-level and --log-format (cliutil.go)
		metrics: proxy.NewMetrics(),
		target:  c.String("target"),
	}
	if server {
		r.name = "proxy server"
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r.ctx = ctx
	rules := t.rules()
	if err := checkProxyFlags(r, rules); err != nil {
		return cmdError(r.name, "", err)
	}

	install, err := t.setup(r)
	if err != nil {
		return cmdError(r.name, "", err)
	}
	var spec proxy.ACLSpec
	var acl *proxy.ACL
	if server {
		spec = aclSpecFromFlags(c)
		if acl, err = spec.Load(); err != nil {
			return proxyCmdError(r.name, err)
		}
	}
	if err := install(acl); err != nil {
		if server {
			return proxyCmdError(r.name, err)
		}
		return cmdError(r.name, "", err)
	}
	if server {
		r.log.Info("access control", "acl", acl.String())
	}
	reload := func() error {
		install, err := t.load(r)
		if err != nil {
			return err
		}
		var acl *proxy.ACL
		if server {
			if acl, err = spec.Load(); err != nil {
				return err
			}
		}
		if err := install(acl); err != nil {
			return err
		}
		if server {
			r.log.Info("reloaded", "acl", acl.String())
		} else {
			r.log.Info("reloaded")
		}
		return nil
	}

	addr := c.String("listen")
	if !server {
		if addr, err = clientListenAddr(addr); err != nil {
			return cmdError(r.name, "", err)
		}
	}
	sv, err := t.listen(r, addr)
	if err != nil {
		return cmdError(r.name, "", err)
	}
	if !server {
		// Checked on the bound listener, so that a systemd-passed socket
		// is too: anyone who reaches a client-mode listener speaks with
		// this proxy's identity.
		if ip := addrIP(sv.addr); ip != nil && !ip.IsLoopback() {
			if !c.Bool("unsafe-listen") {
				_ = sv.close()
				return cmdError(r.name, "", fmt.Errorf("refusing --listen %s: %s (give --unsafe-listen to allow it)", sv.addr, rules.listenRule))
			}
			r.log.Warn("--unsafe-listen: client mode forwards plaintext from --listen; it is reachable beyond this host", "listen", sv.addr.String())
		}
	}
	var (
		status *http.Server
		health *proxy.StatusHandler
	)
	if a := c.String("status"); a != "" {
		sl, err := listen.Listen(a)
		if err != nil {
			_ = sv.close()
			return cmdError(r.name, "--status", err)
		}
		// A spare descriptor keeps /healthz reachable at the open-file limit.
		sl = listen.Reserve(sl)
		health = &proxy.StatusHandler{Target: r.target, Metrics: r.metrics, Pprof: c.Bool("status-pprof")}
		t.status(health)
		status = &http.Server{Handler: health, ReadHeaderTimeout: 5 * time.Second}
		go status.Serve(sl)
		r.log.Info("status listening", "addr", sl.Addr().String())
	}

	listening := []any{"mode", map[bool]string{true: "server", false: "client"}[server]}
	if rules.proto != "" {
		listening = append(listening, "proto", rules.proto)
	}
	listening = append(listening, "addr", sv.addr.String(), "target", r.target)
	loop := &proxyLoop{
		name: r.name, addr: sv.addr.String(), log: r.log, metrics: r.metrics,
		listening: listening,
		health:    health, status: status,
		serve: sv.serve, shutdown: sv.shutdown, waitServe: sv.waitServe,
		reload: reload,
		drain:  c.Duration("shutdown-timeout"), what: rules.what,
	}
	return loop.run()
}

// checkProxyFlags checks the flags whose meaning does not depend on the
// transport, and refuses those that do not apply to it.
func checkProxyFlags(r *proxyRun, rules proxyRules) error {
	c := r.c
	for _, f := range rules.refused {
		if c.IsSet(f) {
			return fmt.Errorf("--%s does not apply to %s", f, rules.refusedWhy)
		}
	}
	if c.Int("max-conns") < 0 {
		return errors.New("invalid --max-conns: must not be negative")
	}
	if network, a := proxy.SplitNetworkAddr(r.target); network == "unix" {
		if !rules.unixTarget {
			return fmt.Errorf("invalid --target %q: a UNIX socket does not apply to %s", r.target, rules.refusedWhy)
		}
		if a == "" {
			return fmt.Errorf("invalid --target %q: empty UNIX socket path", r.target)
		}
	} else if _, _, err := net.SplitHostPort(r.target); err != nil {
		return fmt.Errorf("invalid --target %q: %w", r.target, err)
	}
	// The server forwards plaintext to --target: it must be on this host
	// unless the operator says otherwise (a client's --unsafe-listen is not
	// that opt-out).
	if r.server && !c.Bool("unsafe-target") {
		if err := proxy.CheckLocalAddr(r.target); err != nil {
			return fmt.Errorf("refusing --target %s: %s (give --unsafe-target to allow it)", err, rules.targetRule)
		}
	}
	return nil
}

// addrIP is the IP address of a TCP or UDP listener; nil for others (UNIX
// sockets).
func addrIP(a net.Addr) net.IP {
	switch a := a.(type) {
	case *net.TCPAddr:
		return a.IP
	case *net.UDPAddr:
		return a.IP
	}
	return nil
}
