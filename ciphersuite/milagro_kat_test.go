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

// TestMilagroSpecVector runs the revision-2 key exchanges of docs/protocol.md
// §5.2 (the classic ones: the clients play a peer without the post-quantum
// hybrid) through this
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
		keys, permits = append(keys, k), append(permits, p)
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
	csClient, err := pairing.NewCSClient(key, permit)
	if err != nil {
		t.Fatal(err)
	}
	clock := func() time.Time { return time.Unix(now, 0) }

	// CS: client draws x then r; the server draws w. t is midnight of day
	// 20414, so the day-20413 permit is yesterday's within the skew. Once
	// with the deployment-wide key (id_S = ""), once with api.example.com.
	for _, tc := range []struct{ idS, v, pms string }{
		{"", "b84b4a3005f6c04398286b8722c4de86c1da50926d002fbb644583c7cd0b96fb3a05ab66532b256e5469c9373cc5500a",
			"623fdbfe7ad41d27f0385f1d96220aa5f5a1a01611858804f3314601d321fe88"},
		{"api.example.com", "b7517f8d47851e6a1bc360157e38c0e0f90a2dda8f300b8962e0f21a4ac460d3615dff615299a768321ce5dec6e171a8",
			"20d227cddbbe51ad7ca4a5405de516005e21882671115a2087ec236c6c259b38"},
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
		cc := &ClientConfig{Rand: stream(0x1234567890abcdef, 0x0badc0ffee), Time: clock, CS: &CSClient{Client: csClient, ServerID: tc.idS}, PQ: PQOff}
		scfg := &ServerConfig{Rand: stream(0xfedcba0987654321), Time: clock, CS: &CSServer{GetServer: oneServer(csServer), Permits: pairing.PermitsRequired}}
		tr := runMilagroKX(t, ByID(0xFF01), cc, scfg)
		want := append([]byte{0, byte(len(id))}, id...)
		want = binary.BigEndian.AppendUint64(want, day)
		want = binary.BigEndian.AppendUint64(want, now)
		want = append(want, unhex("9968c3dc29acb2ec102faf55736475254e8bc1c76373a5590ba66410aa70e8440ed87d843dffcc1d372a3d3f3a6a6857")...)
		want = append(want, unhex(tc.v)...)
		want = append(want, 0, byte(len(tc.idS)))
		want = append(want, tc.idS...)
		if !bytes.Equal(tr.ext, want) {
			t.Errorf("id_S %q: milagro_cs extension\n got  %x\n want %x", tc.idS, tr.ext, want)
		}
		pms := unhex(tc.pms)
		if !bytes.Equal(tr.cpms, pms) || !bytes.Equal(tr.spms, pms) {
			t.Errorf("id_S %q: CS pre_master_secret\n client %x\n server %x\n want   %x", tc.idS, tr.cpms, tr.spms, pms)
		}
		if tr.ck.PeerIdentity() != tc.idS {
			t.Errorf("id_S %q: client reports %q", tc.idS, tr.ck.PeerIdentity())
		}
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
	cc := &ClientConfig{Rand: stream(0xb2, 0xc3), Time: clock, P2P: &P2PClient{Client: pc, ServerID: "node-a"}, PQ: PQOff}
	scfg := &ServerConfig{Rand: stream(0xa1), Time: clock, P2P: &P2PServer{Server: ps}}
	tr := runMilagroKX(t, ByID(0xFF11), cc, scfg)
	pms := unhex("1f61779b99ad9ac22d88ad8a5bb8f3d1c03f62ece6108b2f2c2092f2e32148c7")
	if !bytes.Equal(tr.cpms, pms) || !bytes.Equal(tr.spms, pms) {
		t.Errorf("P2P pre_master_secret\n client %x\n server %x\n want   %x", tr.cpms, tr.spms, pms)
	}
	if !bytes.Equal(tr.ske[:8], append([]byte{0, 6}, "node-a"...)) || !bytes.Equal(tr.cke[:8], append([]byte{0, 6}, "node-b"...)) {
		t.Errorf("P2P identities on the wire: %x / %x", tr.ske[:8], tr.cke[:8])
	}
}
