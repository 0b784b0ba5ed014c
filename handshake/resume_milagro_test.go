package handshake

import (
	"crypto/rand"
	"sync/atomic"
	"testing"
	"time"

	"github.com/milagro-go/milagro/ciphersuite"
	"github.com/milagro-go/milagro/pairing"
)

// countServerKX counts the server key exchanges created (where every
// Milagro pairing of the server happens: the CS proof check in
// NewServerKX, the P2P key derivation in its methods).
func countServerKX(t *testing.T) *atomic.Int64 {
	n := new(atomic.Int64)
	old := newServerKX
	newServerKX = func(c *ciphersuite.ServerConfig, s *ciphersuite.Suite, h *ciphersuite.ClientHelloInfo) (ciphersuite.ServerKX, error) {
		n.Add(1)
		return old(c, s, h)
	}
	t.Cleanup(func() { newServerKX = old })
	return n
}

// TestResumeMilagroNoPairing: a resumed CS or P2P handshake creates no
// server key exchange (so does no pairing) and carries the identities.
func TestResumeMilagroNoPairing(t *testing.T) {
	ms, err := pairing.NewMasterShare(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	csShare, err := ms.IssueCSClientKey("alice")
	if err != nil {
		t.Fatal(err)
	}
	csKey, err := pairing.CombineCSClientKeys(csShare)
	if err != nil {
		t.Fatal(err)
	}
	srvShare, err := ms.IssueCSServerKey("srv")
	if err != nil {
		t.Fatal(err)
	}
	srvSecret, err := pairing.CombineCSServerSecrets(srvShare)
	if err != nil {
		t.Fatal(err)
	}
	csClient, err := pairing.NewCSClient(csKey, nil)
	if err != nil {
		t.Fatal(err)
	}
	csServer, err := pairing.NewCSServer(srvSecret)
	if err != nil {
		t.Fatal(err)
	}
	p2pKey := func(id string) *pairing.P2PKey {
		share, err := ms.IssueP2PKey(id)
		if err != nil {
			t.Fatal(err)
		}
		k, err := pairing.CombineP2PKeys(share)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	keyA, keyB := p2pKey("node-a"), p2pKey("node-b")
	p2pClient, err := pairing.NewP2PClient(keyB)
	if err != nil {
		t.Fatal(err)
	}
	p2pServer, err := pairing.NewP2PServer(keyA)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		kind             ciphersuite.KXKind
		clientID, peerID string // client's own; the server identity it sees
	}{
		{ciphersuite.KXMilagroCS, "alice", "srv"},
		{ciphersuite.KXMilagroP2P, "node-b", "node-a"},
	} {
		suites := ciphersuite.ByKX(tc.kind)
		ckx := &ciphersuite.ClientConfig{Rand: rand.Reader, Time: time.Now}
		skx := &ciphersuite.ServerConfig{Rand: rand.Reader, Time: time.Now}
		if tc.kind == ciphersuite.KXMilagroCS {
			ckx.CS = &ciphersuite.CSClient{Client: csClient, ServerID: "srv"}
			skx.CS = &ciphersuite.CSServer{GetServer: func(id string) *pairing.CSServer {
				if id == csServer.ID() {
					return csServer
				}
				return nil
			}, Permits: pairing.PermitsOptional}
		} else {
			ckx.P2P = &ciphersuite.P2PClient{Client: p2pClient, ServerID: "node-a"}
			skx.P2P = &ciphersuite.P2PServer{Server: p2pServer}
		}
		k := testTicketKey(1, time.Now())
		c := &ClientConfig{Rand: rand.Reader, Suites: suites, KX: ckx, RequestTicket: true}
		s := &ServerConfig{Rand: rand.Reader, Suites: suites, KX: skx,
			Tickets: &ServerTickets{Keys: func() []TicketKey { return []TicketKey{k} }}}
		n := countServerKX(t)
		r := runPair(t, c, s)
		if r.cerr != nil || r.serr != nil || n.Load() != 1 || r.cst.Session == nil {
			t.Fatalf("%d full: %v %v (server kx %d)", tc.kind, r.cerr, r.serr, n.Load())
		}
		c.Session = r.cst.Session
		r = runPair(t, c, s)
		if r.cerr != nil || r.serr != nil {
			t.Fatalf("%d resumed: %v %v", tc.kind, r.cerr, r.serr)
		}
		if !r.cst.DidResume || !r.sst.DidResume || n.Load() != 1 {
			t.Fatalf("%d: resumed %v/%v, server key exchanges %d (want still 1)", tc.kind, r.cst.DidResume, r.sst.DidResume, n.Load())
		}
		if r.sst.PeerIdentity != tc.clientID || r.sst.LocalIdentity != tc.peerID ||
			r.cst.PeerIdentity != tc.peerID || r.cst.LocalIdentity != tc.clientID {
			t.Fatalf("%d identities: server %q/%q, client %q/%q", tc.kind,
				r.sst.PeerIdentity, r.sst.LocalIdentity, r.cst.PeerIdentity, r.cst.LocalIdentity)
		}
		// A CS server that no longer holds the key for "srv" does not
		// resume: the full handshake then fails (unrecognized_name).
		if tc.kind == ciphersuite.KXMilagroCS {
			s.KX.CS = &ciphersuite.CSServer{GetServer: func(string) *pairing.CSServer { return nil }}
			r = runPair(t, c, s)
			if r.sst != nil || n.Load() != 2 {
				t.Fatalf("resumed without the server key: %v %d", r.serr, n.Load())
			}
			wantAlert(t, r.serr, ciphersuite.AlertUnrecognizedName)
		}
	}
}
