//go:build cgo

package pairing

import "testing"

// BenchmarkBlstPairSeparate is the 2-pair product as two blst Miller loops
// multiplied together, next to ePair's shared accumulator
// (BenchmarkEngine/2-pairing_product).
func BenchmarkBlstPairSeparate(b *testing.B) {
	p := eHashG1(DomainCS, []byte("x"))
	lq := ePrepare(eHashG2(DomainCS, []byte("x")))
	b.Run("shared accumulator", func(b *testing.B) {
		cpuLoop(b, func() {
			ePair([]*eG1{p, p}, []*eLines{lq, lq})
		})
	})
	b.Run("two Miller loops", func(b *testing.B) {
		cpuLoop(b, func() {
			ePairSeparate([]*eG1{p, p}, []*eLines{lq, lq})
		})
	})
}

// BenchmarkBlstGTExp compares the Frobenius exponentiation (eGTExp) with
// plain 4-bit windows.
func BenchmarkBlstGTExp(b *testing.B) {
	g := ePair([]*eG1{eHashG1(DomainCS, []byte("x"))}, []*eLines{ePrepare(eHashG2(DomainCS, []byte("x")))})
	s := sc(0)
	s.Random(seeded("bench"))
	b.Run("Frobenius", func(b *testing.B) {
		cpuLoop(b, func() {
			eGTExp(g, s)
		})
	})
	b.Run("4-bit windows", func(b *testing.B) {
		cpuLoop(b, func() {
			eGTExpWindowed(g, s)
		})
	})
}
