package pairing

import (
	"bytes"
	"crypto/rand"
	"errors"
	mrand "math/rand/v2"
	"testing"
	"time"
)

// seeded returns a deterministic random source.
func seeded(seed string) *mrand.ChaCha8 {
	var s [32]byte
	copy(s[:], seed)
	return mrand.NewChaCha8(s)
}

type fixture struct {
	shares       []*MasterShare
	server       *CSServer
	alice        *CSClientKey // combined
	aliceShares  []*CSClientKey
	permit       *TimePermit // alice, day
	nodeA, nodeB *P2PKey
	nodeAShares  []*P2PKey
	serverShares []*CSServerSecret
	day          uint64
	now          uint64
}

const (
	fxDay = 20413
	fxNow = 1763769600 + 3600
)

func newFixture(t testing.TB, rnd *mrand.ChaCha8) *fixture {
	t.Helper()
	f := &fixture{day: fxDay, now: fxNow}
	var alice, aliceP []*CSClientKey
	var permits []*TimePermit
	var nA, nB []*P2PKey
	for i := 0; i < 3; i++ {
		m, err := NewMasterShare(rnd)
		if err != nil {
			t.Fatal(err)
		}
		f.shares = append(f.shares, m)
		k, err := m.IssueCSClientKey("alice@example.com")
		if err != nil {
			t.Fatal(err)
		}
		alice = append(alice, k)
		p, err := m.IssueTimePermit("alice@example.com", fxDay)
		if err != nil {
			t.Fatal(err)
		}
		permits = append(permits, p)
		f.serverShares = append(f.serverShares, m.IssueCSServerSecret())
		a, err := m.IssueP2PKey("node-a")
		if err != nil {
			t.Fatal(err)
		}
		b, err := m.IssueP2PKey("node-b")
		if err != nil {
			t.Fatal(err)
		}
		nA, nB = append(nA, a), append(nB, b)
	}
	_ = aliceP
	var err error
	f.aliceShares, f.nodeAShares = alice, nA
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	f.alice, err = CombineCSClientKeys(alice...)
	must(err)
	f.permit, err = CombineTimePermits(permits...)
	must(err)
	ks, err := CombineCSServerSecrets(f.serverShares...)
	must(err)
	f.server, err = NewCSServer(ks)
	must(err)
	f.nodeA, err = CombineP2PKeys(nA...)
	must(err)
	f.nodeB, err = CombineP2PKeys(nB...)
	must(err)
	return f
}

// csRun runs one CS handshake; it returns the first error and whether both
// pre-master secrets agree.
func csRun(t testing.TB, c *CSClient, s *CSServer, now uint64, tamper func(h *CSHello, w, r *[]byte)) (bool, error) {
	t.Helper()
	hello, chs, err := c.Hello(rand.Reader, now, s.ID())
	if err != nil {
		t.Fatal(err)
	}
	var nop []byte
	if tamper != nil {
		tamper(hello, &nop, &nop)
	}
	shs, err := s.Accept(rand.Reader, hello)
	if err != nil {
		return false, err
	}
	w := shs.W()
	if tamper != nil {
		tamper(&CSHello{}, &w, &nop)
	}
	r, cpms, err := chs.Finish(rand.Reader, w)
	if err != nil {
		return false, err
	}
	if tamper != nil {
		tamper(&CSHello{}, &nop, &r)
	}
	spms, err := shs.Finish(r)
	if err != nil {
		return false, err
	}
	if len(cpms) != PMSSize || len(spms) != PMSSize {
		t.Fatalf("pms sizes %d %d", len(cpms), len(spms))
	}
	return bytes.Equal(cpms, spms), nil
}

