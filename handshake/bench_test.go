package handshake

import (
	"testing"

	"github.com/milagro-go/milagro/ciphersuite"
)

func benchmarkHandshake(b *testing.B, id uint16) {
	requireReal(b)
	ccfg, scfg := testConfigs([]*ciphersuite.Suite{ciphersuite.ByID(id)}, "")
	b.ReportAllocs()
	for b.Loop() {
		r := runPair(b, ccfg, scfg)
		if r.cerr != nil || r.serr != nil {
			b.Fatal(r.cerr, r.serr)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "handshakes/s")
}

// Full handshakes over the in-memory pipe (both sides, record protection
// of the Finished messages included).
func BenchmarkHandshakePSK_AES128GCM(b *testing.B)          { benchmarkHandshake(b, 0x00A8) }
func BenchmarkHandshakePSK_ChaCha20(b *testing.B)           { benchmarkHandshake(b, 0xCCAB) }
func BenchmarkHandshakeECDHEPSK_X25519_ChaCha(b *testing.B) { benchmarkHandshake(b, 0xCCAC) }
func BenchmarkHandshakeECDHEPSK_AES256GCM(b *testing.B)     { benchmarkHandshake(b, 0xD002) }

func BenchmarkHandshakeECDHEPSK_P256(b *testing.B) {
	requireReal(b)
	ccfg, scfg := testConfigs([]*ciphersuite.Suite{ciphersuite.ByID(0xD001)}, "")
	ccfg.KX.Curves = []ciphersuite.CurveID{ciphersuite.P256}
	b.ReportAllocs()
	for b.Loop() {
		r := runPair(b, ccfg, scfg)
		if r.cerr != nil || r.serr != nil {
			b.Fatal(r.cerr, r.serr)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "handshakes/s")
}

func BenchmarkPRFMasterSecret(b *testing.B) {
	s := ciphersuite.ByID(0x00A8)
	pms, h := make([]byte, 36), make([]byte, 32)
	for b.Loop() {
		extendedMasterSecret(s, pms, h)
	}
}
