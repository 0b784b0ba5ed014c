package pairing

import (
	"github.com/cloudflare/circl/ecc/bls12381"
	"testing"
)

// specVector is docs/protocol.md §5.2, agreed by two independent
// implementations.
var specVector = map[string]string{
	"fp_1": "4417b80d1617461b", "p_1": "3137482a1c96bddb82ca627c29c963902ac33f7c92d9801a2344165306b3182d",
	"fp_2": "a73c5b10dbb65cf9", "p_2": "64f723f989709a092e055a3e2f591685951143bb483344dfaeb9ef3d84ebb2cd",
	"fp_3": "b4fd9fd6cf65fe47", "p_3": "6c133ac8ca73bfd08027cf6a6e6f92a24dc61006ed89dd5c62c7ec0418a7cca3",
	"p":   "1a6658461d401d24ca83dc14b44e5cad661f4b38c899ea5834c5f196a446979b",
	"A":   "b612a8116955469e7d14f44ef3cfcf58d82882e92d43d3a9bf3e6134a0577c55fa35b717edeea214faabcb442a9b1dcf",
	"K_C": "8b0e6fd0d4b7a76e536b6afa9548b073020424646abb2a2631d564c22b90ebaff07be5cf77efbe3af2575798d699843f",
	"T_d": "a4e8175723a42fdabc5b6437ca24bbdb2ae7e21e4f487ba714cd5744cc4950ce134d1348174d0b74164c8b9de186a1ee",
	"U":   "9968c3dc29acb2ec102faf55736475254e8bc1c76373a5590ba66410aa70e8440ed87d843dffcc1d372a3d3f3a6a6857",

	"y/":   "69bc4758caf33e1835334c64e864d8c4ca2358efeb5f19ecca08e06ea8253bc4",
	"V/":   "b84b4a3005f6c04398286b8722c4de86c1da50926d002fbb644583c7cd0b96fb3a05ab66532b256e5469c9373cc5500a",
	"h/":   "31e51501eaa322c2cf4fba2cb5c7bb3f6cfc96a19d8c09582ae20c77191f63aa",
	"pms/": "623fdbfe7ad41d27f0385f1d96220aa5f5a1a01611858804f3314601d321fe88",

	"B_S/api.example.com": "946148a4f494f39d9e1901769e1bac400ddab3812e1f12b5bc33966676d82e6b35cf6adcc76d791049ff88a3832da0ef14db90eec1ac07b26643f6faf016a2fac37f1fde487c384a996478404071eb99be49c108dffbec412b2b69303c92a20b",
	"K_S/api.example.com": "ad5ea242d4068664009669a63f3257a4cfcd5f7f2640ffc6cf21e7965497dec34d990dd29d936afe0866c2472e6b5f7e161aa71dbe81f74e7d00d0a9d6302e62d98dfda20170012786fec446f8cf6654ebbac6cc6ff59436fe64a570848d46e4",
	"y/api.example.com":   "49fb4afbf1babdc870d375cc90c21c969e3ea26842adb4b2b1ff19ef7ae2c722",
	"V/api.example.com":   "b7517f8d47851e6a1bc360157e38c0e0f90a2dda8f300b8962e0f21a4ac460d3615dff615299a768321ce5dec6e171a8",
	"h/api.example.com":   "52fdc6f58a8891221f844adc1317f52c6c82c51ae5a5cb9ffe992e98c6e2edbe",
	"pms/api.example.com": "20d227cddbbe51ad7ca4a5405de516005e21882671115a2087ec236c6c259b38",

	"B_C":     "a49bcf6bfcba32657defe3355b638d9b11a2768c43305a277033dff72bc4cb22054acadae76a9fe1aaf385dcaac6bc5013a9f25e6ee29a660909021b6830afa30650109c2d7f4d0a03bf993e0646562e3d801f2f0e36a7fe17b727304c328d8d",
	"K1_S":    "b32aa23967c02a54b52ee9f00655c3fa940066f1e6379c00141dca8d09735ca90d330b83722c4f43f4c648b3077b5933",
	"P2P pms": "1f61779b99ad9ac22d88ad8a5bb8f3d1c03f62ece6108b2f2c2092f2e32148c7",
}

func specShares() []*MasterShare {
	return []*MasterShare{shareOf(0x11), shareOf(0x2222), shareOf(0x333333)}
}

// TestSpecVector reproduces docs/protocol.md §5.2 byte for byte.
func TestSpecVector(t *testing.T) {
	shares := specShares()
	const id = "alice@example.com"
	const day, now = 20413, 1763769600
	check := func(name, got string) {
		t.Helper()
		want, ok := specVector[name]
		if !ok {
			t.Fatalf("no vector line %q", name)
		}
		if got != want {
			t.Errorf("%s:\n got  %s\n want %s", name, got, want)
		}
	}
	var pSum bls12381.Scalar
	for i, m := range shares {
		n := string(rune('1' + i))
		check("fp_"+n, m.Fingerprint().String())
		pi := m.p2pShare()
		check("p_"+n, hx(EncodeScalar(pi)))
		pSum.Add(&pSum, pi)
	}
	check("p", hx(EncodeScalar(&pSum)))

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
	check("A", hx(EncodeG1(H1(DomainCS, []byte(id)))))
	check("K_C", hx(EncodeG1(&key.k)))
	check("T_d", hx(EncodeG1(permitPoint(id, day))))
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
		if idS != "" {
			check("B_S/"+idS, hx(EncodeG2(ServerPoint(idS))))
			check("K_S/"+idS, hx(EncodeG2(&ks.k)))
		}
		hello, chs := client.helloWith(sc(0x1234567890abcdef), now, idS)
		check("U", hx(hello.U))
		check("y/"+idS, hx(EncodeScalar(&chs.y)))
		check("V/"+idS, hx(hello.V))

		server, err := NewCSServer(ks)
		if err != nil {
			t.Fatal(err)
		}
		shs, err := server.verify(hello)
		if err != nil {
			t.Fatal(err)
		}
		shs.setW(sc(0xfedcba0987654321))
		w, _ := DecodeG1(shs.W())
		rBytes, cpms := chs.finishWith(sc(0x0badc0ffee), w, shs.W())
		spms, err := shs.Finish(rBytes)
		if err != nil {
			t.Fatal(err)
		}
		check("h/"+idS, hx(EncodeScalar(csH(shs.a, shs.uB, &shs.y, shs.vB, rBytes, shs.wB))))
		check("pms/"+idS, hx(cpms))
		check("pms/"+idS, hx(spms))
	}

	// P2P, keys from p.
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
	check("B_C", hx(EncodeG2(H2(DomainP2P, []byte("node-b")))))
	check("K1_S", hx(EncodeG1(&keyS.k1)))
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
	wC, yC, ppmsC := pc.respondWith(sc(0xb2), sc(0xc3), "node-a", xS, phs.X())
	ppmsS, err := phs.Finish(pc.ID(), wC, yC)
	if err != nil {
		t.Fatal(err)
	}
	check("P2P pms", hx(ppmsC))
	check("P2P pms", hx(ppmsS))
}
