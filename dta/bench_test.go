package dta

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/milagro-go/milagro/dta/dtaclient"
	"github.com/milagro-go/milagro/dta/dtawire"
	"github.com/milagro-go/milagro/mtls"
	"github.com/milagro-go/milagro/pairing"
)

// BenchmarkPermitIssuance measures one D-TA answering POST /v1/permits for
// one day per request, the whole path: a new ECDHE_PSK handshake per
// request (the PSK unsealed from the store), HTTP, the revocation check and
// the audit entry committed in SQLite, and the permit share. Reported as
// permits/s across parallel clients.
func BenchmarkPermitIssuance(b *testing.B) {
	for _, sync := range []string{"NORMAL", "FULL"} {
		b.Run("synchronous="+sync, func(b *testing.B) {
			d := startDTASync(b, sync)
			e, err := dtaclient.Enroll(context.Background(), nil, codesFor(b, []*testDTA{d}, dtawire.KindClient, "bench"))
			if err != nil {
				b.Fatal(err)
			}
			today := pairing.Day(time.Now())
			b.ReportAllocs()
			b.SetParallelism(4)
			start := time.Now()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				r := *e.Renewal
				r.DTAs = append([]dtaclient.RenewalDTA(nil), e.Renewal.DTAs...)
				for pb.Next() {
					if _, _, err := dtaclient.FetchPermits(context.Background(), nil, &r, []uint64{today}); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "permits/s")
		})
	}
}

