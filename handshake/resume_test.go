package handshake

import (
	"bytes"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/milagro-go/milagro/ciphersuite"
)

func testTicketKey(b byte, created time.Time) TicketKey {
	var s [32]byte
	for i := range s {
		s[i] = b
	}
	return NewTicketKey(s, created)
}

// ticketConfigs are PSK configurations with tickets on (keys, newest first).
func ticketConfigs(t *testing.T, keys ...TicketKey) (*ClientConfig, *ServerConfig) {
	t.Helper()
	requireReal(t)
	c, s := testConfigs(pskSuites(), "")
	c.RequestTicket = true
	s.Tickets = &ServerTickets{Keys: func() []TicketKey { return keys }}
	return c, s
}

func fullThenSession(t *testing.T, c *ClientConfig, s *ServerConfig) *ClientSession {
	t.Helper()
	r := runPair(t, c, s)
	checkSuccess(t, r)
	if r.cst.DidResume || r.sst.DidResume {
		t.Fatal("first handshake claims to resume")
	}
	if r.cst.Session == nil || len(r.cst.Session.Ticket) == 0 {
		t.Fatal("server issued no ticket")
	}
	if !bytes.Equal(r.cst.Session.MasterSecret, r.cst.MasterSecret) || r.cst.Session.LocalIdentity != testIdentity {
		t.Fatalf("session does not carry the handshake's state: %+v", r.cst.Session)
	}
	return r.cst.Session
}

func checkResumed(t *testing.T, r hsResult, sess *ClientSession) {
	t.Helper()
	if r.cerr != nil || r.serr != nil {
		t.Fatalf("resumption failed: client %v, server %v", r.cerr, r.serr)
	}
	if !r.cst.DidResume || !r.sst.DidResume {
		t.Fatalf("not resumed: client %v, server %v", r.cst.DidResume, r.sst.DidResume)
	}
	if r.cst.Suite.ID != sess.Suite || r.sst.Suite.ID != sess.Suite {
		t.Fatal("resumed with another suite")
	}
	if r.sst.PeerIdentity != testIdentity || r.cst.LocalIdentity != testIdentity {
		t.Fatalf("identities lost: server sees %q, client %q", r.sst.PeerIdentity, r.cst.LocalIdentity)
	}
	if !bytes.Equal(r.cst.ServerFinished, r.sst.ServerFinished) || !bytes.Equal(r.cst.ClientFinished, r.sst.ClientFinished) {
		t.Fatal("Finished disagree")
	}
	// Fresh keys from the same master secret and the new randoms.
	for i, p := range [][2]*memRL{{r.crl, r.srl}, {r.srl, r.crl}} {
		rec := p[0].writeCipher.Seal(nil, 1, 23, 0x0303, []byte("hi"))
		if pt, err := p[1].readCipher.Open(nil, 1, 23, 0x0303, rec); err != nil || string(pt) != "hi" {
			t.Fatalf("direction %d: resumed ciphers disagree: %v", i, err)
		}
		if p[0].readCCS != 1 || p[0].wroteCCS != 1 {
			t.Fatal("CCS counts")
		}
	}
}

func TestResumePSK(t *testing.T) {
	k := testTicketKey(1, time.Now())
	c, s := ticketConfigs(t, k)
	sess := fullThenSession(t, c, s)
	c.Session = sess
	r := runPair(t, c, s)
	checkResumed(t, r, sess)
	if r.cst.Session != nil {
		t.Fatal("a ticket under the newest key was reissued")
	}
	// A ticket under an older (still accepted) key is resumed and replaced
	// by one under the newest key.
	k2 := testTicketKey(2, time.Now())
	s.Tickets.Keys = func() []TicketKey { return []TicketKey{k2, k} }
	r = runPair(t, c, s)
	checkResumed(t, r, sess)
	if r.cst.Session == nil || !bytes.HasPrefix(r.cst.Session.Ticket, k2.name[:]) {
		t.Fatal("no fresh ticket under the newest key")
	}
	// Only the new key left: the new ticket resumes, the old does not.
	s.Tickets.Keys = func() []TicketKey { return []TicketKey{k2} }
	c.Session = r.cst.Session
	checkResumed(t, runPair(t, c, s), r.cst.Session)
	c.Session = sess
	r = runPair(t, c, s)
	checkSuccess(t, r)
	if r.sst.DidResume || r.cst.DidResume || r.cst.Session == nil {
		t.Fatal("a ticket under a dropped key was resumed (or no new ticket)")
	}
}

