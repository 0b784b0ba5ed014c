package dta

import (
	"context"
	"fmt"
	"io"
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
// two replicas, audit chain on (each replica seals every 2 s). Clients
// spread their requests over the replicas. Reported: permits/s (wall),
// the replicas' CPU per permit and PostgreSQL's CPU per permit.
func BenchmarkReplicas(b *testing.B) {
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
			profDone := profileReplicas(b, profDir, tc.name, ps)
			t0 := time.Now()
			b.SetParallelism(4)
			var next atomic.Int64
			b.RunParallel(func(pb *testing.PB) {
				r := at(e.Renewal, ps[int(next.Add(1))%len(ps)].addr)
				for pb.Next() {
					if _, _, err := dtaclient.FetchPermits(context.Background(), nil, r, []uint64{today}); err != nil {
						b.Error(err)
						return
					}
				}
			})
			wall := time.Since(t0)
			<-profDone
			srv1, db1 := cpu()
			n := float64(b.N)
			b.ReportMetric(n/wall.Seconds(), "permits/s")
			b.ReportMetric(float64((srv1-srv0).Microseconds())/n, "replica-cpu-µs/permit")
			b.ReportMetric(float64((db1-db0).Microseconds())/n, "db-cpu-µs/permit")
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
