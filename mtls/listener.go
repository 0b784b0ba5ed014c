package mtls

import (
	"errors"
	"net"
)

type listener struct {
	net.Listener
	config *Config
}

// Accept waits for the next connection and returns it as a server *Conn
// (as a net.Conn). The handshake runs on first Read/Write or Handshake.
//
// With Milagro server credentials, a connection from a source whose
// failure budget is spent (failed proofs, replays, hellos refused by a
// lockout; see Config.Guards) is refused here, before any handshake
// goroutine or parsing: it is held open in the tarpit (Guards.Pit, sized
// per source) and closed after a while, so a flooding source costs an
// accept and a close, loses its concurrency instead of reconnecting at
// once, and cannot crowd out other clients' handshakes.
func (l *listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		src := l.config.source(c.RemoteAddr())
		release, ok := l.config.admitSource(src)
		if !ok {
			l.config.guards().Pit.Add(src, c) // held open a while: a flooder waits instead of reconnecting
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
