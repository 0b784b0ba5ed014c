// Package proxy is milagro's sidecar: a ghostunnel-like TCP proxy that puts
// certificate-less mtls in front of (server mode, "terminate") or behind
// (client mode, "originate") a plain TCP service.
//
// Server mode accepts mtls connections, authenticates the peer's identity
// during the handshake (PSK identity, Milagro CS or P2P identity), applies an
// ACL (the denial happens inside the handshake through
// mtls.Config.VerifyPeerIdentity, so a denied peer gets an alert and never
// reaches the target), dials the target and forwards both ways with
// half-close. The identity can be handed to the service as a PROXY protocol
// v2 TLV or as an HTTP request header. Client mode accepts plain TCP
// (normally on 127.0.0.1) and originates mtls to a remote server-mode proxy.
//
// Both modes are usable as a library (Server, Client) without the CLI; the
// command "mtls proxy" in cmd/mtls is a thin layer over them. Operations:
// Prometheus metrics on a private registry (Metrics), a status handler with
// /healthz and /metrics (StatusHandler), slog logging, atomic configuration
// and ACL replacement for SIGHUP reloads (SetConfig), and graceful shutdown
// (Shutdown).
//
// Imports: proxy may import mtls (and the packages below it) only, never cmd.
package proxy
