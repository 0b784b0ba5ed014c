package mtls_test

import (
	"crypto/rand"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/milagro-go/milagro/ciphersuite"
	"github.com/milagro-go/milagro/mtls"
	"github.com/milagro-go/milagro/pairing"
)

// Milagro test fixture: three D-TAs; every key is combined from the three
// shares each issues.

// milNow is the fixed clock of the Milagro tests: noon UTC, so permit days
// never straddle midnight.
var milNow = time.Unix(1763769600+12*3600, 0).UTC()

func milClock(t time.Time) func() time.Time { return func() time.Time { return t } }

const (
	milAlice  = "alice@example.com"
	milBob    = "bob@example.com"
	milNodeA  = "spiffe://example.org/node-a"
	milNodeB  = "spiffe://example.org/node-b"
	milNodeC  = "spiffe://example.org/node-c"
	milPIN    = 12345678
	milBadPIN = 12345679
)

type milFixture struct {
	shares      [3]*pairing.MasterShare
	alice, bob  *pairing.CSClientKey
	alice2of3   *pairing.CSClientKey
	aliceToken  *pairing.PINToken
	permitToday *pairing.TimePermit
	permitYday  *pairing.TimePermit
	secret      *pairing.CSServerSecret
	nodeA       *pairing.P2PKey
	nodeB       *pairing.P2PKey
	nodeC       *pairing.P2PKey
	nodeA2of3   *pairing.P2PKey
	nodeB2of3   *pairing.P2PKey
}

var (
	milOnce sync.Once
	milFix  *milFixture
	milErr  error
)

func milFixtureFor(t testing.TB) *milFixture {
	t.Helper()
	milOnce.Do(func() { milFix, milErr = newMilFixture() })
	if milErr != nil {
		t.Fatal(milErr)
	}
	return milFix
}

func newMilFixture() (*milFixture, error) {
	f := &milFixture{}
	for i := range f.shares {
		s, err := pairing.NewMasterShare(rand.Reader)
		if err != nil {
			return nil, err
		}
		f.shares[i] = s
	}
	csKey := func(id string, n int) (*pairing.CSClientKey, error) {
		var parts []*pairing.CSClientKey
		for _, s := range f.shares[:n] {
			k, err := s.IssueCSClientKey(id)
			if err != nil {
				return nil, err
			}
			parts = append(parts, k)
		}
		return pairing.CombineCSClientKeys(parts...)
	}
	permit := func(id string, day uint64) (*pairing.TimePermit, error) {
		var parts []*pairing.TimePermit
		for _, s := range f.shares {
			p, err := s.IssueTimePermit(id, day)
			if err != nil {
				return nil, err
			}
			parts = append(parts, p)
		}
		return pairing.CombineTimePermits(parts...)
	}
	p2p := func(id string, n ...int) (*pairing.P2PKey, error) {
		var parts []*pairing.P2PKey
		use := f.shares[:]
		if len(n) > 0 {
			use = use[:n[0]]
		}
		for _, s := range use {
			k, err := s.IssueP2PKey(id)
			if err != nil {
				return nil, err
			}
			parts = append(parts, k)
		}
		return pairing.CombineP2PKeys(parts...)
	}
	var err error
	if f.alice, err = csKey(milAlice, 3); err != nil {
		return nil, err
	}
	if f.bob, err = csKey(milBob, 3); err != nil {
		return nil, err
	}
	if f.alice2of3, err = csKey(milAlice, 2); err != nil {
		return nil, err
	}
	if f.aliceToken, err = f.alice.ExtractPIN(milPIN); err != nil {
		return nil, err
	}
	today := pairing.Day(milNow)
	if f.permitToday, err = permit(milAlice, today); err != nil {
		return nil, err
	}
	if f.permitYday, err = permit(milAlice, today-1); err != nil {
		return nil, err
	}
	var secrets []*pairing.CSServerSecret
	for _, s := range f.shares {
		secrets = append(secrets, s.IssueCSServerSecret())
	}
	if f.secret, err = pairing.CombineCSServerSecrets(secrets...); err != nil {
		return nil, err
	}
	if f.nodeA, err = p2p(milNodeA); err != nil {
		return nil, err
	}
	if f.nodeB, err = p2p(milNodeB); err != nil {
		return nil, err
	}
	if f.nodeC, err = p2p(milNodeC); err != nil {
		return nil, err
	}
	if f.nodeA2of3, err = p2p(milNodeA, 2); err != nil {
		return nil, err
	}
	if f.nodeB2of3, err = p2p(milNodeB, 2); err != nil {
		return nil, err
	}
	return f, nil
}

