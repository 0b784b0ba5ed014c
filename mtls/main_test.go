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
)

// TestMain lets the test binary double as the flooding process of
// BenchmarkCSFlood: an attacker is another process, so its goroutines must
// not share the server's scheduler.
func TestMain(m *testing.M) {
	if addr := os.Getenv("MTLS_FLOODER_ADDR"); addr != "" {
		runFlooder(addr)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// runFlooder sends bogus CS hellos to addr from 127.0.0.2 with 256 in
// flight until SIGTERM, then prints how many it sent.
func runFlooder(addr string) {
	f, err := newMilFixture() // its own D-TAs: every proof is bogus to the server
	if err != nil {
		panic(err)
	}
	hellos := bogusHellos(f, 64)
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
				c.Write(hellos[n%len(hellos)])
				c.Read(buf)
				c.Close()
				conns.Add(1)
			}
		}(i)
	}
	wg.Wait()
	fmt.Printf("%.0f\n", float64(conns.Load())/time.Since(start).Seconds())
}
