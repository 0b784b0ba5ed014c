package pairing_test

import (
	"crypto/rand"
	"errors"
	"strings"
	"testing"

	"github.com/milagro-go/milagro/pairing"
)

// shareFixture: two D-TAs and what each issues for alice (and bob).
type shareFixture struct {
	ta                       [2]*pairing.MasterShare
	alice, bob, aliceSecond  [2]*pairing.CSClientKey
	permit, permitTomorrow   [2]*pairing.TimePermit
	p2p                      [2]*pairing.P2PKey
	aliceKey, aliceOtherDTAs *pairing.CSClientKey
}

const shareDay = 20000

func newShareFixture(t *testing.T) *shareFixture {
	t.Helper()
	f := &shareFixture{}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	var err error
	for i := range f.ta {
		f.ta[i], err = pairing.NewMasterShare(rand.Reader)
		must(err)
		f.alice[i], err = f.ta[i].IssueCSClientKey("alice")
		must(err)
		f.aliceSecond[i], err = f.ta[i].IssueCSClientKey("alice")
		must(err)
		f.bob[i], err = f.ta[i].IssueCSClientKey("bob")
		must(err)
		f.permit[i], err = f.ta[i].IssueTimePermit("alice", shareDay)
		must(err)
		f.permitTomorrow[i], err = f.ta[i].IssueTimePermit("alice", shareDay+1)
		must(err)
		f.p2p[i], err = f.ta[i].IssueP2PKey("alice")
		must(err)
	}
	f.aliceKey, err = pairing.CombineCSClientKeys(f.alice[:]...)
	must(err)
	f.aliceOtherDTAs, err = pairing.CombineCSClientKeys(f.alice[0])
	must(err)
	return f
}

func lk(label string, k any) pairing.LabeledKey { return pairing.LabeledKey{Label: label, Key: k} }

