package pairing

import (
	"crypto/rand"
	"sync"
	"testing"
	"time"
)

// TestConcurrentHandshakes shares prepared clients and servers between
// goroutines (run with -race).
func TestConcurrentHandshakes(t *testing.T) {
	f := newFixture(t, seeded("concurrent"))
	c, _ := NewCSClient(f.alice, f.permit)
	ps, _ := NewP2PServer(f.nodeA)
	pc, _ := NewP2PClient(f.nodeB)
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if ok, err := csRun(t, c, f.server, f.now, nil); !ok || err != nil {
				errs <- "CS failed"
			}
			hs, _ := ps.Start(rand.Reader)
			wC, yC, cp, err := pc.Respond(rand.Reader, "node-a", hs.ID(), hs.X())
			if err != nil {
				errs <- err.Error()
				return
			}
			sp, err := hs.Finish(pc.ID(), wC, yC)
			if err != nil || string(sp) != string(cp) {
				errs <- "P2P failed"
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

func TestCheckHello(t *testing.T) {
	now := time.Unix(fxNow, 0)
	h := &CSHello{Time: fxNow, Day: Day(now)}
	if err := CheckHello(h, now, DefaultClockSkew, PermitsRequired); err != nil {
		t.Fatal(err)
	}
	if err := CheckHello(h, now, DefaultClockSkew, PermitsOptional); err != nil {
		t.Fatal(err) // a valid permit is accepted in every mode
	}
	h.Day = Day(now) - 2
	if err := CheckHello(h, now, DefaultClockSkew, PermitsOptional); err != ErrPermitDay {
		t.Fatal(err)
	}
	h.Day = Day(now)
	h.Time -= 31
	if err := CheckHello(h, now, DefaultClockSkew, PermitsRequired); err != ErrClockSkew {
		t.Fatal(err)
	}
}

// The docs/protocol.md §5.2 hello (t = midnight starting day 20414, permit for day 20413)
// is acceptable under the default policy: yesterday's permit within the
// skew of midnight.
func TestSpecVectorPolicy(t *testing.T) {
	h := &CSHello{ID: "alice@example.com", Day: 20413, Time: 1763769600}
	if err := CheckHello(h, time.Unix(1763769600, 0), DefaultClockSkew, PermitsRequired); err != nil {
		t.Fatal(err)
	}
	if err := CheckHello(h, time.Unix(1763769600+31, 0), DefaultClockSkew, PermitsRequired); err == nil {
		t.Fatal("accepted outside the skew")
	}
}

func TestCacheBounded(t *testing.T) {
	c := newCache[int](3)
	calls := 0
	for i := 0; i < 10; i++ {
		if v := c.get(string(rune('a'+i)), func() int { calls++; return i }); v != i {
			t.Fatal(v)
		}
	}
	if len(c.m) != 3 || calls != 10 {
		t.Fatal(len(c.m), calls)
	}
	c.get("j", func() int { calls++; return 0 })
	if calls != 10 {
		t.Fatal("cached value recomputed")
	}
}
