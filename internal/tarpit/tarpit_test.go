package tarpit

import (
	"net"
	"testing"
	"time"
)

func TestPitHoldsThenCloses(t *testing.T) {
	p := &Pit{Hold: 200 * time.Millisecond, Max: 2}
	var clients []net.Conn
	for i := 0; i < 3; i++ {
		a, b := net.Pipe()
		clients = append(clients, a)
		p.Add(b)
	}
	if p.Len() != 2 {
		t.Fatalf("held %d, want 2 (the third closed at once)", p.Len())
	}
	// The third was closed at once; the first two only after the hold.
	clients[2].SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if _, err := clients[2].Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Fatalf("over the bound: %v, want closed", err)
	}
	start := time.Now()
	clients[0].SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := clients[0].Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Fatalf("held connection: %v, want closed after the hold", err)
	}
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Fatalf("closed after %v, before the hold", d)
	}
	deadline := time.Now().Add(2 * time.Second)
	for p.Len() != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if p.Len() != 0 {
		t.Fatal("pit not drained")
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}
