package dtls

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	piondtls "github.com/pion/dtls/v3"
	"github.com/pion/dtls/v3/pkg/protocol/handshake"
)

// Conn is a DTLS connection: a net.Conn whose Read and Write carry whole
// datagrams once the handshake has completed. It is safe for concurrent use.
type Conn struct {
	conn     *piondtls.Conn
	cfg      *Config
	mode     Mode
	isClient bool
	st       *keyState

	onDone func(failedProof bool) // told once when the handshake ends (a Listener's slot)

	hsMu   sync.Mutex // serializes handshakes
	mu     sync.Mutex // guards the fields below
	done   bool
	hsErr  error
	peerID string
}

// keyState is what the PSK callback of one connection learns, guarded
// because pion calls it on its own goroutine.
type keyState struct {
	mu      sync.Mutex
	in, psk []byte // the hint/identity answered, and the PSK it gave
	id      string // the peer identity it carried (not yet authenticated)
	refused error  // the first refusal of the peer's values by this side
	called  bool   // the callback ran: a key was derived, or the peer's values refused
}

// answer returns the cached PSK for a repeated input, or computes one.
func (s *keyState) answer(in []byte, f func() (string, []byte, error)) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.called = true
	if s.psk != nil {
		if bytes.Equal(in, s.in) {
			return s.psk, nil
		}
		return nil, s.refuse(fmt.Errorf("%w: the peer changed its PSK values mid-handshake", ErrMalformed))
	}
	id, psk, err := f()
	if err != nil {
		return nil, s.refuse(err)
	}
	s.in, s.psk, s.id = bytes.Clone(in), psk, id
	return psk, nil
}

// refuse records err as this side's reason to abort (the first one wins)
// and returns it. Called with s.mu held.
func (s *keyState) refuse(err error) error {
	if s.refused == nil {
		s.refused = err
	}
	return err
}

// refusal is the reason this side aborted the handshake, if it did.
// pion reports whichever error reaches it first: the peer's answering
// alert can beat the refusal that caused it, so a failed handshake
// reports this instead when there is one.
func (s *keyState) refusal() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refused
}

// keyed reports whether the PSK callback gave a key.
func (s *keyState) keyed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.psk != nil
}

// isTimeout reports a handshake that ran out of time.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// ErrKeyConfirmation is the error of a handshake that derived a key from
// the peer's values but never saw the peer prove the same key: DTLS drops
// a Finished that does not decrypt without a word (RFC 6347 §4.1.2.7), so
// a peer holding another key (or values altered on the way, or a path
// that lost every retransmission) ends in this rather than in an alert.
var ErrKeyConfirmation = errors.New("dtls: the peer never confirmed the derived key (it holds another key, or its values were altered)")

// derived reports whether the PSK callback ran.
func (s *keyState) derived() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.called
}

func (s *keyState) peer() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.id
}

// ConnectionState describes a connection.
type ConnectionState struct {
	HandshakeComplete bool
	Mode              Mode
	// PeerIdentity is the authenticated identity of the peer: a P2P
	// peer's id, or a static-PSK client's PSK identity (on a server); on
	// a static-PSK client it is empty (a hint authenticates no one).
	// Empty before the handshake completes.
	PeerIdentity string
	CipherSuite  uint16
	// UsesConnectionID reports whether RFC 9146 connection IDs were offered.
	UsesConnectionID bool
}

// Client returns a DTLS client on conn talking to raddr (a connected
// socket may pass its remote address). The handshake runs on the first
// Read or Write, or on Handshake.
func Client(conn net.PacketConn, raddr net.Addr, cfg *Config) (*Conn, error) {
	mode, err := cfg.mode()
	if err != nil {
		return nil, err
	}
	p, err := cfg.base()
	if err != nil {
		return nil, err
	}
	st := &keyState{}
	switch mode {
	case ModeP2P:
		if cfg.ServerIdentity == "" {
			return nil, fmt.Errorf("%w: a P2P client needs ServerIdentity", ErrConfig)
		}
		pc, err := cfg.p2pClient()
		if err != nil {
			return nil, fmt.Errorf("%w: P2P key: %v", ErrConfig, err)
		}
		hs, err := pc.StartDTLS(cfg.rand(), cfg.ServerIdentity)
		if err != nil {
			return nil, err
		}
		p.PSKIdentityHint = (&p2pIdentity{id: hs.ID(), w: hs.W(), y: hs.Y()}).marshal()
		p.PSK = func(hint []byte) ([]byte, error) {
			return st.answer(hint, func() (string, []byte, error) {
				h, err := parseHint(hint)
				if err != nil {
					return "", nil, err
				}
				psk, err := hs.FinishDTLS(h.id, h.x)
				if err != nil {
					return "", nil, fmt.Errorf("dtls: server %q: %w", h.id, err)
				}
				return h.id, psk, nil
			})
		}
	case ModePSK:
		if cfg.PSK == nil {
			return nil, fmt.Errorf("%w: a static-PSK client needs PSK", ErrConfig)
		}
		p.PSKIdentityHint = []byte(cfg.PSKIdentity)
		p.PSK = func(hint []byte) ([]byte, error) {
			// The hint is not an identity: PSK proves no server identity
			// (docs/protocol.md §5), so nothing is reported as the peer.
			return st.answer(hint, func() (string, []byte, error) {
				return "", bytes.Clone(cfg.PSK), nil
			})
		}
	}
	r := cfg.rand()
	p.HelloRandomBytesGenerator = func() (b [handshake.RandomBytesLength]byte) {
		if _, err := io.ReadFull(r, b[:]); err != nil {
			// pion cannot take an error here; fall back to its own source.
			var rr handshake.Random
			_ = rr.Populate()
			b = rr.RandomBytes
		}
		return b
	}
	c, err := piondtls.Client(plainAlerts{conn}, raddr, p)
	if err != nil {
		return nil, err
	}
	return &Conn{conn: c, cfg: cfg, mode: mode, isClient: true, st: st}, nil
}

