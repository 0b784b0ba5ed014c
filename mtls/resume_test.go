package mtls_test

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/milagro-go/milagro/ciphersuite"
	"github.com/milagro-go/milagro/mtls"
	"github.com/milagro-go/milagro/pairing"
)

// resumeRun runs a handshake and reports whether both sides resumed (and
// that they agree on it).
func resumeRun(t *testing.T, c, s *mtls.Config) (milResult, bool) {
	t.Helper()
	r := milHandshakeTCP(t, c, s, nil, nil)
	if r.clientErr != nil || r.serverErr != nil {
		return r, false
	}
	cr, sr := r.client.ConnectionState().DidResume, r.server.ConnectionState().DidResume
	if cr != sr {
		t.Fatalf("client resumed %v, server %v", cr, sr)
	}
	cs, ss := r.client.ConnectionState(), r.server.ConnectionState()
	if len(cs.TLSUnique) != 12 || !bytes.Equal(cs.TLSUnique, ss.TLSUnique) {
		t.Fatal("tls-unique differs")
	}
	// The connection works.
	go r.server.Write([]byte("ping"))
	buf := make([]byte, 4)
	r.client.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := readFull(r.client, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("data after the handshake: %v", err)
	}
	return r, cr
}

func mustResume(t *testing.T, c, s *mtls.Config, want bool) milResult {
	t.Helper()
	r, resumed := resumeRun(t, c, s)
	if r.clientErr != nil || r.serverErr != nil {
		t.Fatalf("handshake failed: client %v, server %v", r.clientErr, r.serverErr)
	}
	if resumed != want {
		t.Fatalf("resumed = %v, want %v", resumed, want)
	}
	return r
}

// A resumed CS handshake does no pairing, carries the identities, and is
// refused (full handshake, then denied) once the ACL or the lockout says no.
func TestResumeCS(t *testing.T) {
	f := milFixtureFor(t)
	gate := &countingGate{}
	lock := &mtls.Lockout{Clock: milClock(milNow)}
	var deny sync.Map
	server := &mtls.Config{CSServerKeys: []*pairing.CSServerSecret{milServerKey(t, f, "srv.example")}, PermitMode: pairing.PermitsOptional,
		Time: milClock(milNow), PairingGate: gate, CSLockout: lock,
		VerifyPeerIdentity: func(id string) error {
			if _, ok := deny.Load(id); ok {
				return errors.New("not on the list")
			}
			return nil
		}}
	client := &mtls.Config{CSKey: f.alice, ServerIdentity: "srv.example", Time: milClock(milNow),
		ClientSessionCache: mtls.NewLRUClientSessionCache(4)}
	mustResume(t, client, server, false)
	if gate.n.Load() != 1 {
		t.Fatalf("full handshake: %d pairings", gate.n.Load())
	}
	r := mustResume(t, client, server, true)
	if gate.n.Load() != 1 {
		t.Fatalf("resumed handshake did pairing work (%d)", gate.n.Load())
	}
	cs, ss := r.client.ConnectionState(), r.server.ConnectionState()
	if ss.PeerIdentity != milAlice || ss.LocalIdentity != "srv.example" || cs.PeerIdentity != "srv.example" ||
		cs.LocalIdentity != milAlice || cs.KeyExchange != ciphersuite.KXMilagroCS {
		t.Fatalf("identities: server %q/%q client %q/%q", ss.PeerIdentity, ss.LocalIdentity, cs.PeerIdentity, cs.LocalIdentity)
	}
	// Another server identity expected: the cached session is not offered.
	other := client.Clone()
	other.ServerIdentity = "other.example"
	other.ClientSessionCache = anyKeyCache{client.ClientSessionCache}
	r = milHandshakeTCP(t, other, server, nil, nil)
	if r.clientErr == nil {
		t.Fatal("a session for srv.example was resumed by a client expecting other.example")
	}
	milExpectAlert(t, "server", r.serverErr, ciphersuite.AlertUnrecognizedName, false)

	// The ACL changes: no resumption, and the full handshake is denied
	// before any pairing.
	mustResume(t, client, server, true)
	deny.Store(milAlice, true)
	r = milHandshakeTCP(t, client, server, nil, nil)
	milExpectAlert(t, "server", r.serverErr, ciphersuite.AlertAccessDenied, false)
	if !strings.Contains(r.serverErr.Error(), "not on the list") || gate.n.Load() != 1 {
		t.Fatalf("%v (pairings %d)", r.serverErr, gate.n.Load())
	}
	deny.Delete(milAlice)
	mustResume(t, client, server, false) // the failed handshake dropped the session
	mustResume(t, client, server, true)
	// Locked out: no resumption either.
	local := mtls.NewGuards(nil).Keyer.IP(netip.MustParseAddr("127.0.0.1"))
	for i := 0; i < 5; i++ {
		lock.Failure(milAlice, local, lock.Begin())
	}
	r = milHandshakeTCP(t, client, server, nil, nil)
	milExpectAlert(t, "server", r.serverErr, ciphersuite.AlertAccessDenied, false)
	if !strings.Contains(r.serverErr.Error(), "locked out") {
		t.Fatal(r.serverErr)
	}
}

