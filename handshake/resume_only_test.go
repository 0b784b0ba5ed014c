package handshake

import (
	"crypto/rand"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/milagro-go/milagro/ciphersuite"
	"github.com/milagro-go/milagro/pairing"
)

// csResumeConfigs returns a Milagro CS client (alice, asking for "srv") and
// server with tickets under key k, the client asking for tickets.
func csResumeConfigs(t *testing.T, k TicketKey) (*ClientConfig, *ServerConfig) {
	t.Helper()
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
	suites := ciphersuite.ByKX(ciphersuite.KXMilagroCS)
	ckx := &ciphersuite.ClientConfig{Rand: rand.Reader, Time: time.Now,
		CS: &ciphersuite.CSClient{Client: csClient, ServerID: "srv"}}
	skx := &ciphersuite.ServerConfig{Rand: rand.Reader, Time: time.Now,
		CS: &ciphersuite.CSServer{GetServer: func(id string) *pairing.CSServer {
			if id == csServer.ID() {
				return csServer
			}
			return nil
		}, Permits: pairing.PermitsOptional}}
	c := &ClientConfig{Rand: rand.Reader, Suites: suites, KX: ckx, RequestTicket: true}
	s := &ServerConfig{Rand: rand.Reader, Suites: suites, KX: skx,
		Tickets: &ServerTickets{Keys: func() []TicketKey { return []TicketKey{k} }}}
	return c, s
}

// countClientKX counts the client key exchanges created (where the CS
// client's scalar multiplications and the ML-KEM key generation happen).
func countClientKX(t *testing.T) *atomic.Int64 {
	n := new(atomic.Int64)
	old := newClientKX
	newClientKX = func(c *ciphersuite.ClientConfig, offered []*ciphersuite.Suite) (ciphersuite.ClientKX, error) {
		n.Add(1)
		return old(c, offered)
	}
	t.Cleanup(func() { newClientKX = old })
	return n
}

// TestResumptionOnlyHello: with ResumptionOnly and a CS session, the
// ClientHello carries the session's suite, its ticket and
// milagro_cs_resume, and no key exchange (no milagro_cs, no milagro_pq);
// the server resumes it, and neither side creates a key exchange.
func TestResumptionOnlyHello(t *testing.T) {
	c, s := csResumeConfigs(t, testTicketKey(1, time.Now()))
	r := runPair(t, c, s)
	if r.cerr != nil || r.serr != nil || r.cst.Session == nil || !r.cst.PostQuantum {
		t.Fatalf("full handshake: %v %v (hybrid %v)", r.cerr, r.serr, r.cst != nil && r.cst.PostQuantum)
	}
	sess := r.cst.Session
	c.Session, c.ResumptionOnly = sess, true
	var hello *clientHelloMsg
	withClientHello(t, func(m *clientHelloMsg) { hello = m })
	ckx, skx := countClientKX(t), countServerKX(t)
	r = runPair(t, c, s)
	if r.cerr != nil || r.serr != nil || !r.cst.DidResume || !r.sst.DidResume {
		t.Fatalf("resumption-only hello not resumed: %v %v", r.cerr, r.serr)
	}
	if ckx.Load() != 0 || skx.Load() != 0 {
		t.Fatalf("key exchanges created: client %d, server %d", ckx.Load(), skx.Load())
	}
	if !r.cst.PostQuantum || !r.sst.PostQuantum || r.sst.PeerIdentity != "alice" || r.cst.PeerIdentity != "srv" {
		t.Fatalf("resumed state: pq %v/%v, identities %q/%q", r.cst.PostQuantum, r.sst.PostQuantum, r.sst.PeerIdentity, r.cst.PeerIdentity)
	}
	if len(hello.cipherSuites) != 1 || hello.cipherSuites[0] != sess.Suite {
		t.Fatalf("offered suites %x, want only the session's %#04x", hello.cipherSuites, sess.Suite)
	}
	exts := map[uint16][]byte{}
	for _, e := range hello.extra {
		exts[e.Type] = e.Data
	}
	if _, ok := exts[ciphersuite.ExtMilagroCS]; ok {
		t.Fatal("resumption-only hello carries milagro_cs")
	}
	if _, ok := exts[ciphersuite.ExtMilagroPQ]; ok {
		t.Fatal("resumption-only hello carries milagro_pq")
	}
	if id, err := ciphersuite.ParseCSResumeHello(exts[ciphersuite.ExtMilagroCSResume]); err != nil || id != "srv" {
		t.Fatalf("milagro_cs_resume: %q, %v", id, err)
	}

	// Without ResumptionOnly (a caller's own connection) the full offer
	// goes with the ticket.
	c.ResumptionOnly = false
	r = runPair(t, c, s)
	if r.cerr != nil || !r.cst.DidResume || ckx.Load() != 1 {
		t.Fatalf("full offer with ticket: %v, resumed %v, client kx %d", r.cerr, r.cst != nil && r.cst.DidResume, ckx.Load())
	}
	if !hasExt(hello, ciphersuite.ExtMilagroCS) || !hasExt(hello, ciphersuite.ExtMilagroPQ) || hasExt(hello, ciphersuite.ExtMilagroCSResume) {
		t.Fatal("the full offer lacks milagro_cs or milagro_pq, or carries milagro_cs_resume")
	}
}

