package dta

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/milagro-go/milagro/dta/dtaclient"
	"github.com/milagro-go/milagro/dta/dtawire"
	"github.com/milagro-go/milagro/mtls"
	"github.com/milagro-go/milagro/pairing"
)

// pgServerCPU is the CPU time used so far by every PostgreSQL process of
// the test server (postmaster and backends run as the test's pg user).
func pgServerCPU(b *testing.B) time.Duration {
	uid := pgSrv.UID()
	var total time.Duration
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		fi, err := os.Stat(d)
		if err != nil || int(fi.Sys().(*syscall.Stat_t).Uid) != uid {
			continue
		}
		data, err := os.ReadFile(d + "/stat")
		if err != nil {
			continue
		}
		s := string(data)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
		ut, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		total += time.Duration(ut+st) * time.Second / 100
	}
	return total
}

// BenchmarkReplicas compares, in one run, permit issuance by real `ta
// serve` processes on SQLite (one process) and on PostgreSQL with one and
// two replicas, audit chain on (each replica seals every 2 s). Every fetch
// is what an endpoint does once a day: a new connection, a full ECDHE_PSK
// handshake, one permit, the permit share decoded and checked. Clients
// spread their requests over the replicas. Reported: permits/s (wall),
// the replicas', PostgreSQL's and the client's CPU per permit.
func BenchmarkReplicas(b *testing.B) {
	benchReplicas(b, func(b *testing.B, r *dtaclient.Renewal, today uint64) func() error {
		return func() error {
			_, _, err := dtaclient.FetchPermits(context.Background(), nil, r, []uint64{today})
			return err
		}
	})
}

// BenchmarkReplicasKeptAlive is BenchmarkReplicas with each client keeping
// its connection open across fetches (HTTP keep-alive, as contract 1.2
// allows for up to 5 minutes, each request re-checking the credential):
// no handshake per permit. Not the daily load of endpoints, which each
// fetch once: it shows what a replica costs per permit besides the
// handshake.
func BenchmarkReplicasKeptAlive(b *testing.B) {
	benchReplicas(b, func(b *testing.B, r *dtaclient.Renewal, today uint64) func() error {
		d := &r.DTAs[0]
		fp, err := pairing.ParseFingerprint(d.Fingerprint)
		if err != nil {
			b.Fatal(err)
		}
		c, err := d.Credential(false)
		if err != nil {
			b.Fatal(err)
		}
		cfg := &mtls.Config{CipherSuites: dtawire.Suites, PSKIdentity: c.Identity, PSK: c.PSK, ServerName: c.ServerName}
		hc := &http.Client{Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var dl net.Dialer
				raw, err := dl.DialContext(ctx, "tcp", d.Address)
				if err != nil {
					return nil, err
				}
				tc := mtls.Client(raw, cfg)
				if err := tc.HandshakeContext(ctx); err != nil {
					raw.Close()
					return nil, err
				}
				return tc, nil
			},
			MaxIdleConnsPerHost: 1,
		}}
		b.Cleanup(hc.CloseIdleConnections)
		body := fmt.Sprintf(`{"days":[%d]}`, today)
		return func() error {
			resp, err := hc.Post("http://dta/v1/permits", "application/json", strings.NewReader(body))
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			var out dtawire.PermitsResponse
			if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
				return err
			}
			if resp.StatusCode != http.StatusOK || len(out.Permits) != 1 {
				return fmt.Errorf("status %d, %d permits", resp.StatusCode, len(out.Permits))
			}
			_, err = dtawire.DecodePermit(fp, r.Identity, out.Permits[0])
			return err
		}
	})
}

