package pairing

import (
	"bytes"
	"errors"
	"math/big"
	"testing"

	"github.com/cloudflare/circl/ecc/bls12381"
	"github.com/cloudflare/circl/ecc/bls12381/ff"
)

// nonSubgroupG1 returns the compressed encoding of a point on E(Fp) that is
// not in G1: the first x = 1, 2, … with x³ + 4 a square.
func nonSubgroupG1(t testing.TB) []byte {
	for x := uint64(1); x < 1000; x++ {
		var fx, rhs, y, four ff.Fp
		fx.SetUint64(x)
		rhs.Sqr(&fx)
		rhs.Mul(&rhs, &fx)
		four.SetUint64(4)
		rhs.Add(&rhs, &four)
		if y.Sqrt(&rhs) == 0 {
			continue
		}
		b, _ := fx.MarshalBinary()
		b[0] |= flagCompressed
		var p bls12381.G1
		if p.SetBytes(b) == nil {
			continue // in the subgroup (never for small x, but be sure)
		}
		return b
	}
	t.Fatal("no non-subgroup G1 point found")
	return nil
}

// offCurveG1 returns an x with x³ + 4 not a square.
func offCurveG1(t testing.TB) []byte {
	for x := uint64(1); x < 1000; x++ {
		var fx, rhs, y, four ff.Fp
		fx.SetUint64(x)
		rhs.Sqr(&fx)
		rhs.Mul(&rhs, &fx)
		four.SetUint64(4)
		rhs.Add(&rhs, &four)
		if y.Sqrt(&rhs) == 1 {
			continue
		}
		b, _ := fx.MarshalBinary()
		b[0] |= flagCompressed
		return b
	}
	t.Fatal("no off-curve x found")
	return nil
}

// g2X returns the compressed encoding of x = k + 0·u on the twist, either
// with a point (onCurve) not in G2, or without a point.
func g2X(t testing.TB, onCurve bool) []byte {
	for k := uint64(1); k < 1000; k++ {
		var fx, rhs, y ff.Fp2
		fx[0].SetUint64(k)
		rhs.Sqr(&fx)
		rhs.Mul(&rhs, &fx)
		rhs.Add(&rhs, &g2B)
		if (y.Sqrt(&rhs) == 1) != onCurve {
			continue
		}
		b, _ := fx.MarshalBinary()
		b[0] |= flagCompressed
		if onCurve {
			var p bls12381.G2
			if p.SetBytes(b) == nil {
				continue
			}
		}
		return b
	}
	t.Fatal("no suitable G2 x found")
	return nil
}

func badG1(t testing.TB) map[string]struct {
	b    []byte
	want error
} {
	valid := EncodeG1(H1(DomainCS, []byte("valid")))
	p := ff.FpOrder()
	xEqP := bytes.Clone(p)
	xEqP[0] |= flagCompressed
	allOnes := bytes.Repeat([]byte{0xff}, G1Size)
	allOnes[0] = 0x9f
	inf := make([]byte, G1Size)
	inf[0] = 0xc0
	infSign := bytes.Clone(inf)
	infSign[0] = 0xe0
	infX := bytes.Clone(inf)
	infX[47] = 1
	noFlag := bytes.Clone(valid)
	noFlag[0] &^= flagCompressed
	onlySign := bytes.Clone(valid)
	onlySign[0] = onlySign[0]&^flagMask | flagSign
	uncompressed := H1(DomainCS, []byte("valid")).Bytes()
	return map[string]struct {
		b    []byte
		want error
	}{
		"empty":              {nil, ErrLength},
		"47 bytes":           {valid[:47], ErrLength},
		"49 bytes":           {append(bytes.Clone(valid), 0), ErrLength},
		"uncompressed form":  {uncompressed, ErrLength},
		"identity":           {inf, ErrIdentity},
		"infinity with sign": {infSign, ErrNonCanonical},
		"infinity with x":    {infX, ErrNonCanonical},
		"no compression bit": {noFlag, ErrNonCanonical},
		"sign bit only":      {onlySign, ErrNonCanonical},
		"x = p":              {xEqP, ErrNonCanonical},
		"x = 2^381-1":        {allOnes, ErrNonCanonical},
		"off curve":          {offCurveG1(t), ErrNotOnCurve},
		"not in subgroup":    {nonSubgroupG1(t), ErrNotInSubgroup},
	}
}

func TestDecodeG1Rejects(t *testing.T) {
	for name, tc := range badG1(t) {
		if _, err := DecodeG1(tc.b); !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", name, err, tc.want)
		}
	}
	valid := EncodeG1(H1(DomainCS, []byte("valid")))
	p, err := DecodeG1(valid)
	if err != nil || !bytes.Equal(EncodeG1(p), valid) {
		t.Fatalf("valid point: %v", err)
	}
	// Both signs of y decode.
	neg := *p
	neg.Neg()
	if _, err := DecodeG1(EncodeG1(&neg)); err != nil {
		t.Fatal(err)
	}
}

