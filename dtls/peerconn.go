package dtls

import (
	"bytes"
	"container/list"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/milagro-go/milagro/internal/admission"
)

// datagram is one datagram routed to a peer, with the address it came from
// (which changes when a peer using connection IDs moves).
type datagram struct {
	b    *[]byte // from bufPool
	from netip.AddrPort
}

// bufPool recycles the copies of datagrams waiting for a peer's reader.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

func getBuf(b []byte) *[]byte {
	p := bufPool.Get().(*[]byte)
	*p = append((*p)[:0], b...)
	return p
}

func putBuf(p *[]byte) {
	if cap(*p) <= maxPooled {
		bufPool.Put(p)
	}
}

// maxPooled keeps an occasional huge datagram's buffer out of the pool.
const maxPooled = 16 << 10

// udpAddr returns from as a *net.UDPAddr, the same one while the peer's
// address stays the same (the DTLS connection compares it to notice a
// move).
func (p *peerConn) udpAddr(from netip.AddrPort) net.Addr {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.lastUA == nil || from != p.lastFrom {
		p.lastFrom, p.lastUA = from, net.UDPAddrFromAddrPort(from)
	}
	return p.lastUA
}

// What may wait for one peer's reader; beyond it the listener drops
// datagrams, as a full socket buffer would. maxPeerDatagram is the most
// pion v3 reads of one datagram.
const (
	peerQueue       = 64
	maxPeerQueued   = 64 << 10
	maxPeerDatagram = 8192
)

// peerConn is the net.PacketConn a server connection runs over: it reads
// the datagrams the listener routes to one peer and writes through the
// listener's socket.
type peerConn struct {
	l   *Listener
	in  chan datagram
	src admission.Source
	pa  *peerAdmission // once the peer returned its cookie (under mu)

	uElem     *list.Element // in l.unproven (under l.mu)
	displaced bool          // gave its place among the unproven up (under l.mu)

	queued atomic.Int64 // bytes waiting in in

	closeOnce sync.Once
	closed    chan struct{}

	mu       sync.Mutex
	addr     netip.AddrPort // where writes go: the peer's latest address
	cids     [][]byte       // connection IDs registered for this peer
	rdl      deadline
	cookie   bool   // returned the cookie (proved its address)
	issued   []byte // the cookie the DTLS server sent
	cookieT  *time.Timer
	lastFrom netip.AddrPort
	lastUA   *net.UDPAddr
	conn     *Conn
}

// deadline is a resettable read deadline: expired is closed once it passes.
type deadline struct {
	t       *time.Timer
	expired chan struct{}
}

func (d *deadline) set(t time.Time) {
	switch {
	case d.expired == nil:
		d.expired = make(chan struct{})
	case d.t != nil && !d.t.Stop():
		d.expired = make(chan struct{}) // the old timer fired: its channel is closed
	case d.t == nil && isClosed(d.expired):
		d.expired = make(chan struct{}) // a past deadline closed it
	}
	d.t = nil
	if t.IsZero() {
		return
	}
	ch := d.expired
	if dur := time.Until(t); dur <= 0 {
		close(ch)
	} else {
		d.t = time.AfterFunc(dur, func() { close(ch) })
	}
}

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func (p *peerConn) ReadFrom(b []byte) (int, net.Addr, error) {
	p.mu.Lock()
	if p.rdl.expired == nil {
		p.rdl.expired = make(chan struct{})
	}
	expired := p.rdl.expired
	p.mu.Unlock()
	select {
	case d := <-p.in:
		p.queued.Add(-int64(len(*d.b)))
		n := copy(b, *d.b)
		putBuf(d.b)
		return n, p.udpAddr(d.from), nil
	case <-p.closed:
		return 0, nil, net.ErrClosed
	case <-expired:
		return 0, nil, os.ErrDeadlineExceeded
	}
}

func (p *peerConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	select {
	case <-p.closed:
		return 0, net.ErrClosed
	default:
	}
	ua, ok := addr.(*net.UDPAddr)
	if !ok {
		return 0, &net.OpError{Op: "write", Net: "udp", Addr: addr, Err: net.InvalidAddrError("not a UDP address")}
	}
	to := ua.AddrPort()
	p.mu.Lock()
	moved := to != p.addr
	if p.issued == nil && !p.cookie {
		if cookie, ok := parseHelloVerifyRequest(b); ok {
			p.issued = bytes.Clone(cookie) // what the peer must echo to prove its address
		}
	}
	p.mu.Unlock()
	if moved {
		// The DTLS connection writes to a new address only after a record
		// carrying our connection ID from there authenticated (RFC 9146
		// §6): follow it.
		p.l.move(p, to)
	}
	n, err := p.l.pc.WriteToUDPAddrPort(b, to)
	if err == nil {
		p.l.bytesOut.Add(uint64(n))
	}
	return n, err
}

// closeConn closes the peer's DTLS connection (which closes p), if it
// was created.
func (p *peerConn) closeConn() {
	p.mu.Lock()
	c := p.conn
	p.mu.Unlock()
	if c != nil {
		go c.Close()
	}
}

func (p *peerConn) Close() error {
	p.closeOnce.Do(func() {
		close(p.closed)
		p.l.remove(p)
	})
	return nil
}

func (p *peerConn) LocalAddr() net.Addr { return p.l.pc.LocalAddr() }

func (p *peerConn) SetDeadline(t time.Time) error { return p.SetReadDeadline(t) }

func (p *peerConn) SetReadDeadline(t time.Time) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rdl.set(t)
	return nil
}

// SetWriteDeadline is accepted and ignored: writes go straight to the
// listener's socket and do not block on this peer.
func (p *peerConn) SetWriteDeadline(time.Time) error { return nil }

var _ net.PacketConn = (*peerConn)(nil)
