package ciphersuite

import (
	"bytes"
	"encoding/binary"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/milagro-go/milagro/pairing"
)

// Unit tests of the Milagro key exchanges at the ciphersuite seam (the
// end-to-end tests over TCP are in package mtls).

var milNow = time.Unix(1763769600+12*3600, 0).UTC()

const (
	milAlice = "alice@example.com"
	milNodeA = "node-a"
	milNodeB = "node-b"
)

type milKeys struct {
	csClient  *pairing.CSClient
	csServer  *pairing.CSServer
	p2pClient *pairing.P2PClient // node-b
	p2pServer *pairing.P2PServer // node-a
}

var (
	milKeysOnce sync.Once
	milKeysVal  *milKeys
	milKeysErr  error
)

// oneServer is CSServer.GetServer for a server with one prepared key.
func oneServer(s *pairing.CSServer) func(string) *pairing.CSServer {
	return func(id string) *pairing.CSServer {
		if s.ID() == id {
			return s
		}
		return nil
	}
}

func milTestKeys(t testing.TB) *milKeys {
	t.Helper()
	milKeysOnce.Do(func() { milKeysVal, milKeysErr = newMilKeys() })
	if milKeysErr != nil {
		t.Fatal(milKeysErr)
	}
	return milKeysVal
}

func newMilKeys() (*milKeys, error) {
	var shares []*pairing.MasterShare
	for i := range 3 {
		m, err := pairing.NewMasterShare(newDetRand(byte(100 + i)))
		if err != nil {
			return nil, err
		}
		shares = append(shares, m)
	}
	var cks []*pairing.CSClientKey
	var sss []*pairing.CSServerSecret
	var pa, pb []*pairing.P2PKey
	for _, m := range shares {
		k, err := m.IssueCSClientKey(milAlice)
		if err != nil {
			return nil, err
		}
		cks = append(cks, k)
		sss = append(sss, m.IssueCSServerSecret())
		a, err := m.IssueP2PKey(milNodeA)
		if err != nil {
			return nil, err
		}
		b, err := m.IssueP2PKey(milNodeB)
		if err != nil {
			return nil, err
		}
		pa, pb = append(pa, a), append(pb, b)
	}
	ck, err := pairing.CombineCSClientKeys(cks...)
	if err != nil {
		return nil, err
	}
	ss, err := pairing.CombineCSServerSecrets(sss...)
	if err != nil {
		return nil, err
	}
	ka, err := pairing.CombineP2PKeys(pa...)
	if err != nil {
		return nil, err
	}
	kb, err := pairing.CombineP2PKeys(pb...)
	if err != nil {
		return nil, err
	}
	k := &milKeys{}
	if k.csClient, err = pairing.NewCSClient(ck, nil); err != nil {
		return nil, err
	}
	if k.csServer, err = pairing.NewCSServer(ss); err != nil {
		return nil, err
	}
	if k.p2pClient, err = pairing.NewP2PClient(kb); err != nil {
		return nil, err
	}
	if k.p2pServer, err = pairing.NewP2PServer(ka); err != nil {
		return nil, err
	}
	return k, nil
}

func milClientConfig(t testing.TB, seed byte) *ClientConfig {
	k := milTestKeys(t)
	return &ClientConfig{
		Rand: newDetRand(seed),
		Time: func() time.Time { return milNow },
		CS:   &CSClient{Client: k.csClient},
		P2P:  &P2PClient{Client: k.p2pClient, ServerID: milNodeA},
	}
}

func milServerConfig(t testing.TB, seed byte) *ServerConfig {
	k := milTestKeys(t)
	return &ServerConfig{
		Rand: newDetRand(seed),
		Time: func() time.Time { return milNow },
		CS:   &CSServer{GetServer: oneServer(k.csServer), Permits: pairing.PermitsOptional},
		P2P:  &P2PServer{Server: k.p2pServer},
	}
}

// milTranscript is the wire of one Milagro key exchange.
type milTranscript struct {
	ext, ske, cke []byte
	pqEK          []byte      // the client's milagro_pq (nil: none)
	shExts        []Extension // the server's ServerHello extensions
	cpms, spms    []byte
	ck            ClientKX
	sk            ServerKX
}