func TestCSRoundTrips(t *testing.T) {
	f := newFixture(t, seeded("roundtrip"))
	token, err := f.alice.ExtractPIN(1234)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		permit *TimePermit
		pin    bool
	}{{"plain", nil, false}, {"permit", f.permit, false}, {"pin", nil, true}, {"permit+pin", f.permit, true}} {
		t.Run(tc.name, func(t *testing.T) {
			var c *CSClient
			var err error
			if tc.pin {
				c, err = NewCSClientWithPIN(token, 1234, tc.permit)
			} else {
				c, err = NewCSClient(f.alice, tc.permit)
			}
			if err != nil {
				t.Fatal(err)
			}
			ok, err := csRun(t, c, f.server, f.now, nil)
			if err != nil || !ok {
				t.Fatalf("handshake failed: ok=%v err=%v", ok, err)
			}
			if tc.pin {
				bad, err := NewCSClientWithPIN(token, 1235, tc.permit)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := csRun(t, bad, f.server, f.now, nil); !errors.Is(err, ErrAuthFailed) {
					t.Fatalf("wrong PIN: got %v, want ErrAuthFailed", err)
				}
			}
		})
	}
}

func TestCSFailures(t *testing.T) {
	f := newFixture(t, seeded("failures"))
	denied := func(name string, c *CSClient, s *CSServer) {
		t.Helper()
		if _, err := csRun(t, c, s, f.now, nil); !errors.Is(err, ErrAuthFailed) {
			t.Errorf("%s: got %v, want ErrAuthFailed", name, err)
		}
	}
	// A client key combined from 2 of the 3 shares.
	two, err := CombineCSClientKeys(f.aliceShares[:2]...)
	if err != nil {
		t.Fatal(err)
	}
	c2, _ := NewCSClient(two, nil)
	denied("2 of 3 client shares", c2, f.server)
	// A server secret combined from 2 of the 3 shares.
	ks2, _ := CombineCSServerSecrets(f.serverShares[:2]...)
	s2, _ := NewCSServer(ks2)
	good, _ := NewCSClient(f.alice, nil)
	denied("2 of 3 server shares", good, s2)
	// A key for another identity presented as alice.
	bob, _ := CombineCSClientKeys(issueAll(t, f, "bob@example.com")...)
	forged := &CSClientKey{origin: bob.origin, id: "alice@example.com", k: bob.k}
	cf, _ := NewCSClient(forged, nil)
	denied("key of another identity", cf, f.server)
	// A permit for another day presented for f.day.
	var other []*TimePermit
	for _, m := range f.shares {
		p, _ := m.IssueTimePermit("alice@example.com", f.day+1)
		other = append(other, p)
	}
	op, _ := CombineTimePermits(other...)
	relabelled := &TimePermit{origin: op.origin, id: op.id, day: f.day, e: op.e, state: op.state}
	cp, _ := NewCSClient(f.alice, relabelled)
	denied("permit of another day", cp, f.server)
	// A genuine permit but the client claims another day.
	cg, _ := NewCSClient(f.alice, f.permit)
	if _, err := csRun(t, cg, f.server, f.now, func(h *CSHello, _, _ *[]byte) {
		if h.ID != "" {
			h.Day++
		}
	}); !errors.Is(err, ErrAuthFailed) {
		t.Errorf("claimed other day: %v", err)
	}
	// Mixed shares refuse to combine.
	if _, err := CombineCSClientKeys(f.aliceShares[0], bob); !errors.Is(err, ErrMismatch) {
		t.Errorf("mixed identities: %v", err)
	}
	if _, err := CombineTimePermits(f.permit, op); !errors.Is(err, ErrMismatch) {
		t.Errorf("mixed days: %v", err)
	}
	if _, err := CombineP2PKeys(f.nodeA, f.nodeB); !errors.Is(err, ErrMismatch) {
		t.Errorf("mixed P2P identities: %v", err)
	}
	if _, err := CombineCSClientKeys(); !errors.Is(err, ErrMismatch) {
		t.Errorf("no shares: %v", err)
	}
	// A permit of another identity.
	if _, err := NewCSClient(bob, f.permit); !errors.Is(err, ErrMismatch) {
		t.Errorf("permit of another identity: %v", err)
	}
	// PIN range.
	if _, err := f.alice.ExtractPIN(MaxPIN + 1); !errors.Is(err, ErrInvalidPIN) {
		t.Errorf("PIN out of range: %v", err)
	}
	if _, err := f.alice.ExtractPIN(MaxPIN); err != nil {
		t.Errorf("max PIN: %v", err)
	}
}

