package admission

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)

func src(s string) Source { return Keyer{}.IP(netip.MustParseAddr(s)) }

func TestSourceKeys(t *testing.T) {
	if a, b := src("2001:db8:1:2::1"), src("2001:db8:1:2:ffff::9"); a != b {
		t.Fatalf("one /64 gave two sources: %v %v", a, b)
	}
	if a, b := src("2001:db8:1:2::1"), src("2001:db8:1:3::1"); a == b {
		t.Fatal("two /64s gave one source")
	}
	if got := src("2001:db8:1:2::1").String(); got != "2001:db8:1:2::/64" {
		t.Fatalf("IPv6 source %q", got)
	}
	if a, b := src("192.0.2.1"), src("192.0.2.2"); a == b {
		t.Fatal("two IPv4 addresses gave one source")
	}
	if a, b := src("::ffff:192.0.2.1"), src("192.0.2.1"); a != b {
		t.Fatal("IPv4-mapped address is not its IPv4 source")
	}
	k := Keyer{IPv6Prefix: 48}
	if k.IP(netip.MustParseAddr("2001:db8:1:2::1")) != k.IP(netip.MustParseAddr("2001:db8:1:ffff::1")) {
		t.Fatal("IPv6Prefix 48 not applied")
	}
	tcp := &net.TCPAddr{IP: net.ParseIP("2001:db8::7"), Port: 443}
	if SourceOf(tcp) != src("2001:db8::1") {
		t.Fatal("TCPAddr not keyed by /64")
	}
	udp := &net.UDPAddr{IP: net.ParseIP("198.51.100.4"), Port: 9}
	if SourceOf(udp) != src("198.51.100.4") {
		t.Fatal("UDPAddr not keyed by address")
	}
	if !SourceOf(&net.UnixAddr{Name: "/x"}).IsZero() || SourceOf(nil).String() != "local" {
		t.Fatal("a peer without an IP is not the zero source")
	}
}

// Fifty addresses of one /64 spend one failure budget.
func TestBudgetIPv6SlashSixtyFour(t *testing.T) {
	clk := NewFakeClock(t0)
	b := &Budget{Clock: clk.Clock(), Burst: 20}
	for i := 0; i < 50; i++ {
		b.Charge(src(fmt.Sprintf("2001:db8:0:1::%x", i+1)))
	}
	if !b.Spent(src("2001:db8:0:1::ffff")) {
		t.Fatal("50 addresses of one /64 did not spend its budget")
	}
	if b.Spent(src("2001:db8:0:2::1")) {
		t.Fatal("another /64 was charged")
	}
}

func TestBudgetRefillAndAdmit(t *testing.T) {
	clk := NewFakeClock(t0)
	b := &Budget{Clock: clk.Clock(), Burst: 4, Rate: 1}
	s := src("192.0.2.1")
	// Untouched: admitted however many are in flight.
	for i := 0; i < 10; i++ {
		if _, ok := b.Admit(s); !ok {
			t.Fatal("clean source refused")
		}
	}
	s2 := src("192.0.2.2")
	for i := 0; i < 4; i++ {
		b.Charge(s2)
	}
	if !b.Spent(s2) {
		t.Fatal("budget not spent")
	}
	if b.Admissible(s2) {
		t.Fatal("spent source admissible")
	}
	if _, ok := b.Admit(s2); ok {
		t.Fatal("spent source admitted")
	}
	clk.Advance(2 * time.Second)
	r1, ok1 := b.Admit(s2)
	_, ok2 := b.Admit(s2)
	if b.Admissible(s2) {
		t.Fatal("admissible with both refilled tokens in flight")
	}
	_, ok3 := b.Admit(s2)
	if !ok1 || !ok2 || ok3 {
		t.Fatalf("after 2 tokens refilled: admitted %v %v %v, want true true false", ok1, ok2, ok3)
	}
	r1()
	r1()
	if !b.Admissible(s2) {
		t.Fatal("released slot not admissible")
	}
	if _, ok := b.Admit(s2); !ok {
		t.Fatal("released slot not reusable")
	}
}

