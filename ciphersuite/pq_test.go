package ciphersuite

import (
	"bytes"
	"crypto/mlkem"
	"crypto/mlkem/mlkemtest"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"math/big"
	"testing"
	"time"

	"github.com/milagro-go/milagro/pairing"
)

// vectorPQSeed and vectorPQM are the ML-KEM-768 inputs of docs/protocol.md §5b
// revision 3: the key-pair seed d ‖ z = 00 … 3f and the encapsulation
// randomness m = 40 … 5f.
func vectorPQSeed() []byte {
	b := make([]byte, 64)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

func vectorPQM() []byte {
	b := make([]byte, 32)
	for i := range b {
		b[i] = byte(0x40 + i)
	}
	return b
}

// withVectorEncapsulation makes the server's encapsulation the vector's
// derandomized one for the rest of the test.
func withVectorEncapsulation(t *testing.T) {
	old := pqEncapsulate
	pqEncapsulate = func(ek *mlkem.EncapsulationKey768) ([]byte, []byte) {
		ss, ct, err := mlkemtest.Encapsulate768(ek, vectorPQM())
		if err != nil {
			t.Fatal(err)
		}
		return ss, ct
	}
	t.Cleanup(func() { pqEncapsulate = old })
}

// TestMilagroSpecVectorPQ runs the revision-3 vector (docs/protocol.md §5b) through this package's
// wire layer: with the vector's scalars and ML-KEM seed fed in as the Rand
// streams, milagro_pq carries the vector's ek and ct (by their SHA-256) and
// both sides derive the vector's three hybrid pre-master secrets, for every
// AEAD of each family.
func TestMilagroSpecVectorPQ(t *testing.T) {
	withVectorEncapsulation(t)
	order, _ := new(big.Int).SetString("73eda753299d7d483339d80809a1d80553bda402fffe5bfeffffffff00000001", 16)
	mont := new(big.Int).Lsh(big.NewInt(1), 256)
	sc := func(v uint64) []byte { // see TestMilagroSpecVector: Montgomery form
		m := new(big.Int).SetUint64(v)
		m.Mul(m, mont).Mod(m, order)
		return m.FillBytes(make([]byte, 32))
	}
	cat := func(parts ...[]byte) io.Reader { return bytes.NewReader(bytes.Join(parts, nil)) }
	unhex := func(s string) []byte {
		b, err := hex.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	const (
		ekHash = "0b7934c83125c788995e2ba6bd761e33046b3e40571be53e023309a29f398cc9"
		ctHash = "dbf4e9aa48b078ad46ec1c9c47bda8c2d2fec9d0e7a21bd48d2238a2abedb856"
	)
	checkPQ := func(name string, tr *milTranscript) {
		t.Helper()
		ek, err := parsePQClientHello(tr.pqEK)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if h := sha256.Sum256(ek); hex.EncodeToString(h[:]) != ekHash {
			t.Errorf("%s: SHA-256(ek) = %x, want %s", name, h, ekHash)
		}
		if len(tr.shExts) != 1 || tr.shExts[0].Type != ExtMilagroPQ {
			t.Fatalf("%s: ServerHello extensions %v", name, tr.shExts)
		}
		ct, err := parsePQServerHello(tr.shExts[0].Data)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if h := sha256.Sum256(ct); hex.EncodeToString(h[:]) != ctHash {
			t.Errorf("%s: SHA-256(ct) = %x, want %s", name, h, ctHash)
		}
		if !tr.ck.(PostQuantum).PostQuantum() || !tr.sk.(PostQuantum).PostQuantum() {
			t.Errorf("%s: not reported as hybrid", name)
		}
	}

	var shares []*pairing.MasterShare
	for _, s := range []uint64{0x11, 0x2222, 0x333333} {
		m, err := pairing.NewMasterShare(bytes.NewReader(sc(s)))
		if err != nil {
			t.Fatal(err)
		}
		shares = append(shares, m)
	}
	const id, day, now = "alice@example.com", 20413, 1763769600
	var keys []*pairing.CSClientKey
	var permits []*pairing.TimePermit
	var kS, kC []*pairing.P2PKey
	for _, m := range shares {
		k, err := m.IssueCSClientKey(id)
		if err != nil {
			t.Fatal(err)
		}
		p, err := m.IssueTimePermit(id, day)
		if err != nil {
			t.Fatal(err)
		}
		a, err := m.IssueP2PKey("node-a")
		if err != nil {
			t.Fatal(err)
		}
		b, err := m.IssueP2PKey("node-b")
		if err != nil {
			t.Fatal(err)
		}
		keys, permits, kS, kC = append(keys, k), append(permits, p), append(kS, a), append(kC, b)
	}
	key, err := pairing.CombineCSClientKeys(keys...)
	if err != nil {
		t.Fatal(err)
	}
	permit, err := pairing.CombineTimePermits(permits...)
	if err != nil {
		t.Fatal(err)
	}
	csClient, err := pairing.NewCSClient(key, permit)
	if err != nil {
		t.Fatal(err)
	}
	clock := func() time.Time { return time.Unix(now, 0) }

	for _, tc := range []struct{ idS, pms string }{
		{"", "868f865c12183b918ce97d3edf817294d23aabc54cdac3f6256ac4905c4143ab"},
		{"api.example.com", "1772d8e79aa533bd9bdb597f5a54a30b11252310716ff090beba9f9d544be9ea"},
	} {
		var ss []*pairing.CSServerSecret
		for _, m := range shares {
			k, err := m.IssueCSServerKey(tc.idS)
			if err != nil {
				t.Fatal(err)
			}
			ss = append(ss, k)
		}
		ks, err := pairing.CombineCSServerSecrets(ss...)
		if err != nil {
			t.Fatal(err)
		}
		csServer, err := pairing.NewCSServer(ks)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range ByKX(KXMilagroCS) {
			// The client draws x, then the ML-KEM seed, then r.
			cc := &ClientConfig{Rand: cat(sc(0x1234567890abcdef), vectorPQSeed(), sc(0x0badc0ffee)), Time: clock,
				CS: &CSClient{Client: csClient, ServerID: tc.idS}}
			scfg := &ServerConfig{Rand: bytes.NewReader(sc(0xfedcba0987654321)), Time: clock,
				CS: &CSServer{GetServer: oneServer(csServer), Permits: pairing.PermitsRequired}, PQ: PQRequire}
			tr := runMilagroKX(t, s, cc, scfg)
			name := s.Name + " id_S " + tc.idS
			checkPQ(name, tr)
			if pms := unhex(tc.pms); !bytes.Equal(tr.cpms, pms) || !bytes.Equal(tr.spms, pms) {
				t.Errorf("%s: pq pre_master_secret\n client %x\n server %x\n want   %x", name, tr.cpms, tr.spms, pms)
			}
		}
	}

	keyS, err := pairing.CombineP2PKeys(kS...)
	if err != nil {
		t.Fatal(err)
	}
	keyC, err := pairing.CombineP2PKeys(kC...)
	if err != nil {
		t.Fatal(err)
	}
	ps, err := pairing.NewP2PServer(keyS)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := pairing.NewP2PClient(keyC)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range ByKX(KXMilagroP2P) {
		// The client draws the ML-KEM seed (ClientHello), then y and w.
		cc := &ClientConfig{Rand: cat(vectorPQSeed(), sc(0xb2), sc(0xc3)), Time: clock,
			P2P: &P2PClient{Client: pc, ServerID: "node-a"}, PQ: PQRequire}
		scfg := &ServerConfig{Rand: bytes.NewReader(sc(0xa1)), Time: clock, P2P: &P2PServer{Server: ps}}
		tr := runMilagroKX(t, s, cc, scfg)
		checkPQ(s.Name, tr)
		if pms := unhex("1c5934c3fd880f025bab14cfcb358cb9951a27eff539419b9f24add83eed12fd"); !bytes.Equal(tr.cpms, pms) || !bytes.Equal(tr.spms, pms) {
			t.Errorf("%s: pq pre_master_secret\n client %x\n server %x\n want   %x", s.Name, tr.cpms, tr.spms, pms)
		}
	}
}

// pqHello is a ClientHelloInfo for the client config cc offering suite s.
func pqHello(t *testing.T, cc *ClientConfig, s *Suite) (ClientKX, *ClientHelloInfo) {
	t.Helper()
	ck, err := NewClientKX(cc, []*Suite{s})
	if err != nil {
		t.Fatal(err)
	}
	exts, err := ck.HelloExtensions()
	if err != nil {
		t.Fatal(err)
	}
	h := &ClientHelloInfo{Extensions: map[uint16][]byte{}}
	for _, e := range exts {
		h.Extensions[e.Type] = e.Data
	}
	return ck, h
}

// countingGate is a HelloGuard that records whether the server got as far
// as asking for the pairing work.
type countingGate struct{ n int }

func (g *countingGate) Admit(*HelloAttempt) (Admission, error) {
	g.n++
	return nopAdmission{}, nil
}

func (g *countingGate) Locked(string) bool { return false }

type nopAdmission struct{}

func (nopAdmission) Proved(bool)   {}
func (nopAdmission) Finished(bool) {}

// TestPQServerChecks: the server's milagro_pq checks and their alerts, all
// before any pairing, in the order of docs/protocol.md §5.1.
func TestPQServerChecks(t *testing.T) {
	cs, p2p := ByID(0xFF03), ByID(0xFF13)
	// An encapsulation key whose first coefficient is q = 3329: fails the
	// FIPS 203 modulus check.
	badEK := func(h *ClientHelloInfo) {
		ek, _ := parsePQClientHello(h.Extensions[ExtMilagroPQ])
		ek = bytes.Clone(ek)
		ek[0], ek[1] = 0x01, ek[1]&0xf0|0x0d // 12-bit little-endian 0xd01 = 3329
		h.Extensions[ExtMilagroPQ] = marshalPQVector(ek)
	}
	short := func(h *ClientHelloInfo) {
		d := h.Extensions[ExtMilagroPQ]
		h.Extensions[ExtMilagroPQ] = marshalPQVector(d[2 : len(d)-1])
	}
	long := func(h *ClientHelloInfo) {
		d := h.Extensions[ExtMilagroPQ]
		h.Extensions[ExtMilagroPQ] = marshalPQVector(append(bytes.Clone(d[2:]), 0))
	}
	trailing := func(h *ClientHelloInfo) {
		h.Extensions[ExtMilagroPQ] = append(bytes.Clone(h.Extensions[ExtMilagroPQ]), 0)
	}
	strip := func(h *ClientHelloInfo) { delete(h.Extensions, ExtMilagroPQ) }
	badID := func(h *ClientHelloInfo) { // U+200B in the CS identity: illegal_parameter
		d := bytes.Clone(h.Extensions[ExtMilagroCS])
		copy(d[2:5], "\u200b")
		h.Extensions[ExtMilagroCS] = d
	}
	for _, tc := range []struct {
		name   string
		suite  *Suite
		policy PQPolicy
		server string // CS server identity the server holds ("": the client's)
		mod    []func(*ClientHelloInfo)
		want   Alert
	}{
		{"short ek", cs, PQPrefer, "", []func(*ClientHelloInfo){short}, AlertDecodeError},
		{"long ek", cs, PQPrefer, "", []func(*ClientHelloInfo){long}, AlertDecodeError},
		{"trailing byte", p2p, PQPrefer, "", []func(*ClientHelloInfo){trailing}, AlertDecodeError},
		{"modulus check", cs, PQPrefer, "", []func(*ClientHelloInfo){badEK}, AlertIllegalParameter},
		{"modulus check P2P", p2p, PQRequire, "", []func(*ClientHelloInfo){badEK}, AlertIllegalParameter},
		{"require, none", cs, PQRequire, "", []func(*ClientHelloInfo){strip}, AlertInsufficientSecurity},
		{"require, none, P2P", p2p, PQRequire, "", []func(*ClientHelloInfo){strip}, AlertInsufficientSecurity},
		// Alert order: decode_error, illegal_parameter, insufficient_security, unrecognized_name.
		{"short ek before bad identity", cs, PQRequire, "", []func(*ClientHelloInfo){short, badID}, AlertDecodeError},
		{"bad identity before require", cs, PQRequire, "", []func(*ClientHelloInfo){strip, badID}, AlertIllegalParameter},
		{"modulus before unknown server", cs, PQPrefer, "other.example", []func(*ClientHelloInfo){badEK}, AlertIllegalParameter},
		{"require before unknown server", cs, PQRequire, "other.example", []func(*ClientHelloInfo){strip}, AlertInsufficientSecurity},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cc := milClientConfig(t, 3)
			_, h := pqHello(t, cc, tc.suite)
			for _, m := range tc.mod {
				m(h)
			}
			scfg := milServerConfig(t, 4)
			scfg.PQ = tc.policy
			gate := &countingGate{}
			scfg.CS.Guard = gate
			if tc.server != "" {
				scfg.CS = &CSServer{GetServer: func(string) *pairing.CSServer { return nil }, Guard: gate}
			}
			_, err := NewServerKX(scfg, tc.suite, h)
			wantAlert(t, tc.name, err, tc.want)
			if gate.n != 0 {
				t.Fatal("the server started pairing work before refusing")
			}
		})
	}

	// off ignores even a malformed offer and answers classic.
	cc := milClientConfig(t, 5)
	_, h := pqHello(t, cc, cs)
	short(h)
	scfg := milServerConfig(t, 6)
	scfg.PQ = PQOff
	sk, err := NewServerKX(scfg, cs, h)
	if err != nil {
		t.Fatal(err)
	}
	if len(sk.(ServerHelloExtender).ServerHelloExtensions()) != 0 || sk.(PostQuantum).PostQuantum() {
		t.Fatal("an off server answered milagro_pq")
	}
}

