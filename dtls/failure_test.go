package dtls

import (
	"bytes"
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// slowFirstAlert is a client socket whose first alert leaves late, as a
// loaded machine can make it: pion's read loop then meets the peer's
// noise before the handshake goroutine reports its own error.
type slowFirstAlert struct {
	net.PacketConn
	slowed atomic.Bool
}

func (s *slowFirstAlert) WriteTo(b []byte, addr net.Addr) (int, error) {
	// An epoch-0 alert, plain (21) or wrapped in a connection ID (25).
	if len(b) > 4 && (b[0] == 21 || b[0] == 25) && b[3] == 0 && b[4] == 0 {
		if s.slowed.CompareAndSwap(false, true) {
			time.Sleep(100 * time.Millisecond)
		}
	}
	return s.PacketConn.WriteTo(b, addr)
}

// TestLocalFailureWinsOverPeerNoise: when this side refuses the peer's
// values, the error names that refusal, even when a record pion cannot
// parse (here a bogus one behind the tampered flight; in the CI run that
// found this, the server's own abort) reaches pion's read loop first.
// That run reported "invalid content type" instead of the malformed hint.
func TestLocalFailureWinsOverPeerNoise(t *testing.T) {
	k := testKeys(t)
	scfg := p2pServerCfg(k.a)
	scfg.HandshakeTimeout = 4 * time.Second
	l := listen(t, scfg)
	// A plaintext fatal handshake_failure alert, as the server sends
	// when it aborts: pion's read loop fails the handshake on it at once.
	bogus := []byte{21, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 2, 2, 40}
	tampered := tamper(false, 0)
	r := newRelay(t, l.Addr(), func(toServer bool, b []byte) [][]byte {
		out := tampered(toServer, b)
		if !toServer && bytes.Contains(b, []byte(p2pPrefix)) {
			out = append(out, bogus)
		}
		return out
	})
	go func() {
		if c, err := l.AcceptDTLS(); err == nil {
			_ = c.Handshake()
		}
	}()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	raddr, err := net.ResolveUDPAddr("udp", r.addr())
	if err != nil {
		t.Fatal(err)
	}
	ccfg := p2pClientCfg(k.b, "node-a")
	ccfg.HandshakeTimeout = 4 * time.Second
	c, err := Client(&slowFirstAlert{PacketConn: pc}, raddr, ccfg)
	if err != nil {
		t.Fatal(err)
	}
	err = c.Handshake()
	if !errors.Is(err, ErrMalformed) {
		t.Fatalf("client error %v, want %v", err, ErrMalformed)
	}
	// The error stays what Handshake reported, on every later call.
	if _, rerr := c.Read(make([]byte, 8)); !errors.Is(rerr, ErrMalformed) {
		t.Fatalf("Read after the failed handshake: %v", rerr)
	}
}