// hasExt reports whether a ClientHello the client built carries extension typ
// (a session_ticket only when non-empty).
func hasExt(m *clientHelloMsg, typ uint16) bool {
	for _, e := range m.extra {
		if e.Type == typ && (typ != extSessionTicket || len(e.Data) > 0) {
			return true
		}
	}
	return false
}

// TestResumptionOnlyRefused: a server that does not resume a
// resumption-only hello (ticket key rotated, session expired, server
// restarted with new keys, tickets off, policy) answers handshake_failure
// before any ServerHello, with an error matching ErrResumptionRefused,
// and spends no pairing.
func TestResumptionOnlyRefused(t *testing.T) {
	k := testTicketKey(1, time.Now())
	c, s := csResumeConfigs(t, k)
	r := runPair(t, c, s)
	if r.cerr != nil || r.serr != nil || r.cst.Session == nil {
		t.Fatalf("full handshake: %v %v", r.cerr, r.serr)
	}
	c.Session, c.ResumptionOnly = r.cst.Session, true
	cases := map[string]func(s *ServerConfig){
		"ticket key rotated": func(s *ServerConfig) {
			s.Tickets = &ServerTickets{Keys: func() []TicketKey { return []TicketKey{testTicketKey(2, time.Now())} }}
		},
		"expired": func(s *ServerConfig) {
			kx := *s.KX
			kx.Time = func() time.Time { return time.Now().Add(DefaultTicketLifetime + time.Hour) }
			s.KX = &kx
		},
		"tickets off": func(s *ServerConfig) { s.Tickets = nil },
		"identity denied": func(s *ServerConfig) {
			kx := *s.KX
			kx.VerifyPeerIdentity = func(string) error { return errors.New("revoked") }
			s.KX = &kx
		},
	}
	for name, mod := range cases {
		t.Run(name, func(t *testing.T) {
			sc := *s
			mod(&sc)
			skx := countServerKX(t)
			r := runPair(t, c, &sc)
			if !errors.Is(r.serr, ErrResumptionRefused) {
				t.Fatalf("server error %v, want a refused resumption", r.serr)
			}
			wantAlert(t, r.serr, ciphersuite.AlertHandshakeFailure)
			if len(r.srl.sent) != 0 {
				t.Fatalf("server wrote %d handshake messages before refusing", len(r.srl.sent))
			}
			if skx.Load() != 0 {
				t.Fatal("server created a key exchange for a resumption-only hello")
			}
			if r.cerr == nil || errors.Is(r.cerr, ErrResumptionRefused) {
				// Over this pipe no alert reaches the client: only a
				// received handshake_failure is a refusal.
				t.Fatalf("client error %v", r.cerr)
			}
		})
	}
}

