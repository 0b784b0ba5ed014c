package mtls_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/milagro-go/milagro/ciphersuite"
	"github.com/milagro-go/milagro/mtls"
	"github.com/milagro-go/milagro/pairing"
)

// Replays and the lockout (spec §2, docs/protocol.md "Lockout"): a hello is
// reserved in the replay cache before its pairing, a failed hello is
// remembered too, and only a verified client Finished resets a lockout.

// captureHello returns the first record a client sends (its ClientHello,
// with the milagro_cs proof), captured by a listener that answers nothing:
// the server never saw it.
func captureHello(t *testing.T, cfg *mtls.Config) []byte {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	done := make(chan error, 1)
	go func() {
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		mtls.Client(c, cfg).Handshake() // fails when the listener closes
		done <- nil
	}()
	c, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	hdr := make([]byte, 5)
	if _, err := io.ReadFull(c, hdr); err != nil {
		t.Fatal(err)
	}
	body := make([]byte, int(hdr[3])<<8|int(hdr[4]))
	if _, err := io.ReadFull(c, body); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	return append(hdr, body...)
}

// guardServer accepts connections with cfg and reports each handshake's
// result on the returned channel.
func guardServer(t *testing.T, cfg *mtls.Config) (addr string, results <-chan error) {
	t.Helper()
	l, err := mtls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	ch := make(chan error, 64)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				c.SetDeadline(time.Now().Add(20 * time.Second))
				ch <- c.(*mtls.Conn).Handshake()
				c.Close()
			}()
		}
	}()
	return l.Addr().String(), ch
}

// sendRaw writes a captured hello, waits for the server's first answer
// (an alert or its ServerHello) and closes: the sender holds no key to go
// on with.
func sendRaw(addr string, hello []byte) error { return sendRawFrom(nil, addr, hello) }

// sendRawFrom is sendRaw from a local address (nil: any).
func sendRawFrom(local net.Addr, addr string, hello []byte) error {
	c, err := (&net.Dialer{LocalAddr: local}).Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.Write(hello); err != nil {
		return err
	}
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	_, err = c.Read(make([]byte, 1))
	return err
}

// holdingGate counts pairings; the first waits until released.
type holdingGate struct {
	n       atomic.Int64
	second  chan struct{} // closed at the second pairing
	release chan struct{}
	once    sync.Once
}