func issueAll(t testing.TB, f *fixture, id string) []*CSClientKey {
	var out []*CSClientKey
	for _, m := range f.shares {
		k, err := m.IssueCSClientKey(id)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, k)
	}
	return out
}

// otherG1 returns a valid G1 encoding different from b.
func otherG1() []byte { return EncodeG1(H1(DomainCS, []byte("some other point"))) }

func flip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 0x01
	return c
}

func TestCSTamper(t *testing.T) {
	f := newFixture(t, seeded("tamper"))
	c, _ := NewCSClient(f.alice, f.permit)
	type tamper func(h *CSHello, w, r *[]byte)
	cases := map[string]tamper{}
	for _, pos := range []int{0, 1, 23, 47} {
		pos := pos
		cases["U byte "+itoa(pos)] = func(h *CSHello, _, _ *[]byte) {
			if h.U != nil {
				h.U = flip(h.U, pos)
			}
		}
		cases["V byte "+itoa(pos)] = func(h *CSHello, _, _ *[]byte) {
			if h.V != nil {
				h.V = flip(h.V, pos)
			}
		}
		cases["W byte "+itoa(pos)] = func(_ *CSHello, w, _ *[]byte) {
			if len(*w) > 0 {
				*w = flip(*w, pos)
			}
		}
		cases["R byte "+itoa(pos)] = func(_ *CSHello, _, r *[]byte) {
			if len(*r) > 0 {
				*r = flip(*r, pos)
			}
		}
	}
	cases["U other point"] = func(h *CSHello, _, _ *[]byte) {
		if h.U != nil {
			h.U = otherG1()
		}
	}
	cases["V other point"] = func(h *CSHello, _, _ *[]byte) {
		if h.V != nil {
			h.V = otherG1()
		}
	}
	cases["W other point"] = func(_ *CSHello, w, _ *[]byte) {
		if len(*w) > 0 {
			*w = otherG1()
		}
	}
	cases["R other point"] = func(_ *CSHello, _, r *[]byte) {
		if len(*r) > 0 {
			*r = otherG1()
		}
	}
	cases["id byte"] = func(h *CSHello, _, _ *[]byte) {
		if h.ID != "" {
			h.ID = "alice@example.con"
		}
	}
	cases["time"] = func(h *CSHello, _, _ *[]byte) {
		if h.ID != "" {
			h.Time++
		}
	}
	for name, tc := range cases {
		ok, err := csRun(t, c, f.server, f.now, tc)
		if ok && err == nil {
			t.Errorf("%s: handshake succeeded", name)
		}
	}
	if ok, err := csRun(t, c, f.server, f.now, nil); !ok || err != nil {
		t.Fatalf("untampered: %v %v", ok, err)
	}
}

func itoa(i int) string { return string(rune('0'+i/10)) + string(rune('0'+i%10)) }