// TestPQClientChecks: what the client accepts in the ServerHello.
func TestPQClientChecks(t *testing.T) {
	cs, psk := ByID(0xFF01), ByKX(KXPSK)[0]
	ct := make([]byte, pqCiphertextSize)
	pqExt := []Extension{{Type: ExtMilagroPQ, Data: marshalPQVector(ct)}}
	withPSK := func(cc *ClientConfig) *ClientConfig {
		cc.PSK = func([]byte) ([]byte, []byte, error) { return []byte("id"), make([]byte, 32), nil }
		return cc
	}
	for _, tc := range []struct {
		name   string
		policy PQPolicy
		offer  []*Suite
		chosen *Suite
		exts   []Extension
		want   Alert
	}{
		{"beside a PSK suite", PQPrefer, []*Suite{cs, psk}, psk, pqExt, AlertUnsupportedExtension},
		{"not asked for", PQOff, []*Suite{cs}, cs, pqExt, AlertUnsupportedExtension},
		{"short ct", PQPrefer, []*Suite{cs}, cs, []Extension{{ExtMilagroPQ, marshalPQVector(ct[1:])}}, AlertDecodeError},
		{"long ct", PQPrefer, []*Suite{cs}, cs, []Extension{{ExtMilagroPQ, marshalPQVector(append(ct, 0))}}, AlertDecodeError},
		{"empty", PQPrefer, []*Suite{cs}, cs, []Extension{{ExtMilagroPQ, nil}}, AlertDecodeError},
		{"require, none", PQRequire, []*Suite{cs}, cs, nil, AlertInsufficientSecurity},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cc := withPSK(milClientConfig(t, 3))
			cc.PQ = tc.policy
			ck, err := NewClientKX(cc, tc.offer)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := ck.HelloExtensions(); err != nil {
				t.Fatal(err)
			}
			err = ck.(ServerHelloProcessor).ProcessServerHello(tc.chosen, tc.exts)
			wantAlert(t, tc.name, err, tc.want)
		})
	}

	// A require client offers no PSK suite (none can be hybrid).
	cc := withPSK(milClientConfig(t, 3))
	cc.PQ = PQRequire
	if cc.Supports(psk) || !cc.Supports(cs) {
		t.Fatal("a require client would offer a PSK suite")
	}
	// A prefer client puts milagro_pq beside Milagro suites only.
	cc.PQ = PQPrefer
	_, h := pqHello(t, cc, psk)
	if _, ok := h.Extensions[ExtMilagroPQ]; ok {
		t.Fatal("milagro_pq offered with PSK suites only")
	}
}

