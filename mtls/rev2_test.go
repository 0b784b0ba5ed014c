package mtls_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/milagro-go/milagro/ciphersuite"
	"github.com/milagro-go/milagro/mtls"
	"github.com/milagro-go/milagro/pairing"
)

// The rules of docs/protocol.md §2–3 (CS lockout, permits, server
// identity), end to end through mtls.

// milServerKey combines the fixture's three shares of the CS server key
// for server identity id.
func milServerKey(t testing.TB, f *milFixture, id string) *pairing.CSServerSecret {
	t.Helper()
	var parts []*pairing.CSServerSecret
	for _, s := range f.shares {
		k, err := s.IssueCSServerKey(id)
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, k)
	}
	k, err := pairing.CombineCSServerSecrets(parts...)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func milPermit(t testing.TB, f *milFixture, id string, day uint64) *pairing.TimePermit {
	t.Helper()
	var parts []*pairing.TimePermit
	for _, s := range f.shares {
		p, err := s.IssueTimePermit(id, day)
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, p)
	}
	p, err := pairing.CombineTimePermits(parts...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// clientHelloSuites runs a client handshake into a pipe and returns the
// cipher suites and extensions of the ClientHello it sent.
func clientHelloSuites(t *testing.T, cfg *mtls.Config) (suites []uint16, exts map[uint16][]byte) {
	t.Helper()
	c1, c2 := net.Pipe()
	defer c1.Close()
	go func() {
		cl := mtls.Client(c1, cfg)
		cl.SetDeadline(time.Now().Add(5 * time.Second))
		cl.Handshake()
	}()
	c2.SetDeadline(time.Now().Add(5 * time.Second))
	hdr := make([]byte, 5)
	if _, err := readFull(c2, hdr); err != nil {
		t.Fatal(err)
	}
	rec := make([]byte, int(hdr[3])<<8|int(hdr[4]))
	if _, err := readFull(c2, rec); err != nil {
		t.Fatal(err)
	}
	c2.Close()
	// handshake header (4), version (2), random (32), session_id.
	p := rec[4+2+32:]
	p = p[1+int(p[0]):]
	n := int(p[0])<<8 | int(p[1])
	for i := 0; i < n; i += 2 {
		suites = append(suites, uint16(p[2+i])<<8|uint16(p[3+i]))
	}
	p = p[2+n:]
	p = p[1+int(p[0]):] // compression methods
	exts = map[uint16][]byte{}
	p = p[2:]
	for len(p) >= 4 {
		typ, l := uint16(p[0])<<8|uint16(p[1]), int(p[2])<<8|int(p[3])
		exts[typ] = p[4 : 4+l]
		p = p[4+l:]
	}
	return suites, exts
}

func readFull(c net.Conn, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := c.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// A client holding CS, PSK and P2P credentials and
// expecting a server identity offers no PSK suite, names the server in its
// CS proof, and refuses a server that cannot prove the identity — even a
// PSK server whose hint is the expected name.
func TestServerIdentityOffersNoPSK(t *testing.T) {
	f := milFixtureFor(t)
	client := &mtls.Config{
		CSKey: f.alice, P2PKey: f.nodeB, PSKIdentity: "psk-client", PSK: testPSK,
		ServerIdentity: milNodeA, Time: milClock(milNow),
	}
	suites, exts := clientHelloSuites(t, client)
	for _, s := range suites {
		switch ciphersuite.ByID(s).KX {
		case ciphersuite.KXPSK, ciphersuite.KXECDHEPSK:
			t.Fatalf("PSK suite %#04x offered beside an expected server identity", s)
		}
	}
	var haveCS, haveP2P bool
	for _, s := range suites {
		haveCS = haveCS || s == 0xFF01
		haveP2P = haveP2P || s == 0xFF11
	}
	if !haveCS || !haveP2P {
		t.Fatalf("suites %04x", suites)
	}
	ext := exts[ciphersuite.ExtMilagroCS]
	if !strings.HasSuffix(string(ext), "\x00"+string(rune(len(milNodeA)))+milNodeA) {
		t.Fatalf("milagro_cs does not name the server: %x", ext)
	}
	// Without the expected identity the PSK suites are offered.
	plain := client.Clone()
	plain.ServerIdentity, plain.P2PKey = "", nil
	suites, _ = clientHelloSuites(t, plain)
	if !containsSuite(suites, 0xD001) {
		t.Fatalf("PSK not offered without an expected identity: %04x", suites)
	}

	// A PSK-only server with the expected name as its hint: refused.
	pskServer := &mtls.Config{
		GetServerPSK:    func(string) ([]byte, error) { return testPSK, nil },
		PSKIdentityHint: milNodeA, Time: milClock(milNow),
	}
	r := milHandshakeTCP(t, client.Clone(), pskServer, nil, nil)
	if r.clientErr == nil {
		t.Fatalf("handshake with a PSK server succeeded; peer %q", r.client.ConnectionState().PeerIdentity)
	}
	// A CS server holding only the deployment-wide key cannot prove node-a.
	csOnly := &mtls.Config{CSServerKeys: []*pairing.CSServerSecret{f.secret}, PermitMode: pairing.PermitsOptional, Time: milClock(milNow)}
	r = milHandshakeTCP(t, client.Clone(), csOnly, nil, nil)
	if r.clientErr == nil {
		t.Fatal("a server without node-a's key was accepted")
	}
	milExpectAlert(t, "server", r.serverErr, ciphersuite.AlertUnrecognizedName, false)
}

func containsSuite(l []uint16, s uint16) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

func TestCSServerIdentities(t *testing.T) {
	f := milFixtureFor(t)
	api, web := milServerKey(t, f, "api.example.com"), milServerKey(t, f, "web.example.com")
	server := &mtls.Config{CSServerKeys: []*pairing.CSServerSecret{api, web, f.secret}, PermitMode: pairing.PermitsOptional, Time: milClock(milNow)}
	for _, id := range []string{"api.example.com", "web.example.com", ""} {
		c := &mtls.Config{CSKey: f.alice, ServerIdentity: id, Time: milClock(milNow)}
		r := milHandshakeTCP(t, c, server, nil, nil)
		if r.clientErr != nil || r.serverErr != nil {
			t.Fatalf("%q: client %v, server %v", id, r.clientErr, r.serverErr)
		}
		cst, sst := r.client.ConnectionState(), r.server.ConnectionState()
		if cst.PeerIdentity != id || sst.LocalIdentity != id || sst.PeerIdentity != milAlice || cst.KeyExchange != ciphersuite.KXMilagroCS {
			t.Fatalf("%q: client sees %q, server presented %q, server sees %q", id, cst.PeerIdentity, sst.LocalIdentity, sst.PeerIdentity)
		}
		exchange(t, r.client, r.server, 100)
	}
	// GetCSServerKey, in the style of GetCertificate.
	byCallback := &mtls.Config{Time: milClock(milNow), PermitMode: pairing.PermitsOptional, GetCSServerKey: func(id string) (*pairing.CSServerSecret, error) {
		if id == "api.example.com" {
			return api, nil
		}
		return nil, nil
	}}
	c := &mtls.Config{CSKey: f.alice, ServerIdentity: "api.example.com", Time: milClock(milNow)}
	if r := milHandshakeTCP(t, c, byCallback, nil, nil); r.clientErr != nil || r.serverErr != nil {
		t.Fatal(r.clientErr, r.serverErr)
	}
	// Unknown identity: unrecognized_name (112).
	c = &mtls.Config{CSKey: f.alice, ServerIdentity: "db.example.com", Time: milClock(milNow)}
	milFail(t, c, server, nil, nil, "server", ciphersuite.AlertUnrecognizedName, "db.example.com")
	milFail(t, c, byCallback, nil, nil, "server", ciphersuite.AlertUnrecognizedName, "db.example.com")
	// A server key for another identity, relabelled as api's: the proof
	// does not verify against it.
	b, err := web.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	b = []byte(strings.Replace(string(b), "web.example.com", "api.example.com", 1))
	forged := new(pairing.CSServerSecret)
	if err := forged.UnmarshalBinary(b); err != nil || forged.ID() != "api.example.com" {
		t.Fatal(err)
	}
	c = &mtls.Config{CSKey: f.alice, ServerIdentity: "api.example.com", Time: milClock(milNow)}
	milFail(t, c, &mtls.Config{CSServerKeys: []*pairing.CSServerSecret{forged}, PermitMode: pairing.PermitsOptional, Time: milClock(milNow)}, nil, nil, "server", ciphersuite.AlertAccessDenied, "does not verify")
	// Two keys for one identity is a configuration error.
	dup := &mtls.Config{CSServerKeys: []*pairing.CSServerSecret{api, api}, PermitMode: pairing.PermitsOptional, Time: milClock(milNow)}
	if r := milHandshakeTCP(t, c, dup, nil, nil); r.serverErr == nil || !strings.Contains(r.serverErr.Error(), "two CS server keys") {
		t.Fatal(r.serverErr)
	}
}

// Permits with injected clocks (docs/protocol.md §3.2): the window around midnight is
// symmetric, and a client holding today's and tomorrow's permits switches
// on its own clock.
func TestPermitWindow(t *testing.T) {
	f := milFixtureFor(t)
	midnight := time.Unix(int64(pairing.Day(milNow)+1)*86400, 0) // the next midnight
	today, tomorrow := pairing.Day(milNow), pairing.Day(milNow)+1
	pToday, pTomorrow := milPermit(t, f, milAlice, today), milPermit(t, f, milAlice, tomorrow)
	pYday := milPermit(t, f, milAlice, today-1)
	cases := []struct {
		name   string
		at     time.Duration // server (and client) clock relative to midnight
		permit *pairing.TimePermit
		mode   pairing.PermitMode
		ok     bool
	}{
		{"23:59:45 tomorrow's", -15 * time.Second, pTomorrow, pairing.PermitsRequired, true},
		{"23:59:29 tomorrow's", -31 * time.Second, pTomorrow, pairing.PermitsRequired, false},
		{"00:00:20 yesterday's", 20 * time.Second, pToday, pairing.PermitsRequired, true},
		{"00:00:31 yesterday's", 31 * time.Second, pToday, pairing.PermitsRequired, false},
		{"optional, with a permit", -time.Hour, pToday, pairing.PermitsOptional, true},
		{"optional, without", -time.Hour, nil, pairing.PermitsOptional, true},
		{"optional, with an old permit", -time.Hour, pYday, pairing.PermitsOptional, false},
		{"required, without", -time.Hour, nil, pairing.PermitsRequired, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clock := milClock(midnight.Add(tc.at))
			p := tc.permit
			c := &mtls.Config{CSKey: f.alice, Time: clock,
				GetCSPermit: func(uint64) (*pairing.TimePermit, error) { return p, nil }}
			s := &mtls.Config{CSServerKeys: []*pairing.CSServerSecret{f.secret}, PermitMode: tc.mode, Time: clock}
			r := milHandshakeTCP(t, c, s, nil, nil)
			if tc.ok != (r.clientErr == nil && r.serverErr == nil) {
				t.Fatalf("client %v, server %v", r.clientErr, r.serverErr)
			}
			if !tc.ok {
				milExpectAlert(t, "server", r.serverErr, ciphersuite.AlertAccessDenied, false)
			}
		})
	}
	// Today's and tomorrow's permits: every second around midnight, with
	// the client's clock up to 20 s off the server's either way.
	held := []*pairing.TimePermit{pToday, pTomorrow}
	for _, at := range []time.Duration{-25 * time.Second, -5 * time.Second, -time.Second, 0, time.Second, 5 * time.Second, 25 * time.Second} {
		for _, off := range []time.Duration{-20 * time.Second, 0, 20 * time.Second} {
			s := &mtls.Config{CSServerKeys: []*pairing.CSServerSecret{f.secret}, PermitMode: pairing.PermitsRequired, Time: milClock(midnight.Add(at))}
			c := &mtls.Config{CSKey: f.alice, CSPermits: held, Time: milClock(midnight.Add(at + off))}
			r := milHandshakeTCP(t, c, s, nil, nil)
			if r.clientErr != nil || r.serverErr != nil {
				t.Fatalf("server at %v, client %v off: client %v, server %v", at, off, r.clientErr, r.serverErr)
			}
			want := today
			if at+off >= 0 {
				want = tomorrow
			}
			if d := r.server.ConnectionState().PermitDay; d != want {
				t.Fatalf("server at %v, client %v off: permit day %d, want %d", at, off, d, want)
			}
		}
	}
	// A client with only yesterday's permit is told so, locally.
	c := &mtls.Config{CSKey: f.alice, CSPermits: []*pairing.TimePermit{pToday}, Time: milClock(midnight.Add(time.Hour))}
	err := mtls.Client(nopConn{}, c).Handshake()
	if err == nil || !strings.Contains(err.Error(), "no time permit for today") {
		t.Fatal(err)
	}
}

// nopConn is a connection nothing is read from or written to.
type nopConn struct{ net.Conn }

func (nopConn) Write(b []byte) (int, error)      { return 0, errors.New("nopConn") }
func (nopConn) Read(b []byte) (int, error)       { return 0, errors.New("nopConn") }
func (nopConn) Close() error                     { return nil }
func (nopConn) SetDeadline(time.Time) error      { return nil }
func (nopConn) SetWriteDeadline(time.Time) error { return nil }
func (nopConn) SetReadDeadline(time.Time) error  { return nil }
func (nopConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (nopConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }

// countingGate counts the pairing work it admits.
type countingGate struct{ n atomic.Int64 }

func (g *countingGate) Acquire(context.Context, mtls.Source) (func(bool), error) {
	g.n.Add(1)
	return func(bool) {}, nil
}

// Lockout (docs/protocol.md §3.4): 5 wrong PINs, then the right one is refused until the
// backoff has passed; a success resets the count.
func TestPINLockout(t *testing.T) {
	f := milFixtureFor(t)
	now := milNow
	clock := func() time.Time { return now }
	gate := &countingGate{}
	var locked []string
	lock := &mtls.Lockout{Clock: clock, OnLock: func(ev mtls.LockEvent) { locked = append(locked, ev.ID) }}
	server := &mtls.Config{CSServerKeys: []*pairing.CSServerSecret{f.secret}, PermitMode: pairing.PermitsOptional, Time: clock, CSLockout: lock, PairingGate: gate}
	try := func(pin uint32) milResult {
		c := &mtls.Config{CSToken: f.aliceToken, GetPIN: func() (uint32, error) { return pin, nil }, Time: clock}
		return milHandshakeTCP(t, c, server, nil, nil)
	}
	for i := 0; i < 5; i++ {
		if r := try(milBadPIN); r.serverErr == nil || !strings.Contains(r.serverErr.Error(), "does not verify") {
			t.Fatalf("attempt %d: %v", i, r.serverErr)
		}
	}
	if len(locked) != 1 || locked[0] != milAlice {
		t.Fatalf("locked %v", locked)
	}
	before := gate.n.Load()
	r := try(milPIN)
	milExpectAlert(t, "server", r.serverErr, ciphersuite.AlertAccessDenied, false)
	if !strings.Contains(r.serverErr.Error(), "locked out") || gate.n.Load() != before {
		t.Fatalf("%v (pairings %d → %d)", r.serverErr, before, gate.n.Load())
	}
	// Another identity is not affected.
	c := &mtls.Config{CSKey: f.bob, Time: clock}
	if r := milHandshakeTCP(t, c, server, nil, nil); r.serverErr != nil {
		t.Fatal(r.serverErr)
	}
	now = now.Add(61 * time.Second)
	if r := try(milPIN); r.serverErr != nil || r.clientErr != nil {
		t.Fatalf("after the backoff: %v %v", r.clientErr, r.serverErr)
	}
	// Success reset the count: 4 failures do not lock.
	for i := 0; i < 4; i++ {
		try(milBadPIN)
	}
	if r := try(milPIN); r.serverErr != nil {
		t.Fatalf("locked after 4 failures following a success: %v", r.serverErr)
	}
}

// A captured valid ClientHello replayed to the server is refused before
// any pairing.
func TestReplayedHelloRefused(t *testing.T) {
	f := milFixtureFor(t)
	gate := &countingGate{}
	server := &mtls.Config{CSServerKeys: []*pairing.CSServerSecret{f.secret}, PermitMode: pairing.PermitsOptional, Time: milClock(milNow), PairingGate: gate}
	l, err := mtls.Listen("tcp", "127.0.0.1:0", server)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	errs := make(chan error, 2)
	go func() {
		for i := 0; i < 2; i++ {
			c, err := l.Accept()
			if err != nil {
				return
			}
			errs <- c.(*mtls.Conn).Handshake()
			c.Close()
		}
	}()
	// Record what a genuine client sends first.
	var hello []byte
	rec := &recordingConn{}
	cfg := &mtls.Config{CSKey: f.alice, Time: milClock(milNow)}
	nc, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	rec.Conn = nc
	if err := mtls.Client(rec, cfg).Handshake(); err != nil {
		t.Fatal(err)
	}
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	hello = rec.first
	if gate.n.Load() != 1 {
		t.Fatalf("pairings %d", gate.n.Load())
	}
	// Replay it.
	nc2, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc2.Close()
	nc2.Write(hello)
	err = <-errs
	var ae *mtls.AlertError
	if !errors.As(err, &ae) || ae.Alert != ciphersuite.AlertAccessDenied || !strings.Contains(err.Error(), "replayed") {
		t.Fatalf("replay: %v", err)
	}
	if gate.n.Load() != 1 {
		t.Fatalf("the replay cost a pairing (%d)", gate.n.Load())
	}
}

// recordingConn keeps the first write (the ClientHello record).
type recordingConn struct {
	net.Conn
	first []byte
}

func (r *recordingConn) Write(b []byte) (int, error) {
	if r.first == nil {
		r.first = append([]byte(nil), b...)
	}
	return r.Conn.Write(b)
}

// An identity the policy denies costs no pairing.
func TestDeniedIdentityCostsNoPairing(t *testing.T) {
	f := milFixtureFor(t)
	gate := &countingGate{}
	server := &mtls.Config{CSServerKeys: []*pairing.CSServerSecret{f.secret}, PermitMode: pairing.PermitsOptional, Time: milClock(milNow), PairingGate: gate,
		VerifyPeerIdentity: func(id string) error { return errors.New("nobody") }}
	c := &mtls.Config{CSKey: f.alice, Time: milClock(milNow)}
	milFail(t, c, server, nil, nil, "server", ciphersuite.AlertAccessDenied, "nobody")
	if gate.n.Load() != 0 {
		t.Fatalf("%d pairings for a denied identity", gate.n.Load())
	}
}

// Identities with control characters are refused on the wire
// (illegal_parameter) and at issuance.
func TestControlCharacterIdentity(t *testing.T) {
	f := milFixtureFor(t)
	if _, err := f.shares[0].IssueCSClientKey("alice\r\nX-Identity: bob"); !errors.Is(err, pairing.ErrInvalidID) {
		t.Fatal(err)
	}
	c := &mtls.Config{CSKey: f.alice, ServerIdentity: "api\x00", Time: milClock(milNow)}
	if err := mtls.Client(nopConn{}, c).Handshake(); err == nil || !errors.Is(err, pairing.ErrInvalidID) {
		t.Fatal(err)
	}
}
