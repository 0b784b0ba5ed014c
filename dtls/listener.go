package dtls

import (
	"container/list"
	"context"
	"crypto/subtle"
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/milagro-go/milagro/internal/admission"
)

// Listener accepts DTLS connections on one UDP socket. It routes each
// datagram to its peer's connection by connection ID (RFC 9146), once one
// is negotiated, or else by source address, and gives every new peer a
// server connection with fresh P2P values.
//
// Before a peer has proved it receives at its source address, it costs
// the listener one bounded place in a queue of unproven peers: only a
// well-formed first ClientHello from an unknown address creates state,
// within ListenOptions.MaxHandshakes in total and MaxHandshakesPerSource
// per source (an IPv4 address or an IPv6 /64); when the queue is full
// the oldest unproven peer gives its place up (a real peer needs its
// place for one round trip, a spoofed one never returns), the state is
// dropped unless the peer returns the HelloVerifyRequest cookie within
// CookieTimeout, and Accept never sees such a peer. A peer that returned
// the cookie takes a handshake slot, within the same limits, shared
// fairly between sources (a new source takes one from the source
// holding the most). A source whose handshakes fail
// after the server derived a key (wrong P2P keys, unknown PSK
// identities) spends its failure budget and is then dropped at its first
// ClientHello, and the P2P pairings of sources that have not failed go
// first. Anything else from an unknown address is dropped and counted.
// The listener runs each handshake itself; Accept returns connections
// whose handshake is under way or done.
type Listener struct {
	pc  *net.UDPConn
	cfg atomic.Pointer[Config]
	opt ListenOptions
	g   *guards

	mu      sync.Mutex
	byAddr  map[netip.AddrPort]*peerConn
	byCID   map[string]*peerConn
	peers   map[*peerConn]struct{}
	closing bool // Close was called: no new peers; the socket closes with the last one
	// unproven holds the peers that have not returned their cookie,
	// oldest at the front; unprovenPer counts them per source.
	unproven    list.List
	unprovenPer map[admission.Source]int

	accept    chan *Conn
	done      chan struct{}
	closeOnce sync.Once
	readDone  chan struct{}
	readErr   error

	bytesIn, bytesOut                                      atomic.Uint64
	created, malformed, refused, expired, evicted, dropped atomic.Uint64
}

// ListenerStats are a Listener's counters. Peers and Handshaking are
// gauges; the rest count since Listen.
type ListenerStats struct {
	Peers       int // per-peer connection states alive
	Unproven    int // of which wait for their cookie to come back
	Handshaking int // of which returned it and hold a handshake slot
	Created     uint64
	// Malformed counts datagrams from unknown addresses that are not a
	// first ClientHello (including a ClientHello with a cookie the
	// listener never issued to that address).
	Malformed uint64
	// Refused counts first ClientHellos dropped by the handshake limits
	// or a source's failed-proof budget.
	Refused uint64
	// CookieExpired counts peers dropped for not returning the cookie.
	CookieExpired uint64
	// Evicted counts peers closed to make room for a new one: the oldest
	// unproven peer when the queue of unproven peers was full, or a
	// handshake of the source holding the most slots when a new source
	// returned its cookie and all slots were taken.
	Evicted uint64
	// Dropped counts datagrams dropped because a peer's queue was full.
	Dropped           uint64
	BytesIn, BytesOut uint64
}

// Listen listens on the UDP address laddr (network "udp", "udp4" or
// "udp6") with the default ListenOptions.
func Listen(network, laddr string, cfg *Config) (*Listener, error) {
	return ListenWithOptions(network, laddr, cfg, ListenOptions{})
}

