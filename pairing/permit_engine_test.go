package pairing

import (
	"bytes"
	"errors"
	"testing"

	"github.com/cloudflare/circl/ecc/bls12381"
)

// permitShares issues alice's permit shares for fxDay from every master
// share of f, and their key-file encodings.
func permitShares(t testing.TB, f *fixture) ([]*TimePermit, [][]byte) {
	t.Helper()
	var ps []*TimePermit
	var encs [][]byte
	for _, m := range f.shares {
		p, err := m.IssueTimePermit("alice@example.com", fxDay)
		if err != nil {
			t.Fatal(err)
		}
		enc, err := p.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		ps, encs = append(ps, p), append(encs, enc)
	}
	return ps, encs
}

// TestPermitDecodeEngineClasses: a permit share whose point is any of the
// engine test's encodings (valid points, the hand-made rejects, random x
// coordinates on and off the curve, in and out of the subgroup) is
// accepted or rejected by TimePermit.UnmarshalBinary, which decodes in the
// build's engine (blst with cgo), exactly as circl's DecodeG1 does, with
// the same sentinel error; an accepted point is the same point.
func TestPermitDecodeEngineClasses(t *testing.T) {
	f := newFixture(t, seeded("permit-engine"))
	_, encs := permitShares(t, f)
	body := len(encs[0]) - G1Size
	counts := map[string]int{}
	for _, b := range decodeCases(t, G1Size) {
		if len(b) != G1Size {
			continue // a length error is the framing's (the fuzz targets' business)
		}
		enc := append(bytes.Clone(encs[0][:body]), b...)
		var tp TimePermit
		errE := tp.UnmarshalBinary(enc)
		want, errC := DecodeG1(b)
		if !sameDecodeError(errE, errC) {
			t.Fatalf("%x: engine %s: %v, circl: %v", b, Engine(), errE, errC)
		}
		if errE != nil {
			if !errors.Is(errE, ErrKeyEncoding) {
				t.Fatalf("%x: %v does not wrap ErrKeyEncoding", b, errE)
			}
			if tp.checkPoint() != ErrUnusable {
				t.Fatalf("%x: a rejected decode changed the permit", b)
			}
			for _, e := range elementErrs {
				if errors.Is(errE, e) {
					counts[e.Error()]++
				}
			}
			continue
		}
		counts["accepted"]++
		if got := eBytesG1(&tp.e); !bytes.Equal(got, want.BytesCompressed()) {
			t.Fatalf("%x decoded to %x", b, got)
		}
		out, err := tp.MarshalBinary()
		if err != nil || !bytes.Equal(out, enc) {
			t.Fatalf("%x: re-encoded %x, %v", b, out, err)
		}
	}
	// Every class must have been exercised, or the test proves little.
	for _, c := range []string{"accepted", ErrNonCanonical.Error(), ErrNotOnCurve.Error(), ErrNotInSubgroup.Error(), ErrIdentity.Error()} {
		if counts[c] == 0 {
			t.Errorf("no case of class %q (%v)", c, counts)
		}
	}
}

// TestPermitCombineEngine: shares decoded from their encodings and
// combined in the engine give the point circl's arithmetic gives, the
// combined permit encodes to the same bytes as the one combined from the
// issued shares, and a client built from it completes a handshake.
func TestPermitCombineEngine(t *testing.T) {
	f := newFixture(t, seeded("permit-combine"))
	issued, encs := permitShares(t, f)
	decoded := make([]*TimePermit, len(encs))
	var sum bls12381.G1
	sum.SetIdentity()
	for i, enc := range encs {
		decoded[i] = new(TimePermit)
		if err := decoded[i].UnmarshalBinary(enc); err != nil {
			t.Fatal(err)
		}
		if !decoded[i].Equal(issued[i]) {
			t.Fatalf("share %d: decoded share differs from the issued one", i)
		}
		p, err := DecodeG1(enc[len(enc)-G1Size:])
		if err != nil {
			t.Fatal(err)
		}
		sum.Add(&sum, p)
	}
	tp, err := CombineTimePermits(decoded...)
	if err != nil {
		t.Fatal(err)
	}
	if got := eBytesG1(&tp.e); !bytes.Equal(got, sum.BytesCompressed()) {
		t.Fatalf("engine %s combined %x, circl %x", Engine(), got, sum.BytesCompressed())
	}
	want, err := CombineTimePermits(issued...)
	if err != nil {
		t.Fatal(err)
	}
	a, errA := tp.MarshalBinary()
	b, errB := want.MarshalBinary()
	if errA != nil || errB != nil || !bytes.Equal(a, b) || !tp.Equal(want) || !tp.Equal(f.permit) {
		t.Fatalf("combined permits differ: %v %v", errA, errB)
	}
	c, err := NewCSClient(f.alice, tp)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := csRun(t, c, f.server, f.now, nil); err != nil {
		t.Fatalf("handshake with the decoded, combined permit: %v", err)
	}
	// A share for another day does not combine, and a permit that is the
	// negation of the others' sum combines to the identity: refused.
	other, err := f.shares[0].IssueTimePermit("alice@example.com", fxDay+1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := CombineTimePermits(decoded[0], other); !errors.Is(err, ErrMismatch) {
		t.Fatalf("shares of two days combined: %v", err)
	}
	// D-TA 1's share replaced by the negation of D-TA 0's: each is a valid
	// G1 point, their sum is the identity, refused.
	neg, err := DecodeG1(encs[0][len(encs[0])-G1Size:])
	if err != nil {
		t.Fatal(err)
	}
	neg.Neg()
	negEnc := append(bytes.Clone(encs[1][:len(encs[1])-G1Size]), neg.BytesCompressed()...)
	var np TimePermit
	if err := np.UnmarshalBinary(negEnc); err != nil {
		t.Fatal(err)
	}
	if _, err := CombineTimePermits(decoded[0], &np); !errors.Is(err, ErrIdentity) {
		t.Fatalf("shares adding up to the identity combined: %v", err)
	}
}
