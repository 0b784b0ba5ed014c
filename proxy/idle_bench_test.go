package proxy

import (
	"bufio"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkProxyIdleMemStats reports what an idle proxied connection costs
// each proxy process in Go memory (runtime.MemStats HeapInuse+StackInuse,
// read from the process's own /metrics), with 1,000 connections through
// the pair: B/conn-server and B/conn-client. The target is 16 KiB or less.
// The processes run with GOGC=5 so that garbage left by the handshakes does
// not count as live memory.
func BenchmarkProxyIdleMemStats(b *testing.B) {
	const n = 1000
	raiseNOFILE(b, 8*n+256)
	for iter := 0; iter < b.N; iter++ {
		up := startUpstream(b, nil)
		saddr, caddr, sstat, cstat := freePort(b), freePort(b), freePort(b), freePort(b)
		env := append([]string{"GOGC=5"}, strings.Fields(os.Getenv("IDLE_BENCH_ENV"))...)
		startQuietEnv(b, env, saddr, "--log-level", "warn", "proxy", "server", "--listen", saddr, "--target", up.addr(),
			"--psk-file", writePSKFile(b), "--suites", "PSK-AES128-GCM-SHA256", "--allow", "alice", "--status", sstat)
		startQuietEnv(b, env, caddr, "--log-level", "warn", "proxy", "client", "--listen", caddr, "--target", saddr,
			"--psk-identity", "alice", "--psk", hex.EncodeToString(testKeys["alice"]), "--suites", "PSK-AES128-GCM-SHA256", "--status", cstat)
		open := func(k int) []net.Conn {
			cs := make([]net.Conn, 0, k)
			buf := make([]byte, 1)
			for i := 0; i < k; i++ {
				c, err := net.Dial("tcp", caddr)
				if err != nil {
					b.Fatal(err)
				}
				c.SetDeadline(time.Now().Add(30 * time.Second))
				if _, err := c.Write([]byte{'x'}); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(c, buf); err != nil {
					b.Fatalf("conn %d: %v", i, err)
				}
				cs = append(cs, c)
			}
			return cs
		}
		for _, c := range open(50) { // warm-up: pools, code paths
			c.Close()
		}
		time.Sleep(500 * time.Millisecond)
		s0, c0 := goMem(b, sstat), goMem(b, cstat)
		cs := open(n)
		time.Sleep(time.Second)
		s1, c1 := goMem(b, sstat), goMem(b, cstat)
		for _, c := range cs {
			c.Close()
		}
		b.ReportMetric(float64(s1-s0)/n, "B/conn-server")
		b.ReportMetric(float64(c1-c0)/n, "B/conn-client")
	}
}

// goMem returns HeapInuse+StackInuse of the process serving /metrics on addr.
func goMem(b *testing.B, addr string) int64 {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	var total int64
	found := 0
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && (f[0] == "go_memstats_heap_inuse_bytes" || f[0] == "go_memstats_stack_inuse_bytes" || (f[0] == "go_goroutines" && os.Getenv("IDLE_DEBUG") != "")) {
			if testing.Verbose() {
				b.Logf("%s %s", addr, sc.Text())
			}
			v, err := strconv.ParseFloat(f[1], 64)
			if err != nil {
				b.Fatal(err)
			}
			total += int64(v)
			found++
		}
	}
	if found < 2 {
		b.Fatalf("/metrics of %s lacks the memstats gauges", addr)
	}
	return total
}

func startQuietEnv(b *testing.B, env []string, addr string, args ...string) *proc {
	b.Helper()
	p := startProcEnv(b, env, args...)
	if !waitFor(10*time.Second, func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	}) {
		b.Fatalf("%v did not start:\n%s", args, p.output())
	}
	return p
}
