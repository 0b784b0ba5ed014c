package pairing

import (
	"os"
	"runtime"
	"syscall"
	"testing"
	"time"
)

// TestCPUTime reports the thread CPU time per handshake side, which, unlike
// the wall time of a benchmark, does not grow when other processes share
// the cores. Run with PAIRING_CPUTIME=1 go test -run CPUTime -v ./pairing.
func TestCPUTime(t *testing.T) {
	if os.Getenv("PAIRING_CPUTIME") == "" {
		t.Skip("set PAIRING_CPUTIME=1")
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cpu := func() time.Duration {
		var ru syscall.Rusage
		if err := syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru); err != nil {
			t.Fatal(err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	measure := func(name string, n int, fn func()) {
		fn()
		start := cpu()
		for i := 0; i < n; i++ {
			fn()
		}
		t.Logf("%-28s %8.3f ms CPU/op", name, float64(cpu()-start)/float64(n)/1e6)
	}
	f := newFixture(t, seeded("cputime"))
	rnd := seeded("cputime-rand")
	c, _ := NewCSClient(f.alice, f.permit)
	hello, chs, _ := c.Hello(rnd, f.now, "")
	shs, err := f.server.Accept(rnd, hello)
	if err != nil {
		t.Fatal(err)
	}
	w := shs.W()
	r, _, _ := chs.Finish(rnd, w)
	const n = 50
	measure("CS client total", n, func() {
		_, hs, _ := c.Hello(rnd, f.now, "")
		if _, _, err := hs.Finish(rnd, w); err != nil {
			t.Fatal(err)
		}
	})
	measure("CS server total (new id)", n, func() {
		f.server.points.reset()
		hs, err := f.server.Accept(rnd, hello)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := hs.Finish(r); err != nil {
			t.Fatal(err)
		}
	})
	measure("CS server total", n, func() {
		hs, err := f.server.Accept(rnd, hello)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := hs.Finish(r); err != nil {
			t.Fatal(err)
		}
	})
	ps, _ := NewP2PServer(f.nodeA)
	pc, _ := NewP2PClient(f.nodeB)
	phs, _ := ps.Start(rnd)
	xS := phs.X()
	wC, yC, _, _ := pc.Respond(rnd, "node-a", "node-a", xS)
	measure("P2P client total", n, func() {
		if _, _, _, err := pc.Respond(rnd, "node-a", "node-a", xS); err != nil {
			t.Fatal(err)
		}
	})
	measure("P2P server total (new peer)", n, func() {
		ps.peers.reset()
		h, _ := ps.Start(rnd)
		if _, err := h.Finish("node-b", wC, yC); err != nil {
			t.Fatal(err)
		}
	})
	measure("P2P server total", n, func() {
		h, _ := ps.Start(rnd)
		if _, err := h.Finish("node-b", wC, yC); err != nil {
			t.Fatal(err)
		}
	})
}
