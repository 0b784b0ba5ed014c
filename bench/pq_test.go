package bench

import (
	"crypto/mlkem"
	"runtime"
	"testing"
	"time"

	"github.com/milagro-go/milagro/mtls"
)

// BenchmarkPQHybridCost isolates the CPU the post-quantum hybrid adds to
// each side of a Milagro handshake: the ML-KEM-768 operations exactly as
// the key exchange runs them (client: a key pair from a 64-byte seed, its
// encapsulation key encoded, then decapsulation; server: the encapsulation
// key parsed with the FIPS 203 modulus check, then encapsulation). Thread
// CPU time, so it holds when other processes share the cores; compare with
// BenchmarkHandshake's MilagroCS and MilagroCSClassic for the whole
// handshake (which adds hashing 2,284 more transcript bytes).
func BenchmarkPQHybridCost(b *testing.B) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	seed := make([]byte, mlkem.SeedSize)
	var client, server time.Duration
	ok := true
	for i := 0; b.Loop(); i++ {
		seed[0], seed[1] = byte(i), byte(i>>8)
		t0, ok0 := threadCPU()
		dk, err := mlkem.NewDecapsulationKey768(seed)
		if err != nil {
			b.Fatal(err)
		}
		ekb := dk.EncapsulationKey().Bytes()
		t1, ok1 := threadCPU()
		ek, err := mlkem.NewEncapsulationKey768(ekb)
		if err != nil {
			b.Fatal(err)
		}
		_, ct := ek.Encapsulate()
		t2, ok2 := threadCPU()
		if _, err := dk.Decapsulate(ct); err != nil {
			b.Fatal(err)
		}
		t3, ok3 := threadCPU()
		client += (t1 - t0) + (t3 - t2)
		server += t2 - t1
		ok = ok && ok0 && ok1 && ok2 && ok3
	}
	if ok {
		b.ReportMetric(float64(client)/float64(b.N)/1e6, "client-ms/op")
		b.ReportMetric(float64(server)/float64(b.N)/1e6, "server-ms/op")
	}
}

// BenchmarkHandshakePQ compares hybrid and classic full handshakes in the
// same run, alternating one of each per iteration so that changes in the
// machine's load hit both alike. It reports each side's thread CPU per
// handshake for both modes and their difference (the cost of the hybrid),
// and the bytes on the wire of each.
func BenchmarkHandshakePQ(b *testing.B) {
	k := benchKeys(b)
	for _, tc := range []struct {
		name           string
		client, server *mtls.Config
	}{
		{"MilagroCS", &mtls.Config{CipherSuites: []uint16{0xFF01}, CSKey: k.csKey, ServerName: "bench"},
			&mtls.Config{CipherSuites: []uint16{0xFF01}, CSServerSecret: k.secret}},
		{"MilagroP2P", &mtls.Config{CipherSuites: []uint16{0xFF11}, P2PKey: k.nodeB, ExpectedServerIdentity: "node-a", ServerName: "bench"},
			&mtls.Config{CipherSuites: []uint16{0xFF11}, P2PKey: k.nodeA}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			classicServer, classicClient := tc.server.Clone(), tc.client.Clone()
			classicServer.PostQuantum, classicClient.PostQuantum = mtls.PostQuantumOff, mtls.PostQuantumOff
			hybrid, classic := startServer(b, tc.server), startServer(b, classicServer)
			ha, ca := hybrid.l.Addr().String(), classic.l.Addr().String()
			// Warm up both.
			if _, _, err := dialOnce(ha, tc.client); err != nil {
				b.Fatal(err)
			}
			if _, _, err := dialOnce(ca, classicClient); err != nil {
				b.Fatal(err)
			}
			hybrid.wg.Wait()
			classic.wg.Wait()
			for _, s := range []*server{hybrid, classic} {
				s.cpu.Store(0)
				s.n.Store(0)
			}
			var hc, cc time.Duration
			var hBytes, cBytes int64
			ok := true
			b.ResetTimer()
			for range b.N {
				wireBytes.Store(0)
				d, dok, err := dialOnce(ha, tc.client)
				if err != nil {
					b.Fatal(err)
				}
				hc, hBytes = hc+d, hBytes+wireBytes.Load()
				wireBytes.Store(0)
				d2, dok2, err := dialOnce(ca, classicClient)
				if err != nil {
					b.Fatal(err)
				}
				cc, cBytes = cc+d2, cBytes+wireBytes.Load()
				ok = ok && dok && dok2
			}
			b.StopTimer()
			hybrid.stop(b)
			classic.stop(b)
			n := float64(b.N)
			if ok && !hybrid.noCPU.Load() && !classic.noCPU.Load() {
				hs := float64(hybrid.cpu.Load()) / float64(hybrid.n.Load()) / 1e6
				cs := float64(classic.cpu.Load()) / float64(classic.n.Load()) / 1e6
				b.ReportMetric(hs, "hybrid-server-ms/op")
				b.ReportMetric(cs, "classic-server-ms/op")
				b.ReportMetric(hs-cs, "pq-server-ms/op")
				b.ReportMetric(float64(hc)/n/1e6, "hybrid-client-ms/op")
				b.ReportMetric(float64(cc)/n/1e6, "classic-client-ms/op")
				b.ReportMetric(float64(hc-cc)/n/1e6, "pq-client-ms/op")
			}
			b.ReportMetric(float64(hBytes)/n, "hybrid-wire-bytes/op")
			b.ReportMetric(float64(cBytes)/n, "classic-wire-bytes/op")
		})
	}
}
