package dtls

import (
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"
)

// relay is a UDP relay on loopback between one client and a server; hook
// decides, per datagram and direction, what is forwarded (nothing, the
// datagram, a changed datagram or several).
type relay struct {
	front  *net.UDPConn // the client talks to this
	back   *net.UDPConn // this talks to the server
	server *net.UDPAddr
	hook   func(toServer bool, b []byte) [][]byte

	mu     sync.Mutex
	client *net.UDPAddr
	wg     sync.WaitGroup
}

func newRelay(t testing.TB, server net.Addr, hook func(toServer bool, b []byte) [][]byte) *relay {
	t.Helper()
	front, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	back, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	r := &relay{front: front, back: back, server: server.(*net.UDPAddr), hook: hook}
	r.wg.Add(2)
	go r.run(true)
	go r.run(false)
	t.Cleanup(func() {
		_ = front.Close()
		_ = back.Close()
		r.wg.Wait()
	})
	return r
}

func (r *relay) addr() string { return r.front.LocalAddr().String() }

func (r *relay) run(toServer bool) {
	defer r.wg.Done()
	buf := make([]byte, 65536)
	for {
		var n int
		var err error
		if toServer {
			var from *net.UDPAddr
			n, from, err = r.front.ReadFromUDP(buf)
			if err == nil {
				r.mu.Lock()
				r.client = from
				r.mu.Unlock()
			}
		} else {
			n, _, err = r.back.ReadFromUDP(buf)
		}
		if err != nil {
			return
		}
		out := [][]byte{append([]byte(nil), buf[:n]...)}
		if r.hook != nil {
			out = r.hook(toServer, out[0])
		}
		for _, d := range out {
			if toServer {
				_, _ = r.back.WriteToUDP(d, r.server)
			} else {
				r.mu.Lock()
				c := r.client
				r.mu.Unlock()
				_, _ = r.front.WriteToUDP(d, c)
			}
		}
	}
}

// lossy returns a hook that drops a share of datagrams and holds back
// another share to send after the next one (reordering), deterministically.
func lossy(seed uint64, drop, reorder float64) (hook func(bool, []byte) [][]byte, stats func() (seen, dropped, reordered int)) {
	var mu sync.Mutex
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	held := map[bool][]byte{}
	var seen, dropped, reordered int
	hook = func(toServer bool, b []byte) [][]byte {
		mu.Lock()
		defer mu.Unlock()
		seen++
		x := rng.Float64()
		var out [][]byte
		switch {
		case x < drop:
			dropped++
		case x < drop+reorder && held[toServer] == nil:
			reordered++
			held[toServer] = b
			return nil
		default:
			out = append(out, b)
		}
		if h := held[toServer]; h != nil && len(out) > 0 {
			out = append(out, h)
			held[toServer] = nil
		}
		return out
	}
	stats = func() (int, int, int) {
		mu.Lock()
		defer mu.Unlock()
		return seen, dropped, reordered
	}
	return hook, stats
}

var _ = time.Second
