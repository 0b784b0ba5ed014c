package dtls

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// waitFor polls cond (the listener's gauges move on its own goroutines)
// until it holds, failing after a generous bound.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(30 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// isHelloVerifyRequest reports a plaintext HelloVerifyRequest record.
func isHelloVerifyRequest(b []byte) bool {
	return len(b) > 13 && b[0] == contentHandshake && b[3] == 0 && b[4] == 0 && b[13] == 3
}

// The attack of an unauthenticated flood: 10,000 cookie-less ClientHellos
// from 1,000 source ports of one address. The listener holds at most the
// per-source handshake limit at any time, hands none of them to Accept,
// drops each when its cookie does not come back, sends exactly one
// HelloVerifyRequest per state it held (none retransmitted) and sends
// fewer bytes than it received. A real peer connects afterwards.
func TestCookielessFloodHoldsBoundedState(t *testing.T) {
	k := testKeys(t)
	const perSource = 8
	l, err := ListenWithOptions("udp", "127.0.0.1:0", p2pServerCfg(k.a), ListenOptions{
		MaxHandshakesPerSource: perSource, CookieTimeout: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var accepted atomic.Int64
	acceptedCh := make(chan *Conn, 1)
	go func() {
		for {
			c, err := l.AcceptDTLS()
			if err != nil {
				return
			}
			accepted.Add(1)
			acceptedCh <- c
		}
	}()

	const ports, perPort = 1000, 10
	socks := make([]net.PacketConn, ports)
	for i := range socks {
		s, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		socks[i] = s
	}
	// Count what comes back, per socket.
	var hvrs, other atomic.Int64
	var readers sync.WaitGroup
	for _, s := range socks {
		readers.Add(1)
		go func() {
			defer readers.Done()
			buf := make([]byte, 2048)
			for {
				n, _, err := s.ReadFrom(buf)
				if err != nil {
					return
				}
				if isHelloVerifyRequest(buf[:n]) {
					hvrs.Add(1)
				} else {
					other.Add(1)
				}
			}
		}()
	}
	random := make([]byte, 32)
	helloLen := uint64(len(testHello(0, nil, random)))
	maxPeers, sent := 0, uint64(0)
	for round := range perPort {
		for i, s := range socks {
			_, _ = rand.Read(random)
			if _, err := s.WriteTo(testHello(0, nil, random), l.Addr()); err != nil {
				t.Fatal(err)
			}
			sent++
			if i%50 == 49 {
				// Paced so that the kernel's socket buffer drops none:
				// every hello reaches the listener.
				waitFor(t, "the listener to read the batch", func() bool { return l.Stats().BytesIn == sent*helloLen })
				if p := l.Stats().Peers; p > maxPeers {
					maxPeers = p
				}
			}
		}
		t.Logf("round %d: %+v", round, l.Stats())
	}
	waitFor(t, "every flood state to expire", func() bool {
		s := l.Stats()
		return s.Peers == 0 && s.Handshaking == 0
	})
	st := l.Stats()
	waitFor(t, "one HelloVerifyRequest per state", func() bool { return hvrs.Load() >= int64(st.Created) })
	for _, s := range socks {
		_ = s.SetReadDeadline(time.Now().Add(300 * time.Millisecond)) // longer than a retransmission would take
	}
	readers.Wait()
	t.Logf("flood: %+v; max peers %d; HelloVerifyRequests %d, other %d", st, maxPeers, hvrs.Load(), other.Load())
	if st.BytesIn != ports*perPort*helloLen {
		t.Errorf("the listener read %d bytes of %d", st.BytesIn, ports*perPort*helloLen)
	}
	if maxPeers > perSource || st.Created > ports*perPort {
		t.Errorf("held %d peers at once (limit %d), created %d", maxPeers, perSource, st.Created)
	}
	if st.CookieExpired != st.Created || st.Refused == 0 {
		t.Errorf("expired %d of %d created, refused %d", st.CookieExpired, st.Created, st.Refused)
	}
	if hvrs.Load() != int64(st.Created) || other.Load() != 0 {
		t.Errorf("%d HelloVerifyRequests and %d other datagrams for %d states", hvrs.Load(), other.Load(), st.Created)
	}
	if st.BytesOut > st.BytesIn {
		t.Errorf("amplification: %d bytes out for %d in", st.BytesOut, st.BytesIn)
	}
	if n := accepted.Load(); n != 0 {
		t.Fatalf("Accept returned %d unauthenticated peers", n)
	}

	// The listener still serves a real peer.
	done := make(chan error, 1)
	go func() {
		c := <-acceptedCh
		done <- c.Handshake()
	}()
	c, err := dial(t, l.Addr().String(), p2pClientCfg(k.b, "node-a"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// A ClientHello carrying a cookie from an address the listener holds no
// state for creates none, whatever the cookie: forged, issued to another
// address, or issued to a state that has since expired.
func TestCookieWithoutStateIsDropped(t *testing.T) {
	k := testKeys(t)
	l, err := ListenWithOptions("udp", "127.0.0.1:0", p2pServerCfg(k.a), ListenOptions{CookieTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	sock := func() net.PacketConn {
		s, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	random := make([]byte, 32)
	_, _ = rand.Read(random)
	a, b, c := sock(), sock(), sock()

	// Forged.
	if _, err := c.WriteTo(testHello(1, []byte("forged-cookie-0123456"), random), l.Addr()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the forged cookie counted", func() bool { return l.Stats().Malformed == 1 })

	// Issued to a, replayed from b.
	if _, err := a.WriteTo(testHello(0, nil, random), l.Addr()); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2048)
	_ = a.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, _, err := a.ReadFrom(buf)
	if err != nil || !isHelloVerifyRequest(buf[:n]) {
		t.Fatalf("no HelloVerifyRequest: %v", err)
	}
	cookie := buf[28:n] // record header 13, handshake header 12, version 2, length 1
	if len(cookie) != int(buf[27]) || len(cookie) == 0 {
		t.Fatalf("HelloVerifyRequest %x", buf[:n])
	}
	if _, err := b.WriteTo(testHello(1, cookie, random), l.Addr()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the other address's cookie counted", func() bool { return l.Stats().Malformed == 2 })

	// A datagram longer than the DTLS stack reads is not queued for a's
	// state.
	if _, err := a.WriteTo(make([]byte, maxPeerDatagram+1), l.Addr()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the oversized datagram dropped", func() bool { return l.Stats().Dropped == 1 })

	// A wrong cookie from the right address proves nothing: the peer is
	// not offered to Accept, and the DTLS server ends it.
	d, err := ListenWithOptions("udp", "127.0.0.1:0", p2pServerCfg(k.a), ListenOptions{CookieTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	accepted := make(chan *Conn, 1)
	go func() {
		if c, err := d.AcceptDTLS(); err == nil {
			accepted <- c
		}
	}()
	if _, err := c.WriteTo(testHello(0, nil, random), d.Addr()); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, _, err := c.ReadFrom(buf); err != nil || !isHelloVerifyRequest(buf[:n]) {
		t.Fatalf("no HelloVerifyRequest: %v", err)
	}
	wrong := testHello(1, []byte("not-the-cookie-sent-"), random)
	wrong[10] = 1 // the next record sequence number (the first one would be a replay)
	if _, err := c.WriteTo(wrong, d.Addr()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the DTLS server to end the peer", func() bool { return d.Stats().Peers == 0 })
	select {
	case <-accepted:
		t.Fatal("a wrong cookie reached Accept")
	default:
	}

	// Returned by a after its state expired.
	waitFor(t, "a's state to expire", func() bool { return l.Stats().Peers == 0 })
	if _, err := a.WriteTo(testHello(1, cookie, random), l.Addr()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the expired cookie counted", func() bool { return l.Stats().Malformed == 3 })
	if st := l.Stats(); st.Created != 1 || st.Peers != 0 || st.CookieExpired != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// clientFrom dials the listener from a given local address.
func clientFrom(t testing.TB, local string, raddr net.Addr, cfg *Config) (*Conn, error) {
	t.Helper()
	pc, err := net.ListenPacket("udp", local)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Client(pc, raddr, cfg)
	if err != nil {
		pc.Close()
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.HandshakeContext(ctx); err != nil {
		pc.Close()
		return nil, err
	}
	return c, nil
}

// A source whose handshakes fail after the server derived a key (here:
// P2P clients with node-b's key from other D-TAs) spends its failure
// budget and is then refused at its first ClientHello, before any
// pairing, while another source is served.
func TestFailedProofBudget(t *testing.T) {
	k := testKeys(t)
	scfg := p2pServerCfg(k.a)
	scfg.HandshakeTimeout, scfg.FlightInterval = 2*time.Second, 100*time.Millisecond
	now := time.Unix(1_700_000_000, 0) // the budget does not refill: the clock stands still
	l, err := ListenWithOptions("udp", "127.0.0.1:0", scfg, ListenOptions{
		FailureBurst: 2, FailureRate: 0.001, Now: func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	served := serveEcho(l, 3)
	bad := p2pClientCfg(k.rogueB, "node-a")
	bad.HandshakeTimeout, bad.FlightInterval = 2*time.Second, 100*time.Millisecond
	for i := range 2 {
		if _, err := clientFrom(t, "127.0.0.2:0", l.Addr(), bad); !errors.Is(err, ErrKeyConfirmation) {
			t.Fatalf("bad client %d: %v", i, err)
		}
		if s := waitServed(t, served); !errors.Is(s.err, ErrKeyConfirmation) {
			t.Fatalf("server %d: %v", i, s.err)
		}
	}
	before := l.Stats()
	if left := l.g.budget.Left(l.g.keyer.IP(netip.MustParseAddr("127.0.0.2"))); left >= 1 {
		t.Fatalf("two failed proofs left %v of a budget of 2", left)
	}
	if _, err := clientFrom(t, "127.0.0.2:0", l.Addr(), bad); err == nil {
		t.Fatal("a source past its budget connected")
	}
	st := l.Stats()
	if st.Created != before.Created || st.Refused <= before.Refused {
		t.Fatalf("past its budget the source still created state: before %+v, after %+v", before, st)
	}
	// Another source is served.
	c, err := clientFrom(t, "127.0.0.1:0", l.Addr(), p2pClientCfg(k.b, "node-a"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if s := waitServed(t, served); s.err != nil || s.id != "node-b" {
		t.Fatalf("good source: %+v", s)
	}
}

// provenPeer plays a peer at local that returns the listener's cookie and
// then stalls: its handshake holds a slot until it times out. It returns
// the socket (to close) and whether the HelloVerifyRequest came.
func provenPeer(t *testing.T, local string, to net.Addr) net.PacketConn {
	t.Helper()
	s, err := net.ListenPacket("udp", local)
	if err != nil {
		t.Fatal(err)
	}
	random := make([]byte, 32)
	_, _ = rand.Read(random)
	if _, err := s.WriteTo(testHelloRec(0, 0, nil, random), to); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2048)
	_ = s.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, _, err := s.ReadFrom(buf)
	if err != nil {
		t.Fatalf("no HelloVerifyRequest: %v", err)
	}
	cookie, ok := parseHelloVerifyRequest(buf[:n])
	if !ok {
		t.Fatalf("not a HelloVerifyRequest: %x", buf[:n])
	}
	if _, err := s.WriteTo(testHelloRec(1, 1, cookie, random), to); err != nil {
		t.Fatal(err)
	}
	return s
}

// When every handshake slot is taken by one source's peers that returned
// their cookie, a new source takes one of its slots (the oldest of the
// source holding the most) instead of being shut out.
func TestFullSlotsMakeRoomForNewSource(t *testing.T) {
	k := testKeys(t)
	l, err := ListenWithOptions("udp", "127.0.0.1:0", p2pServerCfg(k.a), ListenOptions{
		MaxHandshakes: 4, MaxHandshakesPerSource: 16, CookieTimeout: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for range 6 {
		defer provenPeer(t, "127.0.0.2:0", l.Addr()).Close()
	}
	waitFor(t, "the proven peers to take every slot", func() bool {
		st := l.Stats()
		return st.Handshaking == 4 && st.Refused == 2 && st.Unproven == 0
	})
	// Accept returns the four stalled peers first (their handshakes wait
	// or end when evicted), then the new one.
	served := serveEcho(l, 5)
	c, err := clientFrom(t, "127.0.0.1:0", l.Addr(), p2pClientCfg(k.b, "node-a"))
	if err != nil {
		t.Fatalf("new source shut out: %v (%+v)", err, l.Stats())
	}
	defer c.Close()
	for {
		s := waitServed(t, served)
		if s.id == "node-b" {
			break
		}
		if s.err == nil {
			t.Fatalf("a stalled peer finished its handshake as %q", s.id)
		}
	}
	if st := l.Stats(); st.Evicted != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// The attack of spoofed sources: first ClientHellos from many addresses
// that never return the cookie, so that every place for unproven peers
// is taken and each source holds one. A real peer that arrives during
// the flood still connects: a new first ClientHello takes the place of
// the oldest unproven peer, and the real peer needs its place for one
// round trip only.
func TestSpoofedSourcesCannotShutOutRealPeer(t *testing.T) {
	k := testKeys(t)
	const places = 64
	l, err := ListenWithOptions("udp", "127.0.0.1:0", p2pServerCfg(k.a), ListenOptions{
		MaxHandshakes: places, CookieTimeout: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var socks []net.PacketConn
	defer func() {
		for _, s := range socks {
			s.Close()
		}
	}()
	random := make([]byte, 32)
	spoof := func(i int) {
		s, err := net.ListenPacket("udp", fmt.Sprintf("127.1.%d.%d:0", i/250, 1+i%250))
		if err != nil {
			t.Error(err)
			return
		}
		socks = append(socks, s)
		_, _ = rand.Read(random)
		_, _ = s.WriteTo(testHello(0, nil, random), l.Addr())
	}
	for i := range 2 * places {
		spoof(i)
	}
	waitFor(t, "the spoofed sources to take every place", func() bool {
		st := l.Stats()
		return st.Unproven == places && st.Evicted >= places
	})
	// The flood goes on while the real peer connects.
	stop := make(chan struct{})
	flooding := make(chan struct{})
	go func() {
		defer close(flooding)
		for i := 2 * places; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
			spoof(i % 5000)
		}
	}()
	served := serveEcho(l, 1)
	c, err := clientFrom(t, "127.0.0.1:0", l.Addr(), p2pClientCfg(k.b, "node-a"))
	close(stop)
	<-flooding
	if err != nil {
		t.Fatalf("real peer shut out by spoofed sources: %v (%+v)", err, l.Stats())
	}
	defer c.Close()
	if s := waitServed(t, served); s.err != nil || s.id != "node-b" {
		t.Fatalf("server: %+v", s)
	}
	if st := l.Stats(); st.Unproven > places || st.Peers > places+1 {
		t.Fatalf("state beyond the limit: %+v", st)
	}
}
