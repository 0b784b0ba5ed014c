package pairing

import (
	"bytes"
	"errors"
	"testing"
)

// Every decoder: never panics, fails with one of its sentinel errors, and
// what it accepts re-encodes to exactly the input (canonical encodings).

var elementErrs = []error{ErrLength, ErrNonCanonical, ErrNotOnCurve, ErrNotInSubgroup, ErrIdentity}

func isOneOf(err error, errs ...error) bool {
	for _, e := range errs {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

func FuzzDecodeG1(f *testing.F) {
	f.Add(EncodeG1(H1(DomainCS, []byte("seed"))))
	for _, tc := range badG1(f) {
		f.Add(tc.b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := DecodeG1(b)
		if err != nil {
			if !isOneOf(err, elementErrs...) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if p.IsIdentity() || !p.IsOnG1() || !bytes.Equal(EncodeG1(p), b) {
			t.Fatalf("accepted a bad or non-canonical point %x", b)
		}
	})
}

func FuzzDecodeG2(f *testing.F) {
	f.Add(EncodeG2(H2(DomainP2P, []byte("seed"))))
	for _, tc := range badG2(f) {
		f.Add(tc.b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := DecodeG2(b)
		if err != nil {
			if !isOneOf(err, elementErrs...) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if p.IsIdentity() || !p.IsOnG2() || !bytes.Equal(EncodeG2(p), b) {
			t.Fatalf("accepted a bad or non-canonical point %x", b)
		}
	})
}

func FuzzDecodeScalar(f *testing.F) {
	f.Add(make([]byte, 32))
	f.Add(bytes.Repeat([]byte{0xff}, 32))
	f.Add(EncodeScalar(sc(12345)))
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := DecodeScalar(b)
		if err != nil {
			if !isOneOf(err, ErrLength, ErrNonCanonical, ErrZeroScalar) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if s.IsZero() == 1 || !bytes.Equal(EncodeScalar(s), b) {
			t.Fatalf("accepted %x", b)
		}
	})
}

// fuzzSecret seeds with a valid encoding, its truncations and corruptions.
func fuzzSecret(f *testing.F, valid secret, fresh func() secret) {
	b, err := valid.MarshalBinary()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add(b[:len(b)-1])
	f.Add(append(bytes.Clone(b), 0))
	f.Add(b[:2])
	f.Add([]byte{})
	c := bytes.Clone(b)
	c[len(c)-1] ^= 1
	f.Add(c)
	f.Fuzz(func(t *testing.T, in []byte) {
		s := fresh()
		if err := s.UnmarshalBinary(in); err != nil {
			if !errors.Is(err, ErrKeyEncoding) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		out, err := s.MarshalBinary()
		if err != nil || !bytes.Equal(out, in) {
			t.Fatalf("non-canonical encoding accepted: %x", in)
		}
	})
}

var fuzzFx *fixture

func fx(f *testing.F) *fixture {
	if fuzzFx == nil {
		fuzzFx = newFixture(f, seeded("fuzz"))
	}
	return fuzzFx
}

func FuzzMasterShare(f *testing.F) {
	fuzzSecret(f, fx(f).shares[0], func() secret { return new(MasterShare) })
}

func FuzzCSClientKey(f *testing.F) {
	fuzzSecret(f, fx(f).alice, func() secret { return new(CSClientKey) })
}

func FuzzCSServerSecret(f *testing.F) {
	fuzzSecret(f, fx(f).serverShares[0], func() secret { return new(CSServerSecret) })
}

func FuzzTimePermit(f *testing.F) {
	fuzzSecret(f, fx(f).permit, func() secret { return new(TimePermit) })
}

func FuzzPINToken(f *testing.F) {
	tok, err := fx(f).alice.ExtractPIN(7)
	if err != nil {
		f.Fatal(err)
	}
	fuzzSecret(f, tok, func() secret { return new(PINToken) })
}

func FuzzP2PKey(f *testing.F) {
	fuzzSecret(f, fx(f).nodeA, func() secret { return new(P2PKey) })
}

// FuzzCSVerify feeds arbitrary ClientHello values to the server: it must
// never panic and never accept.
func FuzzCSVerify(f *testing.F) {
	fix := fx(f)
	c, _ := NewCSClient(fix.alice, fix.permit)
	h, _, _ := c.Hello(seeded("fuzz-hello"), fix.now, "")
	f.Add(h.ID, h.Day, h.Time, h.U, h.V)
	f.Add("", uint64(0), uint64(0), []byte{}, []byte{})
	f.Fuzz(func(t *testing.T, id string, d, tm uint64, u, v []byte) {
		hello := &CSHello{ID: id, Day: d, Time: tm, U: u, V: v}
		same := id == h.ID && d == h.Day && tm == h.Time && bytes.Equal(u, h.U) && bytes.Equal(v, h.V)
		if err := fix.server.Verify(hello); err == nil && !same {
			t.Fatalf("accepted a modified hello")
		}
	})
}

// FuzzCSFinish feeds arbitrary W to the client and R to the server.
func FuzzCSFinish(f *testing.F) {
	fix := fx(f)
	c, _ := NewCSClient(fix.alice, nil)
	h, _, _ := c.Hello(seeded("fuzz-finish"), fix.now, "")
	valid := EncodeG1(H1(DomainCS, []byte("w")))
	f.Add(valid)
	for _, tc := range badG1(f) {
		f.Add(tc.b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		_, chs, err := c.Hello(seeded("fuzz-finish"), fix.now, "")
		if err != nil {
			t.Fatal(err)
		}
		if r, pms, err := chs.Finish(seeded("r"), b); err == nil && (len(r) != G1Size || len(pms) != PMSSize) {
			t.Fatal("bad output sizes")
		}
		shs, err := fix.server.Accept(seeded("w"), h)
		if err != nil {
			t.Fatal(err)
		}
		if pms, err := shs.Finish(b); err == nil && len(pms) != PMSSize {
			t.Fatal("bad output size")
		}
	})
}

// FuzzP2P feeds arbitrary (id_S, X_S) to the client and (id_C, W_C, Y_C)
// to the server.
func FuzzP2P(f *testing.F) {
	fix := fx(f)
	ps, _ := NewP2PServer(fix.nodeA)
	pc, _ := NewP2PClient(fix.nodeB)
	hs, _ := ps.Start(seeded("fuzz-p2p"))
	wC, yC, _, _ := pc.Respond(seeded("fuzz-p2p"), "node-a", "node-a", hs.X())
	f.Add("node-a", hs.X(), "node-b", wC, yC)
	f.Add("", []byte{}, "", []byte{}, []byte{})
	f.Add("node-a", badG1(f)["not in subgroup"].b, "node-b", badG1(f)["identity"].b, badG2(f)["not in subgroup"].b)
	f.Fuzz(func(t *testing.T, idS string, xS []byte, idC string, w, y []byte) {
		if _, _, _, err := pc.Respond(seeded("c"), idS, idS, xS); err == nil && CheckID(idS) != nil {
			t.Fatal("accepted an invalid server identity")
		}
		h, err := ps.Start(seeded("s"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := h.Finish(idC, w, y); err == nil && CheckID(idC) != nil {
			t.Fatal("accepted an invalid client identity")
		}
	})
}

// FuzzParseKey: the type-dispatching key-file decoder.
func FuzzParseKey(f *testing.F) {
	for _, pair := range secretsOf(f, fx(f)) {
		b, _ := pair[0].MarshalBinary()
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte{0xff, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := ParseKey(b)
		if err != nil {
			if !errors.Is(err, ErrKeyEncoding) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		out, err := k.(secret).MarshalBinary()
		if err != nil || !bytes.Equal(out, b) {
			t.Fatalf("non-canonical key accepted: %x", b)
		}
	})
}
