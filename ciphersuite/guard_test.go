package ciphersuite

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

func TestLockoutDoublingAndBound(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	var locks []time.Duration
	l := &Lockout{OnLock: func(id string, until time.Time) { locks = append(locks, until.Sub(now)) }}
	fail := func(n int) {
		for i := 0; i < n; i++ {
			l.Failure("alice", now)
		}
	}
	fail(4)
	if locked, _ := l.Locked("alice", now); locked {
		t.Fatal("locked after 4")
	}
	fail(1)
	if locked, until := l.Locked("alice", now); !locked || until.Sub(now) != time.Minute {
		t.Fatal(locked, until)
	}
	// The next lockouts double: 2, 4, … up to an hour.
	for want := 2 * time.Minute; want <= 2*time.Hour; want *= 2 {
		fail(5)
		exp := want
		if exp > time.Hour {
			exp = time.Hour
		}
		if got := locks[len(locks)-1]; got != exp {
			t.Fatalf("lockout %v, want %v", got, exp)
		}
	}
	l.Success("alice")
	if locked, _ := l.Locked("alice", now); locked || l.Len() != 0 {
		t.Fatal("success did not reset")
	}
	// Bounded memory: a stranger cycling identities evicts old entries.
	for i := 0; i < lockoutEntries+100; i++ {
		l.Failure(string(rune(0x4e00+i%20000))+string(rune(i)), now)
	}
	if l.Len() > lockoutEntries {
		t.Fatalf("%d entries", l.Len())
	}
	var nl *Lockout
	if nl.Failure("x", now) || nl.Len() != 0 {
		t.Fatal("nil lockout")
	}
}

func TestReplayCache(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	c := &ReplayCache{Max: 3}
	h := []byte("hello")
	if c.Seen(h, now) {
		t.Fatal("seen before added")
	}
	c.Add(h, now, now.Add(time.Minute))
	if !c.Seen(h, now.Add(59*time.Second)) {
		t.Fatal("not seen within the window")
	}
	if c.Seen(h, now.Add(61*time.Second)) {
		t.Fatal("seen after expiry")
	}
	for i := 0; i < 10; i++ {
		c.Add([]byte{byte(i)}, now, now.Add(time.Minute))
	}
	if c.Len() > 3 {
		t.Fatalf("%d entries, max 3", c.Len())
	}
}

// FairGate: a source with many jobs waiting gets one turn like a source
// with one; failed proofs spend a source's budget, verified ones do not.
func TestFairGate(t *testing.T) {
	g := &FairGate{Workers: 1, FailureBurst: 3, FailureRate: 0.001}
	ctx := context.Background()
	hold, err := g.Acquire(ctx, "flood")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var order []string
	var wg sync.WaitGroup
	run := func(src string) {
		defer wg.Done()
		r, err := g.Acquire(ctx, src)
		if err != nil {
			t.Error(err)
			return
		}
		mu.Lock()
		order = append(order, src)
		mu.Unlock()
		r(true)
	}
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go run("flood")
	}
	waitQueued(t, g, 20)
	wg.Add(1)
	go run("legit")
	waitQueued(t, g, 21)
	hold(true)
	wg.Wait()
	pos := -1
	for i, s := range order {
		if s == "legit" {
			pos = i
		}
	}
	if pos < 0 || pos > 1 {
		t.Fatalf("legit served at position %d of %v", pos, order)
	}
	// Failure budget: 3 failed proofs, then refused before any work.
	for i := 0; i < 3; i++ {
		r, err := g.Acquire(ctx, "forger")
		if err != nil {
			t.Fatal(i, err)
		}
		r(false)
	}
	if _, err := g.Acquire(ctx, "forger"); !errors.Is(err, ErrBusy) {
		t.Fatal(err)
	}
	// Verified work never spends it.
	for i := 0; i < 10; i++ {
		r, err := g.Acquire(ctx, "busy-legit")
		if err != nil {
			t.Fatal(err)
		}
		r(true)
	}
	// A cancelled wait gives up its place.
	hold, _ = g.Acquire(ctx, "a")
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { _, err := g.Acquire(cctx, "b"); done <- err }()
	waitQueued(t, g, 1)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	hold(true)
	if run, wait := g.Stats(); run != 0 || wait != 0 {
		t.Fatalf("running %d, waiting %d", run, wait)
	}
}

func waitQueued(t *testing.T, g *FairGate, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, w := g.Stats(); w >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("never %d waiting", n)
		}
		time.Sleep(time.Millisecond)
	}
}
