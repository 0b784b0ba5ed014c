package dta

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// The IPv6 /64 flood against a real `mtls ta serve`: global IPv6
// addresses exist only inside a network namespace the test creates
// (2001:db8:2::1 for the D-TA, and the whole of 2001:db8:1::/64 routed to
// lo so that the flood can bind any address of it). Needs root and ip
// (iproute2).

func runIP(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func newNetns(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("ip"); err != nil {
		t.Fatalf("missing ip (iproute2; scripts/install-peers.sh installs it): %v", err)
	}
	if os.Geteuid() != 0 {
		t.Fatal("the IPv6 namespace test needs root (ip netns add)")
	}
	ns := fmt.Sprintf("mtlsdta%d", os.Getpid())
	runIP(t, "netns", "add", ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	runIP(t, "-n", ns, "link", "set", "lo", "up")
	runIP(t, "-n", ns, "-6", "addr", "add", "2001:db8:2::1/64", "dev", "lo", "nodad")
	runIP(t, "-n", ns, "-6", "route", "add", "local", "2001:db8:1::/64", "dev", "lo", "table", "local")
	if out, err := exec.Command("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.ip_nonlocal_bind=1").CombinedOutput(); err != nil {
		t.Fatalf("sysctl in the namespace: %v\n%s", err, out)
	}
	return ns
}

// TestIPv6FloodHelper is the flooding process of TestIPv6SlashSixtyFourFloodRealServe,
// run inside the namespace; without DTA_FLOOD_ADDR it does nothing.
func TestIPv6FloodHelper(t *testing.T) {
	addr := os.Getenv("DTA_FLOOD_ADDR")
	if addr == "" {
		return
	}
	var wg sync.WaitGroup
	var up sync.WaitGroup
	for i := range 256 {
		up.Add(1)
		wg.Go(func() {
			src := fmt.Sprintf("2001:db8:1::%x", i+1)
			dl := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 10 * time.Second}
			first := true
			buf := make([]byte, 1)
			for {
				c, err := dl.Dial("tcp", addr)
				if first {
					first = false
					up.Done()
				}
				if err != nil {
					time.Sleep(10 * time.Millisecond)
					continue
				}
				c.Read(buf) // until the D-TA closes it
				c.Close()
			}
		})
	}
	up.Wait()
	fmt.Println("FLOODING")
	io.Copy(io.Discard, os.Stdin) // until the parent closes stdin
	os.Exit(0)
}

// TestIPv6SlashSixtyFourFloodRealServe: 256 silent connections from 256
// addresses of one IPv6 /64, kept up; `mtls keys renew` from another /64
// completes against a real `mtls ta serve`.
func TestIPv6SlashSixtyFourFloodRealServe(t *testing.T) {
	ns := newNetns(t)
	root := t.TempDir()
	d := newDTADir(t, root, 1)
	addrFile := filepath.Join(root, "addr")
	logBuf := &syncBuf{}
	srv := exec.Command("ip", "netns", "exec", ns, mtlsBin(t), "ta", "serve", "--master", d.share, "--db", d.db,
		"--listen", "[2001:db8:2::1]:0", "--addr-file", addrFile)
	srv.Stdout, srv.Stderr = logBuf, logBuf
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	srvDone := make(chan struct{})
	go func() { srv.Wait(); close(srvDone) }()
	t.Cleanup(func() { srv.Process.Kill(); <-srvDone })
	var addr string
	for deadline := time.Now().Add(30 * time.Second); addr == ""; time.Sleep(20 * time.Millisecond) {
		if b, err := os.ReadFile(addrFile); err == nil && len(b) > 0 {
			addr = strings.TrimSpace(string(b))
		}
		if time.Now().After(deadline) {
			t.Fatalf("ta serve in the namespace did not start:\n%s", logBuf.String())
		}
	}
	inNS := func(args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns, mtlsBin(t)}, args...)...)
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	codeFile := filepath.Join(root, "code")
	os.WriteFile(codeFile, []byte(d.code(t, "client", "v6")), 0o600)
	if out, err := inNS("keys", "enroll", "--out", "v6.key", "--renewal", "v6.renewal", "--dta", addr+"=@"+codeFile); err != nil {
		t.Fatalf("enroll: %v\n%s", err, out)
	}

	flood := exec.Command("ip", "netns", "exec", ns, os.Args[0], "-test.run=^TestIPv6FloodHelper$")
	flood.Env = append(os.Environ(), "DTA_FLOOD_ADDR="+addr)
	stdin, _ := flood.StdinPipe()
	stdout, _ := flood.StdoutPipe()
	if err := flood.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdin.Close(); flood.Process.Kill(); flood.Wait() })
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if sc.Text() == "FLOODING" {
				ready <- true
			}
		}
		close(ready)
	}()
	if ok := <-ready; !ok {
		t.Fatal("the flood helper stopped before flooding")
	}
	for i := range 3 {
		if out, err := inNS("keys", "renew", "--renewal", "v6.renewal", "--out-dir", "."); err != nil {
			t.Fatalf("renewal %d under the /64 flood: %v\n%s", i, err, out)
		}
	}
}
