package testport

import (
	"net"
	"strconv"
	"testing"
)

// The ports are below the ephemeral range, bindable, and never handed out
// twice.
func TestPortsBelowEphemeralAndDistinct(t *testing.T) {
	lo := ephemeralLow()
	seen := map[int]bool{}
	for range 50 {
		p := TCP(t)
		if lo-base >= 1000 && (p < base || p >= lo) {
			t.Fatalf("port %d outside [%d, %d)", p, base, lo)
		}
		if seen[p] {
			t.Fatalf("port %d handed out twice", p)
		}
		seen[p] = true
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			t.Fatalf("port %d not bindable: %v", p, err)
		}
		ln.Close()
	}
	u := UDP(t)
	if seen[u] {
		t.Fatalf("UDP port %d handed out twice", u)
	}
	if a := Addr(t, "udp", "127.0.0.1"); a == "" {
		t.Fatal("no UDP address")
	}
}
