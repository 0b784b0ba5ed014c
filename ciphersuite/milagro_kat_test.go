package ciphersuite

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"math/big"
	"testing"
	"time"

	"github.com/milagro-go/milagro/pairing"
)

// TestMilagroSpecVector runs the key exchanges of spec §7 through this
// package's wire layer: with the vector's scalars fed in as the Rand
// streams, the milagro_cs extension carries the vector's (id, d, t, U, V)
// and both sides derive the vector's pre-master secrets.
func TestMilagroSpecVector(t *testing.T) {
	// The sampler (circl's Scalar.Random) takes the 32 bytes it reads as
	// the Montgomery form of the scalar, so v is fed as v·2^256 mod r.
	order, _ := new(big.Int).SetString("73eda753299d7d483339d80809a1d80553bda402fffe5bfeffffffff00000001", 16)
	mont := new(big.Int).Lsh(big.NewInt(1), 256)
	sc := func(v uint64) []byte {
		m := new(big.Int).SetUint64(v)
		m.Mul(m, mont).Mod(m, order)
		return m.FillBytes(make([]byte, 32))
	}
	stream := func(vs ...uint64) *bytes.Reader {
		var out []byte
		for _, v := range vs {
			out = append(out, sc(v)...)
		}
		return bytes.NewReader(out)
	}
	unhex := func(s string) []byte {
		b, err := hex.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	var shares []*pairing.MasterShare
	for _, s := range []uint64{0x11, 0x2222, 0x333333} {
		m, err := pairing.NewMasterShare(stream(s))
		if err != nil {
			t.Fatal(err)
		}
		shares = append(shares, m)
	}
	const id, day, now = "alice@example.com", 20413, 1763769600
	var keys []*pairing.CSClientKey
	var permits []*pairing.TimePermit
	var secrets []*pairing.CSServerSecret
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
		keys, permits, secrets = append(keys, k), append(permits, p), append(secrets, m.IssueCSServerSecret())
		kS, kC = append(kS, a), append(kC, b)
	}
	key, err := pairing.CombineCSClientKeys(keys...)
	if err != nil {
		t.Fatal(err)
	}
	permit, err := pairing.CombineTimePermits(permits...)
	if err != nil {
		t.Fatal(err)
	}
	ks, err := pairing.CombineCSServerSecrets(secrets...)
	if err != nil {
		t.Fatal(err)
	}
	csClient, err := pairing.NewCSClient(key, permit)
	if err != nil {
		t.Fatal(err)
	}
	csServer, err := pairing.NewCSServer(ks)
	if err != nil {
		t.Fatal(err)
	}
	clock := func() time.Time { return time.Unix(now, 0) }

	// CS: client draws x then r; the server draws w. t is midnight of day
	// 20414, so the day-20413 permit is yesterday's within the skew.
	cc := &ClientConfig{Rand: stream(0x1234567890abcdef, 0x0badc0ffee), Time: clock, CS: &CSClient{Client: csClient}}
	scfg := &ServerConfig{Rand: stream(0xfedcba0987654321), Time: clock, CS: &CSServer{Server: csServer, RequirePermits: true}}
	tr := runMilagroKX(t, ByID(0xFF01), cc, scfg)
	want := append([]byte{0, byte(len(id))}, id...)
	want = binary.BigEndian.AppendUint64(want, day)
	want = binary.BigEndian.AppendUint64(want, now)
	want = append(want, unhex("9968c3dc29acb2ec102faf55736475254e8bc1c76373a5590ba66410aa70e8440ed87d843dffcc1d372a3d3f3a6a6857")...)
	want = append(want, unhex("91a2672df8a7900fe5c2b60f064aebed4c0f263a045da7ba1a0af29b0c443eed2bae37445535de78f0dd2af195c8bd01")...)
	if !bytes.Equal(tr.ext, want) {
		t.Errorf("milagro_cs extension\n got  %x\n want %x", tr.ext, want)
	}
	pms := unhex("3d42ca281dc13f5bb481b544b6f32291951a9b0e4084346cea4e971c148fb386")
	if !bytes.Equal(tr.cpms, pms) || !bytes.Equal(tr.spms, pms) {
		t.Errorf("CS pre_master_secret\n client %x\n server %x\n want   %x", tr.cpms, tr.spms, pms)
	}

	// P2P: the server draws x; the client draws y then w.
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
	cc = &ClientConfig{Rand: stream(0xb2, 0xc3), Time: clock, P2P: &P2PClient{Client: pc, ExpectedServerID: "node-a"}}
	scfg = &ServerConfig{Rand: stream(0xa1), Time: clock, P2P: &P2PServer{Server: ps}}
	tr = runMilagroKX(t, ByID(0xFF11), cc, scfg)
	pms = unhex("a086aedb166bab6bb786bb60d6ffd97c91e064f32e322b144f5b51fe616267a3")
	if !bytes.Equal(tr.cpms, pms) || !bytes.Equal(tr.spms, pms) {
		t.Errorf("P2P pre_master_secret\n client %x\n server %x\n want   %x", tr.cpms, tr.spms, pms)
	}
	if !bytes.Equal(tr.ske[:8], append([]byte{0, 6}, "node-a"...)) || !bytes.Equal(tr.cke[:8], append([]byte{0, 6}, "node-b"...)) {
		t.Errorf("P2P identities on the wire: %x / %x", tr.ske[:8], tr.cke[:8])
	}
}
