package proxy

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Slowloris from several sources: 2,000 connections spread over 8 source
// addresses (127.0.0.2 … 127.0.0.9), from another process, that never send
// a byte ("silent") or send a ClientHello one byte every 500 ms ("drip"),
// and reconnect at once when the proxy closes them. A legitimate client on
// 127.0.0.1 keeps connecting (PSK handshake, one byte through the target
// and back). The handshake slots are shared fairly between sources, so the
// crowd cannot keep it out. Reported: the share of its handshakes that
// succeeded ("ok-%"), its handshakes/s and p50/p99 latency.
//
//	go test -run='^$' -bench=ProxySlowloris8 -benchtime=300x ./proxy
func BenchmarkProxySlowloris8Sources(b *testing.B) {
	for _, mode := range []string{"quiet", "silent", "drip"} {
		b.Run(mode, func(b *testing.B) { benchSlowloris(b, mode) })
	}
}

const slowlorisConns, slowlorisSources = 2000, 8

func benchSlowloris(b *testing.B, mode string) {
	raiseNOFILE(b, uint64(3*slowlorisConns+1024))
	up := startUpstream(b, nil)
	s := &Server{Target: up.addr(), MaxConns: 1000, Logger: quietLogger(b)}
	addr := startServer(b, s, AllowAll())
	if mode != "quiet" {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "MTLS_SLOWLORIS_ADDR="+addr, "MTLS_SLOWLORIS_MODE="+mode)
		out, err := cmd.StdoutPipe()
		if err != nil {
			b.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		defer func() {
			cmd.Process.Signal(syscall.SIGTERM)
			rate, _ := io.ReadAll(out)
			cmd.Wait()
			if r, err := strconv.ParseFloat(strings.TrimSpace(string(rate)), 64); err == nil {
				b.ReportMetric(r, "attacker-reconnects/s")
			}
		}()
		line := make([]byte, 6)
		if _, err := io.ReadFull(out, line); err != nil || string(line) != "ready\n" {
			b.Fatalf("attacker: %q %v", line, err)
		}
		time.Sleep(time.Second) // let the crowd take every slot
	}
	held := s.slots.Len()
	lat := make([]time.Duration, 0, b.N)
	buf := []byte{1}
	ok := 0
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		c, err := dialMTLS(b, addr, "alice")
		if err != nil {
			continue
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write(buf); err == nil {
			if _, err := io.ReadFull(c, buf); err == nil {
				ok++
				lat = append(lat, time.Since(t0))
			}
		}
		c.Close()
	}
	el := time.Since(start)
	b.StopTimer()
	b.ReportMetric(100*float64(ok)/float64(b.N), "ok-%")
	b.ReportMetric(float64(ok)/el.Seconds(), "handshakes/s")
	if len(lat) > 0 {
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	}
	b.ReportMetric(float64(held), "slots-held-before")
}

// runSlowloris is the attacker process: slowlorisConns connections to addr
// over slowlorisSources source addresses, silent or dripping, each
// reconnected as soon as the server closes it, until SIGTERM; then it
// prints its reconnections per second.
func runSlowloris(addr, mode string) {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	var wg sync.WaitGroup
	var dials atomic.Int64
	var up sync.WaitGroup
	up.Add(slowlorisConns)
	start := time.Now()
	for i := 0; i < slowlorisConns; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+i%slowlorisSources))}, Timeout: time.Second}
			first := true
			for ctx.Err() == nil {
				c, err := d.DialContext(ctx, "tcp", addr)
				if first {
					up.Done()
					first = false
				}
				if err != nil {
					select {
					case <-ctx.Done():
					case <-time.After(10 * time.Millisecond):
					}
					continue
				}
				dials.Add(1)
				go func() { <-ctx.Done(); c.Close() }()
				if mode == "drip" {
					hello := []byte{22, 3, 1, 0x02, 0x00, 1, 0, 1, 0xfc, 3, 3}
					for j := 0; ctx.Err() == nil; j++ {
						if _, err := c.Write(hello[j%len(hello) : j%len(hello)+1]); err != nil {
							break
						}
						select {
						case <-ctx.Done():
						case <-time.After(500 * time.Millisecond):
						}
					}
				} else {
					io.Copy(io.Discard, c) // until the server closes it
				}
				c.Close()
			}
		}(i)
	}
	up.Wait()
	os.Stdout.WriteString("ready\n")
	wg.Wait()
	fmt.Printf("%.0f\n", float64(dials.Load()-slowlorisConns)/time.Since(start).Seconds())
}
