package proxy

import (
	"io"
	"net"
	"runtime"
	"testing"
	"time"
)

func stackInuse() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.StackInuse)
}

// TestIdleConnectionStacksStaySmall: an idle proxied connection keeps two
// goroutines on either side whose stacks stay as small as that of a
// goroutine parked in a plain Read, although data went through: the
// handshake runs on a goroutine that ends (detach) and each burst of data
// is moved on a short-lived one (waitedCopy). A stack grown once stays
// with a parked goroutine for good, so a regression doubles what idle
// connections cost.
func TestIdleConnectionStacksStaySmall(t *testing.T) {
	const n = 300
	// The initial stack of a goroutine (2 KiB; the race detector's
	// larger stack guard makes a parked goroutine's 4 KiB).
	base := 2048.0
	if raceEnabled {
		base = 4096
	}
	up := startUpstream(t, smallEcho)
	saddr := startServer(t, &Server{Target: up.addr(), Logger: quietLogger(t)}, NewACLMust(t, "alice"))
	caddr := startClient(t, &Client{Target: saddr, Logger: quietLogger(t)}, "alice")
	warm, err := net.Dial("tcp", caddr) // pools, code paths
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, warm, []byte("x"))
	warm.Close()
	before := stackInuse()
	g0 := runtime.NumGoroutine()
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := 0; i < n; i++ {
		c, err := net.Dial("tcp", caddr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		c.SetDeadline(time.Now().Add(30 * time.Second))
		// Data both ways, a few records of it: every forwarding path ran.
		for _, msg := range [][]byte{[]byte("x"), make([]byte, 40<<10)} {
			if _, err := c.Write(msg); err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadFull(c, make([]byte, len(msg))); err != nil {
				t.Fatalf("connection %d: %v", i, err)
			}
		}
	}
	time.Sleep(50 * time.Millisecond) // the last bursts' goroutines end
	per := float64(stackInuse()-before) / n
	goroutines := float64(runtime.NumGoroutine()-g0) / n
	t.Logf("%.1f goroutines and %.0f B of stack per idle connection", goroutines, per)
	// Two goroutines per proxy, one in the echo service.
	if goroutines > 5.1 {
		t.Fatalf("%.1f goroutines per idle connection, want 5 (2 per proxy, 1 in the service)", goroutines)
	}
	if limit := 5 * base * 1.2; per > limit {
		t.Fatalf("idle connections hold %.0f B of goroutine stacks each, want at most %.0f (5 goroutines of %.0f B)", per, limit, base)
	}
}

// smallEcho echoes through a small buffer on a shallow stack (io.Copy's
// would grow the service's goroutine, which the test counts too).
func smallEcho(c net.Conn) {
	var b [512]byte
	for {
		n, err := c.Read(b[:])
		if n > 0 {
			if _, werr := c.Write(b[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