func TestGateCleanSourcesFirst(t *testing.T) {
	clk := NewFakeClock(t0)
	b := &Budget{Clock: clk.Clock()}
	g := &Gate{Workers: 1, Budget: b}
	bad, good := src("192.0.2.66"), src("192.0.2.1")
	b.Charge(bad)
	hold, err := g.Acquire(context.Background(), bad)
	if err != nil {
		t.Fatal(err)
	}
	order := make(chan Source, 3)
	var wg sync.WaitGroup
	start := func(s Source) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := g.Acquire(context.Background(), s)
			if err != nil {
				t.Error(err)
				return
			}
			order <- s
			r(true)
		}()
	}
	waitFor := func(n int) {
		for {
			if _, w := g.Stats(); w == n {
				return
			}
			time.Sleep(time.Millisecond) // polling the gate's state, not a timing assertion
		}
	}
	start(bad)
	waitFor(1)
	start(bad)
	waitFor(2)
	start(good)
	waitFor(3)
	hold(false)
	wg.Wait()
	close(order)
	if first := <-order; first != good {
		t.Fatalf("charged source served before the clean one")
	}
	if left := b.Left(bad); left > DefaultFailureBurst-2+0.01 {
		t.Fatalf("unverified job did not charge its source: %v left", left)
	}
}

func TestGateRefusesSpentSource(t *testing.T) {
	clk := NewFakeClock(t0)
	b := &Budget{Clock: clk.Clock(), Burst: 2}
	g := &Gate{Workers: 4, Budget: b}
	s := src("192.0.2.9")
	for i := 0; i < 2; i++ {
		r, err := g.Acquire(context.Background(), s)
		if err != nil {
			t.Fatal(err)
		}
		r(false)
	}
	if _, err := g.Acquire(context.Background(), s); err != ErrBusy {
		t.Fatalf("spent source: %v, want ErrBusy", err)
	}
}

// Eight sources fill every slot; a ninth still gets one, taken from the
// source holding the most, oldest first.
func TestSlotsFairShare(t *testing.T) {
	s := &Slots{Max: 16}
	var evicted []int
	for i := 0; i < 16; i++ {
		i := i
		sv := src(fmt.Sprintf("127.0.0.%d", 2+i%8))
		if _, ok := s.Acquire(sv, func() { evicted = append(evicted, i) }); !ok {
			t.Fatalf("slot %d refused", i)
		}
	}
	legit := src("127.0.0.1")
	if _, ok := s.Acquire(legit, nil); !ok {
		t.Fatal("new source refused while another held more than its share")
	}
	if len(evicted) != 1 || evicted[0] != 0 {
		t.Fatalf("evicted %v, want the oldest of the biggest source (0)", evicted)
	}
	// .2 holds one, .3-.9 two each, the legitimate source one: a second
	// would take from a source holding no more than it would.
	if _, ok := s.Acquire(legit, nil); ok {
		t.Fatal("a source took a slot from one holding no more than it")
	}
	if s.Len() != 16 {
		t.Fatalf("slots %d, want 16", s.Len())
	}
}

func TestSlotsPerSourceAndRelease(t *testing.T) {
	s := &Slots{Max: 10, PerSource: 2}
	a := src("10.0.0.1")
	s1, _ := s.Acquire(a, nil)
	s.Acquire(a, nil)
	if _, ok := s.Acquire(a, nil); ok {
		t.Fatal("PerSource not applied")
	}
	s1.Release()
	s1.Release()
	if s.Held(a) != 1 || s.Len() != 1 {
		t.Fatalf("held %d total %d after release", s.Held(a), s.Len())
	}
	for i := 0; i < 8; i++ {
		s.Acquire(src(fmt.Sprintf("10.0.1.%d", i)), nil)
	}
	if !s.Scarce() {
		t.Fatal("9 of 10 taken is not scarce")
	}
}

