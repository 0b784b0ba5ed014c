package pairing

import (
	"runtime"
	"syscall"
	"testing"
	"time"
)

// threadCPU returns the CPU time of the calling OS thread.
func threadCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cpuLoop runs fn b.N times on one locked thread and reports its CPU time
// per op ("cpu-ns/op"), which, unlike ns/op, barely grows when other
// processes share the cores.
func cpuLoop(b *testing.B, fn func()) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	start := threadCPU(b)
	n := 0
	for b.Loop() {
		fn()
		n++
	}
	b.ReportMetric(float64(threadCPU(b)-start)/float64(n), "cpu-ns/op")
}

// BenchmarkEngine measures the engine's primitives (Engine() names it).
func BenchmarkEngine(b *testing.B) {
	b.Logf("engine %s", Engine())
	p := eHashG1(DomainCS, []byte("x"))
	q := eHashG2(DomainCS, []byte("x"))
	s := sc(0)
	s.Random(seeded("bench"))
	pb, qb := eBytesG1(p), eBytesG2(q)
	lq := ePrepare(q)
	g := ePair([]*eG1{p}, []*eLines{lq})
	var r eG1
	b.Run("G1 mul (secret)", func(b *testing.B) {
		cpuLoop(b, func() {
			eMul(&r, s, p)
		})
	})
	b.Run("G1 mul (public)", func(b *testing.B) {
		cpuLoop(b, func() {
			eMulPublic(&r, s, p)
		})
	})
	b.Run("G2 mul (secret)", func(b *testing.B) {
		var r eG2
		cpuLoop(b, func() {
			eMulG2(&r, s, q)
		})
	})
	b.Run("G1 decode", func(b *testing.B) {
		cpuLoop(b, func() {
			if _, err := eDecodeG1(pb); err != nil {
				b.Fatal(err)
			}
		})
	})
	b.Run("G2 decode", func(b *testing.B) {
		cpuLoop(b, func() {
			if _, err := eDecodeG2(qb); err != nil {
				b.Fatal(err)
			}
		})
	})
	b.Run("G1 encode", func(b *testing.B) {
		cpuLoop(b, func() {
			eBytesG1(p)
		})
	})
	b.Run("H1", func(b *testing.B) {
		cpuLoop(b, func() {
			eHashG1(DomainCS, []byte("alice@example.com"))
		})
	})
	b.Run("H2", func(b *testing.B) {
		cpuLoop(b, func() {
			eHashG2(DomainP2P, []byte("node-b"))
		})
	})
	b.Run("prepare G2 lines", func(b *testing.B) {
		cpuLoop(b, func() {
			ePrepare(q)
		})
	})
	b.Run("pairing (prepared G2)", func(b *testing.B) {
		cpuLoop(b, func() {
			ePair([]*eG1{p}, []*eLines{lq})
		})
	})
	b.Run("2-pairing product (prepared G2)", func(b *testing.B) {
		cpuLoop(b, func() {
			ePair([]*eG1{p, p}, []*eLines{lq, lq})
		})
	})
	b.Run("GT exp", func(b *testing.B) {
		cpuLoop(b, func() {
			eGTExp(g, s)
		})
	})
	b.Run("GT encode", func(b *testing.B) {
		cpuLoop(b, func() {
			gtBytes(g)
		})
	})
}