// anyKeyCache returns whatever it last stored for any key: a cache that
// cannot be trusted to separate servers.
type anyKeyCache struct{ c mtls.ClientSessionCache }

func (a anyKeyCache) Get(string) (*mtls.ClientSessionState, bool) {
	return a.c.Get("127.0.0.1\x00srv.example")
}
func (a anyKeyCache) Put(string, *mtls.ClientSessionState) {}

// A ticket is good only while its permit day is: the next day a full
// handshake with the new permit, and a revoked identity (no new permit)
// is denied.
func TestResumePermitDay(t *testing.T) {
	f := milFixtureFor(t)
	gate := &countingGate{}
	now := milNow
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	set := func(t time.Time) { mu.Lock(); now = t; mu.Unlock() }
	today := pairing.Day(milNow)
	pTomorrow := milPermit(t, f, milAlice, today+1)
	server := &mtls.Config{CSServerKeys: []*pairing.CSServerSecret{f.secret}, PermitMode: pairing.PermitsRequired, Time: clock, PairingGate: gate}
	client := &mtls.Config{CSKey: f.alice, CSPermits: []*pairing.TimePermit{f.permitToday, pTomorrow}, Time: clock,
		ClientSessionCache: mtls.NewLRUClientSessionCache(4)}
	mustResume(t, client, server, false)
	set(milNow.Add(time.Hour))
	mustResume(t, client, server, true)
	if gate.n.Load() != 1 {
		t.Fatal(gate.n.Load())
	}
	// 13 h later it is the next day: the session (13 h old) is within its
	// lifetime but its permit day is over.
	set(milNow.Add(13 * time.Hour))
	r := mustResume(t, client, server, false)
	if gate.n.Load() != 2 || r.server.ConnectionState().PermitDay != today+1 {
		t.Fatalf("pairings %d, permit day %d", gate.n.Load(), r.server.ConnectionState().PermitDay)
	}
	mustResume(t, client, server, true)
	// Revoked: the next day it holds no permit. Its ticket from today does
	// not carry it over.
	set(milNow.Add(37 * time.Hour))
	revoked := client.Clone()
	revoked.CSPermits = nil
	revoked.GetCSPermit = func(uint64) (*pairing.TimePermit, error) { return nil, nil }
	r = milHandshakeTCP(t, revoked, server, nil, nil)
	milExpectAlert(t, "server", r.serverErr, ciphersuite.AlertAccessDenied, false)
}

