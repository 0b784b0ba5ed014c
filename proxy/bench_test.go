package proxy

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Side-by-side benchmarks of the proxy pair (mtls proxy client -> mtls proxy
// server, both as the built binary; "mtls" with the PSK suite, "mtls-cs" with
// TLS_MILAGRO_CS_WITH_AES_128_GCM_SHA256 and keys from two D-TAs) and an stunnel PSK pair
// (stunnel4 client -> stunnel4 server, PSK-AES128-GCM-SHA256, TLSv1.2), run
// by `make bench-proxy`:
//
//	BenchmarkProxyHandshakes  connection setup through the pair (handshakes/s)
//	BenchmarkProxyBulk1       one stream, client to service (MB/s)
//	BenchmarkProxyBulk8       eight parallel streams (MB/s, total)
//	BenchmarkProxyIdleRSS     RSS growth of each proxy process per idle
//	                          connection, 1,000 connections (KB/conn)
//
// Without /usr/bin/stunnel4 the stunnel half fails (make peers installs it).
//
// BenchmarkProxyIdleMemStats (idle_bench_test.go) reports the Go memory
// (HeapInuse+StackInuse) per idle connection of each proxy process.

const stunnelBin = "/usr/bin/stunnel4"

// pair is a running client+server proxy pair in front of a service.
type pair struct {
	local      string // plain TCP address of the client-side proxy
	clientPID  int
	serverPID  int
	close      func()
	pairLabel  string
	serviceAdr string
	// status listeners serving /debug/pprof (mtls pairs, with
	// PROXY_BENCH_PPROF set)
	clientStatus, serverStatus string
}

// profArgs are the extra flags of an mtls proxy process under
// PROXY_BENCH_PPROF: a status listener serving /debug/pprof.
func profArgs(b *testing.B) (addr string, args []string) {
	if os.Getenv("PROXY_BENCH_PPROF") == "" {
		return "", nil
	}
	addr = freePort(b)
	return addr, []string{"--status", addr, "--status-pprof"}
}

// profile, with PROXY_BENCH_PPROF=DIR, takes a CPU profile of each mtls
// proxy process of p while the benchmark runs (PROXY_BENCH_PPROF_SECONDS,
// default 5) and writes DIR/<benchmark>-{client,server}.pprof; the
// returned function waits for them. Inspect with go tool pprof.
func (p *pair) profile(b *testing.B) (wait func()) {
	dir := os.Getenv("PROXY_BENCH_PPROF")
	if dir == "" || p.clientStatus == "" {
		return func() {}
	}
	secs := os.Getenv("PROXY_BENCH_PPROF_SECONDS")
	if secs == "" {
		secs = "5"
	}
	var wg sync.WaitGroup
	for side, addr := range map[string]string{"client": p.clientStatus, "server": p.serverStatus} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.Get("http://" + addr + "/debug/pprof/profile?seconds=" + secs)
			if err != nil {
				b.Errorf("profile of the %s: %v", side, err)
				return
			}
			defer resp.Body.Close()
			name := strings.NewReplacer("/", "-").Replace(b.Name()) + "-" + side + ".pprof"
			f, err := os.Create(filepath.Join(dir, name))
			if err != nil {
				b.Error(err)
				return
			}
			defer f.Close()
			io.Copy(f, resp.Body)
		}()
	}
	return wg.Wait
}

func freePort(b testing.TB) string {
	ln := listenLocal(b)
	a := ln.Addr().String()
	ln.Close()
	return a
}

// startOurPair starts the built binary as proxy server and proxy client,
// logging warnings only (like stunnel's debug = 3 below).
func startOurPair(b *testing.B, service string) *pair {
	saddr, caddr := freePort(b), freePort(b)
	sstat, sprof := profArgs(b)
	cstat, cprof := profArgs(b)
	srv := startQuiet(b, saddr, append([]string{"--log-level", "warn", "proxy", "server", "--listen", saddr, "--target", service,
		"--psk-file", writePSKFile(b), "--suites", "PSK-AES128-GCM-SHA256", "--allow", "alice"}, sprof...)...)
	cli := startQuiet(b, caddr, append([]string{"--log-level", "warn", "proxy", "client", "--listen", caddr, "--target", saddr,
		"--psk-identity", "alice", "--psk", hex.EncodeToString(testKeys["alice"]), "--suites", "PSK-AES128-GCM-SHA256"}, cprof...)...)
	return &pair{local: caddr, clientPID: cli.cmd.Process.Pid, serverPID: srv.cmd.Process.Pid, pairLabel: "mtls",
		clientStatus: cstat, serverStatus: sstat}
}