// TestResumeFallback: anything wrong with a ticket means a full handshake.
func TestResumeFallback(t *testing.T) {
	k := testTicketKey(1, time.Now())
	c, s := ticketConfigs(t, k)
	sess := fullThenSession(t, c, s)
	tamper := func(i int) *ClientSession {
		cp := *sess
		cp.Ticket = bytes.Clone(sess.Ticket)
		cp.Ticket[i%len(cp.Ticket)] ^= 1
		return &cp
	}
	cases := map[string]func(){
		"tampered name":  func() { c.Session = tamper(0) },
		"tampered nonce": func() { c.Session = tamper(20) },
		"tampered body":  func() { c.Session = tamper(len(sess.Ticket) - 1) },
		"truncated":      func() { cp := *sess; cp.Ticket = cp.Ticket[:30]; c.Session = &cp },
		"unknown key": func() {
			c.Session = sess
			s.Tickets.Keys = func() []TicketKey { return []TicketKey{testTicketKey(9, time.Now())} }
		},
		"expired": func() { c.Session = sess; s.KX.Time = func() time.Time { return time.Now().Add(25 * time.Hour) } },
		"short lifetime": func() {
			c.Session = sess
			s.Tickets.Lifetime = time.Second
			s.KX.Time = func() time.Time { return time.Now().Add(2 * time.Second) }
		},
		"identity denied": func() { c.Session = sess; s.KX.VerifyPeerIdentity = func(string) error { return errors.New("no") } },
		"suite disabled": func() {
			c.Session = sess
			s.Suites = nil
			for _, x := range pskSuites() {
				if x.ID != sess.Suite {
					s.Suites = append(s.Suites, x)
				}
			}
		},
	}
	for name, setup := range cases {
		t.Run(name, func(t *testing.T) {
			c, s = ticketConfigs(t, k)
			setup()
			refused := 0
			s.Tickets.OnRefused = func(string) { refused++ }
			r := runPair(t, c, s)
			if refused != 1 {
				t.Fatalf("server refused the ticket %d times, want 1", refused)
			}
			if name == "identity denied" {
				// The full handshake then applies the same policy.
				if r.serr == nil || r.sst != nil {
					t.Fatal("denied identity was admitted")
				}
				wantAlert(t, r.serr, ciphersuite.AlertUnknownPSKIdentity)
				return
			}
			checkSuccess(t, r)
			if r.cst.DidResume || r.sst.DidResume {
				t.Fatal("resumed")
			}
			if r.cst.Session == nil {
				t.Fatal("no new ticket after the fallback")
			}
		})
	}
}

// TestResumeEMSDropped: RFC 7627 §5.3 — a client offering an EMS session
// without EMS is refused, not resumed.
func TestResumeEMSDropped(t *testing.T) {
	k := testTicketKey(1, time.Now())
	c, s := ticketConfigs(t, k)
	c.Session = fullThenSession(t, c, s)
	s.InsecureAllowNoEMS, c.InsecureAllowNoEMS = true, true
	withClientHello(t, func(m *clientHelloMsg) { m.ems = false })
	r := runPair(t, c, s)
	wantAlert(t, r.serr, ciphersuite.AlertHandshakeFailure)
	if !strings.Contains(r.serr.Error(), "7627") {
		t.Fatalf("error %v", r.serr)
	}
}

// TestResumeServerMisbehaves: the client refuses a resumption with another
// suite than the session's.
func TestResumeServerMisbehaves(t *testing.T) {
	k := testTicketKey(1, time.Now())
	c, s := ticketConfigs(t, k)
	sess := fullThenSession(t, c, s)
	c.Session = sess
	var other uint16
	for _, x := range pskSuites() {
		if x.ID != sess.Suite {
			other = x.ID
			break
		}
	}
	withServerHello(t, func(m *serverHelloMsg) {
		if len(m.sessionID) > 0 {
			m.cipherSuite = other
		}
	})
	r := runPair(t, c, s)
	wantAlert(t, r.cerr, ciphersuite.AlertIllegalParameter)
}

// TestResumeNoTicketsOnServer: a server without tickets ignores the
// extension and the offered ticket.
func TestResumeNoTicketsOnServer(t *testing.T) {
	k := testTicketKey(1, time.Now())
	c, s := ticketConfigs(t, k)
	c.Session = fullThenSession(t, c, s)
	s.Tickets = nil
	r := runPair(t, c, s)
	checkSuccess(t, r)
	if r.cst.DidResume || r.cst.Session != nil {
		t.Fatal("resumed or got a ticket from a server without tickets")
	}
}

func TestTicketRoundTrip(t *testing.T) {
	k := testTicketKey(3, time.Now())
	st := &SessionState{Version: 0x0303, Suite: 0xD001, MasterSecret: bytes.Repeat([]byte{7}, 48), EMS: true,
		PeerIdentity: "alice", LocalIdentity: "srv", PermitDay: 20000, CreatedAt: 1700000000}
	ticket, err := SealTicket(rand.Reader, k, st)
	if err != nil {
		t.Fatal(err)
	}
	got, idx, ok := OpenTicket([]TicketKey{testTicketKey(4, time.Now()), k}, ticket)
	if !ok || idx != 1 {
		t.Fatalf("open: %v %d", ok, idx)
	}
	if got.PeerIdentity != "alice" || got.LocalIdentity != "srv" || got.PermitDay != 20000 || got.CreatedAt != 1700000000 ||
		!got.EMS || got.Suite != 0xD001 || !bytes.Equal(got.MasterSecret, st.MasterSecret) {
		t.Fatalf("round trip: %+v", got)
	}
	if _, _, ok := OpenTicket([]TicketKey{testTicketKey(4, time.Now())}, ticket); ok {
		t.Fatal("opened under the wrong key")
	}
}

// TestSessionStatePostQuantum: the ticket state keeps whether its session
// was post-quantum hybrid, beside EMS in the flags byte, and refuses flag
// bits it does not know.
func TestSessionStatePostQuantum(t *testing.T) {
	for _, pq := range []bool{false, true} {
		st := &SessionState{Version: 0x0303, Suite: 0xFF01, MasterSecret: make([]byte, 48), EMS: true, PostQuantum: pq}
		b, err := st.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseSessionState(b)
		if err != nil || got.PostQuantum != pq || !got.EMS {
			t.Fatalf("pq %v: %+v, %v", pq, got, err)
		}
		b[1+2+2+1+48] |= 4 // an unknown flag
		if _, err := ParseSessionState(b); err == nil {
			t.Fatal("unknown flag bit accepted")
		}
	}
}