func badG2(t testing.TB) map[string]struct {
	b    []byte
	want error
} {
	valid := EncodeG2(H2(DomainP2P, []byte("valid")))
	p := ff.FpOrder()
	c1EqP := bytes.Clone(valid)
	copy(c1EqP, p)
	c1EqP[0] |= flagCompressed
	c0EqP := bytes.Clone(valid)
	copy(c0EqP[48:], p)
	inf := make([]byte, G2Size)
	inf[0] = 0xc0
	infSign := bytes.Clone(inf)
	infSign[0] = 0xe0
	infX := bytes.Clone(inf)
	infX[95] = 1
	noFlag := bytes.Clone(valid)
	noFlag[0] &^= flagCompressed
	return map[string]struct {
		b    []byte
		want error
	}{
		"empty":              {nil, ErrLength},
		"95 bytes":           {valid[:95], ErrLength},
		"97 bytes":           {append(bytes.Clone(valid), 0), ErrLength},
		"G1 size":            {valid[:48], ErrLength},
		"uncompressed form":  {H2(DomainP2P, []byte("valid")).Bytes(), ErrLength},
		"identity":           {inf, ErrIdentity},
		"infinity with sign": {infSign, ErrNonCanonical},
		"infinity with x":    {infX, ErrNonCanonical},
		"no compression bit": {noFlag, ErrNonCanonical},
		"x.c1 = p":           {c1EqP, ErrNonCanonical},
		"x.c0 = p":           {c0EqP, ErrNonCanonical},
		"off curve":          {g2X(t, false), ErrNotOnCurve},
		"not in subgroup":    {g2X(t, true), ErrNotInSubgroup},
	}
}

func TestDecodeG2Rejects(t *testing.T) {
	for name, tc := range badG2(t) {
		if _, err := DecodeG2(tc.b); !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", name, err, tc.want)
		}
	}
	valid := EncodeG2(H2(DomainP2P, []byte("valid")))
	p, err := DecodeG2(valid)
	if err != nil || !bytes.Equal(EncodeG2(p), valid) {
		t.Fatalf("valid point: %v", err)
	}
	neg := *p
	neg.Neg()
	if _, err := DecodeG2(EncodeG2(&neg)); err != nil {
		t.Fatal(err)
	}
}

func TestDecodeScalar(t *testing.T) {
	r := bls12381.Order()
	rMinus1 := new(big.Int).Sub(new(big.Int).SetBytes(r), big.NewInt(1)).FillBytes(make([]byte, 32))
	for name, tc := range map[string]struct {
		b    []byte
		want error
	}{
		"empty":   {nil, ErrLength},
		"31":      {make([]byte, 31), ErrLength},
		"33":      {make([]byte, 33), ErrLength},
		"zero":    {make([]byte, 32), ErrZeroScalar},
		"r":       {r, ErrNonCanonical},
		"2^256-1": {bytes.Repeat([]byte{0xff}, 32), ErrNonCanonical},
		"r-1":     {rMinus1, nil},
	} {
		s, err := DecodeScalar(tc.b)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", name, err, tc.want)
		}
		if err == nil && !bytes.Equal(EncodeScalar(s), tc.b) {
			t.Errorf("%s: round trip", name)
		}
	}
}

// TestReduce48 checks the constant-time reduction against math/big.
func TestReduce48(t *testing.T) {
	rnd := seeded("reduce")
	r := new(big.Int).SetBytes(bls12381.Order())
	cases := [][]byte{make([]byte, 48), bytes.Repeat([]byte{0xff}, 48)}
	for i := 0; i < 200; i++ {
		b := make([]byte, 48)
		rnd.Read(b)
		cases = append(cases, b)
	}
	for _, b := range cases {
		want := new(big.Int).Mod(new(big.Int).SetBytes(b), r).FillBytes(make([]byte, 32))
		if got := EncodeScalar(reduce48(b)); !bytes.Equal(got, want) {
			t.Fatalf("reduce48(%x) = %x, want %x", b, got, want)
		}
	}
}

func TestCheckID(t *testing.T) {
	for id, ok := range map[string]bool{
		"": false, "a": true, string(bytes.Repeat([]byte("x"), 1024)): true,
		string(bytes.Repeat([]byte("x"), 1025)): false, "\xff\xfe": false, "josé@example.com": true,
	} {
		if (CheckID(id) == nil) != ok {
			t.Errorf("CheckID(%q) = %v", id, CheckID(id))
		}
	}
}

