package dtls

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"sync"
	"syscall"
	"testing"
	"time"
)

// floodEnv names the environment variable that turns this test binary
// into the flooding peer of benchHandshakeFlood: its value is the
// listener's address.
const floodEnv = "MILAGRO_DTLS_FLOOD_TARGET"

func TestMain(m *testing.M) {
	if target := os.Getenv(floodEnv); target != "" {
		os.Exit(runFlooder(target))
	}
	os.Exit(m.Run())
}

// runFlooder keeps 256 P2P handshakes with a wrong key in flight from
// 127.0.0.2 against target until it is signalled, and returns the exit
// status.
func runFlooder(target string) int {
	raddr, err := net.ResolveUDPAddr("udp", target)
	if err != nil {
		fmt.Fprintln(os.Stderr, "flooder:", err)
		return 2
	}
	k, err := loadKeys()
	if err != nil {
		fmt.Fprintln(os.Stderr, "flooder:", err)
		return 2
	}
	bad := &Config{P2PKey: k.rogueB, ServerIdentity: "node-a",
		HandshakeTimeout: 2 * time.Second, FlightInterval: 200 * time.Millisecond}
	stop := make(chan struct{})
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() { <-sig; close(stop) }()
	var wg sync.WaitGroup
	for range 256 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				pc, err := net.ListenPacket("udp", "127.0.0.2:0")
				if err != nil {
					return
				}
				if c, err := Client(pc, raddr, bad); err == nil {
					_ = c.Handshake()
				}
				_ = pc.Close()
			}
		}()
	}
	fmt.Println("flooding")
	wg.Wait()
	return 0
}

// startFlooder starts the flooding peer as a child process under
// `nice -n 19` and returns the function that stops it.
func startFlooder(b *testing.B, target string) func() {
	b.Helper()
	cmd := exec.Command("nice", "-n", "19", os.Args[0])
	cmd.Env = append(os.Environ(), floodEnv+"="+target)
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	line := make([]byte, len("flooding\n"))
	if _, err := out.Read(line); err != nil || string(line) != "flooding\n" {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		b.Fatalf("flooder did not start: %q %v", line, err)
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			done := make(chan struct{})
			go func() { _ = cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Kill()
				<-done
			}
		})
	}
	b.Cleanup(stop)
	return stop
}
