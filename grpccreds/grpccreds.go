// Package grpccreds lets gRPC (google.golang.org/grpc) run over mtls:
// certificate-less TLS 1.2 with Milagro CS, Milagro P2P or pre-shared-key
// suites instead of certificates. New returns the
// credentials.TransportCredentials to pass to grpc.Creds (server) or
// grpc.WithTransportCredentials (client); handlers and interceptors find
// the peer's authenticated identity and the suite with PeerIdentity or
// FromContext:
//
//	srv := grpc.NewServer(grpc.Creds(grpccreds.New(serverConfig)))
//	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(grpccreds.New(clientConfig)))
//	// in a handler or interceptor:
//	id, ok := grpccreds.PeerIdentity(ctx)
//
// Both sides negotiate "h2" by ALPN (as grpc-go's TLS credentials do) and
// refuse a peer that does not. To refuse a client before any RPC, set
// mtls.Config.VerifyPeerIdentity on the server: the handshake fails (with
// access_denied; unknown_psk_identity for PSK) and no handler runs.
package grpccreds

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/milagro-go/milagro/mtls"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
)

// alpnProto is gRPC's ALPN protocol (HTTP/2).
const alpnProto = "h2"

// AuthType is the AuthInfo.AuthType of mtls connections.
const AuthType = "mtls"

// AuthInfo is the gRPC AuthInfo of an mtls connection: peer.FromContext(ctx).AuthInfo.
type AuthInfo struct {
	credentials.CommonAuthInfo
	// State is the connection's state: PeerIdentity, CipherSuiteName,
	// KeyExchange, NegotiatedProtocol ("h2"), TLSUnique...
	State mtls.ConnectionState
}

// AuthType returns "mtls".
func (AuthInfo) AuthType() string { return AuthType }

// PeerIdentity is the peer's authenticated identity (see
// mtls.ConnectionState.PeerIdentity).
func (a AuthInfo) PeerIdentity() string { return a.State.PeerIdentity }

// FromContext returns the AuthInfo of the RPC in ctx (a server handler's
// or interceptor's context, or a client context given to grpc.Peer).
func FromContext(ctx context.Context) (AuthInfo, bool) {
	p, ok := peer.FromContext(ctx)
	if !ok || p == nil {
		return AuthInfo{}, false
	}
	ai, ok := p.AuthInfo.(AuthInfo)
	return ai, ok
}

// PeerIdentity returns the authenticated identity of the RPC's peer; ok is
// false when the RPC did not arrive over mtls or the peer has no identity.
func PeerIdentity(ctx context.Context) (string, bool) {
	ai, ok := FromContext(ctx)
	if !ok || ai.State.PeerIdentity == "" {
		return "", false
	}
	return ai.State.PeerIdentity, true
}

type creds struct {
	config *mtls.Config
}

// New returns gRPC transport credentials that run mtls with config, on
// the client or the server side (config's credentials decide which suites
// are possible: PSK, Milagro CS or Milagro P2P). config is cloned; its
// NextProtos is set to "h2". A client's ServerName defaults to the host of
// the gRPC authority.
func New(config *mtls.Config) credentials.TransportCredentials {
	cfg := config.Clone()
	if cfg == nil {
		cfg = &mtls.Config{}
	}
	cfg.NextProtos = []string{alpnProto}
	return &creds{config: cfg}
}

func (c *creds) Info() credentials.ProtocolInfo {
	return credentials.ProtocolInfo{
		SecurityProtocol: AuthType,
		SecurityVersion:  "1.2",
		ServerName:       c.config.ServerName,
	}
}

func (c *creds) Clone() credentials.TransportCredentials {
	return &creds{config: c.config.Clone()}
}

// OverrideServerName sets the client's server_name.
//
// Deprecated: as in grpc-go, set ServerName in the Config instead.
func (c *creds) OverrideServerName(name string) error {
	c.config = c.config.Clone()
	c.config.ServerName = name
	return nil
}

var errNotH2 = errors.New("grpccreds: peer did not negotiate h2 by ALPN")

func (c *creds) ClientHandshake(ctx context.Context, authority string, raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	cfg := c.config
	if cfg.ServerName == "" {
		host, _, err := net.SplitHostPort(authority)
		if err != nil {
			host = authority
		}
		cfg = cfg.Clone()
		cfg.ServerName = host
	}
	conn := mtls.Client(raw, cfg)
	if err := conn.HandshakeContext(ctx); err != nil {
		conn.Close()
		return nil, nil, err
	}
	return finish(conn)
}

// ServerHandshake runs the server handshake. gRPC bounds it with the raw
// connection's deadline (grpc.ConnectionTimeout); Config.HandshakeTimeout
// applies too.
func (c *creds) ServerHandshake(raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	conn := mtls.Server(raw, c.config)
	if err := conn.Handshake(); err != nil {
		conn.Close()
		return nil, nil, err
	}
	return finish(conn)
}

func finish(conn *mtls.Conn) (net.Conn, credentials.AuthInfo, error) {
	st := conn.ConnectionState()
	if st.NegotiatedProtocol != alpnProto {
		conn.Close()
		return nil, nil, fmt.Errorf("%w (negotiated %q)", errNotH2, st.NegotiatedProtocol)
	}
	return conn, AuthInfo{
		CommonAuthInfo: credentials.CommonAuthInfo{SecurityLevel: credentials.PrivacyAndIntegrity},
		State:          st,
	}, nil
}