// startOurCSPair is startOurPair with Milagro CS keys instead of a PSK.
// The client-side proxy resumes its sessions (tickets, on by default).
func startOurCSPair(b *testing.B, service string) *pair {
	return startOurCSPairArgs(b, service, "mtls-cs")
}

// startOurCSPairFull is startOurCSPair with resumption off (--no-tickets on
// the server side): every connection runs a full CS handshake.
func startOurCSPairFull(b *testing.B, service string) *pair {
	return startOurCSPairArgs(b, service, "mtls-cs-full", "--no-tickets")
}

// startOurCSPairClassic is startOurCSPairFull with the post-quantum hybrid
// off on the server side (--pq off), so every connection runs a classic
// full CS handshake: beside mtls-cs-full (hybrid, the default), the cost of
// the hybrid.
func startOurCSPairClassic(b *testing.B, service string) *pair {
	return startOurCSPairArgs(b, service, "mtls-cs-full-classic", "--no-tickets", "--pq", "off")
}

func startOurCSPairArgs(b *testing.B, service, label string, serverArgs ...string) *pair {
	server, clients := milagroKeys(b, "alice@example.com")
	saddr, caddr := freePort(b), freePort(b)
	sstat, sprof := profArgs(b)
	cstat, cprof := profArgs(b)
	const suite = "TLS_MILAGRO_CS_WITH_AES_128_GCM_SHA256"
	srv := startQuiet(b, saddr, append(append([]string{"--log-level", "warn", "proxy", "server", "--listen", saddr, "--target", service,
		"--key", server, "--suites", suite, "--allow", "alice@example.com", "--permits", "optional"}, serverArgs...), sprof...)...)
	cli := startQuiet(b, caddr, append([]string{"--log-level", "warn", "proxy", "client", "--listen", caddr, "--target", saddr,
		"--key", clients["alice@example.com"], "--suites", suite}, cprof...)...)
	return &pair{local: caddr, clientPID: cli.cmd.Process.Pid, serverPID: srv.cmd.Process.Pid, pairLabel: label,
		clientStatus: cstat, serverStatus: sstat}
}

// startQuiet starts the binary and waits until addr accepts connections.
func startQuiet(b *testing.B, addr string, args ...string) *proc {
	p := startProc(b, args...)
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

func needStunnel(b *testing.B) {
	if _, err := os.Stat(stunnelBin); err != nil {
		b.Fatalf("stunnel4 missing (%v): install stunnel4 (make peers)", err)
	}
}

func startStunnel(b *testing.B, conf string, listen string) *exec.Cmd {
	f := filepath.Join(b.TempDir(), "stunnel.conf")
	if err := os.WriteFile(f, []byte(conf), 0o600); err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(stunnelBin, f)
	out, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	var logMu sync.Mutex
	var log strings.Builder
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			logMu.Lock()
			log.WriteString(sc.Text() + "\n")
			logMu.Unlock()
		}
	}()
	b.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	if !waitFor(5*time.Second, func() bool {
		c, err := net.Dial("tcp", listen)
		if err == nil {
			c.Close()
		}
		return err == nil
	}) {
		logMu.Lock()
		defer logMu.Unlock()
		b.Fatalf("stunnel did not start:\n%s", log.String())
	}
	return cmd
}

func startStunnelPair(b *testing.B, service string) *pair {
	needStunnel(b)
	dir := b.TempDir()
	psk := filepath.Join(dir, "psk.txt")
	os.WriteFile(psk, []byte("alice:0123456789abcdef0123456789abcdef\n"), 0o600)
	saddr, caddr := freePort(b), freePort(b)
	common := "foreground = yes\npid =\ndebug = 3\nsocket = l:TCP_NODELAY=1\nsocket = r:TCP_NODELAY=1\n"
	srv := startStunnel(b, common+fmt.Sprintf("[srv]\nlibwrap = no\naccept = %s\nconnect = %s\nciphers = PSK-AES128-GCM-SHA256\nsslVersion = TLSv1.2\nPSKsecrets = %s\n", saddr, service, psk), saddr)
	cli := startStunnel(b, common+fmt.Sprintf("[cli]\nlibwrap = no\nclient = yes\naccept = %s\nconnect = %s\nciphers = PSK-AES128-GCM-SHA256\nsslVersion = TLSv1.2\nPSKsecrets = %s\nPSKidentity = alice\nsessionCacheSize = 1\nsessionCacheTimeout = 1\n", caddr, saddr, psk), caddr)
	return &pair{local: caddr, clientPID: cli.Process.Pid, serverPID: srv.Process.Pid, pairLabel: "stunnel"}
}

