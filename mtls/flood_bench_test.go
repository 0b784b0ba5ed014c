package mtls_test

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/milagro-go/milagro/mtls"
	"github.com/milagro-go/milagro/pairing"
)

// A pairing flood, as a benchmark. A Milagro CS server on an
// mtls listener (127.0.0.1); one address, 127.0.0.2, sends bogus CS hellos
// (well-formed, fresh, with proofs that do not verify) as fast as it can
// with 256 in flight, from another process, while a legitimate client on
// 127.0.0.1 keeps connecting. Reported per sub-benchmark: the legitimate
// client's handshakes/s and its p50/p99 latency; "flooded" also reports
// the hellos the server refused per second. Other floods: "locked", bogus
// hellos of the legitimate client's own identity (the lockout refuses the
// flooding source for it, and charges the refusals to the source's
// budget); "locked-lockout-off", the same against a server without a
// lockout; "replay", one hello sent again and again. Each measures the
// steady flood, after the first burst every source may spend. Compare
// them with unflooded in one run:
//
//	go test -run='^$' -bench=CSFlood -benchtime=3s ./mtls
func BenchmarkCSFlood(b *testing.B) {
	for _, mode := range []string{"unflooded", "flooded", "locked", "locked-lockout-off", "replay"} {
		b.Run(mode, func(b *testing.B) { benchFlood(b, false, mode) })
	}
}

// BenchmarkP2PFlood: the same with Milagro P2P. The flooder (127.0.0.2,
// another process, 256 in flight) runs P2P handshakes with a key of other
// D-TAs: each ClientKeyExchange costs the server a pairing until the
// source's failure budget is spent (its Finished never verifies); the
// legitimate P2P client on 127.0.0.1 keeps connecting.
//
//	go test -run='^$' -bench=P2PFlood -benchtime=3s ./mtls
func BenchmarkP2PFlood(b *testing.B) {
	for _, mode := range []string{"unflooded", "p2p"} {
		b.Run(mode, func(b *testing.B) { benchFlood(b, true, mode) })
	}
}

func benchFlood(b *testing.B, p2p bool, mode string) {
	flood := mode != "unflooded"
	f := milFixtureFor(b)
	now := func() time.Time { return milNow }
	server := &mtls.Config{CSServerKeys: []*pairing.CSServerSecret{f.secret}, PermitMode: pairing.PermitsOptional, Time: now}
	client := &mtls.Config{CSKey: f.alice, Time: now}
	if mode == "locked-lockout-off" {
		server.DisableCSLockout = true
	}
	if p2p {
		server = &mtls.Config{P2PKey: f.nodeA, Time: now}
		client = &mtls.Config{P2PKey: f.nodeB, ServerIdentity: milNodeA, Time: now}
	}
	ln, err := mtls.Listen("tcp", "127.0.0.1:0", server)
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	addr := ln.Addr().String()
	var served sync.WaitGroup
	var refused atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			served.Add(1)
			go func() {
				defer served.Done()
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				if c.(*mtls.Conn).Handshake() == nil {
					c.Write([]byte{1})
				} else {
					refused.Add(1)
				}
			}()
		}
	}()

	if flood {
		// The attacker is another process (this test binary, see TestMain).
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		fm := mode
		switch fm {
		case "flooded":
			fm = ""
		case "locked-lockout-off":
			fm = "locked"
		}
		cmd.Env = append(os.Environ(), "MTLS_FLOODER_ADDR="+addr, "MTLS_FLOODER_MODE="+fm)
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
				b.ReportMetric(r, "flood-conns/s")
			}
		}()
		line := make([]byte, 6)
		if _, err := io.ReadFull(out, line); err != nil || string(line) != "ready\n" {
			b.Fatalf("flooder: %q %v", line, err)
		}
		time.Sleep(3 * time.Second) // past the first burst (every source starts with a whole budget): the steady flood
	}

	lat := make([]time.Duration, 0, b.N)
	conLat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	start := time.Now()
	refusedBefore := refused.Load()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		raw, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		conLat = append(conLat, time.Since(t0))
		c := mtls.Client(raw, client)
		one := make([]byte, 1)
		if _, err := c.Read(one); err != nil {
			b.Fatal(err)
		}
		c.Close()
		lat = append(lat, time.Since(t0))
	}
	el := time.Since(start)
	b.StopTimer()
	floodRate := float64(refused.Load()-refusedBefore) / el.Seconds()
	ln.Close()
	served.Wait()
	slices.Sort(lat)
	b.ReportMetric(float64(b.N)/el.Seconds(), "handshakes/s")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	slices.Sort(conLat)
	b.ReportMetric(float64(conLat[len(conLat)*99/100].Microseconds())/1000, "connect-p99-ms")
	if flood {
		b.ReportMetric(floodRate, "refused-hellos/s")
	}
}

// bogusHellos returns n ClientHello records, each from another identity
// (so no lockout stops them: only the per-source budget of failed proofs
// does), with milagro_cs proofs that are well formed but made with keys of
// D-TAs the server does not know.
func bogusHellos(f *milFixture, n int) [][]byte { return bogusHellosOf(f, "", n) }

// bogusHellosOf returns n bogus hellos of identity id ("": n identities).
func bogusHellosOf(f *milFixture, id string, n int) [][]byte {
	keys := make([]*pairing.CSClientKey, n)
	for i := range keys {
		var parts []*pairing.CSClientKey
		name := id
		if name == "" {
			name = fmt.Sprintf("flood-%d@example.com", i)
		}
		for _, s := range f.shares {
			k, err := s.IssueCSClientKey(name)
			if err != nil {
				panic(err)
			}
			parts = append(parts, k)
		}
		k, err := pairing.CombineCSClientKeys(parts...)
		if err != nil {
			panic(err)
		}
		keys[i] = k
	}
	out := make([][]byte, 0, n)
	for _, key := range keys {
		cfg := &mtls.Config{CSKey: key, Time: func() time.Time { return milNow }}
		c1, c2 := net.Pipe()
		go func() {
			cl := mtls.Client(c1, cfg)
			cl.SetDeadline(time.Now().Add(2 * time.Second))
			cl.Handshake()
		}()
		c2.SetDeadline(time.Now().Add(2 * time.Second))
		hdr := make([]byte, 5)
		if _, err := readFull(c2, hdr); err != nil {
			panic(err)
		}
		rec := make([]byte, int(hdr[3])<<8|int(hdr[4]))
		if _, err := readFull(c2, rec); err != nil {
			panic(err)
		}
		c2.Close()
		c1.Close()
		out = append(out, append(hdr, rec...))
	}
	return out
}
