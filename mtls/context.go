package mtls

import (
	"context"
	"net"
)

// connContextKey is the context key under which ConnContext stores the *Conn.
type connContextKey struct{}

// ConnContext returns ctx carrying c when c is a *Conn (else ctx
// unchanged). Its signature is that of http.Server.ConnContext, so an HTTP
// server on an mtls listener can hand the authenticated peer identity to
// its handlers (mtlshttp.Serve sets it up, for HTTP/1.1 and HTTP/2):
//
//	srv := &http.Server{Handler: h, ConnContext: mtls.ConnContext}
//	srv.Serve(mtlsListener)
//	// in a handler:
//	id, ok := mtls.PeerIdentity(r.Context())
//
// ConnContext runs before the handshake (net/http calls it right after
// Accept, and the handshake runs on the first Read), so it only stores the
// connection; PeerIdentity and ConnFromContext read it later.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	mc, ok := c.(*Conn)
	if !ok || mc == nil {
		return ctx
	}
	return context.WithValue(ctx, connContextKey{}, mc)
}

// ConnFromContext returns the *Conn stored by ConnContext.
func ConnFromContext(ctx context.Context) (*Conn, bool) {
	c, ok := ctx.Value(connContextKey{}).(*Conn)
	return c, ok && c != nil
}

// PeerIdentity returns the authenticated identity of the peer of the
// connection stored in ctx by ConnContext: on a server, the client's
// Milagro CS / P2P identity or PSK identity. It runs the handshake first
// if it has not completed (bounded by ctx); by the time an http handler runs
// it has. ok is false when ctx carries no *Conn, the handshake failed, or
// the connection has no peer identity.
//
// On a client the identity is the server identity the server proved: the
// one Config.ServerIdentity asked for (Milagro CS or P2P); it is empty for
// the deployment-wide CS key and for PSK suites (a PSK server proves no
// identity; its unauthenticated hint is ConnectionState().PSKIdentityHint,
// never the peer identity).
func PeerIdentity(ctx context.Context) (string, bool) {
	c, ok := ConnFromContext(ctx)
	if !ok {
		return "", false
	}
	if err := c.HandshakeContext(ctx); err != nil {
		return "", false
	}
	id := c.ConnectionState().PeerIdentity
	return id, id != ""
}

// ConnectionStateFromContext returns the state of the connection stored in
// ctx by ConnContext (as mtlshttp.Serve does), running its handshake first
// if needed (bounded by ctx). ok is false when ctx has no connection or its
// handshake failed.
func ConnectionStateFromContext(ctx context.Context) (ConnectionState, bool) {
	c, ok := ConnFromContext(ctx)
	if !ok {
		return ConnectionState{}, false
	}
	if err := c.HandshakeContext(ctx); err != nil {
		return ConnectionState{}, false
	}
	return c.ConnectionState(), true
}
