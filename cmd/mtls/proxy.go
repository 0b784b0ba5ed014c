package main

import (
	"fmt"
	"net"
	"strings"
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
	listenUsage := "accept mtls on `ADDR`: HOST:PORT, unix:/path or systemd:NAME (socket activation)"
	targetUsage := "forward to `ADDR`: HOST:PORT or unix:/path; plaintext, so it must be a loopback address or a UNIX socket unless --unsafe-target"
	if !server {
		listenUsage = "accept plain TCP on `ADDR`: HOST:PORT (a bare :PORT binds 127.0.0.1), unix:/path or systemd:NAME; plaintext, so it must be loopback or UNIX unless --unsafe-listen"
		targetUsage = "the mtls server `ADDR`: HOST:PORT or unix:/path"
	}
	add(&cli.StringFlag{Name: "listen", Category: cat, Required: true, Usage: listenUsage})
	add(&cli.StringFlag{Name: "target", Category: cat, Required: true, Usage: targetUsage})
	add(&cli.StringFlag{Name: "status", Category: cat, Usage: "serve /healthz and /metrics (Prometheus) on `ADDR` (HOST:PORT, unix:/path or systemd:NAME)"})
	add(&cli.BoolFlag{Name: "status-pprof", Category: cat, Usage: "also serve Go's runtime profiles (CPU, heap, goroutines) under /debug/pprof/ on --status; for profiling only: they expose the process's internals"})
	add(&cli.StringFlag{Name: "log-format", Category: "logging", Usage: "log `FORMAT`: text or json (overrides the global flag)"})
	add(&cli.DurationFlag{Name: "shutdown-timeout", Category: cat, Value: 30 * time.Second, Usage: "on SIGTERM/SIGINT, let live connections finish for this long, then close them"})
	add(&cli.IntFlag{Name: "max-conns", Category: cat, Usage: "maximum concurrent connections (server: established ones; client: all); excess ones wait (0: no limit)"})
	add(&cli.DurationFlag{Name: "max-conn-lifetime", Category: cat, Usage: "close a connection this long after it was accepted, however busy (0: no limit)"})
	add(&cli.DurationFlag{Name: "close-timeout", Category: cat, Usage: "once one side finished sending, close the connection if the other has not finished within this long (0: wait)"})
	add(&cli.DurationFlag{Name: "idle-timeout", Category: cat, Usage: "close a connection idle in both directions for this long (0: never)"})
	add(&cli.DurationFlag{Name: "connect-timeout", Category: cat, Value: proxy.DefaultConnectTimeout, Usage: "bound on connecting to --target"})
	if server {
		add(&cli.IntFlag{Name: "max-handshakes", Category: cat, Usage: "connections allowed in their handshake at once, apart from --max-conns (0: 1024); beyond it new connections are closed (--dtls: peers from their first ClientHello, and a ClientHello beyond it is dropped)"})
		add(&cli.IntFlag{Name: "max-handshakes-per-source", Category: cat, Usage: "connections from one IP address allowed in their handshake at once (0: 256; --dtls: 16 per IPv4 address or IPv6 /64)"})
		acl := "access control"
		replace(&cli.StringSliceFlag{Name: "allow", Category: acl, Usage: "admit the peer identity `ID` (repeatable)"})
		add(&cli.StringSliceFlag{Name: "allow-prefix", Category: acl, Usage: "admit identities starting with `P` (repeatable)"})
		add(&cli.StringSliceFlag{Name: "allow-file", Category: acl, Usage: "admit the identities in `FILE`: one per line, 'prefix:P' lines, # comments; re-read on SIGHUP"})
		add(&cli.BoolFlag{Name: "allow-all", Category: acl, Usage: "admit every authenticated identity (must be explicit)"})
		add(&cli.BoolFlag{Name: "allow-empty", Category: acl, Usage: "accept an --allow-file that lists nobody (denying everyone); without it an empty file fails start-up and the reload"})
		add(&cli.BoolFlag{Name: "unsafe-target", Category: cat, Usage: "allow a --target that is not a loopback address or UNIX socket (the traffic to it is plaintext)"})
		add(&cli.BoolFlag{Name: "proxy-protocol", Category: cat, Usage: "send a PROXY protocol v2 header with the identity in TLV 0xE0 (and PP2_TYPE_SSL) to the target"})
		add(&cli.StringFlag{Name: "http-identity-header", Category: cat, Usage: "HTTP identity mode: serve HTTP/1.1, or HTTP/2 to clients that choose h2 by ALPN, and forward each request to --target with every client copy of header `NAME` (any case, '_' for '-') deleted and NAME set to the authenticated peer identity"})
		add(&cli.StringFlag{Name: "target-protocol", Category: cat, Value: proxy.TargetHTTP1, Usage: "HTTP identity mode: what --target speaks, `PROTO` http1 (HTTP/1.1) or h2c (HTTP/2 cleartext with prior knowledge: gRPC servers)"})
		add(&cli.StringSliceFlag{Name: "http-allow-upgrade", Category: cat, Value: cli.NewStringSlice(proxy.DefaultHTTPAllowUpgrade...), Usage: "HTTP identity mode: let an Upgrade to `TYPE` through to an http1 target (repeatable; 'none' for none); other offers, h2c always, are removed and the request served as HTTP/1.1"})
		add(&cli.BoolFlag{Name: "allow-connect", Category: cat, Usage: "HTTP identity mode: forward CONNECT requests as ordinary requests, never as a tunnel (default: answer 405)"})
	} else {
		add(&cli.StringFlag{Name: "alpn", Category: cat, Value: "http/1.1", Usage: "the protocol the local application speaks, offered by ALPN: `PROTO` http/1.1 (HTTP/1.x clients), h2 (HTTP/2 with prior knowledge: gRPC clients), or 'none' for a non-HTTP service"})
		add(&cli.BoolFlag{Name: "unsafe-listen", Category: cat, Usage: "allow a --listen that is not a loopback address or UNIX socket (anyone who reaches it speaks with our identity)"})
	}
	fs = append(fs, dtlsFlags()...) // --dtls: dtls.go, dtls_proxy.go
	return fs
}

func aclSpecFromFlags(c *cli.Context) proxy.ACLSpec {
	return proxy.ACLSpec{
		IDs:      c.StringSlice("allow"),
		Prefixes: c.StringSlice("allow-prefix"),
		Files:    c.StringSlice("allow-file"),
		All:      c.Bool("allow-all"),

		AllowEmpty: c.Bool("allow-empty"),
	}
}

// clientListenAddr binds a bare :PORT to loopback: client mode forwards
// plaintext and must not be reachable from the network by accident.
// unix: and systemd: addresses are returned as they are.
func clientListenAddr(addr string) (string, error) {
	if strings.HasPrefix(addr, "unix:") || strings.HasPrefix(addr, "systemd:") {
		return addr, nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("invalid --listen %q: %w", addr, err)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port), nil
}

// proxyCmdError is cmdError for errors of package proxy (without its prefix).
func proxyCmdError(name string, err error) error {
	return &commandError{msg: "mtls " + name + ": " + strings.TrimPrefix(err.Error(), "proxy: "), err: err}
}