// A resumed P2P handshake sends no ServerKeyExchange (no key exchange, so
// no pairing: handshake.TestResumeMilagroNoPairing counts it) and carries
// the identities.
func TestResumeP2P(t *testing.T) {
	client, server := milP2PConfigs(t, 0)
	client.CipherSuites, server.CipherSuites = nil, nil
	client.ClientSessionCache = mtls.NewLRUClientSessionCache(4)
	mustResume(t, client, server, false)
	var rec *serverRecorder
	r := milHandshakeTCP(t, client, server, nil, func(c net.Conn) net.Conn { rec = &serverRecorder{Conn: c}; return rec })
	if r.clientErr != nil || r.serverErr != nil || !r.server.ConnectionState().DidResume {
		t.Fatalf("%v %v", r.clientErr, r.serverErr)
	}
	types := rec.plainHandshakeTypes()
	if len(types) == 0 || types[0] != 2 || bytes.IndexByte(types, 12) >= 0 {
		t.Fatalf("server's plaintext handshake messages %v (want ServerHello and no ServerKeyExchange)", types)
	}
	cs, ss := r.client.ConnectionState(), r.server.ConnectionState()
	if ss.PeerIdentity != milNodeB || cs.PeerIdentity != milNodeA || ss.LocalIdentity != milNodeA || cs.LocalIdentity != milNodeB {
		t.Fatalf("identities %+v / %+v", cs, ss)
	}
}

// serverRecorder keeps what the server writes.
type serverRecorder struct {
	net.Conn
	mu  sync.Mutex
	out []byte
}

func (s *serverRecorder) Write(b []byte) (int, error) {
	s.mu.Lock()
	s.out = append(s.out, b...)
	s.mu.Unlock()
	return s.Conn.Write(b)
}

// plainHandshakeTypes lists the handshake message types sent before the
// first ChangeCipherSpec (messages assumed one per record or packed whole).
func (s *serverRecorder) plainHandshakeTypes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	var types []byte
	b := s.out
	for len(b) >= 5 {
		typ, n := b[0], int(b[3])<<8|int(b[4])
		if len(b) < 5+n || typ == 20 {
			break
		}
		frag := b[5 : 5+n]
		for typ == 22 && len(frag) >= 4 {
			types = append(types, frag[0])
			m := 4 + (int(frag[1])<<16 | int(frag[2])<<8 | int(frag[3]))
			if m > len(frag) {
				break
			}
			frag = frag[m:]
		}
		b = b[5+n:]
	}
	return types
}

// Two servers with the same ticket keys resume each other's sessions; a
// server with other keys runs a full handshake; so does an expired session.
func TestResumeSharedKeysPSK(t *testing.T) {
	client, s1 := pskConfigs()
	_, s2 := pskConfigs()
	_, s3 := pskConfigs()
	keys := [][32]byte{{1, 2, 3}, {4, 5, 6}}
	s1.TicketKeys = func() [][32]byte { return keys }
	s2.SetSessionTicketKeys(keys)
	s3.SetSessionTicketKeys([][32]byte{{9}})
	client.ClientSessionCache = mtls.NewLRUClientSessionCache(4)
	mustResume(t, client, s1, false)
	r := mustResume(t, client, s2, true)
	if r.server.ConnectionState().PeerIdentity != testIdentity {
		t.Fatal("identity lost")
	}
	mustResume(t, client, s1, true)
	// s2 gets a newer key: it still resumes s1's ticket, and issues one
	// under the new key, which s1 cannot open.
	s2.SetSessionTicketKeys(append([][32]byte{{7}}, keys...))
	mustResume(t, client, s2, true)
	mustResume(t, client, s1, false)
	mustResume(t, client, s3, false) // unknown key: full handshake, new ticket
	mustResume(t, client, s3, true)

	// Lifetime: an hour, then a full handshake.
	now := time.Now()
	clock := func() time.Time { return now }
	s3.Time, client.Time = clock, clock
	s3.SessionTicketLifetime = time.Hour
	mustResume(t, client, s3, true) // the session from just now
	now = now.Add(59 * time.Minute)
	mustResume(t, client, s3, true)
	now = now.Add(2 * time.Minute)
	mustResume(t, client, s3, false)

	// Tickets off: nothing is resumed.
	s3.SessionTicketsDisabled = true
	mustResume(t, client, s3, false)
	mustResume(t, client, s3, false)
	s3.SessionTicketLifetime = 25 * time.Hour
	s3.SessionTicketsDisabled = false
	if r := milHandshakeTCP(t, client, s3, nil, nil); r.serverErr == nil {
		t.Fatal("a lifetime over 24 h was accepted")
	}
}