// ListenWithOptions is Listen with explicit limits.
func ListenWithOptions(network, laddr string, cfg *Config, opt ListenOptions) (*Listener, error) {
	if _, err := cfg.checkServer(); err != nil {
		return nil, err
	}
	ua, err := net.ResolveUDPAddr(network, laddr)
	if err != nil {
		return nil, err
	}
	pc, err := net.ListenUDP(network, ua)
	if err != nil {
		return nil, err
	}
	opt = opt.withDefaults()
	l := &Listener{
		pc: pc, opt: opt, g: newGuards(opt),
		byAddr: make(map[netip.AddrPort]*peerConn), byCID: make(map[string]*peerConn),
		peers: make(map[*peerConn]struct{}), unprovenPer: make(map[admission.Source]int),
		accept: make(chan *Conn, opt.Backlog), done: make(chan struct{}), readDone: make(chan struct{}),
	}
	l.cfg.Store(cfg)
	go l.readLoop()
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

// Accept waits for the next peer that returned its cookie and returns its
// connection, whose handshake the listener runs: Handshake (or the first
// Read or Write) waits for its outcome.
func (l *Listener) Accept() (net.Conn, error) { return l.AcceptDTLS() }

// AcceptDTLS is Accept returning the concrete type.
func (l *Listener) AcceptDTLS() (*Conn, error) {
	select {
	case c := <-l.accept:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	case <-l.readDone:
		return nil, l.readErr
	}
}

// Close stops accepting new peers and closes connections not yet
// returned by Accept. Accepted connections stay open; the socket closes
// when the last of them does.
func (l *Listener) Close() error {
	l.closeOnce.Do(func() {
		close(l.done)
		l.mu.Lock()
		l.closing = true
		last := len(l.peers) == 0
		l.mu.Unlock()
		for {
			select {
			case c := <-l.accept:
				_ = c.Close()
				continue
			default:
			}
			break
		}
		if last {
			_ = l.pc.Close()
		}
	})
	return nil
}

// Addr returns the listening address.
func (l *Listener) Addr() net.Addr { return l.pc.LocalAddr() }

// Stats returns the listener's gauges and counters.
func (l *Listener) Stats() ListenerStats {
	l.mu.Lock()
	peers, unproven := len(l.peers), l.unproven.Len()
	l.mu.Unlock()
	return ListenerStats{
		Peers: peers, Unproven: unproven, Handshaking: l.g.slots.Len(),
		Created: l.created.Load(), Malformed: l.malformed.Load(), Refused: l.refused.Load(),
		CookieExpired: l.expired.Load(), Evicted: l.evicted.Load(), Dropped: l.dropped.Load(),
		BytesIn: l.bytesIn.Load(), BytesOut: l.bytesOut.Load(),
	}
}

// maxDatagram is the largest UDP payload.
const maxDatagram = 65535

func (l *Listener) readLoop() {
	defer close(l.readDone)
	buf := make([]byte, maxDatagram)
	for {
		n, from, err := l.pc.ReadFromUDPAddrPort(buf)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			l.readErr = err
			if errors.Is(err, net.ErrClosed) {
				l.readErr = net.ErrClosed
			}
			l.closePeers()
			return
		}
		l.bytesIn.Add(uint64(n))
		l.route(buf[:n], from)
	}
}

// route hands b to its peer, or to newPeer.
func (l *Listener) route(b []byte, from netip.AddrPort) {
	var p *peerConn
	l.mu.Lock()
	if len(b) >= recordHeaderLen+cidSize && b[0] == contentCID {
		p = l.byCID[string(b[recordHeaderLen:recordHeaderLen+cidSize])]
	}
	if p == nil {
		p = l.byAddr[from]
	}
	closing := l.closing
	l.mu.Unlock()
	if p != nil {
		p.deliver(b, from)
		return
	}
	if !closing {
		l.newPeer(b, from)
	}
}

