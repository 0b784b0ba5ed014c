package mtlshttp

import (
	"net"
	"net/http"
	"runtime"
	"sync"

	"github.com/milagro-go/milagro/mtls"
)

// The state of the connections the HTTP transports made, for
// ResponseConnectionState. net/http fills resp.TLS only for HTTP/2 here (it
// does so over HTTP/1.1 for crypto/tls connections only); the transports
// remember each connection's state under its tls-unique value, which
// resp.TLS carries, until the connection is garbage collected.
var transportStates struct {
	sync.Mutex
	m map[string]mtls.ConnectionState
}

// rememberTransportConn records c's state for ResponseConnectionState.
func rememberTransportConn(c *mtls.Conn) {
	st := c.ConnectionState()
	if len(st.TLSUnique) == 0 {
		return
	}
	key := string(st.TLSUnique)
	transportStates.Lock()
	if transportStates.m == nil {
		transportStates.m = make(map[string]mtls.ConnectionState)
	}
	transportStates.m[key] = st
	transportStates.Unlock()
	runtime.AddCleanup(c, func(key string) {
		transportStates.Lock()
		delete(transportStates.m, key)
		transportStates.Unlock()
	}, key)
}

// ResponseConnectionState is the mtls analogue of resp.TLS on a client: the
// state of the connection that carried resp, with the server identity the
// server proved (PeerIdentity) and the suite. It answers for responses
// over HTTP/2 from a transport made by NewHTTP2Transport. Over HTTP/1.1
// (NewTransport) net/http does not say which connection carried a
// response; use ConnectionStateOf in an httptrace.ClientTrace's GotConn
// there. ok is false when resp did not come over an mtls connection.
func ResponseConnectionState(resp *http.Response) (mtls.ConnectionState, bool) {
	if resp == nil || resp.TLS == nil || len(resp.TLS.TLSUnique) == 0 {
		return mtls.ConnectionState{}, false
	}
	transportStates.Lock()
	st, ok := transportStates.m[string(resp.TLS.TLSUnique)]
	transportStates.Unlock()
	if !ok {
		return mtls.ConnectionState{}, false
	}
	st.TLSUnique = append([]byte(nil), st.TLSUnique...)
	return st, true
}

// ConnectionStateOf returns the state of an mtls connection given as a
// net.Conn: a *mtls.Conn, or a connection the HTTP transports or Serve hand
// to net/http (for example httptrace.GotConnInfo.Conn). ok is false for
// any other connection, or before the handshake completed.
func ConnectionStateOf(c net.Conn) (mtls.ConnectionState, bool) {
	conn := asConn(c)
	if conn == nil {
		return mtls.ConnectionState{}, false
	}
	st := conn.ConnectionState()
	return st, st.HandshakeComplete
}
