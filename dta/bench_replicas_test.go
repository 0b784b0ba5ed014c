package dta

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
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
			for range tc.replicas {
				ps = append(ps, d.serve(b))
			}
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
