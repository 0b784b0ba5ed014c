package dtls

import (
	"fmt"
	"net"
	"sync/atomic"

	dtlsnet "github.com/pion/dtls/v3/pkg/net"

	"github.com/milagro-go/milagro/dtls/internal/udp"
)

// Listener accepts DTLS connections on one UDP socket, routing each peer's
// datagrams by address or, once negotiated, by connection ID.
type Listener struct {
	parent dtlsnet.PacketListener
	cfg    atomic.Pointer[Config]
}

// Listen listens on the UDP address laddr (network "udp", "udp4" or
// "udp6"). Accept returns connections whose handshake runs on first use.
func Listen(network, laddr string, cfg *Config) (*Listener, error) {
	if _, err := cfg.checkServer(); err != nil {
		return nil, err
	}
	ua, err := net.ResolveUDPAddr(network, laddr)
	if err != nil {
		return nil, err
	}
	lc := udp.ListenConfig{AcceptFilter: udp.HandshakeFilter}
	if !cfg.DisableConnectionID {
		lc.DatagramRouter = udp.CIDDatagramRouter(cidSize)
		lc.ConnectionIdentifier = udp.CIDConnIdentifier()
	}
	parent, err := lc.Listen(network, ua)
	if err != nil {
		return nil, err
	}
	l := &Listener{parent: parent}
	l.cfg.Store(cfg)
	return l, nil
}

// SetConfig replaces the Config for connections accepted from now on (for
// a reload); accepted connections keep theirs.
func (l *Listener) SetConfig(cfg *Config) error {
	if _, err := cfg.checkServer(); err != nil {
		return err
	}
	l.cfg.Store(cfg)
	return nil
}

// Accept waits for the next peer and returns its connection, not yet
// handshaken (call Handshake, or Read/Write, on it).
func (l *Listener) Accept() (net.Conn, error) { return l.AcceptDTLS() }

// AcceptDTLS is Accept returning the concrete type.
func (l *Listener) AcceptDTLS() (*Conn, error) {
	pc, raddr, err := l.parent.Accept()
	if err != nil {
		return nil, err
	}
	c, err := Server(pc, raddr, l.cfg.Load())
	if err != nil {
		_ = pc.Close()
		return nil, fmt.Errorf("dtls: accept %v: %w", raddr, err)
	}
	return c, nil
}

// Close stops listening; connections already accepted stay open.
func (l *Listener) Close() error { return l.parent.Close() }

// Addr returns the listening address.
func (l *Listener) Addr() net.Addr { return l.parent.Addr() }

var _ net.Listener = (*Listener)(nil)
