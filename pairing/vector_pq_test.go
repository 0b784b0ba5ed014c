package pairing

import (
	"crypto/mlkem"
	"crypto/mlkem/mlkemtest"
	"crypto/sha256"
	"testing"
)

// specVectorPQ is spec §7 revision 3 (the post-quantum hybrid of
// docs/protocol.md §5b), agreed by two independent implementations.
var specVectorPQ = map[string]string{
	"ek":                     "0b7934c83125c788995e2ba6bd761e33046b3e40571be53e023309a29f398cc9",
	"ct":                     "dbf4e9aa48b078ad46ec1c9c47bda8c2d2fec9d0e7a21bd48d2238a2abedb856",
	"ss":                     "9cddd089ffe70e3996e76f7c8d06746df34d07e8657bc0fcf2bb0e1c3084aea1",
	"pq pms/":                "868f865c12183b918ce97d3edf817294d23aabc54cdac3f6256ac4905c4143ab",
	"pq pms/api.example.com": "1772d8e79aa533bd9bdb597f5a54a30b11252310716ff090beba9f9d544be9ea",
	"P2P pq pms":             "1c5934c3fd880f025bab14cfcb358cb9951a27eff539419b9f24add83eed12fd",
}

// specPQSecret runs the vector's ML-KEM-768 exchange: the key pair from
// the seed 00 01 … 3f, encapsulation with m = 40 41 … 5f.
func specPQSecret(t *testing.T) (ek, ct, ss []byte) {
	t.Helper()
	seed := make([]byte, mlkem.SeedSize)
	for i := range seed {
		seed[i] = byte(i)
	}
	m := make([]byte, 32)
	for i := range m {
		m[i] = byte(0x40 + i)
	}
	dk, err := mlkem.NewDecapsulationKey768(seed)
	if err != nil {
		t.Fatal(err)
	}
	ss, ct, err = mlkemtest.Encapsulate768(dk.EncapsulationKey(), m)
	if err != nil {
		t.Fatal(err)
	}
	ss2, err := dk.Decapsulate(ct)
	if err != nil || string(ss2) != string(ss) {
		t.Fatalf("decapsulation: %v", err)
	}
	return dk.EncapsulationKey().Bytes(), ct, ss
}

// TestSpecVectorPQ reproduces the revision-3 lines of spec §7 byte for
// byte: the ML-KEM values and the three hybrid pre-master secrets, on the
// pairing engine this build uses.
func TestSpecVectorPQ(t *testing.T) {
	check := func(name, got string) {
		t.Helper()
		if want := specVectorPQ[name]; got != want {
			t.Errorf("%s:\n got  %s\n want %s", name, got, want)
		}
	}
	ek, ct, ss := specPQSecret(t)
	if len(ek) != 1184 || len(ct) != 1088 {
		t.Fatalf("ek %d bytes, ct %d bytes", len(ek), len(ct))
	}
	ekH, ctH := sha256.Sum256(ek), sha256.Sum256(ct)
	check("ek", hx(ekH[:]))
	check("ct", hx(ctH[:]))
	check("ss", hx(ss))

	shares := specShares()
	const id = "alice@example.com"
	const day, now = 20413, 1763769600
	var keys []*CSClientKey
	var permits []*TimePermit
	for _, m := range shares {
		k, err := m.IssueCSClientKey(id)
		if err != nil {
			t.Fatal(err)
		}
		p, err := m.IssueTimePermit(id, day)
		if err != nil {
			t.Fatal(err)
		}
		keys, permits = append(keys, k), append(permits, p)
	}
	key, err := CombineCSClientKeys(keys...)
	if err != nil {
		t.Fatal(err)
	}
	permit, err := CombineTimePermits(permits...)
	if err != nil {
		t.Fatal(err)
	}
	client, err := NewCSClient(key, permit)
	if err != nil {
		t.Fatal(err)
	}
	for _, idS := range []string{"", "api.example.com"} {
		var ksShares []*CSServerSecret
		for _, m := range shares {
			s, err := m.IssueCSServerKey(idS)
			if err != nil {
				t.Fatal(err)
			}
			ksShares = append(ksShares, s)
		}
		ks, err := CombineCSServerSecrets(ksShares...)
		if err != nil {
			t.Fatal(err)
		}
		server, err := NewCSServer(ks)
		if err != nil {
			t.Fatal(err)
		}
		hello, chs := client.helloWith(sc(0x1234567890abcdef), now, idS)
		shs, err := server.verify(hello)
		if err != nil {
			t.Fatal(err)
		}
		shs.setW(sc(0xfedcba0987654321))
		w, _ := DecodeG1(shs.W())
		rBytes, cpms := chs.finishPQWith(sc(0x0badc0ffee), w, shs.W(), ss)
		spms, err := shs.FinishPQ(rBytes, ss)
		if err != nil {
			t.Fatal(err)
		}
		check("pq pms/"+idS, hx(cpms))
		check("pq pms/"+idS, hx(spms))
	}

	var kS, kC []*P2PKey
	for _, m := range shares {
		a, err := m.IssueP2PKey("node-a")
		if err != nil {
			t.Fatal(err)
		}
		b, err := m.IssueP2PKey("node-b")
		if err != nil {
			t.Fatal(err)
		}
		kS, kC = append(kS, a), append(kC, b)
	}
	keyS, err := CombineP2PKeys(kS...)
	if err != nil {
		t.Fatal(err)
	}
	keyC, err := CombineP2PKeys(kC...)
	if err != nil {
		t.Fatal(err)
	}
	ps, err := NewP2PServer(keyS)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := NewP2PClient(keyC)
	if err != nil {
		t.Fatal(err)
	}
	phs := ps.startWith(sc(0xa1))
	xS, _ := DecodeG1(phs.X())
	wC, yC, cpms := pc.respondPQWith(sc(0xb2), sc(0xc3), "node-a", xS, phs.X(), ss)
	spms, err := phs.FinishPQ(pc.ID(), wC, yC, ss)
	if err != nil {
		t.Fatal(err)
	}
	check("P2P pq pms", hx(cpms))
	check("P2P pq pms", hx(spms))

	// The hybrid entry points refuse a secret of the wrong size.
	if _, err := phs.FinishPQ(pc.ID(), wC, yC, ss[:31]); err == nil {
		t.Error("P2P FinishPQ accepted a 31-byte ML-KEM secret")
	}
	if _, _, _, err := pc.RespondPQ(zeroReader{}, "node-a", "node-a", phs.X(), nil); err == nil {
		t.Error("RespondPQ accepted no ML-KEM secret")
	}
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) { clear(p); return len(p), nil }