var pairs = []struct {
	name  string
	start func(*testing.B, string) *pair
}{{"mtls", startOurPair}, {"mtls-cs", startOurCSPair}, {"mtls-cs-full", startOurCSPairFull},
	{"mtls-cs-full-classic", startOurCSPairClassic}, {"stunnel", startStunnelPair}}

// sink is a service that reads and discards, then closes.
func sink(c net.Conn) { io.Copy(io.Discard, c) }

func BenchmarkProxyHandshakes(b *testing.B) {
	for _, pp := range pairs {
		b.Run(pp.name, func(b *testing.B) {
			up := startUpstream(b, nil)
			p := pp.start(b, up.addr())
			one := []byte{1}
			buf := make([]byte, 1)
			b.ResetTimer()
			defer p.profile(b)()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				c, err := net.Dial("tcp", p.local)
				if err != nil {
					b.Fatal(err)
				}
				c.SetDeadline(time.Now().Add(10 * time.Second))
				if _, err := c.Write(one); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(c, buf); err != nil {
					b.Fatalf("connection %d: %v", i, err)
				}
				c.Close()
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "handshakes/s")
		})
	}
}

func benchBulk(b *testing.B, streams int) {
	const chunk = 1 << 20
	for _, pp := range pairs {
		b.Run(pp.name, func(b *testing.B) {
			up := startUpstream(b, sink)
			p := pp.start(b, up.addr())
			conns := make([]net.Conn, streams)
			for i := range conns {
				c, err := net.Dial("tcp", p.local)
				if err != nil {
					b.Fatal(err)
				}
				defer c.Close()
				conns[i] = c
			}
			data := make([]byte, chunk)
			b.SetBytes(int64(chunk * streams))
			b.ResetTimer()
			defer p.profile(b)()
			var wg sync.WaitGroup
			errs := make(chan error, streams)
			for _, c := range conns {
				wg.Add(1)
				go func(c net.Conn) {
					defer wg.Done()
					for i := 0; i < b.N; i++ {
						if _, err := c.Write(data); err != nil {
							errs <- err
							return
						}
					}
					c.(*net.TCPConn).CloseWrite()
					c.SetReadDeadline(time.Now().Add(60 * time.Second))
					// The service closes after reading everything; the close
					// propagates back once every byte went through.
					if _, err := io.Copy(io.Discard, c); err != nil {
						errs <- err
					}
				}(c)
			}
			wg.Wait()
			b.StopTimer()
			close(errs)
			for err := range errs {
				b.Fatal(err)
			}
		})
	}
}

func BenchmarkProxyBulk1(b *testing.B) { benchBulk(b, 1) }
func BenchmarkProxyBulk8(b *testing.B) { benchBulk(b, 8) }

func vmRSSKB(b testing.TB, pid int) int {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	b.Fatal("no VmRSS")
	return 0
}

