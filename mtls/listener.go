package mtls

import (
	"errors"
	"net"

	"github.com/milagro-go/milagro/internal/tarpit"
)

type listener struct {
	net.Listener
	config *Config
	pit    tarpit.Pit // refused connections wait here before they are closed
}

// Accept waits for the next connection and returns it as a server *Conn
// (as a net.Conn). The handshake runs on first Read/Write or Handshake.
//
// With Milagro CS server credentials, a connection from an address whose
// budget of failed CS proofs is spent (see FairGate) is refused here,
// before any handshake goroutine or parsing: it is held open for a second
// (at most 512 at once) and closed, so a flooding address costs an accept
// and a close, waits instead of reconnecting at once, and cannot crowd out
// other clients' handshakes.
func (l *listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		release, ok := l.config.admitSource(sourceOf(c.RemoteAddr()))
		if !ok {
			l.pit.Add(c) // held open a while: a flooder waits instead of reconnecting
			continue
		}
		sc := Server(c, l.config)
		sc.admitted = release
		return sc, nil
	}
}

// NewListener returns a listener whose Accept wraps inner's connections
// with Server(conn, config).
func NewListener(inner net.Listener, config *Config) net.Listener {
	return &listener{Listener: inner, config: config}
}

// Listen listens on addr and returns a listener of server *Conns. Like
// crypto/tls.Listen, it refuses a Config that holds no server credential
// (every handshake would fail).
func Listen(network, addr string, config *Config) (net.Listener, error) {
	if config == nil {
		return nil, errors.New("mtls: Listen needs a non-nil Config")
	}
	if !config.hasServerCredential() {
		return nil, errors.New("mtls: Listen: the Config holds no server credential: set CSServerKeys or GetCSServerKey (Milagro CS), P2PKey (Milagro P2P), GetServerPSK (PSK) or GetConfigForClient")
	}
	l, err := net.Listen(network, addr)
	if err != nil {
		return nil, err
	}
	return NewListener(l, config), nil
}
