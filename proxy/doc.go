// Package proxy is milagro's sidecar: a ghostunnel-like TCP proxy that puts
// certificate-less mtls in front of (server mode, "terminate") or behind
// (client mode, "originate") a plain TCP service.
//
// Server mode (Server) accepts mtls connections, authenticates the peer's
// identity during the handshake (PSK identity, Milagro CS or P2P identity)
// and applies an ACL inside the handshake, through
// mtls.Config.VerifyPeerIdentity, so a denied peer gets an alert
// (access_denied, or unknown_psk_identity for PSK) and never reaches the
// target; the identity is checked again after the handshake. It then dials
// the target and forwards both ways with half-close. The identity can be
// handed to the service as a PROXY protocol v2 TLV (AppendProxyV2) or as an
// HTTP request header (Server.HTTPIdentityHeader: HTTP identity mode). Client mode (Client)
// accepts plain TCP, normally on 127.0.0.1, and originates mtls to a
// server-mode proxy.
//
// Access control (ACL, ACLSpec): exact identities, prefixes and allow files;
// admitting everyone takes an explicit AllowAll, and an ACLSpec with no rule
// at all is an error (ErrNoACL).
//
// Addresses: Target is HOST:PORT or unix:/path (SplitNetworkAddr); Serve
// takes any net.Listener (TCP, UNIX, a socket passed by systemd).
// CheckLocalAddr tells whether a plaintext side stays on the host, for the
// command's --unsafe-target/--unsafe-listen safe defaults.
//
// Operations: Prometheus metrics on a private registry (Metrics): handshakes
// by suite and result, failures by a bounded set of reasons, connections by
// outcome, reloads (Metrics.Reloaded) with their time, revoked connections;
// /healthz and /metrics (StatusHandler: 503 while draining and "degraded"
// after a failed reload; at the open-file limit the last answer is kept);
// slog lines carrying a connection id ("conn"); atomic replacement of the
// mtls Config and ACL (SetConfig, for SIGHUP), which also closes the live
// connections of identities the new ACL refuses; MaxConnLifetime and
// CloseTimeout; a connect-and-close with no byte sent (a health probe) is
// not counted as a failed handshake; when the target cannot be reached the
// mtls connection is reset, so the client sees a failure, not an empty
// stream; graceful shutdown (Shutdown: stop accepting, drain, then close),
// a concurrency cap whose excess waits in the listen backlog as with
// ghostunnel's --max-concurrent-conns (MaxConns), handshake, connect and
// idle timeouts. When a forwarded stream ends in error (for instance an
// mtls peer truncating without close_notify) the plain TCP side is reset,
// not closed, so the service never mistakes it for a complete stream.
//
// Memory: an idle proxied connection holds no copy buffer. A plain TCP or
// UNIX source is waited on with no buffer (Linux: the runtime poller plus
// a one-byte MSG_PEEK, which also sees the peer's EOF, so a mass
// disconnect takes no buffers); so is an mtls source that has nothing
// buffered (mtls.Conn.InputPending: it then holds no record buffer
// either). Everything before the forwarding (admission, handshake, ACL,
// target dial) runs on the accepting goroutine, which ends once the
// forwarding starts on a goroutine of its own, so neither the stack it
// grows (pairing math for Milagro CS) nor its frames stay with the
// connection. The two goroutines that forward only wait; each burst of
// data is read, decrypted, encrypted and written by a short-lived
// goroutine, so the waiting ones keep their initial 2 KiB stacks. What
// remains per idle connection is those two stacks, the connections
// themselves (mtls.Conn keeps its cipher state) and about 2 KiB of proxy
// state: about 9 KB of Go memory on either side
// (BenchmarkProxyIdleMemStats measures it per connection of each proxy
// process; BenchmarkProxyIdleRSS the RSS).
//
// HTTP identity mode (Server.HTTPIdentityHeader) is an HTTP reverse proxy
// on Go's HTTP stack: HTTP/1.1 (net/http) or HTTP/2 (golang.org/x/net/http2)
// by the connection's ALPN protocol, net/http/httputil.ReverseProxy to the
// target (HTTP/1.1, or HTTP/2 cleartext for gRPC servers: TargetProtocol).
// Every client copy of the identity header is deleted and the header set to
// the peer identity on every request; Upgrade offers off the allow list
// (HTTPAllowUpgrade; "h2c" always) are removed, the HTTP/2 preface without
// ALPN h2 is refused, CONNECT is refused unless AllowConnect. See
// docs/operators-guide.md.
//
// Imports: proxy may import mtls (and the packages below it) only, never cmd.
package proxy