// Server returns a DTLS server for the peer raddr on conn, which delivers
// only that peer's datagrams (as a Listener's connections do). Each call
// draws fresh P2P values.
func Server(conn net.PacketConn, raddr net.Addr, cfg *Config) (*Conn, error) {
	return newServer(plainAlerts{conn}, raddr, cfg, serverHooks{})
}

// serverHooks connect a server connection to its Listener.
type serverHooks struct {
	// cid registers a connection ID for routing; false means another
	// peer holds it and another must be drawn.
	cid func([]byte) bool
	// done is told once when the handshake ends, and whether it failed
	// after the PSK callback ran (a failed proof).
	done func(failedProof bool)
	// pairing waits for the turn to compute a Milagro P2P pairing and
	// returns the function ending it.
	pairing func(context.Context) (func(), error)
}

func newServer(conn net.PacketConn, raddr net.Addr, cfg *Config, hooks serverHooks) (*Conn, error) {
	mode, err := cfg.checkServer()
	if err != nil {
		return nil, err
	}
	p, err := cfg.base()
	if err != nil {
		return nil, err
	}
	st := &keyState{}
	switch mode {
	case ModeP2P:
		ps, err := cfg.p2pServer()
		if err != nil {
			return nil, fmt.Errorf("%w: P2P key: %v", ErrConfig, err)
		}
		hs, err := ps.Start(cfg.rand())
		if err != nil {
			return nil, err
		}
		p.PSKIdentityHint = (&p2pHint{id: hs.ID(), x: hs.X()}).marshal()
		p.PSK = func(identity []byte) ([]byte, error) {
			return st.answer(identity, func() (string, []byte, error) {
				i, err := parseIdentity(identity)
				if err != nil {
					return "", nil, err
				}
				if hooks.pairing != nil {
					ctx, cancel := context.WithTimeout(context.Background(), cfg.handshakeTimeout())
					done, err := hooks.pairing(ctx)
					cancel()
					if err != nil {
						return "", nil, fmt.Errorf("dtls: client %q: pairing refused: %w", i.id, err)
					}
					defer done()
				}
				psk, err := hs.FinishDTLS(i.id, i.w, i.y)
				if err != nil {
					return "", nil, fmt.Errorf("dtls: client %q: %w", i.id, err)
				}
				return i.id, psk, nil
			})
		}
	case ModePSK:
		p.PSKIdentityHint = cfg.PSKIdentityHint
		p.PSK = func(identity []byte) ([]byte, error) {
			return st.answer(identity, func() (string, []byte, error) {
				id := string(identity)
				if cfg.GetPSK != nil {
					k, err := cfg.GetPSK(id)
					if err != nil {
						return "", nil, err
					}
					if len(k) == 0 {
						return "", nil, fmt.Errorf("dtls: no PSK for identity %q", id)
					}
					return id, k, nil
				}
				if id != cfg.PSKIdentity {
					return "", nil, fmt.Errorf("dtls: unknown PSK identity %q", id)
				}
				return id, bytes.Clone(cfg.PSK), nil
			})
		}
	}
	if cfg.VerifyPeerIdentity != nil {
		// Runs after the client's Finished verified: the identity is
		// authenticated. A refusal sends a fatal alert.
		p.VerifyConnection = func(*piondtls.State) error {
			if err := cfg.VerifyPeerIdentity(st.peer()); err != nil {
				err = fmt.Errorf("%w: %q: %w", ErrPeerIdentity, st.peer(), err)
				st.mu.Lock()
				defer st.mu.Unlock()
				return st.refuse(err)
			}
			return nil
		}
	}
	if gen := p.ConnectionIDGenerator; gen != nil && hooks.cid != nil {
		p.ConnectionIDGenerator = func() []byte {
			var b []byte
			for range 4 {
				if b = gen(); hooks.cid(b) {
					break
				}
			}
			// After repeated collisions (a broken Config.Rand) the ID is
			// used unrouted: the peer is then found by its address.
			return b
		}
	}
	c, err := piondtls.Server(conn, raddr, p)
	if err != nil {
		return nil, err
	}
	return &Conn{conn: c, cfg: cfg, mode: mode, st: st, onDone: hooks.done}, nil
}

