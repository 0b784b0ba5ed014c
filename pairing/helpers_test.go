package pairing

import (
	"encoding/hex"
	"testing"

	"github.com/cloudflare/circl/ecc/bls12381"
)

// sc builds a scalar from a fixed value (tests and KAT generation only).
func sc(v uint64) *bls12381.Scalar {
	s := new(bls12381.Scalar)
	s.SetUint64(v)
	return s
}

// scHex builds a scalar from big-endian hex (tests only; SetBytes is not
// constant time).
func scHex(t testing.TB, h string) *bls12381.Scalar {
	b, err := hex.DecodeString(h)
	if err != nil {
		t.Fatal(err)
	}
	s := new(bls12381.Scalar)
	s.SetBytes(b)
	return s
}

func hx(b []byte) string { return hex.EncodeToString(b) }

func unhex(t testing.TB, s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func shareOf(v uint64) *MasterShare { return &MasterShare{s: *sc(v)} }
