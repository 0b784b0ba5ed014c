// Package testport hands tests a loopback port for a process that binds it
// itself (openssl -accept, gnutls-serv, stunnel, an mtls child process).
//
// A port the kernel handed out for ":0" and that the test then closed can
// be taken, before the child binds it, as the local port of any outgoing
// connection on the machine (other test packages run at the same time), and
// the child then fails with "Address already in use". So ports are drawn
// below the kernel's ephemeral range, where only another explicit bind can
// take them, and no port is handed out twice in one test binary.
package testport

import (
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"testing"
)

var (
	mu   sync.Mutex
	used = map[int]bool{}
)

// TCP returns a TCP port on 127.0.0.1 that was free a moment ago.
func TCP(t testing.TB) int {
	t.Helper()
	return pick(t, "127.0.0.1", func(addr string) (io.Closer, int, error) {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, 0, err
		}
		return ln, ln.Addr().(*net.TCPAddr).Port, nil
	})
}

// UDP returns a UDP port on 127.0.0.1 that was free a moment ago.
func UDP(t testing.TB) int {
	t.Helper()
	return pick(t, "127.0.0.1", func(addr string) (io.Closer, int, error) {
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return nil, 0, err
		}
		return pc, pc.LocalAddr().(*net.UDPAddr).Port, nil
	})
}

// Addr returns host:port on network "tcp" or "udp" with a port that was
// free a moment ago on host (a loopback or wildcard address).
func Addr(t testing.TB, network, host string) string {
	t.Helper()
	bind := func(addr string) (io.Closer, int, error) {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, 0, err
		}
		return ln, ln.Addr().(*net.TCPAddr).Port, nil
	}
	if network == "udp" {
		bind = func(addr string) (io.Closer, int, error) {
			pc, err := net.ListenPacket("udp", addr)
			if err != nil {
				return nil, 0, err
			}
			return pc, pc.LocalAddr().(*net.UDPAddr).Port, nil
		}
	}
	return net.JoinHostPort(host, fmt.Sprint(pick(t, host, bind)))
}

const base = 10000

func pick(t testing.TB, host string, bind func(addr string) (io.Closer, int, error)) int {
	t.Helper()
	lo := ephemeralLow()
	if lo-base < 1000 {
		// An unusual range: let the kernel pick.
		c, port, err := bind(net.JoinHostPort(host, "0"))
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
		return port
	}
	mu.Lock()
	defer mu.Unlock()
	var b [2]byte
	for range 500 {
		if _, err := rand.Read(b[:]); err != nil {
			t.Fatal(err)
		}
		port := base + (int(b[0])<<8|int(b[1]))%(lo-base)
		if used[port] {
			continue
		}
		c, _, err := bind(net.JoinHostPort(host, fmt.Sprint(port)))
		if err != nil {
			continue
		}
		c.Close()
		used[port] = true
		return port
	}
	t.Fatal("testport: no free port below the ephemeral range")
	return 0
}

// ephemeralLow is the lowest port of the kernel's ephemeral range (32768
// when it cannot be read).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	var lo, hi int
	if _, err := fmt.Sscan(string(b), &lo, &hi); err != nil || lo <= 0 {
		return 32768
	}
	return lo
}
