package mtls_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/milagro-go/milagro/mtls"
)

// TestMain lets the test binary double as the flooding process of
// BenchmarkCSFlood: an attacker is another process, so its goroutines must
// not share the server's scheduler.
func TestMain(m *testing.M) {
	if addr := os.Getenv("MTLS_FLOODER_ADDR"); addr != "" {
		runFlooder(addr, os.Getenv("MTLS_FLOODER_MODE"))
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// runFlooder floods addr from 127.0.0.2 with 256 in flight until SIGTERM,
// then prints how many connections it made. mode: "" sends bogus CS hellos
// of 64 identities; "locked" bogus hellos of one identity (which the
// lockout soon refuses); "replay" one bogus hello again and again; "p2p"
// runs P2P handshakes with a key of other D-TAs (each costs the server a
// pairing until the guards refuse the source).
func runFlooder(addr, mode string) {
	f, err := newMilFixture() // its own D-TAs: every proof is bogus to the server
	if err != nil {
		panic(err)
	}
	var hellos [][]byte
	switch mode {
	case "locked":
		hellos = bogusHellosOf(f, milAlice, 64)
	case "replay":
		hellos = bogusHellos(f, 1)
	case "p2p":
	default:
		hellos = bogusHellos(f, 64)
	}
	p2p := &mtls.Config{P2PKey: f.nodeB, ServerIdentity: milNodeA}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}, Timeout: time.Second}
	var wg sync.WaitGroup
	var conns atomic.Int64
	start := time.Now()
	os.Stdout.WriteString("ready\n")
	for i := 0; i < 256; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			buf := make([]byte, 64)
			for n := i; ctx.Err() == nil; n++ {
				c, err := d.DialContext(ctx, "tcp", addr)
				if err != nil {
					continue
				}
				c.SetDeadline(time.Now().Add(2 * time.Second))
				if mode == "p2p" {
					mtls.Client(c, p2p).Handshake()
				} else {
					c.Write(hellos[n%len(hellos)])
					c.Read(buf)
				}
				c.Close()
				conns.Add(1)
			}
		}(i)
	}
	wg.Wait()
	fmt.Printf("%.0f\n", float64(conns.Load())/time.Since(start).Seconds())
}
