//go:build cgo

package pairing

import "testing"

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
