package pairing

import (
	"encoding"
	"errors"
	"fmt"
	"strings"
	"testing"
)

type secret interface {
	encoding.BinaryMarshaler
	encoding.BinaryUnmarshaler
}

func secretsOf(t testing.TB, f *fixture) map[string][2]secret {
	tok, err := f.alice.ExtractPIN(42)
	if err != nil {
		t.Fatal(err)
	}
	return map[string][2]secret{
		"MasterShare":    {f.shares[0], new(MasterShare)},
		"CSClientKey":    {f.alice, new(CSClientKey)},
		"CSServerSecret": {f.serverShares[0], new(CSServerSecret)},
		"TimePermit":     {f.permit, new(TimePermit)},
		"PINToken":       {tok, new(PINToken)},
		"P2PKey":         {f.nodeA, new(P2PKey)},
	}
}

func TestSecretsMarshal(t *testing.T) {
	f := newFixture(t, seeded("marshal"))
	for name, pair := range secretsOf(t, f) {
		b, err := pair[0].MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if err := pair[1].UnmarshalBinary(b); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if k, err := ParseKey(b); err != nil || fmt.Sprintf("%T", k) != "*pairing."+name {
			t.Errorf("ParseKey(%s) = %T, %v", name, k, err)
		}
		type eq interface{ MarshalBinary() ([]byte, error) }
		b2, _ := pair[1].MarshalBinary()
		if string(b) != string(b2) {
			t.Errorf("%s: round trip differs", name)
		}
		// Every truncation, an extra byte and a flipped tag fail cleanly.
		for i := 0; i < len(b); i++ {
			if err := pair[1].UnmarshalBinary(b[:i]); !errors.Is(err, ErrKeyEncoding) {
				t.Errorf("%s: truncated to %d: %v", name, i, err)
			}
		}
		if err := pair[1].UnmarshalBinary(append(b, 0)); !errors.Is(err, ErrKeyEncoding) {
			t.Errorf("%s: trailing byte: %v", name, err)
		}
		if _, err := ParseKey(append([]byte{0x7f}, b[1:]...)); !errors.Is(err, ErrKeyEncoding) {
			t.Errorf("ParseKey unknown tag: %v", err)
		}
		bad := append([]byte{b[0] ^ 0x7}, b[1:]...)
		if err := pair[1].UnmarshalBinary(bad); !errors.Is(err, ErrKeyEncoding) {
			t.Errorf("%s: bad tag: %v", name, err)
		}
		// The decoded value is still the original (failed decodes leave it alone).
		b3, _ := pair[1].MarshalBinary()
		if string(b) != string(b3) {
			t.Errorf("%s: failed decode modified the value", name)
		}
	}
	// The keys still work after a round trip.
	var k CSClientKey
	b, _ := f.alice.MarshalBinary()
	if err := k.UnmarshalBinary(b); err != nil || !k.Equal(f.alice) || k.ID() != "alice@example.com" {
		t.Fatal(err)
	}
	c, _ := NewCSClient(&k, f.permit)
	if ok, err := csRun(t, c, f.server, f.now, nil); !ok || err != nil {
		t.Fatal(ok, err)
	}
	// An identity element inside a key file is refused.
	id := append([]byte{tagCSServerSecret, keyVersion, 0, 1, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0xc0}, make([]byte, 95)...)
	if err := new(CSServerSecret).UnmarshalBinary(id); !errors.Is(err, ErrIdentity) || !errors.Is(err, ErrKeyEncoding) {
		t.Errorf("identity server secret: %v", err)
	}
	zero := append([]byte{tagMasterShare, keyVersion}, make([]byte, 32)...)
	if err := new(MasterShare).UnmarshalBinary(zero); !errors.Is(err, ErrZeroScalar) {
		t.Errorf("zero share: %v", err)
	}
}

func TestSecretsNeverPrinted(t *testing.T) {
	f := newFixture(t, seeded("print"))
	tok, _ := f.alice.ExtractPIN(42)
	cs, _ := NewCSClient(f.alice, nil)
	ps, _ := NewP2PServer(f.nodeA)
	pc, _ := NewP2PClient(f.nodeB)
	_, chs, _ := cs.Hello(seeded("h"), f.now, "")
	phs, _ := ps.Start(seeded("p"))
	h2, _, _ := cs.Hello(seeded("h2"), f.now, "")
	shs, err := f.server.Accept(seeded("s"), h2)
	if err != nil {
		t.Fatal(err)
	}
	values := []any{chs, *chs, phs, shs, f.shares[0], *f.shares[0], f.alice, *f.alice, f.serverShares[0], *f.serverShares[0],
		f.permit, *f.permit, tok, *tok, f.nodeA, *f.nodeA, cs, f.server, ps, pc}
	var secretHex []string
	for _, v := range []secret{f.shares[0], f.alice, f.serverShares[0], f.permit, tok, f.nodeA} {
		b, _ := v.MarshalBinary()
		secretHex = append(secretHex, fmt.Sprintf("%x", b[len(b)-16:]))
	}
	for _, v := range values {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%X", "%q", "%d"} {
			out := fmt.Sprintf(verb, v)
			if !strings.Contains(out, "redacted") {
				t.Errorf("%T %s: %q", v, verb, out)
			}
			for _, h := range secretHex {
				if strings.Contains(strings.ToLower(out), h) {
					t.Errorf("%T %s leaks", v, verb)
				}
			}
		}
	}
	if got := f.alice.String(); got != `pairing.CSClientKey{id="alice@example.com", <redacted>}` {
		t.Errorf("String() = %s", got)
	}
}

func TestZeroize(t *testing.T) {
	f := newFixture(t, seeded("zero"))
	k := *f.alice
	k.Zeroize()
	if !k.k.IsIdentity() {
		t.Fatal("not zeroized")
	}
	m := *f.shares[0]
	m.Zeroize()
	if m.s.IsZero() != 1 {
		t.Fatal("share not zeroized")
	}
}