func (g *holdingGate) Acquire(ctx context.Context, _ mtls.Source) (func(bool), error) {
	switch g.n.Add(1) {
	case 1:
		select {
		case <-g.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	case 2:
		g.once.Do(func() { close(g.second) })
	}
	return func(bool) {}, nil
}

// Ten concurrent copies of one captured hello cost one pairing: the hello
// is reserved before the pairing, not recorded after it.
func TestConcurrentReplaysCostOnePairing(t *testing.T) {
	f := milFixtureFor(t)
	gate := &holdingGate{second: make(chan struct{}), release: make(chan struct{})}
	server := &mtls.Config{CSServerKeys: []*pairing.CSServerSecret{f.secret}, PermitMode: pairing.PermitsOptional, Time: milClock(milNow), PairingGate: gate}
	addr, results := guardServer(t, server)
	hello := captureHello(t, &mtls.Config{CSKey: f.alice, Time: milClock(milNow)})
	for i := 0; i < 10; i++ {
		go sendRaw(addr, hello)
	}
	refused := make(chan struct{})
	var errs []error // written before refused is closed
	go func() {
		for i := 0; i < 9; i++ {
			errs = append(errs, <-results)
		}
		close(refused)
	}()
	select {
	case <-refused:
	case <-gate.second:
		close(gate.release)
		t.Fatal("a second copy of one hello reached the pairing")
	}
	for _, err := range errs {
		if err == nil || !strings.Contains(err.Error(), "replayed") {
			t.Errorf("copy refused with %v, want a replay refusal", err)
		}
	}
	close(gate.release)
	<-results // the first copy ends (no client to finish it)
	if n := gate.n.Load(); n != 1 {
		t.Fatalf("%d pairings for one hello", n)
	}
}

// A failed hello, replayed, is refused as a replay and counts once: one
// capture does not lock a victim out.
func TestFailedHelloReplayCountsOnce(t *testing.T) {
	f := milFixtureFor(t)
	gate := &countingGate{}
	lock := &mtls.Lockout{Clock: milClock(milNow)}
	server := &mtls.Config{CSServerKeys: []*pairing.CSServerSecret{f.secret}, PermitMode: pairing.PermitsOptional, Time: milClock(milNow), PairingGate: gate, CSLockout: lock}
	addr, results := guardServer(t, server)
	bad := captureHello(t, &mtls.Config{CSToken: f.aliceToken, GetPIN: func() (uint32, error) { return milBadPIN, nil }, Time: milClock(milNow)})
	sendRaw(addr, bad)
	if err := <-results; err == nil || !strings.Contains(err.Error(), "does not verify") {
		t.Fatalf("failed hello: %v", err)
	}
	for i := 0; i < 10; i++ {
		sendRaw(addr, bad)
		if err := <-results; err == nil || !strings.Contains(err.Error(), "replayed") {
			t.Fatalf("replay %d of a failed hello: %v", i, err)
		}
	}
	if gate.n.Load() != 1 {
		t.Fatalf("%d pairings for one failed hello and its replays", gate.n.Load())
	}
	good := &mtls.Config{CSToken: f.aliceToken, GetPIN: func() (uint32, error) { return milPIN, nil }, Time: milClock(milNow)}
	if r := milHandshakeTCP(t, good, server, nil, nil); r.serverErr != nil || r.clientErr != nil {
		t.Fatalf("the victim is locked out by one captured failure: %v / %v", r.clientErr, r.serverErr)
	}
}

// A proof that verifies does not reset the lockout: only the client's
// Finished does. A replayer holding a fresh captured hello of alice (but
// not her key) cannot wipe her failure count.
func TestLockoutResetOnlyAfterFinished(t *testing.T) {
	f := milFixtureFor(t)
	lock := &mtls.Lockout{Clock: milClock(milNow)}
	server := &mtls.Config{CSServerKeys: []*pairing.CSServerSecret{f.secret}, PermitMode: pairing.PermitsOptional, Time: milClock(milNow), CSLockout: lock}
	addr, results := guardServer(t, server)
	badPIN := func() *mtls.Config {
		return &mtls.Config{CSToken: f.aliceToken, GetPIN: func() (uint32, error) { return milBadPIN, nil }, Time: milClock(milNow)}
	}
	for i := 0; i < 4; i++ {
		sendRaw(addr, captureHello(t, badPIN()))
		<-results
	}
	// The captured, never used, valid hello: its proof verifies, but the
	// sender cannot finish the handshake.
	sendRaw(addr, captureHello(t, &mtls.Config{CSKey: f.alice, Time: milClock(milNow)}))
	if err := <-results; err == nil {
		t.Fatal("a hello without its key completed a handshake")
	}
	sendRaw(addr, captureHello(t, badPIN()))
	<-results
	good := &mtls.Config{CSKey: f.alice, Time: milClock(milNow)}
	r := milHandshakeTCP(t, good, server, nil, nil)
	milExpectAlert(t, "server", r.serverErr, ciphersuite.AlertAccessDenied, false)
	if !strings.Contains(r.serverErr.Error(), "locked out") {
		t.Fatalf("the fifth failure did not lock: %v", r.serverErr)
	}
}

// Milagro P2P has the same pairing gate and failure budget as CS: each
// ClientKeyExchange's pairing goes through the gate, and a client whose
// Finished does not verify (a wrong key) is charged to its source until
// the listener refuses the source at accept.
func TestP2PGateAndBudget(t *testing.T) {
	f := milFixtureFor(t)
	gate := &countingGate{}
	guards := mtls.NewGuards(milClock(milNow))
	guards.Budget.Burst = 3
	server := &mtls.Config{P2PKey: f.nodeA, Time: milClock(milNow), PairingGate: gate, Guards: guards}
	good := &mtls.Config{P2PKey: f.nodeB, ServerIdentity: milNodeA, Time: milClock(milNow)}
	if r := milHandshakeTCP(t, good, server, nil, nil); r.serverErr != nil || r.clientErr != nil {
		t.Fatalf("%v / %v", r.clientErr, r.serverErr)
	}
	if gate.n.Load() != 1 {
		t.Fatalf("a P2P handshake made %d pairings through the gate, want 1", gate.n.Load())
	}
	src := guards.Keyer.IP(netip.MustParseAddr("127.0.0.1"))
	wrong := &mtls.Config{P2PKey: f.nodeB2of3, ServerIdentity: milNodeA, Time: milClock(milNow)}
	for i := 0; i < 3; i++ {
		if r := milHandshakeTCP(t, wrong, server, nil, nil); r.serverErr == nil {
			t.Fatal("a wrong P2P key was accepted")
		}
	}
	if !guards.Budget.Spent(src) {
		t.Fatalf("three wrong P2P keys left the source %.1f tokens", guards.Budget.Left(src))
	}
	addr, _ := guardServer(t, server)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for guards.Pit.Held(src) == 0 {
		time.Sleep(time.Millisecond) // waiting for the listener's accept, no timing assertion
	}
}

// Hellos refused by a lockout spend the source's failure budget: a source
// flooding a locked identity ends refused at accept, held in the tarpit.
func TestLockoutRefusalsSpendBudget(t *testing.T) {
	f := milFixtureFor(t)
	guards := mtls.NewGuards(milClock(milNow))
	server := &mtls.Config{CSServerKeys: []*pairing.CSServerSecret{f.secret}, PermitMode: pairing.PermitsOptional, Time: milClock(milNow), Guards: guards}
	src := guards.Keyer.IP(netip.MustParseAddr("127.0.0.1"))
	for i := 0; i < 5; i++ {
		guards.Lockout.Failure(milAlice, src, guards.Lockout.Begin())
	}
	addr, results := guardServer(t, server)
	refused := 0
	for !guards.Budget.Spent(src) {
		if refused > 25 {
			t.Fatalf("%d hellos refused by the lockout did not spend the source's budget (%.1f left)", refused, guards.Budget.Left(src))
		}
		sendRaw(addr, captureHello(t, &mtls.Config{CSKey: f.alice, Time: milClock(milNow)}))
		if err := <-results; err == nil || !strings.Contains(err.Error(), "locked out") {
			t.Fatalf("hello of a locked identity: %v", err)
		}
		refused++
	}
	// Another source is not affected.
	other := guards.Keyer.IP(netip.MustParseAddr("127.0.0.2"))
	if locked, _ := guards.Lockout.Locked(milAlice, other); locked || guards.Budget.Spent(other) {
		t.Fatal("one source's failures reached another")
	}
}

// Fifty addresses of one IPv6 /64 are one source for the guards.
func TestGuardsKeyIPv6BySlashSixtyFour(t *testing.T) {
	g := mtls.NewGuards(nil)
	a := g.Keyer.Addr(&net.TCPAddr{IP: net.ParseIP("2001:db8:5:6::1"), Port: 1})
	for i := 2; i < 52; i++ {
		if b := g.Keyer.Addr(&net.TCPAddr{IP: net.ParseIP("2001:db8:5:6::" + strconv.Itoa(i)), Port: i}); b != a {
			t.Fatalf("%v and %v are two sources", a, b)
		}
	}
	for i := 0; i < 25; i++ {
		g.Budget.Charge(a)
	}
	if _, ok := g.Budget.Admit(g.Keyer.Addr(&net.TCPAddr{IP: net.ParseIP("2001:db8:5:6::ffff")})); ok {
		t.Fatal("another address of a /64 that spent its budget was admitted")
	}
}

// barrierGate lets pairings through only once n are waiting: a burst of
// proofs all in flight together.
type barrierGate struct {
	n, want atomic.Int64
	all     chan struct{}
	once    sync.Once
}

func (g *barrierGate) Acquire(ctx context.Context, _ mtls.Source) (func(bool), error) {
	if g.n.Add(1) == g.want.Load() {
		g.once.Do(func() { close(g.all) })
	}
	select {
	case <-g.all:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return func(bool) {}, nil
}

// One burst of failed proofs, all in flight together, escalates the
// backoff at most once: 20 wrong PINs lock alice for one backoff, not 1 →
// 2 → 4 → 8 minutes.
func TestLockoutBurstEscalatesOnce(t *testing.T) {
	f := milFixtureFor(t)
	const burst = 20
	gate := &barrierGate{all: make(chan struct{})}
	gate.want.Store(burst)
	lock := &mtls.Lockout{Clock: milClock(milNow)}
	server := &mtls.Config{CSServerKeys: []*pairing.CSServerSecret{f.secret}, PermitMode: pairing.PermitsOptional, Time: milClock(milNow), PairingGate: gate, CSLockout: lock}
	addr, results := guardServer(t, server)
	var hellos [][]byte
	for i := 0; i < burst; i++ {
		hellos = append(hellos, captureHello(t, &mtls.Config{CSToken: f.aliceToken,
			GetPIN: func() (uint32, error) { return milBadPIN, nil }, Time: milClock(milNow)}))
	}
	for _, h := range hellos {
		go sendRaw(addr, h)
	}
	for i := 0; i < burst; i++ {
		if err := <-results; err == nil || !strings.Contains(err.Error(), "does not verify") {
			t.Fatalf("proof %d: %v", i, err)
		}
	}
	src := mtls.NewGuards(nil).Keyer.IP(netip.MustParseAddr("127.0.0.1"))
	locked, until := lock.Locked(milAlice, src)
	if !locked || !until.Equal(milNow.Add(time.Minute)) {
		t.Fatalf("one burst of %d failures: locked %v until %v, want one backoff (%v)", burst, locked, until, milNow.Add(time.Minute))
	}
}

// A source cannot lock a victim out: ten wrong PINs for alice from
// 127.0.0.2 lock 127.0.0.2 out for her, not alice on 127.0.0.1.
func TestLockoutOneSourceCannotLockVictim(t *testing.T) {
	f := milFixtureFor(t)
	lock := &mtls.Lockout{Clock: milClock(milNow)}
	server := &mtls.Config{CSServerKeys: []*pairing.CSServerSecret{f.secret}, PermitMode: pairing.PermitsOptional, Time: milClock(milNow), CSLockout: lock}
	addr, results := guardServer(t, server)
	attacker := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}
	for i := 0; i < 10; i++ {
		h := captureHello(t, &mtls.Config{CSToken: f.aliceToken, GetPIN: func() (uint32, error) { return milBadPIN, nil }, Time: milClock(milNow)})
		if err := sendRawFrom(attacker, addr, h); err != nil && !errors.Is(err, io.EOF) {
			t.Logf("attacker connection: %v", err)
		}
		<-results
	}
	g := mtls.NewGuards(nil)
	if locked, _ := lock.Locked(milAlice, g.Keyer.IP(netip.MustParseAddr("127.0.0.2"))); !locked {
		t.Fatal("the attacking source is not locked out for alice")
	}
	good := &mtls.Config{CSKey: f.alice, Time: milClock(milNow)}
	if r := milHandshakeTCP(t, good, server, nil, nil); r.serverErr != nil || r.clientErr != nil {
		t.Fatalf("one source locked alice out everywhere: %v / %v", r.clientErr, r.serverErr)
	}
}