// TestResumptionOnlyMalformed: the server's checks of milagro_cs_resume.
func TestResumptionOnlyMalformed(t *testing.T) {
	k := testTicketKey(1, time.Now())
	c, s := csResumeConfigs(t, k)
	r := runPair(t, c, s)
	if r.cerr != nil || r.serr != nil || r.cst.Session == nil {
		t.Fatalf("full handshake: %v %v", r.cerr, r.serr)
	}
	c.Session, c.ResumptionOnly = r.cst.Session, true
	setExt := func(m *clientHelloMsg, typ uint16, data []byte) {
		for i := range m.extra {
			if m.extra[i].Type == typ {
				m.extra[i].Data = data
				return
			}
		}
		m.extra = append(m.extra, ciphersuite.Extension{Type: typ, Data: data})
	}
	for _, tc := range []struct {
		name string
		edit func(*clientHelloMsg)
		want ciphersuite.Alert
	}{
		{"truncated", func(m *clientHelloMsg) { setExt(m, ciphersuite.ExtMilagroCSResume, []byte{0, 9, 's'}) }, ciphersuite.AlertDecodeError},
		{"trailing", func(m *clientHelloMsg) { setExt(m, ciphersuite.ExtMilagroCSResume, []byte{0, 1, 's', 0}) }, ciphersuite.AlertDecodeError},
		{"control character", func(m *clientHelloMsg) { setExt(m, ciphersuite.ExtMilagroCSResume, []byte{0, 2, 's', 7}) }, ciphersuite.AlertIllegalParameter},
		{"with milagro_cs", func(m *clientHelloMsg) { setExt(m, ciphersuite.ExtMilagroCS, []byte{0}) }, ciphersuite.AlertIllegalParameter},
		{"empty ticket", func(m *clientHelloMsg) { setExt(m, extSessionTicket, []byte{}) }, ciphersuite.AlertIllegalParameter},
		// Another id_S than the session's: not resumed, refused cleanly.
		{"other server identity", func(m *clientHelloMsg) {
			d, _ := ciphersuite.MarshalCSResumeHello("other")
			setExt(m, ciphersuite.ExtMilagroCSResume, d)
		}, ciphersuite.AlertHandshakeFailure},
	} {
		t.Run(tc.name, func(t *testing.T) {
			withClientHello(t, tc.edit)
			r := runPair(t, c, s)
			if r.sst != nil {
				t.Fatal("server completed the handshake")
			}
			wantAlert(t, r.serr, tc.want)
			if errors.Is(r.serr, ErrResumptionRefused) != (tc.want == ciphersuite.AlertHandshakeFailure) {
				t.Fatalf("refusal marking wrong: %v", r.serr)
			}
		})
	}
}

// TestResumptionOnlyNotForOtherSessions: only a CS session that may be
// offered makes a resumption-only hello; a PSK session, or a classic
// session at a client that requires the hybrid, goes with the full offer
// (and the latter without its ticket).
func TestResumptionOnlyNotForOtherSessions(t *testing.T) {
	k := testTicketKey(1, time.Now())
	c, s := ticketConfigs(t, k)
	c.Session, c.ResumptionOnly = fullThenSession(t, c, s), true
	var hello *clientHelloMsg
	withClientHello(t, func(m *clientHelloMsg) { hello = m })
	checkResumed(t, runPair(t, c, s), c.Session)
	if hasExt(hello, ciphersuite.ExtMilagroCSResume) || !hasExt(hello, extSessionTicket) {
		t.Fatal("PSK resumption sent milagro_cs_resume, or no ticket")
	}

	cc, cs := csResumeConfigs(t, k)
	cs.KX.PQ = ciphersuite.PQOff
	r := runPair(t, cc, cs)
	if r.cerr != nil || r.cst.Session == nil || r.cst.PostQuantum {
		t.Fatalf("classic full handshake: %v", r.cerr)
	}
	cc.Session, cc.ResumptionOnly = r.cst.Session, true
	kx := *cc.KX
	kx.PQ = ciphersuite.PQRequire
	cc.KX = &kx
	cs.KX.PQ = ciphersuite.PQRequire
	r = runPair(t, cc, cs)
	if r.cerr != nil || r.serr != nil || r.cst.DidResume || !r.cst.PostQuantum {
		t.Fatalf("require client with a classic session: %v %v, resumed %v", r.cerr, r.serr, r.cst != nil && r.cst.DidResume)
	}
	if hasExt(hello, extSessionTicket) || hasExt(hello, ciphersuite.ExtMilagroCSResume) || !hasExt(hello, ciphersuite.ExtMilagroCS) {
		t.Fatal("a requiring client offered a classic session, or not the full offer")
	}
}