// Shares that cannot make one key are refused with an error naming them,
// before any arithmetic; those that can are combined.
func TestCheckShares(t *testing.T) {
	f := newShareFixture(t)
	for _, tc := range []struct {
		name   string
		shares []pairing.LabeledKey
		is     error
		want   []string
	}{
		{"none", nil, pairing.ErrMismatch, []string{"no shares"}},
		{"not a key", []pairing.LabeledKey{lk("x.pem", "hello")}, pairing.ErrMismatch, []string{"x.pem is a string"}},
		{"master share", []pairing.LabeledKey{lk("dta1.share", f.ta[0]), lk("dta2.share", f.ta[1])}, pairing.ErrMismatch,
			[]string{"dta1.share is a master share", "never combined"}},
		{"combined key", []pairing.LabeledKey{lk("alice.key", f.aliceKey), lk("a.1", f.alice[1])}, pairing.ErrMismatch,
			[]string{"alice.key is already a combined key"}},
		{"same D-TA twice", []pairing.LabeledKey{lk("a.1", f.alice[0]), lk("a.1b", f.aliceSecond[0])}, pairing.ErrDuplicateDTA,
			[]string{"a.1 and a.1b are both from D-TA " + f.ta[0].Fingerprint().String()}},
		{"kinds", []pairing.LabeledKey{lk("a.1", f.alice[0]), lk("p.2", f.permit[1])}, pairing.ErrMismatch,
			[]string{"cannot combine different kinds of keys: a.1 is a CS client key, p.2 is a time permit"}},
		{"identities", []pairing.LabeledKey{lk("a.1", f.alice[0]), lk("b.2", f.bob[1])}, pairing.ErrMismatch,
			[]string{`a.1 is for "alice", b.2 is for "bob"`}},
		{"days", []pairing.LabeledKey{lk("p.1", f.permit[0]), lk("p.2", f.permitTomorrow[1])}, pairing.ErrMismatch,
			[]string{"cannot combine permits for different days: p.1 is for 2024-10-04, p.2 is for 2024-10-05"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := pairing.CheckShares(tc.shares)
			if !errors.Is(err, tc.is) {
				t.Fatalf("CheckShares: %v, want %v", err, tc.is)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if k, err2 := pairing.CombineShares(tc.shares); k != nil || err2 == nil || err2.Error() != err.Error() {
				t.Errorf("CombineShares = %v, %v; want the CheckShares error", k, err2)
			}
		})
	}
	for _, shares := range [][]pairing.LabeledKey{
		{lk("a.1", f.alice[0]), lk("a.2", f.alice[1])},
		{lk("p.1", f.permit[0]), lk("p.2", f.permit[1])},
		{lk("n.1", f.p2p[0]), lk("n.2", f.p2p[1])},
		{lk("s.1", f.ta[0].IssueCSServerSecret()), lk("s.2", f.ta[1].IssueCSServerSecret())},
	} {
		k, err := pairing.CombineShares(shares)
		if err != nil {
			t.Fatalf("CombineShares(%s, %s): %v", shares[0].Label, shares[1].Label, err)
		}
		if got, want := pairing.Kind(k), pairing.Kind(shares[0].Key); got != want {
			t.Errorf("combined a %s into a %s", want, got)
		}
	}
	if k, err := pairing.CombineShares([]pairing.LabeledKey{lk("a.1", f.alice[0]), lk("a.2", f.alice[1])}); err != nil || !k.(*pairing.CSClientKey).Equal(f.aliceKey) {
		t.Errorf("CombineShares of alice's shares = %v, want alice's key", err)
	}
}

// Permits go with a key of the same identity and exactly its D-TAs.
func TestCheckPermitsForKey(t *testing.T) {
	f := newShareFixture(t)
	both := []pairing.LabeledKey{lk("p.1", f.permit[0]), lk("p.2", f.permit[1])}
	if err := pairing.CheckPermitsForKey(both, lk("alice.key", f.aliceKey)); err != nil {
		t.Fatalf("alice's permits and key: %v", err)
	}
	token, err := f.aliceKey.ExtractPIN(1234)
	if err != nil {
		t.Fatal(err)
	}
	if err := pairing.CheckPermitsForKey(both, lk("alice.token", token)); err != nil {
		t.Fatalf("alice's permits and PIN token: %v", err)
	}
	bobKey, err := pairing.CombineCSClientKeys(f.bob[:]...)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		permits []pairing.LabeledKey
		key     pairing.LabeledKey
		want    string
	}{
		{"none", nil, lk("alice.key", f.aliceKey), "no time permits"},
		{"not a permit", []pairing.LabeledKey{lk("a.1", f.alice[0])}, lk("alice.key", f.aliceKey), "a.1 is a CS client key, not a time permit"},
		{"not a key", both, lk("n.key", f.p2p[0]), "n.key is a P2P key, not a CS client key or PIN token"},
		{"key share", both, lk("a.1", f.alice[0]), "a.1 is a key share; give the combined key"},
		{"identity", both, lk("bob.key", bobKey), `the permits are for "alice", the key bob.key for "bob"`},
		{"one D-TA missing", both[:1], lk("alice.key", f.aliceKey), "get a permit share from each of the key's D-TAs"},
		{"one D-TA too many", both, lk("alice1.key", f.aliceOtherDTAs), "get a permit share from each of the key's D-TAs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := pairing.CheckPermitsForKey(tc.permits, tc.key)
			if !errors.Is(err, pairing.ErrPermitKeyMismatch) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("CheckPermitsForKey: %v, want %q", err, tc.want)
			}
		})
	}
}

func TestFormatDay(t *testing.T) {
	for d, want := range map[uint64]string{0: "1970-01-01", shareDay: "2024-10-04", 1 << 41: "2199023255552"} {
		if got := pairing.FormatDay(d); got != want {
			t.Errorf("FormatDay(%d) = %q, want %q", d, got, want)
		}
	}
}