// p2pRun runs one P2P handshake with server key s and client key c, the
// client expecting expect.
func p2pRun(t testing.TB, s, c *P2PKey, expect string, tamper func(id *string, x, w, y *[]byte)) (bool, error) {
	t.Helper()
	ps, err := NewP2PServer(s)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := NewP2PClient(c)
	if err != nil {
		t.Fatal(err)
	}
	hs, err := ps.Start(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	idS, xS := hs.ID(), hs.X()
	var nop []byte
	nid := ""
	if tamper != nil {
		tamper(&idS, &xS, &nop, &nop)
	}
	wC, yC, cpms, err := pc.Respond(rand.Reader, expect, idS, xS)
	if err != nil {
		return false, err
	}
	idC := pc.ID()
	if tamper != nil {
		tamper(&nid, &nop, &wC, &yC)
		if nid != "" {
			idC = nid
		}
	}
	spms, err := hs.Finish(idC, wC, yC)
	if err != nil {
		return false, err
	}
	return bytes.Equal(cpms, spms), nil
}

func TestP2PRoundTrips(t *testing.T) {
	f := newFixture(t, seeded("p2p"))
	if ok, err := p2pRun(t, f.nodeA, f.nodeB, "node-a", nil); !ok || err != nil {
		t.Fatalf("a serves b: %v %v", ok, err)
	}
	if ok, err := p2pRun(t, f.nodeB, f.nodeA, "node-b", nil); !ok || err != nil {
		t.Fatalf("b serves a: %v %v", ok, err)
	}
	if _, err := p2pRun(t, f.nodeA, f.nodeB, "node-c", nil); !errors.Is(err, ErrPeerIdentity) {
		t.Fatalf("unexpected server id: %v", err)
	}
	// Key combined from 2 of 3 shares.
	two, _ := CombineP2PKeys(f.nodeAShares[:2]...)
	if ok, _ := p2pRun(t, two, f.nodeB, "node-a", nil); ok {
		t.Error("2 of 3 shares: agreed")
	}
	// node-b's key presented as node-a (server and client side).
	fake := &P2PKey{origin: f.nodeB.origin, id: "node-a", k1: f.nodeB.k1, k2: f.nodeB.k2}
	if ok, _ := p2pRun(t, fake, f.nodeB, "node-a", nil); ok {
		t.Error("server with another identity's key: agreed")
	}
	fakeC := &P2PKey{origin: f.nodeB.origin, id: "node-c", k1: f.nodeB.k1, k2: f.nodeB.k2}
	if ok, _ := p2pRun(t, f.nodeA, fakeC, "node-a", nil); ok {
		t.Error("client with another identity's key: agreed")
	}
}

func TestP2PTamper(t *testing.T) {
	f := newFixture(t, seeded("p2p-tamper"))
	cases := map[string]func(id *string, x, w, y *[]byte){
		"X_S byte": func(_ *string, x, _, _ *[]byte) {
			if len(*x) > 0 {
				*x = flip(*x, 47)
			}
		},
		"X_S other": func(_ *string, x, _, _ *[]byte) {
			if len(*x) > 0 {
				*x = otherG1()
			}
		},
		"W_C byte": func(_ *string, _, w, _ *[]byte) {
			if len(*w) > 0 {
				*w = flip(*w, 47)
			}
		},
		"W_C other": func(_ *string, _, w, _ *[]byte) {
			if len(*w) > 0 {
				*w = otherG1()
			}
		},
		"Y_C byte": func(_ *string, _, _, y *[]byte) {
			if len(*y) > 0 {
				*y = flip(*y, 95)
			}
		},
		"Y_C other": func(_ *string, _, _, y *[]byte) {
			if len(*y) > 0 {
				*y = EncodeG2(H2(DomainP2P, []byte("x")))
			}
		},
		"id_C": func(id *string, x, _, _ *[]byte) {
			if len(*x) == 0 {
				*id = "node-c"
			}
		},
	}
	for name, tc := range cases {
		if ok, err := p2pRun(t, f.nodeA, f.nodeB, "node-a", tc); ok && err == nil {
			t.Errorf("%s: agreed", name)
		}
	}
	// id_S tampered: the client refuses unless it expects the forged id, and
	// then the keys disagree.
	if ok, err := p2pRun(t, f.nodeA, f.nodeB, "node-c", func(id *string, x, _, _ *[]byte) {
		if len(*x) > 0 {
			*id = "node-c"
		}
	}); ok && err == nil {
		t.Error("id_S: agreed")
	}
}

func TestPolicy(t *testing.T) {
	mid := time.Date(2025, 11, 22, 0, 0, 0, 0, time.UTC)
	today := Day(mid)
	if today != uint64(mid.Unix()/86400) {
		t.Fatal(today)
	}
	// Spec §3: d ∈ {day(now−skew), day(now), day(now+skew)} when required.
	R, O := PermitsRequired, PermitsOptional
	for _, tc := range []struct {
		now  time.Time
		d    uint64
		mode PermitMode
		ok   bool
	}{
		{mid.Add(time.Hour), today, R, true},
		{mid.Add(time.Hour), today - 1, R, false},
		{mid.Add(10 * time.Second), today - 1, R, true},
		{mid.Add(20 * time.Second), today - 1, R, true},  // 00:00:20 yesterday's
		{mid.Add(29 * time.Second), today - 1, R, true},  // day(now−skew) still yesterday
		{mid.Add(30 * time.Second), today - 1, R, false}, // day(now−skew) is today
		{mid.Add(31 * time.Second), today - 1, R, false}, // 00:00:31 yesterday's refused
		{mid.Add(-15 * time.Second), today, R, true},     // 23:59:45 tomorrow's
		{mid.Add(-30 * time.Second), today, R, true},     // the edge
		{mid.Add(-31 * time.Second), today, R, false},    // 23:59:29 tomorrow's refused
		{mid.Add(-15 * time.Second), today - 1, R, true}, // 23:59:45 today's
		{mid.Add(time.Hour), today + 1, R, false},
		{mid.Add(time.Hour), today - 2, R, false},
		{mid.Add(time.Hour), 0, R, false},
		{mid.Add(time.Hour), today - 1, O, false},
		{mid.Add(time.Hour), 0, O, true},
		{mid.Add(time.Hour), today, O, true},
		{mid.Add(time.Hour), today + 1, O, false},
		{mid.Add(-15 * time.Second), today, O, true},
	} {
		err := CheckPermitDay(tc.now, tc.d, DefaultClockSkew, tc.mode)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrPermitDay)) {
			t.Errorf("%v d=%d mode=%v: %v", tc.now, tc.d, tc.mode, err)
		}
	}
	for _, s := range []string{"optional", "required"} {
		m, err := ParsePermitMode(s)
		if err != nil || m.String() != s {
			t.Errorf("%s: %v %v", s, m, err)
		}
	}
	// Revision 3: "off" means optional, and the zero value is required.
	if m, err := ParsePermitMode("off"); err != nil || m != PermitsOptional {
		t.Errorf("off: %v %v", m, err)
	}
	var zero PermitMode
	if zero != PermitsRequired {
		t.Error("zero PermitMode is not PermitsRequired")
	}
	if _, err := ParsePermitMode("yes"); err == nil {
		t.Error("ParsePermitMode(yes)")
	}
	now := time.Unix(1763769600, 0)
	for _, tc := range []struct {
		t  uint64
		ok bool
	}{{1763769600, true}, {1763769630, true}, {1763769570, true}, {1763769631, false}, {1763769569, false}, {0, false}, {1 << 63, false}} {
		if err := CheckTime(now, tc.t, DefaultClockSkew); (err == nil) != tc.ok {
			t.Errorf("t=%d: %v", tc.t, err)
		}
	}
}

type failReader struct{}

func (failReader) Read([]byte) (int, error) { return 0, errors.New("no entropy") }

func TestRandomFailure(t *testing.T) {
	if _, err := NewMasterShare(failReader{}); !errors.Is(err, ErrRandom) {
		t.Fatal(err)
	}
	f := newFixture(t, seeded("rand"))
	c, _ := NewCSClient(f.alice, nil)
	if _, _, err := c.Hello(failReader{}, f.now, ""); !errors.Is(err, ErrRandom) {
		t.Fatal(err)
	}
}
