package dtls

import (
	"bytes"
	"testing"

	"github.com/milagro-go/milagro/pairing"
)

// realValues returns a genuine hint and identity (from a real handshake's
// values) to seed the fuzzers.
func realValues(t testing.TB) (hint, identity []byte) {
	k := testKeys(t)
	ps, err := pairing.NewP2PServer(k.a)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := pairing.NewP2PClient(k.b)
	if err != nil {
		t.Fatal(err)
	}
	sh, err := ps.Start(newDetRand("fuzz-s"))
	if err != nil {
		t.Fatal(err)
	}
	ch, err := pc.StartDTLS(newDetRand("fuzz-c"), "node-a")
	if err != nil {
		t.Fatal(err)
	}
	return (&p2pHint{id: sh.ID(), x: sh.X()}).marshal(), (&p2pIdentity{id: ch.ID(), w: ch.W(), y: ch.Y()}).marshal()
}

func seeds(f *testing.F, good []byte) {
	f.Add(good)
	f.Add([]byte{})
	f.Add([]byte(p2pPrefix))
	f.Add(good[:len(good)-1])
	f.Add(append(bytes.Clone(good), 0))
	bad := bytes.Clone(good)
	bad[len(p2pPrefix)+1] = 0xff // identity length past the end
	f.Add(bad)
}

// FuzzParseHint: never panics; whatever parses re-encodes to the input, has
// a valid identity and a 48-byte X_S.
func FuzzParseHint(f *testing.F) {
	hint, _ := realValues(f)
	seeds(f, hint)
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := parseHint(b)
		if err != nil {
			return
		}
		if pairing.CheckID(h.id) != nil || len(h.x) != pairing.G1Size {
			t.Fatalf("accepted %+v", h)
		}
		if !bytes.Equal(h.marshal(), b) {
			t.Fatal("not canonical")
		}
		_, _ = pairing.DecodeG1(h.x) // strict decoding must not panic either
	})
}

// FuzzParseIdentity: the same for the client's identity, and the server's
// PSK step on it fails cleanly unless W_C and Y_C decode.
func FuzzParseIdentity(f *testing.F) {
	_, identity := realValues(f)
	seeds(f, identity)
	k := testKeys(f)
	ps, err := pairing.NewP2PServer(k.a)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		i, err := parseIdentity(b)
		if err != nil {
			return
		}
		if pairing.CheckID(i.id) != nil || len(i.w) != pairing.G1Size || len(i.y) != pairing.G2Size {
			t.Fatalf("accepted %+v", i)
		}
		if !bytes.Equal(i.marshal(), b) {
			t.Fatal("not canonical")
		}
		_, werr := pairing.DecodeG1(i.w)
		_, yerr := pairing.DecodeG2(i.y)
		sh, err := ps.Start(newDetRand("fuzz"))
		if err != nil {
			t.Fatal(err)
		}
		psk, err := sh.FinishDTLS(i.id, i.w, i.y)
		if (werr == nil && yerr == nil) != (err == nil) || (err == nil && len(psk) != 32) {
			t.Fatalf("decode %v/%v, finish %v", werr, yerr, err)
		}
	})
}

func TestParseRejects(t *testing.T) {
	hint, identity := realValues(t)
	if _, err := parseHint(hint); err != nil {
		t.Fatal(err)
	}
	if _, err := parseIdentity(identity); err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{
		"hint as identity": hint, "short": identity[:len(identity)-1],
		"trailing": append(bytes.Clone(identity), 1), "prefix": append([]byte("MTLS2-P2P"), identity[9:]...),
		"empty id": append([]byte(p2pPrefix+"\x00\x00"), identity[len(p2pPrefix)+2+6:]...),
	} {
		if _, err := parseIdentity(b); err == nil {
			t.Errorf("identity %s accepted", name)
		}
	}
	for name, b := range map[string][]byte{
		"identity as hint": identity, "short": hint[:len(hint)-1], "trailing": append(bytes.Clone(hint), 1),
		"bad utf8": append([]byte(p2pPrefix+"\x00\x01\xff"), hint[len(hint)-48:]...),
	} {
		if _, err := parseHint(b); err == nil {
			t.Errorf("hint %s accepted", name)
		}
	}
}
