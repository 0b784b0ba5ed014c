package pairing

import (
	"errors"
	"strings"
	"testing"

	"github.com/cloudflare/circl/ecc/bls12381"
)

// An offline PIN-guessing attack on shared master secrets: a P2P key holder M tests
// PIN guesses against a stolen token offline with
// e(token + pin·A, B_M) = e(A, K2_M). With P2P keys from their own master
// secret p, no guess matches. The control (a P2P key made the revision-1
// way, from s) shows the test finds the PIN when the keys share s.
func TestOfflinePINAttackWithP2PKey(t *testing.T) {
	f := newFixture(t, seeded("pin-attack"))
	const pin = 37
	tok, err := f.alice.ExtractPIN(pin)
	if err != nil {
		t.Fatal(err)
	}
	a := H1(DomainCS, []byte(f.alice.id))
	bM := H2(DomainP2P, []byte("mallory"))
	var mallory []*P2PKey
	rev1 := new(bls12381.G2)
	rev1.SetIdentity()
	for _, m := range f.shares {
		k, err := m.IssueP2PKey("mallory")
		if err != nil {
			t.Fatal(err)
		}
		mallory = append(mallory, k)
		var k2 bls12381.G2
		k2.ScalarMult(&m.s, bM) // revision 1: s_i·H2_P2P(id)
		rev1.Add(rev1, &k2)
	}
	key, err := CombineP2PKeys(mallory...)
	if err != nil {
		t.Fatal(err)
	}
	attack := func(k2 *bls12381.G2) (uint32, bool) {
		rhs := bls12381.Pair(a, k2)
		for g := uint32(1); g <= 60; g++ {
			var s bls12381.Scalar
			s.SetUint64(uint64(g))
			var guess bls12381.G1
			guess.ScalarMult(&s, a)
			guess.Add(&guess, &tok.t)
			if bls12381.Pair(&guess, bM).IsEqual(rhs) {
				return g, true
			}
		}
		return 0, false
	}
	if g, found := attack(rev1); !found || g != pin {
		t.Fatalf("control: the revision-1 attack should find PIN %d, got %d %v", pin, g, found)
	}
	if g, found := attack(&key.k2); found {
		t.Fatalf("a P2P key holder found the PIN %d offline", g)
	}
}