func TestSecretScalar(t *testing.T) {
	r := bls12381.Order()
	for _, b := range [][]byte{nil, make([]byte, 31), make([]byte, 32), r, bytes.Repeat([]byte{0xff}, 32),
		EncodeScalar(sc(1)), EncodeScalar(sc(0xabcdef))} {
		s1, e1 := DecodeScalar(b)
		s2, e2 := secretScalar(b)
		if !errors.Is(e2, errors.Unwrap(e1)) && (e1 != nil || e2 != nil) {
			t.Errorf("%x: %v vs %v", b, e1, e2)
		}
		if e1 == nil && s1.IsEqual(s2) != 1 {
			t.Errorf("%x: values differ", b)
		}
	}
}

func TestZeroValuesDoNotPanic(t *testing.T) {
	if _, _, err := new(CSClient).Hello(seeded("z"), 1, ""); !errors.Is(err, ErrUnusable) {
		t.Error(err)
	}
	if _, _, err := new(CSClientHandshake).Finish(seeded("z"), nil); !errors.Is(err, ErrUnusable) {
		t.Error(err)
	}
	if err := new(CSServer).Verify(&CSHello{}); !errors.Is(err, ErrUnusable) {
		t.Error(err)
	}
	if _, err := new(CSServerHandshake).Finish(nil); !errors.Is(err, ErrUnusable) {
		t.Error(err)
	}
	if _, err := new(P2PServer).Start(seeded("z")); !errors.Is(err, ErrUnusable) {
		t.Error(err)
	}
	if _, err := new(P2PServerHandshake).Finish("a", nil, nil); !errors.Is(err, ErrUnusable) {
		t.Error(err)
	}
	if _, _, _, err := new(P2PClient).Respond(seeded("z"), "a", "a", nil); !errors.Is(err, ErrUnusable) {
		t.Error(err)
	}
	if _, err := NewCSClient(nil, nil); err == nil {
		t.Error("nil key")
	}
	if _, err := NewCSClient(new(CSClientKey), nil); err == nil {
		t.Error("zero key")
	}
	if _, err := NewCSServer(new(CSServerSecret)); err == nil {
		t.Error("zero secret")
	}
	if _, err := NewP2PServer(new(P2PKey)); err == nil {
		t.Error("zero P2P key")
	}
	if _, err := NewP2PClient(new(P2PKey)); err == nil {
		t.Error("zero P2P key")
	}
	// Handshake states are single use.
	f := newFixture(t, seeded("single-use"))
	c, _ := NewCSClient(f.alice, nil)
	h, chs, _ := c.Hello(seeded("a"), f.now, "")
	shs, err := f.server.Accept(seeded("b"), h)
	if err != nil {
		t.Fatal(err)
	}
	r, _, err := chs.Finish(seeded("c"), shs.W())
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := chs.Finish(seeded("c"), shs.W()); !errors.Is(err, ErrUnusable) {
		t.Error(err)
	}
	if _, err := shs.Finish(r); err != nil {
		t.Fatal(err)
	}
	if _, err := shs.Finish(r); !errors.Is(err, ErrUnusable) {
		t.Error(err)
	}
}

func TestZeroValueKeys(t *testing.T) {
	f := newFixture(t, seeded("zero-keys"))
	if _, err := CombineCSClientKeys(f.alice, &CSClientKey{id: f.alice.id}); !errors.Is(err, ErrUnusable) {
		t.Error(err)
	}
	if _, err := CombineCSServerSecrets(new(CSServerSecret)); !errors.Is(err, ErrUnusable) {
		t.Error(err)
	}
	if _, err := CombineTimePermits(&TimePermit{id: "a", day: 1}); !errors.Is(err, ErrUnusable) {
		t.Error(err)
	}
	if _, err := CombineP2PKeys(&P2PKey{id: "a"}); !errors.Is(err, ErrUnusable) {
		t.Error(err)
	}
	if _, err := new(CSClientKey).ExtractPIN(1); !errors.Is(err, ErrUnusable) {
		t.Error(err)
	}
	if _, err := new(PINToken).AddPIN(1); !errors.Is(err, ErrUnusable) {
		t.Error(err)
	}
	if _, err := NewCSClient(f.alice, &TimePermit{origin: f.alice.origin, id: f.alice.id, day: 1}); !errors.Is(err, ErrUnusable) {
		t.Error(err)
	}
	for _, v := range []secret{new(MasterShare), new(CSClientKey), new(CSServerSecret), new(TimePermit), new(PINToken), new(P2PKey)} {
		if _, err := v.MarshalBinary(); err == nil {
			t.Errorf("%T: zero value marshalled", v)
		}
	}
}