func TestLockoutPerSourceThenIdentity(t *testing.T) {
	clk := NewFakeClock(t0)
	l := &Lockout{Clock: clk.Clock(), SourceThreshold: 5, IdentityThreshold: 20}
	attacker, victim := src("203.0.113.9"), src("192.0.2.1")
	for i := 0; i < 5; i++ {
		l.Failure("alice", attacker, l.Begin())
	}
	if locked, _ := l.Locked("alice", attacker); !locked {
		t.Fatal("source not locked out for alice after 5 failures")
	}
	if locked, _ := l.Locked("alice", victim); locked {
		t.Fatal("one source locked alice out for everyone")
	}
	// Enough sources together reach the identity-wide threshold.
	for s := 0; s < 3; s++ {
		for i := 0; i < 5; i++ {
			l.Failure("alice", src(fmt.Sprintf("198.51.100.%d", s)), l.Begin())
		}
	}
	if locked, until := l.Locked("alice", victim); !locked || !until.Equal(t0.Add(DefaultBackoff)) {
		t.Fatalf("20 failures from 4 sources: locked %v until %v", locked, until)
	}
	clk.Advance(DefaultBackoff)
	if locked, _ := l.Locked("alice", victim); locked {
		t.Fatal("lock outlived its backoff")
	}
}

// Proofs in flight when a lock is set do not escalate it again.
func TestLockoutBurstEscalatesOnce(t *testing.T) {
	clk := NewFakeClock(t0)
	l := &Lockout{Clock: clk.Clock(), SourceThreshold: 5, IdentityThreshold: 1000}
	s := src("203.0.113.9")
	var burst []Attempt
	for i := 0; i < 40; i++ {
		burst = append(burst, l.Begin())
	}
	for _, a := range burst {
		l.Failure("bob", s, a)
	}
	_, until := l.Locked("bob", s)
	if !until.Equal(t0.Add(DefaultBackoff)) {
		t.Fatalf("one burst of 40 locked bob until %v, want one backoff (%v)", until, t0.Add(DefaultBackoff))
	}
	// After the lock ends, the next failures escalate it once more.
	clk.Advance(DefaultBackoff)
	for i := 0; i < 5; i++ {
		l.Failure("bob", s, l.Begin())
	}
	if _, until := l.Locked("bob", s); !until.Equal(clk.Now().Add(2 * DefaultBackoff)) {
		t.Fatalf("second lock until %v, want doubled", until)
	}
}

func TestLockoutNeverEvictsLocked(t *testing.T) {
	clk := NewFakeClock(t0)
	l := &Lockout{Clock: clk.Clock(), SourceThreshold: 1, IdentityThreshold: 1, MaxEntries: 4}
	s := src("203.0.113.9")
	l.Failure("victim", s, l.Begin()) // two entries, both locked
	for i := 0; i < 100; i++ {
		l.Failure(fmt.Sprintf("other%d", i), s, l.Begin())
	}
	if locked, _ := l.Locked("victim", src("192.0.2.1")); !locked {
		t.Fatal("failures on other identities unlocked the victim")
	}
	if l.Dropped() == 0 {
		t.Fatal("failures refused for a full table were not counted")
	}
	// Once the locks end, the table makes room again.
	clk.Advance(DefaultBackoff)
	if !l.Failure("newcomer", s, l.Begin()) {
		t.Fatal("no room after every lock ended")
	}
}

func TestLockoutEvictsUnlockedFirst(t *testing.T) {
	clk := NewFakeClock(t0)
	l := &Lockout{Clock: clk.Clock(), SourceThreshold: 2, IdentityThreshold: 2, MaxEntries: 6}
	s := src("203.0.113.9")
	l.Failure("victim", s, l.Begin())
	l.Failure("victim", s, l.Begin())
	for i := 0; i < 50; i++ {
		if !l.Failure(fmt.Sprintf("other%d", i), s, l.Begin()) {
			t.Fatal("failure dropped while unlocked entries could make room")
		}
	}
	if locked, _ := l.Locked("victim", s); !locked {
		t.Fatal("locked victim evicted")
	}
}

func TestLockoutSuccessResets(t *testing.T) {
	clk := NewFakeClock(t0)
	l := &Lockout{Clock: clk.Clock(), SourceThreshold: 3, IdentityThreshold: 3}
	s := src("192.0.2.1")
	l.Failure("carol", s, l.Begin())
	l.Failure("carol", s, l.Begin())
	l.Success("carol", s)
	l.Failure("carol", s, l.Begin())
	l.Failure("carol", s, l.Begin())
	if locked, _ := l.Locked("carol", s); locked {
		t.Fatal("success did not reset the count")
	}
	var nilL *Lockout
	if locked, _ := nilL.Locked("x", s); locked || !nilL.Failure("x", s, nilL.Begin()) {
		t.Fatal("nil Lockout locks")
	}
}