// deliver queues a copy of b for the peer's reader.
func (p *peerConn) deliver(b []byte, from netip.AddrPort) {
	proved := false
	p.mu.Lock()
	if !p.cookie && b[0] == contentHandshake {
		if h, err := parseClientHello(b); err == nil && len(h.cookie) > 0 && p.issued != nil &&
			subtle.ConstantTimeCompare(h.cookie, p.issued) == 1 {
			// The peer echoed the cookie sent to this address, so it
			// receives there. (A wrong cookie proves nothing: the DTLS
			// server aborts on it. Repeated cookie-less hellos do not
			// extend the wait: a peer whose state expired starts afresh
			// with its next one.)
			p.cookie, proved = true, true
			p.cookieT.Stop()
		}
	}
	p.mu.Unlock()
	if proved && !p.l.prove(p) {
		return
	}
	// What waits for a peer's reader is bounded in bytes as well as in
	// datagrams, and a datagram longer than the DTLS stack reads is not
	// kept at all.
	if len(b) > maxPeerDatagram || p.queued.Add(int64(len(b))) > maxPeerQueued {
		if len(b) <= maxPeerDatagram {
			p.queued.Add(-int64(len(b)))
		}
		p.l.dropped.Add(1)
		return
	}
	select {
	case p.in <- datagram{b: getBuf(b), from: from}:
	default:
		p.queued.Add(-int64(len(b)))
		p.l.dropped.Add(1)
	}
}

// newPeer creates a server connection for a first ClientHello from an
// unknown address, within the admission limits.
func (l *Listener) newPeer(b []byte, from netip.AddrPort) {
	h, err := parseClientHello(b)
	if err != nil || h.messageSeq != 0 || len(h.cookie) != 0 || len(b) > maxPeerDatagram {
		l.malformed.Add(1)
		return
	}
	src := l.g.keyer.IP(from.Addr())
	if !l.g.budget.Admissible(src) {
		l.refused.Add(1) // a source past its failed-proof budget
		return
	}
	p := &peerConn{l: l, in: make(chan datagram, peerQueue), closed: make(chan struct{}), addr: from, src: src}
	victim, ok := l.queueUnproven(p)
	if !ok {
		l.refused.Add(1)
		return
	}
	if victim != nil {
		l.evicted.Add(1)
		victim.closeConn()
	}
	cfg := l.cfg.Load()
	c, err := newServer(plainAlerts{p}, net.UDPAddrFromAddrPort(from), cfg, serverHooks{
		cid:  func(cid []byte) bool { return l.registerCID(p, cid) },
		done: func(failedProof bool) { l.releaseSlot(p, failedProof) },
		pairing: func(ctx context.Context) (func(), error) {
			p.mu.Lock()
			pa := p.pa
			p.mu.Unlock()
			if pa == nil {
				return nil, errUnproven
			}
			return l.g.pairing(ctx, pa)
		},
	})
	if err != nil {
		l.mu.Lock()
		l.dequeueUnproven(p)
		l.mu.Unlock()
		l.refused.Add(1)
		return
	}
	p.mu.Lock() // the timers are set before any datagram can reach p
	p.conn = c
	p.cookieT = time.AfterFunc(l.opt.CookieTimeout, func() {
		p.mu.Lock()
		proved := p.cookie
		p.mu.Unlock()
		if !proved {
			l.expired.Add(1)
			_ = c.Close()
		}
	})
	p.mu.Unlock()
	l.mu.Lock()
	l.byAddr[from] = p
	l.peers[p] = struct{}{}
	l.mu.Unlock()
	l.created.Add(1)
	p.queued.Add(int64(len(b)))
	p.in <- datagram{b: getBuf(b), from: from}
	// The handshake starts now, whether or not the application has
	// called Accept: the peer must get its HelloVerifyRequest, and Accept
	// returns it only once it returned the cookie.
	go func() { _ = c.Handshake() }()
}

// enqueue offers a peer that proved its address to Accept.
func (l *Listener) enqueue(c *Conn) {
	select {
	case <-l.done:
		_ = c.Close()
		return
	default:
	}
	select {
	case l.accept <- c:
	default:
		l.refused.Add(1) // the application is not keeping up
		_ = c.Close()
	}
}

// registerCID routes records carrying cid to p; false if another peer has it.
func (l *Listener) registerCID(p *peerConn, cid []byte) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, taken := l.byCID[string(cid)]; taken {
		return false
	}
	select {
	case <-p.closed:
		return true // not routed: the peer is gone
	default:
	}
	l.byCID[string(cid)] = p
	p.mu.Lock()
	p.cids = append(p.cids, append([]byte(nil), cid...))
	p.mu.Unlock()
	return true
}