// benchReplicas runs the three set-ups; fetcher makes one client's fetch
// function (clients are made in parallel, one per goroutine).
func benchReplicas(b *testing.B, fetcher func(b *testing.B, r *dtaclient.Renewal, today uint64) func() error) {
	for _, tc := range []struct {
		name     string
		pg       bool
		replicas int
	}{{"sqlite-1", false, 1}, {"postgres-1", true, 1}, {"postgres-2", true, 2}} {
		b.Run(tc.name, func(b *testing.B) {
			root := b.TempDir()
			var d *dtaDir
			if tc.pg {
				d = newPGDTADir(b, root, 1)
			} else {
				d = newDTADir(b, root, 1)
			}
			var ps []*serveProc
			profDir := os.Getenv("DTA_BENCH_PROFILE")
			for range tc.replicas {
				if profDir != "" {
					ps = append(ps, d.serve(b, "--status-pprof"))
				} else {
					ps = append(ps, d.serve(b))
				}
			}
			b.Cleanup(func() {
				if b.Failed() {
					for i, p := range ps {
						b.Logf("replica %d log:\n%s", i, p.log.String())
					}
				}
			})
			e, err := dtaclient.Enroll(context.Background(), nil, []dtaclient.DTACode{{Address: ps[0].addr, Code: parseCode(b, d.code(b, "client", "bench"))}})
			if err != nil {
				b.Fatal(err)
			}
			today := pairing.Day(time.Now())
			cpu := func() (srv, db time.Duration) {
				for _, p := range ps {
					srv += procCPU(b, p.cmd.Process.Pid)
				}
				if tc.pg {
					db = pgServerCPU(b)
				}
				return
			}
			srv0, db0 := cpu()
			cli0 := procCPU(b, os.Getpid())
			profDone := profileReplicas(b, profDir, tc.name, ps)
			t0 := time.Now()
			b.SetParallelism(4)
			var next atomic.Int64
			b.RunParallel(func(pb *testing.PB) {
				fetch := fetcher(b, at(e.Renewal, ps[int(next.Add(1))%len(ps)].addr), today)
				for pb.Next() {
					if err := fetch(); err != nil {
						b.Error(err)
						return
					}
				}
			})
			wall := time.Since(t0)
			<-profDone
			srv1, db1 := cpu()
			cli1 := procCPU(b, os.Getpid())
			n := float64(b.N)
			b.ReportMetric(n/wall.Seconds(), "permits/s")
			b.ReportMetric(float64((srv1-srv0).Microseconds())/n, "replica-cpu-µs/permit")
			b.ReportMetric(float64((db1-db0).Microseconds())/n, "db-cpu-µs/permit")
			// The client: its handshakes, and decoding and checking the
			// permit shares (what every endpoint pays).
			b.ReportMetric(float64((cli1-cli0).Microseconds())/n, "client-cpu-µs/permit")
			for _, p := range ps {
				p.term(b)
			}
			out := verifyAuditCLI(b, d)
			if !strings.Contains(out, "verified") {
				b.Fatal(out)
			}
		})
	}
}

// profileReplicas, when DTA_BENCH_PROFILE names a directory, takes a CPU
// profile of each replica (DTA_BENCH_PROFILE_SECONDS long, default 2: run
// enough iterations to cover it) into DIR/NAME-replicaI.pprof. The
// returned channel is closed when the profiles are written.
func profileReplicas(b *testing.B, dir, name string, ps []*serveProc) <-chan struct{} {
	done := make(chan struct{})
	if dir == "" {
		close(done)
		return done
	}
	secs := os.Getenv("DTA_BENCH_PROFILE_SECONDS")
	if secs == "" {
		secs = "2"
	}
	var wg sync.WaitGroup
	for i, p := range ps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.Get("http://" + p.status + "/debug/pprof/profile?seconds=" + secs)
			if err != nil {
				b.Error(err)
				return
			}
			defer resp.Body.Close()
			data, err := io.ReadAll(resp.Body)
			if err != nil {
				b.Error(err)
				return
			}
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%s-replica%d.pprof", name, i)), data, 0o644); err != nil {
				b.Error(err)
			}
		}()
	}
	go func() { wg.Wait(); close(done) }()
	return done
}