// BenchmarkProxyIdleRSS opens 1,000 connections through each pair, checks
// each is established end to end, and reports how much each proxy
// process's RSS grew per connection.
func BenchmarkProxyIdleRSS(b *testing.B) {
	const n = 1000
	raiseNOFILE(b, 8*n+256)
	for _, pp := range pairs {
		b.Run(pp.name, func(b *testing.B) {
			for iter := 0; iter < b.N; iter++ {
				up := startUpstream(b, nil)
				p := pp.start(b, up.addr())
				open := func(k int) []net.Conn {
					cs := make([]net.Conn, 0, k)
					buf := make([]byte, 1)
					for i := 0; i < k; i++ {
						c, err := net.Dial("tcp", p.local)
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
				warm := open(20) // warm-up: pools, threads, code pages
				for _, c := range warm {
					c.Close()
				}
				time.Sleep(300 * time.Millisecond)
				c0, s0 := vmRSSKB(b, p.clientPID), vmRSSKB(b, p.serverPID)
				cs := open(n)
				time.Sleep(500 * time.Millisecond)
				c1, s1 := vmRSSKB(b, p.clientPID), vmRSSKB(b, p.serverPID)
				for _, c := range cs {
					c.Close()
				}
				b.ReportMetric(float64(c1-c0)/n, "KB/conn-client")
				b.ReportMetric(float64(s1-s0)/n, "KB/conn-server")
			}
		})
	}
}

// sockSyscalls are the system calls that work on a connection's sockets
// (as opposed to the scheduling of threads: futex, nanosleep, poll...).
var sockSyscalls = map[string]bool{
	"read": true, "write": true, "readv": true, "writev": true, "recvfrom": true, "sendto": true,
	"recvmsg": true, "sendmsg": true, "accept": true, "accept4": true, "connect": true, "close": true,
	"shutdown": true, "socket": true, "setsockopt": true, "getsockopt": true, "getsockname": true,
	"getpeername": true, "epoll_ctl": true, "fcntl": true, "ioctl": true,
}

// straceCounts runs `strace -c -f -p pid` until stop is called and returns
// the calls counted: all of them, and those of sockSyscalls.
func straceCounts(b *testing.B, pid int) (stop func() (all, sock int)) {
	out := filepath.Join(b.TempDir(), fmt.Sprintf("strace-%d.txt", pid))
	cmd := exec.Command("strace", "-c", "-f", "-qq", "-o", out, "-p", strconv.Itoa(pid))
	if err := cmd.Start(); err != nil {
		b.Fatalf("strace: %v (install strace: apt-get install strace)", err)
	}
	// strace is attached once it has stopped the process's threads: wait
	// until the tracer shows in /proc/pid/status.
	if !waitFor(5*time.Second, func() bool {
		data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		return strings.Contains(string(data), "TracerPid:\t"+strconv.Itoa(cmd.Process.Pid))
	}) {
		cmd.Process.Kill()
		cmd.Wait()
		b.Fatalf("strace did not attach to %d (ptrace not permitted?)", pid)
	}
	return func() (all, sock int) {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
		data, err := os.ReadFile(out)
		if err != nil {
			b.Fatal(err)
		}
		for _, line := range strings.Split(string(data), "\n") {
			f := strings.Fields(line)
			if len(f) < 5 || f[0] == "%" || strings.HasPrefix(f[0], "-") {
				continue
			}
			name := f[len(f)-1]
			calls, err := strconv.Atoi(f[3])
			if err != nil {
				continue
			}
			if name == "total" {
				all = calls
			} else if sockSyscalls[name] {
				sock += calls
			}
		}
		return all, sock
	}
}

// BenchmarkProxySyscalls counts the system calls each proxy process makes
// per proxied connection (a connection, one byte each way, closed), with
// strace -c attached to both: syscalls/conn-* counts all of them,
// sock-syscalls/conn-* those on sockets (sockSyscalls). strace slows the
// processes down, which inflates the scheduling calls (futex, nanosleep)
// of the Go runtime; the socket calls are the comparable figure. Needs
// strace (apt-get install strace) and ptrace permission.
func BenchmarkProxySyscalls(b *testing.B) {
	if _, err := exec.LookPath("strace"); err != nil {
		b.Fatalf("strace missing (%v): apt-get install strace", err)
	}
	for _, pp := range pairs {
		b.Run(pp.name, func(b *testing.B) {
			up := startUpstream(b, nil)
			p := pp.start(b, up.addr())
			one, buf := []byte{1}, make([]byte, 1)
			conn := func() {
				c, err := net.Dial("tcp", p.local)
				if err != nil {
					b.Fatal(err)
				}
				defer c.Close()
				c.SetDeadline(time.Now().Add(30 * time.Second))
				if _, err := c.Write(one); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(c, buf); err != nil {
					b.Fatal(err)
				}
			}
			for i := 0; i < 20; i++ { // warm-up: threads, pools, session caches
				conn()
			}
			stopC, stopS := straceCounts(b, p.clientPID), straceCounts(b, p.serverPID)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				conn()
			}
			// The last connection's teardown in the proxies follows the
			// client's close: let it finish before detaching.
			time.Sleep(200 * time.Millisecond)
			b.StopTimer()
			ca, cs := stopC()
			sa, ss := stopS()
			n := float64(b.N)
			b.ReportMetric(float64(ca)/n, "syscalls/conn-client")
			b.ReportMetric(float64(sa)/n, "syscalls/conn-server")
			b.ReportMetric(float64(cs)/n, "sock-syscalls/conn-client")
			b.ReportMetric(float64(ss)/n, "sock-syscalls/conn-server")
		})
	}
}