// Automatic keys rotate daily; a ticket under the previous key is still
// resumed (and replaced by one under the new key) while its session lives.
func TestResumeRotation(t *testing.T) {
	client, server := pskConfigs()
	t0 := time.Now()
	now := t0
	clock := func() time.Time { return now }
	client.Time, server.Time = clock, clock
	client.ClientSessionCache = mtls.NewLRUClientSessionCache(4)
	mustResume(t, client, server, false) // key k0 made at t0
	now = t0.Add(23 * time.Hour)
	mustResume(t, client, server, true)
	mustResume(t, client, server, true)
	fresh := client.Clone()
	fresh.ClientSessionCache = mtls.NewLRUClientSessionCache(4)
	mustResume(t, fresh, server, false) // ticket under k0, session from t0+23h
	now = t0.Add(25 * time.Hour)        // k1 is made; k0 still accepted
	mustResume(t, fresh, server, true)
	mustResume(t, fresh, server, true)       // the reissued ticket (under k1)
	now = t0.Add(47*time.Hour + time.Minute) // session over 24 h old
	mustResume(t, fresh, server, false)
}

func TestParseTicketKeys(t *testing.T) {
	keys, err := mtls.ParseTicketKeys([]byte("# fleet keys\n" + strings.Repeat("ab", 32) + "\n\n" +
		"AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=\n"))
	if err != nil || len(keys) != 2 || keys[0][0] != 0xab || keys[1][0] != 1 || keys[1][31] != 32 {
		t.Fatalf("%v %v", keys, err)
	}
	for _, bad := range []string{"", "# only\n", "abcd\n", strings.Repeat("00", 32), strings.Repeat("zz", 32)} {
		if _, err := mtls.ParseTicketKeys([]byte(bad)); err == nil {
			t.Fatalf("%q accepted", bad)
		}
	}
}

// GetConfigForClient: the returned Config's credentials and policy decide
// (its VerifyPeerIdentity is applied to the resumed session), the ticket
// keys stay the parent's, and it may turn tickets off.
func TestResumeGetConfigForClient(t *testing.T) {
	client, inner := pskConfigs()
	disabled := false
	denied := false
	server := &mtls.Config{GetConfigForClient: func(*mtls.ClientHelloInfo) (*mtls.Config, error) {
		c := inner.Clone()
		c.SessionTicketsDisabled = disabled
		if denied {
			c.VerifyPeerIdentity = func(string) error { return errors.New("no") }
		}
		return c, nil
	}}
	client.ClientSessionCache = mtls.NewLRUClientSessionCache(4)
	mustResume(t, client, server, false)
	mustResume(t, client, server, true)
	denied = true
	if r := milHandshakeTCP(t, client, server, nil, nil); r.serverErr == nil {
		t.Fatal("the returned Config's policy was not applied to the resumed session")
	}
	denied = false
	mustResume(t, client, server, false)
	disabled = true
	mustResume(t, client, server, false)
}

// ALPN is negotiated on a resumption too, and carried by its ServerHello.
func TestResumeALPN(t *testing.T) {
	client, server := pskConfigs()
	client.ClientSessionCache = mtls.NewLRUClientSessionCache(4)
	client.NextProtos = []string{"h2", "http/1.1"}
	server.NextProtos = []string{"h2"}
	for i, want := range []bool{false, true} {
		r := mustResume(t, client, server, want)
		if c, s := r.client.ConnectionState().NegotiatedProtocol, r.server.ConnectionState().NegotiatedProtocol; c != "h2" || s != "h2" {
			t.Fatalf("handshake %d: client %q, server %q, want h2", i, c, s)
		}
	}
	// No overlap on the resumption: the server refuses, as on a full one.
	client.NextProtos = []string{"spdy/3"}
	r, _ := resumeRun(t, client, server)
	if r.serverErr == nil {
		t.Fatal("ALPN mismatch accepted on a resumption")
	}
}