// TestPQFlippedCiphertext: a ct garbled in flight decapsulates (implicit
// rejection) to another secret, so the pre-master secrets differ (the
// Finished check then fails, as the mtls tests show end to end).
func TestPQFlippedCiphertext(t *testing.T) {
	for _, s := range []*Suite{ByID(0xFF02), ByID(0xFF12)} {
		cc, scfg := milClientConfig(t, 21), milServerConfig(t, 22)
		ck, h := pqHello(t, cc, s)
		sk, err := NewServerKX(scfg, s, h)
		if err != nil {
			t.Fatal(err)
		}
		exts := sk.(ServerHelloExtender).ServerHelloExtensions()
		d := bytes.Clone(exts[0].Data)
		d[100] ^= 1
		if err := ck.(ServerHelloProcessor).ProcessServerHello(s, []Extension{{ExtMilagroPQ, d}}); err != nil {
			t.Fatal(err)
		}
		ske, err := sk.GenerateServerKeyExchange()
		if err != nil {
			t.Fatal(err)
		}
		if err := ck.ProcessServerKeyExchange(s, ske); err != nil {
			t.Fatal(err)
		}
		cke, cpms, err := ck.GenerateClientKeyExchange(s)
		if err != nil {
			t.Fatal(err)
		}
		spms, err := sk.ProcessClientKeyExchange(cke)
		if err != nil {
			t.Fatal(err)
		}
		if equalSecrets(cpms, spms) {
			t.Fatalf("%s: a flipped ciphertext byte left the secrets equal", s)
		}
	}
}