// milCSConfigs returns a CS client and server configuration (clock milNow).
func milCSConfigs(t testing.TB, suite uint16) (client, server *mtls.Config) {
	f := milFixtureFor(t)
	client = &mtls.Config{CSKey: f.alice, CipherSuites: []uint16{suite}, Time: milClock(milNow)}
	server = &mtls.Config{CSServerKeys: []*pairing.CSServerSecret{f.secret}, PermitMode: pairing.PermitsOptional, CipherSuites: []uint16{suite}, Time: milClock(milNow)}
	return client, server
}

// milP2PConfigs returns a P2P client (node B) and server (node A).
func milP2PConfigs(t testing.TB, suite uint16) (client, server *mtls.Config) {
	f := milFixtureFor(t)
	client = &mtls.Config{P2PKey: f.nodeB, ServerIdentity: milNodeA, CipherSuites: []uint16{suite}}
	server = &mtls.Config{P2PKey: f.nodeA, CipherSuites: []uint16{suite}}
	return client, server
}

// milResult is the outcome of one handshake attempt over TCP.
type milResult struct {
	client, server       *mtls.Conn
	clientErr, serverErr error
	// refused counts the resumption-only hellos the server refused before
	// the connection reported (mtls.Dial then reconnects).
	refused int
}

// milHandshakeTCP runs one handshake over loopback TCP (mtls.Listen and
// mtls.Dial), with optional wrappers of the raw connections to tamper with
// the bytes in flight.
func milHandshakeTCP(t testing.TB, ccfg, scfg *mtls.Config, wrapClient, wrapServer func(net.Conn) net.Conn) milResult {
	t.Helper()
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer inner.Close()
	var l net.Listener = inner
	if wrapServer != nil {
		l = wrapListener{inner, wrapServer}
	}
	ml := mtls.NewListener(l, scfg)
	type res struct {
		c       *mtls.Conn
		err     error
		refused int
	}
	ch := make(chan res, 1)
	go func() {
		// A refused resumption-only hello is followed by mtls.Dial's one
		// reconnection: the result is that connection's.
		refused := 0
		for {
			c, err := ml.Accept()
			if err != nil {
				ch <- res{nil, err, refused}
				return
			}
			mc := c.(*mtls.Conn)
			mc.SetDeadline(time.Now().Add(20 * time.Second))
			err = mc.Handshake()
			mc.SetDeadline(time.Time{})
			if errors.Is(err, mtls.ErrResumptionRefused) {
				refused++
				continue
			}
			ch <- res{mc, err, refused}
			return
		}
	}()
	var r milResult
	if wrapClient == nil {
		r.client, r.clientErr = mtls.Dial("tcp", inner.Addr().String(), ccfg)
	} else {
		raw, err := net.Dial("tcp", inner.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		raw.SetDeadline(time.Now().Add(20 * time.Second))
		c := mtls.Client(wrapClient(raw), ccfg)
		r.clientErr = c.Handshake()
		raw.SetDeadline(time.Time{})
		if r.clientErr == nil {
			r.client = c
		} else {
			raw.Close()
		}
	}
	// Every connection the client made has been accepted by now; a server
	// still waiting for a reconnection that never came gets an error.
	inner.Close()
	sr := <-ch
	r.server, r.serverErr, r.refused = sr.c, sr.err, sr.refused
	t.Cleanup(func() {
		if r.client != nil {
			r.client.Close()
		}
		if r.server != nil {
			r.server.Close()
		}
	})
	return r
}

type wrapListener struct {
	net.Listener
	wrap func(net.Conn) net.Conn
}

func (l wrapListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return l.wrap(c), nil
}

// milExpectAlert checks that err carries alert a, sent (remote=false) or
// received (remote=true).
func milExpectAlert(t testing.TB, side string, err error, a ciphersuite.Alert, remote bool) {
	t.Helper()
	var ae *mtls.AlertError
	if !errors.As(err, &ae) {
		t.Fatalf("%s: want %v alert (remote %v), got %v", side, a, remote, err)
	}
	if ae.Alert != a || ae.Remote != remote {
		t.Fatalf("%s: want %v (remote %v), got %v (remote %v): %v", side, a, remote, ae.Alert, ae.Remote, err)
	}
}
