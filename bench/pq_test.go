package bench

import (
	"crypto/mlkem"
	"runtime"
	"testing"
	"time"
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
