// Command demo-ha (make demo-ha) shows D-TAs that outgrow one machine: two
// D-TAs, each run as two `mtls ta serve` replicas on one local PostgreSQL,
// each D-TA behind a small TCP load balancer (as a deployment would put its
// replicas behind one). An endpoint enrolls and keeps renewing its permits;
// one replica of each D-TA is killed with SIGKILL in the middle of the
// renewals, and the endpoint carries on through the survivors. At the end
// `ta audit --verify` checks both audit chains.
//
// Usage: go run ./scripts/demo-ha PATH-TO-MTLS-BINARY
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/milagro-go/milagro/internal/pgtest"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: demo-ha PATH-TO-MTLS-BINARY")
		os.Exit(2)
	}
	if err := run(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "demo-ha: FAILED:", err)
		os.Exit(1)
	}
}

type demo struct {
	mtls, dir string
	procs     []*exec.Cmd
}

func (d *demo) cmd(args ...string) (string, error) {
	out, err := exec.Command(d.mtls, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("mtls %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// replica starts `ta serve` and returns its process and address.
func (d *demo) replica(name, share, db string) (*exec.Cmd, string, error) {
	addrFile := filepath.Join(d.dir, name+".addr")
	logf, err := os.Create(filepath.Join(d.dir, name+".log"))
	if err != nil {
		return nil, "", err
	}
	c := exec.Command(d.mtls, "ta", "serve", "--master", share, "--listen", "127.0.0.1:0", "--addr-file", addrFile)
	c.Env = append(os.Environ(), "MTLS_DTA_DB="+db) // the URL stays out of argv
	c.Stdout, c.Stderr = logf, logf
	if err := c.Start(); err != nil {
		return nil, "", err
	}
	d.procs = append(d.procs, c)
	for range 600 {
		if b, err := os.ReadFile(addrFile); err == nil && len(b) > 0 {
			return c, strings.TrimSpace(string(b)), nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil, "", fmt.Errorf("%s did not start; see %s.log", name, name)
}

// balancer forwards each TCP connection to the next replica that accepts
// it (round robin; a dead replica is skipped on connection refused).
type balancer struct {
	ln       net.Listener
	backends []string
	next     atomic.Uint64
}

func newBalancer(backends []string) (*balancer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	b := &balancer{ln: ln, backends: backends}
	go b.serve()
	return b, nil
}

func (b *balancer) serve() {
	for {
		c, err := b.ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			start := b.next.Add(1)
			for i := range len(b.backends) {
				be := b.backends[(int(start)+i)%len(b.backends)]
				u, err := net.DialTimeout("tcp", be, 2*time.Second)
				if err != nil {
					continue
				}
				defer u.Close()
				go func() { io.Copy(u, c); u.(*net.TCPConn).CloseWrite() }()
				io.Copy(c, u)
				return
			}
		}()
	}
}

func run(mtls string) error {
	dir, err := os.MkdirTemp("", "mtls-demo-ha")
	if err != nil {
		return err
	}
	d := &demo{mtls: mtls, dir: dir}
	fmt.Println("== starting a local PostgreSQL (initdb in", dir+")")
	pg, err := pgtest.Start()
	if err != nil {
		return err
	}
	cleanup := func() {
		for _, p := range d.procs {
			p.Process.Kill()
			p.Wait()
		}
		pg.Destroy()
		os.RemoveAll(dir)
	}
	defer cleanup()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() { <-sig; cleanup(); os.Exit(130) }()

	type dtaInfo struct {
		share, db, lb string
		replicas      []*exec.Cmd
	}
	var dtas []*dtaInfo
	var codes []string
	for i := 1; i <= 2; i++ {
		di := &dtaInfo{share: filepath.Join(dir, fmt.Sprintf("dta%d.share", i))}
		if di.db, err = pg.NewDatabase(context.Background(), fmt.Sprintf("dta%d", i)); err != nil {
			return err
		}
		if _, err := d.cmd("ta", "init", "--out", di.share); err != nil {
			return err
		}
		out, err := d.cmd("ta", "init-db", "--master", di.share, "--db", di.db)
		if err != nil {
			return err
		}
		fmt.Print("== D-TA ", i, ": ", out)
		var addrs []string
		for r := 1; r <= 2; r++ {
			p, a, err := d.replica(fmt.Sprintf("dta%d-replica%d", i, r), di.share, di.db)
			if err != nil {
				return err
			}
			di.replicas = append(di.replicas, p)
			addrs = append(addrs, a)
			fmt.Printf("   replica %d serving on %s (pid %d)\n", r, a, p.Process.Pid)
		}
		lb, err := newBalancer(addrs)
		if err != nil {
			return err
		}
		di.lb = lb.ln.Addr().String()
		fmt.Printf("   load balancer %s -> %s\n", di.lb, strings.Join(addrs, ", "))
		codeFile := filepath.Join(dir, fmt.Sprintf("alice.dta%d.code", i))
		if _, err := d.cmd("ta", "enroll", "--db", di.db, "--kind", "client", "--id", "alice", "--out", codeFile); err != nil {
			return err
		}
		codes = append(codes, "--dta", di.lb+"=@"+codeFile) // codes from files, never in argv
		dtas = append(dtas, di)
	}
	fmt.Println("== alice enrolls with both D-TAs (through the load balancers)")
	args := append([]string{"keys", "enroll"}, codes...)
	args = append(args, "--out", filepath.Join(dir, "alice.key"), "--renewal", filepath.Join(dir, "alice.renewal"))
	if _, err := d.cmd(args...); err != nil {
		return err
	}

	fmt.Println("== alice's endpoints renew their permits in a loop (4 at once)")
	var ok, failed, okAfter atomic.Int64
	var killed atomic.Bool
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			outDir := filepath.Join(dir, fmt.Sprintf("permits%d", w))
			os.MkdirAll(outDir, 0o700)
			for ctx.Err() == nil {
				_, err := d.cmd("keys", "renew", "--renewal", filepath.Join(dir, "alice.renewal"), "--out-dir", outDir, "--timeout", "5s")
				if err != nil {
					failed.Add(1) // e.g. in flight on the killed replica: the endpoint tries again
					continue
				}
				ok.Add(1)
				if killed.Load() {
					okAfter.Add(1)
				}
			}
		}()
	}
	wait := func(cond func() bool) error {
		for range 1200 {
			if cond() {
				return nil
			}
			time.Sleep(50 * time.Millisecond)
		}
		return errors.New("timed out")
	}
	if err := wait(func() bool { return ok.Load() >= 8 }); err != nil {
		cancel()
		wg.Wait()
		return fmt.Errorf("renewals before the kill: %d ok, %d failed: %w", ok.Load(), failed.Load(), err)
	}
	fmt.Printf("== %d renewals done; SIGKILL replica 1 of each D-TA in the middle of the next ones\n", ok.Load())
	for i, di := range dtas {
		di.replicas[0].Process.Kill()
		di.replicas[0].Wait()
		fmt.Printf("   D-TA %d replica 1 (pid %d) killed\n", i+1, di.replicas[0].Process.Pid)
	}
	killed.Store(true)
	err = wait(func() bool { return okAfter.Load() >= 12 })
	cancel()
	wg.Wait()
	if err != nil {
		return fmt.Errorf("after the kill only %d renewals succeeded: %w", okAfter.Load(), err)
	}
	fmt.Printf("== the endpoints carried on: %d renewals after the kill through the surviving replicas (%d attempts failed and were tried again)\n", okAfter.Load(), failed.Load())
	for i, di := range dtas {
		for _, p := range di.replicas[1:] {
			p.Process.Signal(syscall.SIGTERM)
			p.Wait()
		}
		out, err := d.cmd("ta", "audit", "--db", di.db, "--verify")
		fmt.Printf("== D-TA %d: ta audit --verify\n%s", i+1, out)
		if err != nil {
			return err
		}
	}
	fmt.Println("== demo-ha passed")
	return nil
}