// errUnproven is what a pairing asked for before the peer returned its
// cookie gets (the DTLS server checks the cookie first, so it does not
// happen).
var errUnproven = errors.New("dtls: pairing before the peer returned its cookie")

// queueUnproven gives p a place among the unproven peers: refused when
// its source holds its share, and taking the place of the oldest
// unproven peer (returned to be closed) when all are taken.
func (l *Listener) queueUnproven(p *peerConn) (victim *peerConn, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.unprovenPer[p.src] >= l.opt.MaxHandshakesPerSource {
		return nil, false
	}
	if l.unproven.Len() >= l.opt.MaxHandshakes {
		victim = l.unproven.Front().Value.(*peerConn)
		l.dequeueUnproven(victim)
		victim.displaced = true
	}
	p.uElem = l.unproven.PushBack(p)
	l.unprovenPer[p.src]++
	return victim, true
}

// dequeueUnproven takes p out of the unproven peers, if it is there (l.mu
// held).
func (l *Listener) dequeueUnproven(p *peerConn) {
	if p.uElem == nil {
		return
	}
	l.unproven.Remove(p.uElem)
	p.uElem = nil
	if l.unprovenPer[p.src]--; l.unprovenPer[p.src] <= 0 {
		delete(l.unprovenPer, p.src)
	}
}

// prove moves p, which just returned its cookie, from the unproven peers
// to a handshake slot and offers it to Accept; false (and p closed) when
// no slot is left for its source.
func (l *Listener) prove(p *peerConn) bool {
	l.mu.Lock()
	displaced := p.displaced
	l.dequeueUnproven(p)
	l.mu.Unlock()
	if displaced {
		return false // closing: a newer peer took its place
	}
	pa, ok := l.g.admit(p.src, func() {
		// A new source took this handshake's slot (all were taken and
		// this source held the most).
		l.evicted.Add(1)
		p.closeConn()
	})
	if !ok {
		l.refused.Add(1)
		p.closeConn()
		return false
	}
	p.mu.Lock()
	p.pa = pa
	c := p.conn
	p.mu.Unlock()
	l.enqueue(c)
	return true
}

// releaseSlot gives p's handshake slot back once its handshake ended.
func (l *Listener) releaseSlot(p *peerConn, failedProof bool) {
	p.mu.Lock()
	pa := p.pa
	p.mu.Unlock()
	if pa != nil {
		l.g.end(pa, failedProof)
	}
}

// move makes to p's address (the peer moved, RFC 9146).
func (l *Listener) move(p *peerConn, to netip.AddrPort) {
	l.mu.Lock()
	defer l.mu.Unlock()
	p.mu.Lock()
	from := p.addr
	p.addr = to
	p.mu.Unlock()
	if l.byAddr[from] == p {
		delete(l.byAddr, from)
	}
	if _, alive := l.peers[p]; alive {
		l.byAddr[to] = p
	}
}

// remove forgets a closed peer; the last one closes a closing listener's socket.
// Its handshake slot is returned by the end of the handshake the
// listener started (which a close ends too).
func (l *Listener) remove(p *peerConn) {
	p.mu.Lock()
	if p.cookieT != nil {
		p.cookieT.Stop()
	}
	addr, cids := p.addr, p.cids
	p.mu.Unlock()
	l.mu.Lock()
	l.dequeueUnproven(p)
	if l.byAddr[addr] == p {
		delete(l.byAddr, addr)
	}
	for _, cid := range cids {
		if l.byCID[string(cid)] == p {
			delete(l.byCID, string(cid))
		}
	}
	delete(l.peers, p)
	last := l.closing && len(l.peers) == 0
	l.mu.Unlock()
	if last {
		_ = l.pc.Close()
	}
}

// closePeers closes every peer after the socket failed.
func (l *Listener) closePeers() {
	l.mu.Lock()
	ps := make([]*peerConn, 0, len(l.peers))
	for p := range l.peers {
		ps = append(ps, p)
	}
	l.mu.Unlock()
	for _, p := range ps {
		_ = p.Close()
	}
}

var _ net.Listener = (*Listener)(nil)
