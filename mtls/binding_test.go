package mtls_test

import (
	"crypto/rand"
	"sync/atomic"
	"testing"

	"github.com/milagro-go/milagro/mtls"
	"github.com/milagro-go/milagro/pairing"
)

// A session ticket is bound to the credential that authenticated its full
// handshake: once the server holds another key for the same name, the
// ticket is not resumed, and a client holding only the old key fails the
// full handshake that follows.

// expectNoResume runs a handshake that must not resume; it must fail (the
// client holds only a credential the server no longer accepts).
func expectNoResume(t *testing.T, client, server *mtls.Config) {
	t.Helper()
	r := milHandshakeTCP(t, client, server, nil, nil)
	if r.serverErr == nil && r.server != nil && r.server.ConnectionState().DidResume {
		t.Fatal("a session earned with the old credential was resumed")
	}
	if r.serverErr == nil || r.clientErr == nil {
		t.Fatalf("a client holding only the old credential connected: client %v, server %v", r.clientErr, r.serverErr)
	}
}

// (a) The server rotates c1's PSK: a client holding the old key does not
// resume as c1.
func TestTicketBoundToPSKKey(t *testing.T) {
	oldKey, newKey := []byte("old key of c1, 32 bytes long...."), []byte("new key of c1, 32 bytes long....")
	var cur atomic.Pointer[[]byte]
	cur.Store(&oldKey)
	server := &mtls.Config{GetServerPSK: func(id string) ([]byte, error) { return *cur.Load(), nil }}
	client := &mtls.Config{PSKIdentity: "c1", PSK: oldKey, ClientSessionCache: mtls.NewLRUClientSessionCache(4)}
	mustResume(t, client, server, false)
	mustResume(t, client, server, true)
	cur.Store(&newKey)
	expectNoResume(t, client, server)
	// The client with the new key: a full handshake, then resumptions.
	fresh := client.Clone()
	fresh.PSK = newKey
	mustResume(t, fresh, server, false)
	mustResume(t, fresh, server, true)
}

// (b) GetConfigForClient: a ticket from tenant A is not resumed at tenant
// B, which holds another key for the same identity (the ticket keys are
// the parent's, shared by both tenants).
func TestTicketBoundToTenant(t *testing.T) {
	keyA, keyB := []byte("tenant A's key for c1.........."), []byte("tenant B's key for c1..........")
	tenant := func(key []byte) *mtls.Config {
		return &mtls.Config{GetServerPSK: func(string) ([]byte, error) { return key, nil }}
	}
	var useB atomic.Bool
	server := &mtls.Config{GetConfigForClient: func(*mtls.ClientHelloInfo) (*mtls.Config, error) {
		if useB.Load() {
			return tenant(keyB), nil
		}
		return tenant(keyA), nil
	}}
	client := &mtls.Config{PSKIdentity: "c1", PSK: keyA, ClientSessionCache: mtls.NewLRUClientSessionCache(4)}
	mustResume(t, client, server, false)
	mustResume(t, client, server, true)
	useB.Store(true)
	expectNoResume(t, client, server)
}

// (c) A CS ticket from the servers of D-TA deployment X is not resumed at
// a server holding deployment Y's key for the same id_S (both share their
// ticket keys).
func TestTicketBoundToDTADeployment(t *testing.T) {
	f := milFixtureFor(t)
	var yShares []*pairing.MasterShare
	for i := 0; i < 3; i++ {
		s, err := pairing.NewMasterShare(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		yShares = append(yShares, s)
	}
	var parts []*pairing.CSServerSecret
	for _, s := range yShares {
		k, err := s.IssueCSServerKey("srv.example")
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, k)
	}
	keyY, err := pairing.CombineCSServerSecrets(parts...)
	if err != nil {
		t.Fatal(err)
	}
	ticketKeys := [][32]byte{{42}}
	serverX := &mtls.Config{CSServerKeys: []*pairing.CSServerSecret{milServerKey(t, f, "srv.example")}, PermitMode: pairing.PermitsOptional, Time: milClock(milNow)}
	serverY := &mtls.Config{CSServerKeys: []*pairing.CSServerSecret{keyY}, PermitMode: pairing.PermitsOptional, Time: milClock(milNow)}
	serverX.SetSessionTicketKeys(ticketKeys)
	serverY.SetSessionTicketKeys(ticketKeys)
	client := &mtls.Config{CSKey: f.alice, ServerIdentity: "srv.example", Time: milClock(milNow),
		ClientSessionCache: mtls.NewLRUClientSessionCache(4)}
	mustResume(t, client, serverX, false)
	mustResume(t, client, serverX, true)
	expectNoResume(t, client, serverY)
}

// A P2P ticket is bound to the server's own P2P key: a server holding
// another key for its identity does not resume it.
func TestTicketBoundToP2PKey(t *testing.T) {
	f := milFixtureFor(t)
	client, server := milP2PConfigs(t, 0)
	client.CipherSuites, server.CipherSuites = nil, nil
	client.ClientSessionCache = mtls.NewLRUClientSessionCache(4)
	ticketKeys := [][32]byte{{43}}
	server.SetSessionTicketKeys(ticketKeys)
	other := &mtls.Config{P2PKey: f.nodeA2of3}
	other.SetSessionTicketKeys(ticketKeys)
	mustResume(t, client, server, false)
	mustResume(t, client, server, true)
	expectNoResume(t, client, other)
}