// Dial connects to the DTLS server at addr ("udp", "udp4", "udp6") and
// completes the handshake.
func Dial(network, addr string, cfg *Config) (*Conn, error) {
	return DialContext(context.Background(), network, addr, cfg)
}

// DialContext is Dial bounded by ctx (and by the handshake timeout).
func DialContext(ctx context.Context, network, addr string, cfg *Config) (*Conn, error) {
	var d net.Dialer
	raw, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	c, err := Client(&connectedPacketConn{raw}, raw.RemoteAddr(), cfg)
	if err != nil {
		_ = raw.Close()
		return nil, err
	}
	if err := c.HandshakeContext(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// connectedPacketConn lets a connected UDP socket serve as a PacketConn.
type connectedPacketConn struct{ net.Conn }

func (c *connectedPacketConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, err := c.Read(b)
	return n, c.RemoteAddr(), err
}

func (c *connectedPacketConn) WriteTo(b []byte, _ net.Addr) (int, error) { return c.Write(b) }

// Handshake runs the handshake if it has not run yet.
func (c *Conn) Handshake() error { return c.HandshakeContext(context.Background()) }

// HandshakeContext runs the handshake if it has not run yet, bounded by ctx
// and the Config's HandshakeTimeout. A failed handshake closes the
// connection.
func (c *Conn) HandshakeContext(ctx context.Context) error {
	c.hsMu.Lock()
	defer c.hsMu.Unlock()
	c.mu.Lock()
	done, hsErr := c.done, c.hsErr
	c.mu.Unlock()
	if done {
		return hsErr
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.handshakeTimeout())
	defer cancel()
	err := c.conn.HandshakeContext(ctx)
	if err == nil && c.isClient && c.cfg.VerifyPeerIdentity != nil {
		if verr := c.cfg.VerifyPeerIdentity(c.st.peer()); verr != nil {
			err = fmt.Errorf("%w: %q: %w", ErrPeerIdentity, c.st.peer(), verr)
		}
	}
	if err != nil {
		if refused := c.st.refusal(); refused != nil && !errors.Is(err, refused) {
			err = refused
		} else if refused == nil && c.st.keyed() && isTimeout(err) {
			err = fmt.Errorf("%w: %w", ErrKeyConfirmation, err)
		}
		err = fmt.Errorf("dtls: handshake with %v: %w", c.conn.RemoteAddr(), err)
	}
	c.mu.Lock()
	c.done, c.hsErr = true, err
	if err == nil {
		c.peerID = c.st.peer()
	}
	c.mu.Unlock()
	if c.onDone != nil {
		c.onDone(err != nil && c.st.derived()) // before Close, which ends the listener's entry
	}
	if err != nil {
		_ = c.conn.Close()
	}
	return err
}

// PeerIdentity returns the authenticated peer identity, or "" before the
// handshake has completed successfully.
func (c *Conn) PeerIdentity() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.peerID
}

// ConnectionState returns the state of the connection.
func (c *Conn) ConnectionState() ConnectionState {
	c.mu.Lock()
	ok := c.done && c.hsErr == nil
	cs := ConnectionState{HandshakeComplete: ok, Mode: c.mode, PeerIdentity: c.peerID,
		UsesConnectionID: !c.cfg.DisableConnectionID}
	c.mu.Unlock()
	if ok {
		if s, have := c.conn.ConnectionState(); have {
			cs.CipherSuite = uint16(s.CipherSuiteID)
		}
	}
	return cs
}

// ExportKeyingMaterial returns keying material (RFC 5705) once the
// handshake has completed.
func (c *Conn) ExportKeyingMaterial(label string, context []byte, length int) ([]byte, error) {
	if !c.ConnectionState().HandshakeComplete {
		return nil, errors.New("dtls: handshake not complete")
	}
	s, ok := c.conn.ConnectionState()
	if !ok {
		return nil, errors.New("dtls: no connection state")
	}
	return s.ExportKeyingMaterial(label, context, length)
}

// Read reads one datagram's payload, completing the handshake first.
func (c *Conn) Read(b []byte) (int, error) {
	if err := c.Handshake(); err != nil {
		return 0, err
	}
	return c.conn.Read(b)
}

// Write sends b as one datagram, completing the handshake first.
func (c *Conn) Write(b []byte) (int, error) {
	if err := c.Handshake(); err != nil {
		return 0, err
	}
	return c.conn.Write(b)
}

// Close sends close_notify (after a completed handshake) and closes the
// underlying socket or listener entry.
func (c *Conn) Close() error { return c.conn.Close() }

// LocalAddr returns the local address.
func (c *Conn) LocalAddr() net.Addr { return c.conn.LocalAddr() }

// RemoteAddr returns the peer's address (the latest one, with connection IDs).
func (c *Conn) RemoteAddr() net.Addr { return c.conn.RemoteAddr() }

// SetDeadline sets the read and write deadlines.
func (c *Conn) SetDeadline(t time.Time) error { return c.conn.SetDeadline(t) }

// SetReadDeadline sets the read deadline.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.conn.SetReadDeadline(t) }

// SetWriteDeadline sets the write deadline.
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.conn.SetWriteDeadline(t) }

var _ net.Conn = (*Conn)(nil)