func TestOriginAndCombineRules(t *testing.T) {
	f := newFixture(t, seeded("origin"))
	// Shares name their D-TA; combined keys list them sorted.
	for i, s := range f.aliceShares {
		if !s.IsShare() || len(s.DTAs()) != 1 || s.DTAs()[0] != f.shares[i].Fingerprint() {
			t.Fatalf("share %d: %v %v", i, s.IsShare(), s.DTAs())
		}
	}
	if f.alice.IsShare() || len(f.alice.DTAs()) != 3 {
		t.Fatal(f.alice.DTAs())
	}
	for i := 1; i < 3; i++ {
		if f.alice.DTAs()[i-1].String() >= f.alice.DTAs()[i].String() {
			t.Fatal("not sorted", f.alice.DTAs())
		}
	}
	// The same D-TA twice.
	if _, err := CombineCSClientKeys(f.aliceShares[0], f.aliceShares[0], f.aliceShares[1]); !errors.Is(err, ErrDuplicateDTA) {
		t.Fatal(err)
	}
	// A combined key is not a share.
	if _, err := CombineCSClientKeys(f.alice, f.aliceShares[0]); !errors.Is(err, ErrMismatch) {
		t.Fatal(err)
	}
	// A share where a key is needed: the error says what to do.
	_, err := NewCSClient(f.aliceShares[0], nil)
	if !errors.Is(err, ErrShare) || !strings.Contains(err.Error(), "mtls keys combine") || !strings.Contains(err.Error(), f.shares[0].Fingerprint().String()) {
		t.Fatal(err)
	}
	if _, err := NewCSServer(f.serverShares[0]); !errors.Is(err, ErrShare) {
		t.Fatal(err)
	}
	if _, err := NewP2PServer(f.nodeAShares[0]); !errors.Is(err, ErrShare) {
		t.Fatal(err)
	}
	if _, err := f.aliceShares[0].ExtractPIN(1234); !errors.Is(err, ErrShare) {
		t.Fatal(err)
	}
	// A permit from another set of D-TAs than the key.
	other, _ := NewMasterShare(seeded("other"))
	var ps []*TimePermit
	for _, m := range []*MasterShare{f.shares[0], f.shares[1], other} {
		p, _ := m.IssueTimePermit("alice@example.com", f.day)
		ps = append(ps, p)
	}
	op, err := CombineTimePermits(ps...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewCSClient(f.alice, op); !errors.Is(err, ErrDTASet) {
		t.Fatal(err)
	}
	// The origin survives a key file round trip, and a PIN token keeps it.
	tok, _ := f.alice.ExtractPIN(1234)
	b, _ := tok.MarshalBinary()
	var tok2 PINToken
	if err := tok2.UnmarshalBinary(b); err != nil || FormatFingerprints(tok2.DTAs()) != FormatFingerprints(f.alice.DTAs()) || tok2.IsShare() {
		t.Fatal(err, tok2.DTAs())
	}
	b, _ = f.aliceShares[2].MarshalBinary()
	var sh CSClientKey
	if err := sh.UnmarshalBinary(b); err != nil || !sh.IsShare() || sh.DTAs()[0] != f.shares[2].Fingerprint() {
		t.Fatal(err)
	}
	// Unsorted or repeated fingerprints in a file are refused.
	b, _ = f.alice.MarshalBinary()
	bad := append([]byte(nil), b...)
	copy(bad[4+8:4+16], bad[4:4+8]) // second fingerprint = first
	if err := new(CSClientKey).UnmarshalBinary(bad); !errors.Is(err, ErrKeyEncoding) {
		t.Fatal(err)
	}
	// Fingerprints parse back.
	fp := f.shares[1].Fingerprint()
	if got, err := ParseFingerprint(fp.String()); err != nil || got != fp {
		t.Fatal(err)
	}
	for _, s := range []string{"", "xyz", "4417b80d1617461", "4417b80d1617461bb", "4417b80d1617461g"} {
		if _, err := ParseFingerprint(s); err == nil {
			t.Errorf("ParseFingerprint(%q)", s)
		}
	}
}

func TestCSServerIdentities(t *testing.T) {
	f := newFixture(t, seeded("server-ids"))
	server := func(id string) *CSServer {
		var ss []*CSServerSecret
		for _, m := range f.shares {
			s, err := m.IssueCSServerKey(id)
			if err != nil {
				t.Fatal(err)
			}
			ss = append(ss, s)
		}
		ks, err := CombineCSServerSecrets(ss...)
		if err != nil {
			t.Fatal(err)
		}
		if ks.ID() != id {
			t.Fatal(ks.ID())
		}
		s, err := NewCSServer(ks)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	api, web := server("api.example.com"), server("web.example.com")
	c, err := NewCSClient(f.alice, f.permit)
	if err != nil {
		t.Fatal(err)
	}
	// The right server: proof verifies, keys agree.
	if ok, err := csRun(t, c, api, f.now, nil); !ok || err != nil {
		t.Fatal("api:", ok, err)
	}
	// A hello for api.example.com at web.example.com's key: refused.
	hello, _, _ := c.Hello(seeded("x"), f.now, "api.example.com")
	if _, err := web.Accept(seeded("w"), hello); !errors.Is(err, ErrMismatch) {
		t.Fatal(err)
	}
	// web's key relabelled as api's: the proof check fails.
	var ws []*CSServerSecret
	for _, m := range f.shares {
		s, _ := m.IssueCSServerKey("web.example.com")
		ws = append(ws, s)
	}
	wk, _ := CombineCSServerSecrets(ws...)
	wk.id = "api.example.com"
	forged, err := NewCSServer(wk)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := forged.Accept(seeded("w"), hello); !errors.Is(err, ErrAuthFailed) {
		t.Fatal(err)
	}
	// Mixing server identities in one combine is refused.
	a1, _ := f.shares[0].IssueCSServerKey("api.example.com")
	w2, _ := f.shares[1].IssueCSServerKey("web.example.com")
	if _, err := CombineCSServerSecrets(a1, w2); !errors.Is(err, ErrMismatch) {
		t.Fatal(err)
	}
	// The server key file keeps its identity.
	b, _ := wk.MarshalBinary()
	var back CSServerSecret
	if err := back.UnmarshalBinary(b); err != nil || back.ID() != "api.example.com" {
		t.Fatal(err, back.ID())
	}
	// An invalid server identity is refused at issuance and in Hello.
	if _, err := f.shares[0].IssueCSServerKey("bad\nname"); !errors.Is(err, ErrInvalidID) {
		t.Fatal(err)
	}
	if _, _, err := c.Hello(seeded("x"), f.now, "bad\x00"); !errors.Is(err, ErrInvalidID) {
		t.Fatal(err)
	}
}

func TestIdentityAndPINRules(t *testing.T) {
	for _, id := range []string{"a\x00b", "a\rb", "a\nb", "\x7f", "a\u0085b", "\u009f", "tab\there", "\u00a0", " a", "a "} {
		if err := CheckID(id); !errors.Is(err, ErrInvalidID) {
			t.Errorf("%q: %v", id, err)
		}
	}
	for _, id := range []string{"alice@example.com", "spiffe://example.org/ns/default", "ünïcödé", "a b", "a\u00a0b"} {
		if err := CheckID(id); err != nil {
			t.Errorf("%q: %v", id, err)
		}
	}
	f := newFixture(t, seeded("pin-rules"))
	if _, err := f.alice.ExtractPIN(0); !errors.Is(err, ErrInvalidPIN) {
		t.Fatal("PIN 0:", err)
	}
	if _, err := f.alice.ExtractPIN(MaxPIN + 1); !errors.Is(err, ErrInvalidPIN) {
		t.Fatal(err)
	}
	if _, err := f.alice.ExtractPIN(MaxPIN); err != nil {
		t.Fatal(err)
	}
}