func runMilagroKX(t testing.TB, s *Suite, cc *ClientConfig, sc *ServerConfig) *milTranscript {
	t.Helper()
	tr := &milTranscript{}
	ck, err := NewClientKX(cc, []*Suite{s})
	if err != nil {
		t.Fatalf("%s: NewClientKX: %v", s, err)
	}
	exts, err := ck.HelloExtensions()
	if err != nil {
		t.Fatalf("%s: HelloExtensions: %v", s, err)
	}
	hello := &ClientHelloInfo{Extensions: map[uint16][]byte{}}
	for _, e := range exts {
		hello.Extensions[e.Type] = e.Data
	}
	tr.ext = hello.Extensions[ExtMilagroCS]
	tr.pqEK = hello.Extensions[ExtMilagroPQ]
	if (s.KX == KXMilagroCS) != (tr.ext != nil) || (cc.PQ != PQOff) != (tr.pqEK != nil) || len(exts) > 2 {
		t.Fatalf("%s: extensions %v", s, exts)
	}
	if !sc.Supports(s, hello) {
		t.Fatalf("%s: server does not support", s)
	}
	sk, err := NewServerKX(sc, s, hello)
	if err != nil {
		t.Fatalf("%s: NewServerKX: %v", s, err)
	}
	if e, ok := sk.(ServerHelloExtender); ok {
		tr.shExts = e.ServerHelloExtensions()
	}
	if err := ck.(ServerHelloProcessor).ProcessServerHello(s, tr.shExts); err != nil {
		t.Fatalf("%s: ProcessServerHello: %v", s, err)
	}
	if tr.ske, err = sk.GenerateServerKeyExchange(); err != nil {
		t.Fatalf("%s: GenerateServerKeyExchange: %v", s, err)
	}
	if err := ck.ProcessServerKeyExchange(s, tr.ske); err != nil {
		t.Fatalf("%s: ProcessServerKeyExchange: %v", s, err)
	}
	if tr.cke, tr.cpms, err = ck.GenerateClientKeyExchange(s); err != nil {
		t.Fatalf("%s: GenerateClientKeyExchange: %v", s, err)
	}
	if tr.spms, err = sk.ProcessClientKeyExchange(tr.cke); err != nil {
		t.Fatalf("%s: ProcessClientKeyExchange: %v", s, err)
	}
	tr.ck, tr.sk = ck, sk
	return tr
}

func TestMilagroKXRoundTrip(t *testing.T) {
	for _, s := range append(ByKX(KXMilagroCS), ByKX(KXMilagroP2P)...) {
		t.Run(s.Name, func(t *testing.T) {
			tr := runMilagroKX(t, s, milClientConfig(t, 1), milServerConfig(t, 2))
			if len(tr.cpms) != pairing.PMSSize || !equalSecrets(tr.cpms, tr.spms) {
				t.Fatal("pre-master secrets differ")
			}
			if s.KX == KXMilagroCS {
				if len(tr.ske) != 48 || len(tr.cke) != 48 {
					t.Fatalf("SKE %d, CKE %d bytes", len(tr.ske), len(tr.cke))
				}
				if tr.sk.PeerIdentity() != milAlice || tr.ck.LocalIdentity() != milAlice || tr.ck.PeerIdentity() != "" {
					t.Fatal("identities")
				}
				// Extension layout: identity<2> ‖ day ‖ time ‖ U ‖ V ‖ server_identity<2>.
				e := tr.ext
				if len(e) != 2+len(milAlice)+16+96+2 || e[len(e)-1] != 0 || e[len(e)-2] != 0 || string(e[2:2+len(milAlice)]) != milAlice ||
					binary.BigEndian.Uint64(e[2+len(milAlice):]) != 0 ||
					binary.BigEndian.Uint64(e[10+len(milAlice):]) != uint64(milNow.Unix()) {
					t.Fatalf("extension %x", e)
				}
				return
			}
			if len(tr.ske) != 2+len(milNodeA)+48 || len(tr.cke) != 2+len(milNodeB)+48+96 {
				t.Fatalf("SKE %d, CKE %d bytes", len(tr.ske), len(tr.cke))
			}
			if tr.sk.PeerIdentity() != milNodeB || tr.ck.PeerIdentity() != milNodeA || tr.ck.LocalIdentity() != milNodeB {
				t.Fatal("identities")
			}
			if li, ok := tr.sk.(interface{ LocalIdentity() string }); !ok || li.LocalIdentity() != milNodeA {
				t.Fatal("server local identity")
			}
		})
	}
}

// TestMilagroKXRandomness: all randomness comes from the configured Rand,
// except the server's ML-KEM encapsulation (crypto/rand, as FIPS 203 wants):
// the same seeds give the same wire bytes (and, classic, the same secret),
// other seeds other bytes.
func TestMilagroKXRandomness(t *testing.T) {
	for _, pq := range []PQPolicy{PQOff, PQPrefer} {
		for _, s := range []*Suite{ByID(0xFF01), ByID(0xFF11)} {
			run := func(cs, ss byte) *milTranscript {
				cc, sc := milClientConfig(t, cs), milServerConfig(t, ss)
				cc.PQ, sc.PQ = pq, pq
				return runMilagroKX(t, s, cc, sc)
			}
			a, b, c := run(7, 8), run(7, 8), run(9, 10)
			if !bytes.Equal(a.ext, b.ext) || !bytes.Equal(a.pqEK, b.pqEK) || !bytes.Equal(a.ske, b.ske) || !bytes.Equal(a.cke, b.cke) {
				t.Fatalf("%s %s: same seeds, different key exchanges", pq, s)
			}
			if (pq == PQOff) != bytes.Equal(a.cpms, b.cpms) {
				t.Fatalf("%s %s: same seeds: pre-master secrets equal = %v", pq, s, bytes.Equal(a.cpms, b.cpms))
			}
			if bytes.Equal(a.ske, c.ske) || bytes.Equal(a.cke, c.cke) || bytes.Equal(a.cpms, c.cpms) ||
				(pq != PQOff && bytes.Equal(a.pqEK, c.pqEK)) {
				t.Fatalf("%s %s: different seeds, same key exchange", pq, s)
			}
		}
	}
}

