package pairing

import (
	"testing"
)

// TestSpecVector reproduces spec §7 byte for byte.
func TestSpecVector(t *testing.T) {
	shares := []*MasterShare{shareOf(0x11), shareOf(0x2222), shareOf(0x333333)}
	const id = "alice@example.com"
	const day, now = 20413, 1763769600
	var keys []*CSClientKey
	var permits []*TimePermit
	var secrets []*CSServerSecret
	for _, m := range shares {
		k, err := m.IssueCSClientKey(id)
		if err != nil {
			t.Fatal(err)
		}
		p, err := m.IssueTimePermit(id, day)
		if err != nil {
			t.Fatal(err)
		}
		keys, permits, secrets = append(keys, k), append(permits, p), append(secrets, m.IssueCSServerSecret())
	}
	key, err := CombineCSClientKeys(keys...)
	if err != nil {
		t.Fatal(err)
	}
	permit, err := CombineTimePermits(permits...)
	if err != nil {
		t.Fatal(err)
	}
	ks, err := CombineCSServerSecrets(secrets...)
	if err != nil {
		t.Fatal(err)
	}
	check := func(name, got, want string) {
		t.Helper()
		if got != want {
			t.Errorf("%s:\n got  %s\n want %s", name, got, want)
		}
	}
	check("A", hx(EncodeG1(H1(DomainCS, []byte(id)))), "b612a8116955469e7d14f44ef3cfcf58d82882e92d43d3a9bf3e6134a0577c55fa35b717edeea214faabcb442a9b1dcf")
	check("K_C", hx(EncodeG1(&key.k)), "8b0e6fd0d4b7a76e536b6afa9548b073020424646abb2a2631d564c22b90ebaff07be5cf77efbe3af2575798d699843f")
	check("T_d", hx(EncodeG1(permitPoint(id, day))), "a4e8175723a42fdabc5b6437ca24bbdb2ae7e21e4f487ba714cd5744cc4950ce134d1348174d0b74164c8b9de186a1ee")

	client, err := NewCSClient(key, permit)
	if err != nil {
		t.Fatal(err)
	}
	hello, chs := client.helloWith(sc(0x1234567890abcdef), now)
	check("U", hx(hello.U), "9968c3dc29acb2ec102faf55736475254e8bc1c76373a5590ba66410aa70e8440ed87d843dffcc1d372a3d3f3a6a6857")
	check("y", hx(EncodeScalar(&chs.y)), "1a5763ade5b49f04c57f0c8a2d77acbb80695eb3c545310c515fc8627c89543c")
	check("V", hx(hello.V), "91a2672df8a7900fe5c2b60f064aebed4c0f263a045da7ba1a0af29b0c443eed2bae37445535de78f0dd2af195c8bd01")

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
	r := sc(0x0badc0ffee)
	rBytes, cpms := chs.finishWith(r, w, shs.W())
	spms, err := shs.Finish(rBytes)
	if err != nil {
		t.Fatal(err)
	}
	check("h", hx(EncodeScalar(csH(&shs.a, shs.uB, &shs.y, shs.vB, rBytes, shs.wB))), "4347551fe45d4b924328e67818b443354fe308a4215435902df38e592b625c4e")
	check("CS pms (client)", hx(cpms), "3d42ca281dc13f5bb481b544b6f32291951a9b0e4084346cea4e971c148fb386")
	check("CS pms (server)", hx(spms), "3d42ca281dc13f5bb481b544b6f32291951a9b0e4084346cea4e971c148fb386")

	// P2P.
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
	check("B_C", hx(EncodeG2(H2(DomainP2P, []byte("node-b")))), "a49bcf6bfcba32657defe3355b638d9b11a2768c43305a277033dff72bc4cb22054acadae76a9fe1aaf385dcaac6bc5013a9f25e6ee29a660909021b6830afa30650109c2d7f4d0a03bf993e0646562e3d801f2f0e36a7fe17b727304c328d8d")
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
	check("P2P pms (client)", hx(ppmsC), "a086aedb166bab6bb786bb60d6ffd97c91e064f32e322b144f5b51fe616267a3")
	check("P2P pms (server)", hx(ppmsS), "a086aedb166bab6bb786bb60d6ffd97c91e064f32e322b144f5b51fe616267a3")
}
