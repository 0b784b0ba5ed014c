package mtls_test

import (
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/milagro-go/milagro/mtls"
	"github.com/milagro-go/milagro/pairing"
)

// GetPIN over real connections: a PIN belongs to a Config and its Clones
// (milagro_config.go).

// milPINConfigs returns a CS client with alice's PIN token and get as
// GetPIN (no ServerName, so Dial clones it), and a server requiring permits.
func milPINConfigs(t *testing.T, get func() (uint32, error)) (client, server *mtls.Config) {
	f := milFixtureFor(t)
	client = &mtls.Config{
		CSToken:      f.aliceToken,
		GetPIN:       get,
		CSPermits:    []*pairing.TimePermit{f.permitToday},
		CipherSuites: []uint16{0xFF01},
		Time:         milClock(milNow),
	}
	server = &mtls.Config{
		CSServerKeys: []*pairing.CSServerSecret{f.secret},
		PermitMode:   pairing.PermitsRequired,
		CipherSuites: []uint16{0xFF01},
		Time:         milClock(milNow),
	}
	return client, server
}

func milCountPIN(n *atomic.Int32, pin uint32) func() (uint32, error) {
	return func() (uint32, error) { n.Add(1); return pin, nil }
}

// TestMilagroPINCloneBeforeUse: a Clone made before the first handshake
// shares the Config's PIN: GetPIN runs once across Dials of the Config (each
// cloned by Dial) and of the Clone.
func TestMilagroPINCloneBeforeUse(t *testing.T) {
	var calls atomic.Int32
	ccfg, scfg := milPINConfigs(t, milCountPIN(&calls, milPIN))
	clone := ccfg.Clone()
	for i, c := range []*mtls.Config{ccfg, clone, ccfg, clone} {
		r := milHandshakeTCP(t, c, scfg, nil, nil)
		if r.clientErr != nil || r.serverErr != nil {
			t.Fatalf("handshake %d: client %v, server %v", i, r.clientErr, r.serverErr)
		}
		if id := r.server.ConnectionState().PeerIdentity; id != milAlice {
			t.Fatalf("handshake %d: peer %q", i, id)
		}
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("GetPIN called %d times, want once", n)
	}
}

// TestMilagroPINPerConfig: two Configs with the same PIN token and
// different GetPIN callbacks each use their own PIN, whichever goes first.
func TestMilagroPINPerConfig(t *testing.T) {
	var badCalls, goodCalls atomic.Int32
	bad, scfg := milPINConfigs(t, milCountPIN(&badCalls, milBadPIN))
	good, _ := milPINConfigs(t, milCountPIN(&goodCalls, milPIN))
	for round := range 2 {
		r := milHandshakeTCP(t, bad, scfg, nil, nil)
		if r.clientErr == nil || r.serverErr == nil || !strings.Contains(r.serverErr.Error(), "does not verify") {
			t.Fatalf("round %d, wrong PIN: client %v, server %v", round, r.clientErr, r.serverErr)
		}
		r = milHandshakeTCP(t, good, scfg, nil, nil)
		if r.clientErr != nil || r.serverErr != nil {
			t.Fatalf("round %d, right PIN: client %v, server %v", round, r.clientErr, r.serverErr)
		}
	}
	if b, g := badCalls.Load(), goodCalls.Load(); b != 1 || g != 1 {
		t.Fatalf("GetPIN calls: wrong PIN %d, right PIN %d; want 1 each", b, g)
	}
}

// TestMilagroPINErrorRetried: an error from GetPIN fails that handshake
// only; the next handshake (here through a Clone) asks again, and the PIN
// it gets is then kept.
func TestMilagroPINErrorRetried(t *testing.T) {
	var calls atomic.Int32
	ccfg, scfg := milPINConfigs(t, func() (uint32, error) {
		if calls.Add(1) == 1 {
			return 0, errors.New("user cancelled")
		}
		return milPIN, nil
	})
	r := milHandshakeTCP(t, ccfg, scfg, nil, nil)
	if r.clientErr == nil || !strings.Contains(r.clientErr.Error(), "user cancelled") {
		t.Fatalf("first handshake: client %v", r.clientErr)
	}
	for i, c := range []*mtls.Config{ccfg.Clone(), ccfg} {
		r = milHandshakeTCP(t, c, scfg, nil, nil)
		if r.clientErr != nil || r.serverErr != nil {
			t.Fatalf("handshake %d after the error: client %v, server %v", i, r.clientErr, r.serverErr)
		}
	}
	if n := calls.Load(); n != 2 {
		t.Fatalf("GetPIN called %d times, want 2", n)
	}
}
