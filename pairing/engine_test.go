package pairing

import (
	"bytes"
	"errors"
	"os"
	"testing"
)

// TestEngineExpected checks that the binary runs the engine the build
// meant to use: the Makefile sets MILAGRO_EXPECT_ENGINE for each of its
// two test runs (blst with cgo, circl with CGO_ENABLED=0), and
// MILAGRO_EXPECT_PORTABLE=1 when it builds blst with __BLST_PORTABLE__.
func TestEngineExpected(t *testing.T) {
	got := Engine()
	if got != "blst" && got != "circl" {
		t.Fatalf("Engine() = %q", got)
	}
	if want := os.Getenv("MILAGRO_EXPECT_ENGINE"); want != "" && got != want {
		t.Fatalf("engine %q, want %q (MILAGRO_EXPECT_ENGINE)", got, want)
	}
	if os.Getenv("MILAGRO_EXPECT_PORTABLE") == "1" && !enginePortable {
		t.Fatal("blst built without __BLST_PORTABLE__: set CGO_CFLAGS=\"-O2 -D__BLST_PORTABLE__\"")
	}
	t.Logf("engine %s, portable %v", got, enginePortable)
}

// sameDecodeError reports whether two decoders' results put b in the same
// class: both accept it, or both reject it with the same sentinel error.
func sameDecodeError(errA, errB error) bool {
	if (errA == nil) != (errB == nil) {
		return false
	}
	for _, e := range elementErrs {
		if errors.Is(errA, e) != errors.Is(errB, e) {
			return false
		}
	}
	return true
}

// decodeCases returns encodings of every class: valid points, the
// hand-made rejects, and random x coordinates with the compression flag
// (about half of them on the curve but outside the subgroup, half off it).
func decodeCases(t testing.TB, size int) [][]byte {
	rnd := seeded("engine-decode")
	var out [][]byte
	if size == G1Size {
		for i := 0; i < 8; i++ {
			out = append(out, EncodeG1(H1(DomainCS, []byte{byte(i)})))
		}
		for _, tc := range badG1(t) {
			out = append(out, tc.b)
		}
	} else {
		for i := 0; i < 8; i++ {
			out = append(out, EncodeG2(H2(DomainP2P, []byte{byte(i)})))
		}
		for _, tc := range badG2(t) {
			out = append(out, tc.b)
		}
	}
	for i := 0; i < 64; i++ {
		b := make([]byte, size)
		rnd.Read(b)
		b[0] = b[0]&0x1f | flagCompressed | b[1]&flagSign
		if size == G2Size {
			b[48] &= 0x1f
		}
		out = append(out, b)
	}
	return out
}

// TestEngineDecodeClasses: the engine's decoders (blst after the Go-side
// format checks, or circl) accept and reject exactly what DecodeG1 and
// DecodeG2 do, with the same sentinel errors.
func TestEngineDecodeClasses(t *testing.T) {
	counts := map[string]int{}
	for _, b := range decodeCases(t, G1Size) {
		p, err := eDecodeG1(b)
		_, want := DecodeG1(b)
		if !sameDecodeError(err, want) {
			t.Fatalf("G1 %x: engine %v, Go %v", b, err, want)
		}
		if err == nil && !bytes.Equal(eBytesG1(p), b) {
			t.Fatalf("G1 %x re-encodes differently", b)
		}
		counts[classOf(err)]++
	}
	for _, b := range decodeCases(t, G2Size) {
		q, err := eDecodeG2(b)
		_, want := DecodeG2(b)
		if !sameDecodeError(err, want) {
			t.Fatalf("G2 %x: engine %v, Go %v", b, err, want)
		}
		if err == nil && !bytes.Equal(eBytesG2(q), b) {
			t.Fatalf("G2 %x re-encodes differently", b)
		}
		counts[classOf(err)]++
	}
	for _, c := range []string{"ok", "length", "non-canonical", "not on curve", "not in subgroup", "identity"} {
		if counts[c] == 0 {
			t.Errorf("no case of class %q", c)
		}
	}
	t.Logf("%s: %v", Engine(), counts)
}

func classOf(err error) string {
	for _, c := range []struct {
		e error
		n string
	}{{ErrLength, "length"}, {ErrNonCanonical, "non-canonical"}, {ErrNotOnCurve, "not on curve"},
		{ErrNotInSubgroup, "not in subgroup"}, {ErrIdentity, "identity"}} {
		if errors.Is(err, c.e) {
			return c.n
		}
	}
	if err == nil {
		return "ok"
	}
	return "other"
}

// FuzzEngineDecode checks the engine's decoders against the Go decoders on
// arbitrary input (the first byte picks G1 or G2).
func FuzzEngineDecode(f *testing.F) {
	for _, b := range decodeCases(f, G1Size)[:12] {
		f.Add(append([]byte{1}, b...))
	}
	for _, b := range decodeCases(f, G2Size)[:12] {
		f.Add(append([]byte{2}, b...))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) == 0 {
			return
		}
		b := in[1:]
		if in[0]&1 == 1 {
			p, err := eDecodeG1(b)
			_, want := DecodeG1(b)
			if !sameDecodeError(err, want) || (err == nil && !bytes.Equal(eBytesG1(p), b)) {
				t.Fatalf("G1 %x: engine %v, Go %v", b, err, want)
			}
			return
		}
		q, err := eDecodeG2(b)
		_, want := DecodeG2(b)
		if !sameDecodeError(err, want) || (err == nil && !bytes.Equal(eBytesG2(q), b)) {
			t.Fatalf("G2 %x: engine %v, Go %v", b, err, want)
		}
	})
}