// BenchmarkPermitShare is the permit share alone (hash to G1, one scalar
// multiplication, encoding): the ceiling of BenchmarkPermitIssuance.
func BenchmarkPermitShare(b *testing.B) {
	m, err := pairing.NewMasterShare(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := issuePermit(m, "alice@example.com", 20000+uint64(i%2)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEnroll measures one enrollment at one D-TA: the operator creates
// a code (sealed, audited), the endpoint redeems it over TLS (share,
// permits for today and tomorrow, renewal secret, audit, all committed).
func BenchmarkEnroll(b *testing.B) {
	d := startDTASync(b, "FULL")
	b.ReportAllocs()
	for b.Loop() {
		codes := codesFor(b, []*testDTA{d}, dtawire.KindClient, "bench-enroll")
		if _, err := dtaclient.Enroll(context.Background(), nil, codes); err != nil {
			b.Fatal(err)
		}
	}
}

// procCPU returns the user+system CPU time a process has used so far.
func procCPU(b *testing.B, pid int) time.Duration {
	b.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	s := string(data)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100 // USER_HZ
}

// BenchmarkPermitIssuanceProcess runs the D-TA as a real `mtls ta serve`
// process and measures the CPU time it spends per permit (handshake, HTTP,
// store, share), so that its capacity on 2 cores can be read off even on a
// shared, loaded machine: permits/s-2cores = 2 s / (CPU time per permit).
// days=1 is one permit per request (the worst case), days=2 is the
// client's usual today-and-tomorrow request.
func BenchmarkPermitIssuanceProcess(b *testing.B) {
	root := b.TempDir()
	d := newDTADir(b, root, 1)
	p := d.serve(b) // synchronous=NORMAL (see serve): the process-crash guarantee
	st, err := OpenStore(d.db, nil)
	if err != nil {
		b.Fatal(err)
	}
	c, err := st.CreateCode(dtawire.KindClient, "bench", time.Hour, "bench")
	st.Close()
	if err != nil {
		b.Fatal(err)
	}
	e, err := dtaclient.Enroll(context.Background(), nil, []dtaclient.DTACode{{Address: p.addr, Code: c}})
	if err != nil {
		b.Fatal(err)
	}
	today := pairing.Day(time.Now())
	for _, days := range [][]uint64{{today}, {today, today + 1}} {
		b.Run(fmt.Sprintf("days=%d", len(days)), func(b *testing.B) {
			b.ReportAllocs()
			b.SetParallelism(4)
			cpu0, t0 := procCPU(b, p.cmd.Process.Pid), time.Now()
			b.RunParallel(func(pb *testing.PB) {
				r := *e.Renewal
				r.DTAs = append([]dtaclient.RenewalDTA(nil), e.Renewal.DTAs...)
				for pb.Next() {
					if _, _, err := dtaclient.FetchPermits(context.Background(), nil, &r, days); err != nil {
						b.Error(err)
						return
					}
				}
			})
			cpu := procCPU(b, p.cmd.Process.Pid) - cpu0
			permits := float64(b.N * len(days))
			b.ReportMetric(permits/time.Since(t0).Seconds(), "permits/s-wall")
			if cpu > 0 {
				b.ReportMetric(float64(cpu.Microseconds())/permits, "server-cpu-µs/permit")
				b.ReportMetric(2*permits/cpu.Seconds(), "permits/s-2cores")
			}
		})
	}
}

// BenchmarkRenewalUnderFlood: a renewal (POST /v1/permits) from 127.0.0.1
// while 256 silent connections from 127.0.0.2-5 are kept up against the
// D-TA (they reconnect whenever the D-TA closes one). The target of
// contract 1.2 is under 2 s per renewal.
func BenchmarkRenewalUnderFlood(b *testing.B) {
	d := startDTA(b, nil)
	e, err := dtaclient.Enroll(context.Background(), nil, codesFor(b, []*testDTA{d}, dtawire.KindClient, "bench"))
	if err != nil {
		b.Fatal(err)
	}
	stop := make(chan struct{})
	wg := silentFlood(d.addr, []string{"127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"}, 64, stop)
	defer func() { close(stop); wg.Wait() }()
	for deadline := time.Now().Add(30 * time.Second); d.srv.adm.slots.Len() < 256; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatalf("the flood holds only %d slots", d.srv.adm.slots.Len())
		}
	}
	today := pairing.Day(time.Now())
	b.ResetTimer()
	var worst time.Duration
	for b.Loop() {
		t0 := time.Now()
		if _, _, err := dtaclient.FetchPermits(context.Background(), nil, e.Renewal, []uint64{today}); err != nil {
			b.Fatal(err)
		}
		worst = max(worst, time.Since(t0))
	}
	b.ReportMetric(worst.Seconds(), "worst-s")
}

// BenchmarkRenewalUnderIPv6Flood: GET /v1/info with a renewal credential
// from 2001:db8:0:2::1 while 256 silent connections from 256 addresses of
// one /64 (2001:db8:0:1::/64) are held open (in-memory connections with
// those remote addresses).
func BenchmarkRenewalUnderIPv6Flood(b *testing.B) {
	d := startDTA(b, nil)
	e, err := dtaclient.Enroll(context.Background(), nil, codesFor(b, []*testDTA{d}, dtawire.KindClient, "v6bench"))
	if err != nil {
		b.Fatal(err)
	}
	pl := newPipeListener()
	go d.srv.Serve(pl)
	defer pl.Close()
	for i := range 256 {
		c, err := pl.dial(fmt.Sprintf("2001:db8:0:1::%x", i+1))
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
	}
	cr, _ := e.Renewal.DTAs[0].Credential(false)
	b.ResetTimer()
	var worst time.Duration
	for i := 0; b.Loop(); i++ {
		t0 := time.Now()
		c, err := pl.dial(fmt.Sprintf("2001:db8:0:%x::1", i+2))
		if err != nil {
			b.Fatal(err)
		}
		if st, err := infoOver(c, cr, nil, 30*time.Second); err != nil || st != 200 {
			b.Fatalf("%d %v", st, err)
		}
		worst = max(worst, time.Since(t0))
	}
	b.ReportMetric(worst.Seconds(), "worst-s")
}

// countWriter counts the bytes written to it.
type countWriter struct{ n atomic.Int64 }

func (w *countWriter) Write(p []byte) (int, error) { w.n.Add(int64(len(p))); return len(p), nil }

// BenchmarkRefusalLogBytes: log bytes written while refused connections (a
// handshake naming an unknown 60 KB PSK identity) arrive from 4 sources;
// the lines are rate-limited per interval, so the log grows with time, not
// with the number of connections (contract target: ≤ 1 MB in a 30 s flood).
func BenchmarkRefusalLogBytes(b *testing.B) {
	var w countWriter
	d := startDTACfg(b, nil, "NORMAL", ServerConfig{PermitAhead: 1, Logger: slog.New(slog.NewTextHandler(&w, nil))})
	long := "renew:client:" + strings.Repeat("x", 60000)
	b.ResetTimer()
	start := time.Now()
	for i := 0; b.Loop(); i++ {
		dl := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+i%4))}}
		raw, err := dl.Dial("tcp", d.addr)
		if err != nil {
			continue
		}
		raw.SetDeadline(time.Now().Add(10 * time.Second))
		mtls.Client(raw, &mtls.Config{CipherSuites: dtawire.Suites, PSKIdentity: long, PSK: make([]byte, 32)}).Handshake()
		raw.Close()
	}
	b.StopTimer()
	d.srv.quiet.flush()
	b.ReportMetric(float64(w.n.Load()), "logB-total")
	b.ReportMetric(time.Since(start).Seconds(), "s-flood")
}