func TestReplayReserveIsAtomic(t *testing.T) {
	clk := NewFakeClock(t0)
	r := &Replay{Clock: clk.Clock()}
	hello := []byte("one captured hello")
	var won atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if r.Reserve(hello, t0.Add(time.Minute)) {
				won.Add(1)
			}
		}()
	}
	wg.Wait()
	if won.Load() != 1 {
		t.Fatalf("10 concurrent copies: %d reserved, want 1", won.Load())
	}
	clk.Advance(time.Minute)
	if !r.Reserve(hello, clk.Now().Add(time.Minute)) {
		t.Fatal("expired hello still refused")
	}
	r2 := &Replay{Clock: clk.Clock(), Max: 2}
	for i := 0; i < 5; i++ {
		r2.Reserve([]byte{byte(i)}, clk.Now().Add(time.Minute))
	}
	if r2.Len() != 2 {
		t.Fatalf("bounded cache holds %d", r2.Len())
	}
}

type closer struct{ closed atomic.Bool }

func (c *closer) Close() error { c.closed.Store(true); return nil }

func TestPitPerSource(t *testing.T) {
	clk := NewFakeClock(t0)
	p := &Pit{Clock: clk.Clock(), Hold: time.Second, PerSource: 3, Max: 5, Tick: time.Hour}
	flood := src("127.0.0.2")
	var fc []*closer
	for i := 0; i < 4; i++ {
		c := &closer{}
		fc = append(fc, c)
		p.Add(flood, c)
	}
	if !fc[0].closed.Load() || p.Held(flood) != 3 {
		t.Fatalf("per-source bound: oldest closed %v, held %d", fc[0].closed.Load(), p.Held(flood))
	}
	other := src("127.0.0.3")
	oc := []*closer{{}, {}, {}}
	for _, c := range oc {
		p.Add(other, c)
	}
	// Full (5): the source holding the most lost its oldest.
	if p.Len() != 5 || !fc[1].closed.Load() {
		t.Fatalf("full pit: len %d, biggest source's oldest closed %v", p.Len(), fc[1].closed.Load())
	}
	if left := p.Expire(); left != 5 {
		t.Fatalf("expired before the hold: %d left", left)
	}
	clk.Advance(time.Second)
	if left := p.Expire(); left != 0 || !oc[2].closed.Load() {
		t.Fatalf("after the hold: %d left", left)
	}
}

func TestGuardsShareClock(t *testing.T) {
	clk := NewFakeClock(t0)
	g := New(clk.Clock())
	if g.Gate.Budget != g.Budget || g.Lockout.Clock == nil || g.Pit.Clock == nil || g.Replay.Clock == nil {
		t.Fatal("guards not wired")
	}
}

// A flooder whose connections a tarpit held long enough for its budget to
// refill is not clean again: it stays bounded by its tokens until it has
// had no refusal for CleanAfter.
func TestBudgetRefilledIsNotClean(t *testing.T) {
	clk := NewFakeClock(t0)
	b := &Budget{Clock: clk.Clock(), Burst: 4, Rate: 1, CleanAfter: time.Minute}
	s := src("127.0.0.2")
	for i := 0; i < 4; i++ {
		b.Charge(s)
	}
	clk.Advance(10 * time.Second) // whole again
	if b.Left(s) != 4 || b.Clean(s) {
		t.Fatalf("left %v, clean %v: a refilled flooder counts as clean", b.Left(s), b.Clean(s))
	}
	admitted := 0
	for i := 0; i < 256; i++ {
		if _, ok := b.Admit(s); ok {
			admitted++
		}
	}
	if admitted != 4 {
		t.Fatalf("a refilled flooder got %d of 256 connections in, want its 4 tokens", admitted)
	}
	clk.Advance(time.Minute)
	if !b.Clean(s) {
		t.Fatal("a source without refusals for CleanAfter is not clean")
	}
}