func TestMilagroSupports(t *testing.T) {
	cs, p2p := ByID(0xFF02), ByID(0xFF12)
	cc := milClientConfig(t, 1)
	sc := milServerConfig(t, 2)
	with := &ClientHelloInfo{Extensions: map[uint16][]byte{ExtMilagroCS: {1}}}
	without := &ClientHelloInfo{Extensions: map[uint16][]byte{}}
	if !cc.Supports(cs) || !cc.Supports(p2p) {
		t.Fatal("client")
	}
	if !sc.Supports(cs, with) || sc.Supports(cs, without) || sc.Supports(cs, nil) || !sc.Supports(p2p, without) {
		t.Fatal("server: CS must need the milagro_cs extension")
	}
	noExpect := milClientConfig(t, 1)
	noExpect.P2P = &P2PClient{Client: noExpect.P2P.Client}
	if noExpect.Supports(p2p) {
		t.Fatal("P2P client without an expected server identity")
	}
	empty := &ClientConfig{}
	if empty.Supports(cs) || empty.Supports(p2p) || (&ServerConfig{}).Supports(cs, with) || (&ServerConfig{}).Supports(p2p, with) {
		t.Fatal("no credentials")
	}
	if _, err := NewServerKX(sc, cs, without); err == nil {
		t.Fatal("CS without the extension")
	} else {
		wantAlert(t, "no extension", err, AlertHandshakeFailure)
	}
	if _, err := NewClientKX(noExpect, []*Suite{p2p}); err == nil {
		t.Fatal("NewClientKX without expected server")
	}
}

func TestMilagroServerPolicy(t *testing.T) {
	s := ByID(0xFF01)
	mk := func(clientTime time.Time, mut func(*ServerConfig)) error {
		cc := milClientConfig(t, 3)
		cc.Time = func() time.Time { return clientTime }
		ck, err := NewClientKX(cc, []*Suite{s})
		if err != nil {
			t.Fatal(err)
		}
		exts, err := ck.HelloExtensions()
		if err != nil {
			return err
		}
		sc := milServerConfig(t, 4)
		if mut != nil {
			mut(sc)
		}
		_, err = NewServerKX(sc, s, &ClientHelloInfo{Extensions: map[uint16][]byte{ExtMilagroCS: exts[0].Data}})
		return err
	}
	if err := mk(milNow.Add(30*time.Second), nil); err != nil {
		t.Fatal("30 s ahead:", err)
	}
	err := mk(milNow.Add(31*time.Second), nil)
	wantAlert(t, "31 s ahead", err, AlertAccessDenied)
	if !errors.Is(err, pairing.ErrClockSkew) {
		t.Fatal(err)
	}
	wantAlert(t, "skew 10s", mk(milNow.Add(-11*time.Second), func(c *ServerConfig) { c.CS.ClockSkew = 10 * time.Second }), AlertAccessDenied)
	wantAlert(t, "permits required", mk(milNow, func(c *ServerConfig) { c.CS.Permits = pairing.PermitsRequired }), AlertAccessDenied)
	denied := errors.New("denied by policy")
	err = mk(milNow, func(c *ServerConfig) { c.VerifyPeerIdentity = func(string) error { return denied } })
	wantAlert(t, "denied", err, AlertAccessDenied)
	if !errors.Is(err, denied) {
		t.Fatal(err)
	}
	wantAlert(t, "client clock before 1970", mk(time.Unix(0, 0).Add(-time.Hour), nil), AlertInternalError)
}

func TestMilagroP2PWrongServer(t *testing.T) {
	s := ByID(0xFF13)
	cc := milClientConfig(t, 5)
	cc.P2P = &P2PClient{Client: cc.P2P.Client, ServerID: "node-z"}
	ck, err := NewClientKX(cc, []*Suite{s})
	if err != nil {
		t.Fatal(err)
	}
	sk, err := NewServerKX(milServerConfig(t, 6), s, &ClientHelloInfo{})
	if err != nil {
		t.Fatal(err)
	}
	ske, err := sk.GenerateServerKeyExchange()
	if err != nil {
		t.Fatal(err)
	}
	wantAlert(t, "wrong server", ck.ProcessServerKeyExchange(s, ske), AlertAccessDenied)
	if _, _, err := ck.GenerateClientKeyExchange(s); err == nil {
		t.Fatal("CKE after a refused SKE")
	}
	if ck.PeerIdentity() != "" {
		t.Fatal("peer identity after failure")
	}
}

func TestMilagroMissingServerKeyExchange(t *testing.T) {
	for _, s := range []*Suite{ByID(0xFF01), ByID(0xFF11)} {
		ck, err := NewClientKX(milClientConfig(t, 1), []*Suite{s})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ck.HelloExtensions(); err != nil {
			t.Fatal(err)
		}
		wantAlert(t, "nil SKE", ck.ProcessServerKeyExchange(s, nil), AlertUnexpectedMessage)
	}
}