// TestPQPolicyParse covers the CLI spellings.
func TestPQPolicyParse(t *testing.T) {
	for in, want := range map[string]PQPolicy{"": PQPrefer, "prefer": PQPrefer, "off": PQOff, "REQUIRE": PQRequire} {
		got, err := ParsePQPolicy(in)
		if err != nil || got != want {
			t.Errorf("%q: %v %v", in, got, err)
		}
		if in != "" && in != "REQUIRE" && got.String() != in {
			t.Errorf("%q: String %q", in, got)
		}
	}
	if _, err := ParsePQPolicy("on"); err == nil {
		t.Error(`"on" accepted`)
	}
}

// FuzzPQClientHello drives the ClientHello milagro_pq parser and the
// server's checks: no panic, only the alerts of docs/protocol.md §5b and §5.1, and whatever
// is accepted re-encodes to the input.
//
//	go test -run='^$' -fuzz='^FuzzPQClientHello$' -fuzztime=5s ./ciphersuite
func FuzzPQClientHello(f *testing.F) {
	_, ext, err := newPQClient(newDetRand(1))
	if err != nil {
		f.Fatal(err)
	}
	addVariants(f, ext.Data)
	f.Add([]byte{0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		ek, err := parsePQClientHello(data)
		if err != nil {
			if a, _ := AlertOf(err); a != AlertDecodeError {
				t.Fatalf("alert %v", err)
			}
			return
		}
		if !bytes.Equal(marshalPQVector(ek), data) {
			t.Fatal("accepted input does not re-encode")
		}
		o := &pqServerOffer{raw: ek}
		if err := pqValidate(&ServerConfig{}, o, ByID(0xFF01)); err != nil {
			if a, _ := AlertOf(err); a != AlertIllegalParameter {
				t.Fatalf("alert %v", err)
			}
			return
		}
		if p := o.encapsulate(); p == nil || len(p.ct) != pqCiphertextSize || len(p.ss) != mlkem.SharedKeySize {
			t.Fatal("encapsulation")
		}
	})
}

// FuzzPQServerHello drives the ServerHello milagro_pq parser and the
// client's decapsulation.
//
//	go test -run='^$' -fuzz='^FuzzPQServerHello$' -fuzztime=5s ./ciphersuite
func FuzzPQServerHello(f *testing.F) {
	pc, ext, err := newPQClient(newDetRand(2))
	if err != nil {
		f.Fatal(err)
	}
	ek, _ := parsePQClientHello(ext.Data)
	k, _ := mlkem.NewEncapsulationKey768(ek)
	_, ct := k.Encapsulate()
	addVariants(f, marshalPQVector(ct))
	dk := pc.dk
	f.Fuzz(func(t *testing.T, data []byte) {
		p := &pqClient{dk: dk}
		ss, err := p.decapsulate(data)
		if err != nil {
			var ae *AlertError
			if !errors.As(err, &ae) || ae.Alert != AlertDecodeError {
				t.Fatalf("alert %v", err)
			}
			return
		}
		if len(ss) != mlkem.SharedKeySize || len(data) != 2+pqCiphertextSize {
			t.Fatal("accepted a ciphertext of the wrong size")
		}
	})
}
