package pairing

import (
	"bytes"
	"crypto/rand"
	"errors"
	"testing"
)

// p2pDTLSRun runs the DTLS ordering of a P2P handshake: the client commits
// to (W_C, Y_C) first, then both sides derive the PSK.
func p2pDTLSRun(t *testing.T, s, c *P2PKey, expect string) (cpsk, spsk []byte, err error) {
	t.Helper()
	ps, err := NewP2PServer(s)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := NewP2PClient(c)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := pc.StartDTLS(rand.Reader, expect)
	if err != nil {
		t.Fatal(err)
	}
	sh, err := ps.Start(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cpsk, err = ch.FinishDTLS(sh.ID(), sh.X())
	if err != nil {
		return nil, nil, err
	}
	spsk, err = sh.FinishDTLS(ch.ID(), ch.W(), ch.Y())
	return cpsk, spsk, err
}

func TestP2PDTLSAgrees(t *testing.T) {
	f := newFixture(t, seeded("p2p-dtls"))
	c, s, err := p2pDTLSRun(t, f.nodeA, f.nodeB, "node-a")
	if err != nil || len(c) != 32 || !bytes.Equal(c, s) {
		t.Fatalf("a serves b: %x %x %v", c, s, err)
	}
	c, s, err = p2pDTLSRun(t, f.nodeB, f.nodeA, "node-b")
	if err != nil || !bytes.Equal(c, s) {
		t.Fatalf("b serves a: %x %x %v", c, s, err)
	}
	// A key issued for another identity derives another PSK.
	c, s, err = p2pDTLSRun(t, f.nodeA, f.nodeA, "node-a")
	if err != nil || !bytes.Equal(c, s) {
		t.Fatalf("a serves a: %v", err)
	}
	if _, _, err := p2pDTLSRun(t, f.nodeA, f.nodeB, "node-b"); !errors.Is(err, ErrPeerIdentity) {
		t.Fatalf("unexpected server accepted: %v", err)
	}
}

func TestP2PDTLSOnce(t *testing.T) {
	f := newFixture(t, seeded("p2p-dtls-once"))
	ps, _ := NewP2PServer(f.nodeA)
	pc, _ := NewP2PClient(f.nodeB)
	ch, err := pc.StartDTLS(rand.Reader, "node-a")
	if err != nil {
		t.Fatal(err)
	}
	sh, _ := ps.Start(rand.Reader)
	if _, err := ch.FinishDTLS("node-a", sh.X()); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.FinishDTLS("node-a", sh.X()); !errors.Is(err, ErrUnusable) {
		t.Fatalf("client finished twice: %v", err)
	}
	if _, err := sh.FinishDTLS("node-b", ch.W(), ch.Y()); err != nil {
		t.Fatal(err)
	}
	if _, err := sh.FinishDTLS("node-b", ch.W(), ch.Y()); !errors.Is(err, ErrUnusable) {
		t.Fatalf("server finished twice: %v", err)
	}
	sh2, _ := ps.Start(rand.Reader)
	bad := ch.W()
	bad[5] ^= 1
	if _, err := sh2.FinishDTLS("node-b", bad, ch.Y()); err == nil {
		t.Fatal("tampered W_C decoded")
	}
	if _, err := pc.StartDTLS(rand.Reader, ""); !errors.Is(err, ErrInvalidID) {
		t.Fatalf("empty id_S: %v", err)
	}
}
