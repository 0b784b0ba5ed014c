package ciphersuite

import (
	"crypto/rand"
	"testing"
)

// go test -run='^$' -bench=. -benchmem ./ciphersuite

func BenchmarkSeal16K(b *testing.B) {
	for _, s := range aeadSuites() {
		b.Run(aeadName(s), func(b *testing.B) {
			c := newTestCipher(b, s)
			pt := make([]byte, 1<<14)
			dst := make([]byte, 0, len(pt)+c.Overhead())
			b.SetBytes(int64(len(pt)))
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				c.Seal(dst, uint64(i), 23, 0x0303, pt)
			}
		})
	}
}

func BenchmarkOpen16K(b *testing.B) {
	for _, s := range aeadSuites() {
		b.Run(aeadName(s), func(b *testing.B) {
			c := newTestCipher(b, s)
			pt := make([]byte, 1<<14)
			rec := c.Seal(nil, 7, 23, 0x0303, pt)
			dst := make([]byte, 0, len(pt))
			b.SetBytes(int64(len(pt)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Open(dst, 7, 23, 0x0303, rec); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func aeadName(s *Suite) string {
	switch s.AEAD {
	case AES128GCM:
		return "AES-128-GCM"
	case AES256GCM:
		return "AES-256-GCM"
	}
	return "ChaCha20-Poly1305"
}

// BenchmarkECDHEPSK measures each side of one ECDHE_PSK key exchange
// (key generation, encoding, parsing, ECDH, pre-master secret).
func BenchmarkECDHEPSK(b *testing.B) {
	s := ByID(0xCCAC)
	for _, curve := range DefaultCurves() {
		cc := testClientConfig(curve)
		cc.Rand = rand.Reader
		sc := testServerConfig(curve)
		sc.Rand = rand.Reader
		hello := &ClientHelloInfo{Curves: []CurveID{curve}}
		sk0, _ := NewServerKX(sc, s, hello)
		ske, _ := sk0.GenerateServerKeyExchange()
		ck0, _ := NewClientKX(cc, []*Suite{s})
		ck0.ProcessServerKeyExchange(s, ske)
		cke, _, _ := ck0.GenerateClientKeyExchange(s)

		b.Run(curve.String()+"/client", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				ck, _ := NewClientKX(cc, []*Suite{s})
				if err := ck.ProcessServerKeyExchange(s, ske); err != nil {
					b.Fatal(err)
				}
				if _, _, err := ck.GenerateClientKeyExchange(s); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(curve.String()+"/server", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				sk, _ := NewServerKX(sc, s, hello)
				if _, err := sk.GenerateServerKeyExchange(); err != nil {
					b.Fatal(err)
				}
				// The CKE was made for sk0's key: the PMS differs, the work is the same.
				if _, err := sk.ProcessClientKeyExchange(cke); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
