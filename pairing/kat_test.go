package pairing

import (
	"bytes"
	"crypto"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cloudflare/circl/ecc/bls12381"
	"github.com/cloudflare/circl/expander"
)

// Known-answer tests. Regenerate with
//
//	go test ./pairing -run 'KAT|HashVectors' -update
//
// (or PAIRING_UPDATE=1) and review the diff: a change means the wire or
// key-file format changed.
var update = flag.Bool("update", false, "rewrite the known-answer files in testdata/")

func updating() bool { return *update || os.Getenv("PAIRING_UPDATE") != "" }

// katStep is one protocol step and its outputs, in order.
type katStep struct {
	Step   string     `json:"step"`
	Values [][]string `json:"values"` // [name, value] pairs
}

type katFile struct {
	Comment string    `json:"comment"`
	Seed    string    `json:"seed"`
	Steps   []katStep `json:"steps"`
}

const katSeed = "milagro pairing KAT seed v1"

func genKAT(t testing.TB) *katFile {
	rnd := seeded(katSeed)
	kf := &katFile{
		Comment: "pairing known answers: every random value is drawn from ChaCha8(seed, zero-padded to 32 bytes) in the order the steps run; secrets are MarshalBinary encodings",
		Seed:    katSeed,
	}
	step := func(name string, kv ...string) {
		s := katStep{Step: name}
		for i := 0; i < len(kv); i += 2 {
			s.Values = append(s.Values, []string{kv[i], kv[i+1]})
		}
		kf.Steps = append(kf.Steps, s)
	}
	mb := func(m interface{ MarshalBinary() ([]byte, error) }) string {
		b, err := m.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		return hx(b)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	const id, day, now, pin = "alice@example.com", 20413, 1763769600, 31415926
	var shares []*MasterShare
	var keys []*CSClientKey
	var secrets []*CSServerSecret
	var permits []*TimePermit
	var pa, pb []*P2PKey
	for i := 0; i < 3; i++ {
		m, err := NewMasterShare(rnd)
		must(err)
		k, err := m.IssueCSClientKey(id)
		must(err)
		p, err := m.IssueTimePermit(id, day)
		must(err)
		a, err := m.IssueP2PKey("node-a")
		must(err)
		b, err := m.IssueP2PKey("node-b")
		must(err)
		ss := m.IssueCSServerSecret()
		n := string(rune('1' + i))
		step("D-TA "+n+" issues", "master share", mb(m), "CS client key share", mb(k),
			"CS server secret share", mb(ss), "time permit share", mb(p),
			"P2P key share node-a", mb(a), "P2P key share node-b", mb(b))
		shares, keys, secrets, permits = append(shares, m), append(keys, k), append(secrets, ss), append(permits, p)
		pa, pb = append(pa, a), append(pb, b)
	}
	key, err := CombineCSClientKeys(keys...)
	must(err)
	ks, err := CombineCSServerSecrets(secrets...)
	must(err)
	permit, err := CombineTimePermits(permits...)
	must(err)
	ka, err := CombineP2PKeys(pa...)
	must(err)
	kb, err := CombineP2PKeys(pb...)
	must(err)
	tok, err := key.ExtractPIN(pin)
	must(err)
	step("combine", "CS client key", mb(key), "CS server secret", mb(ks), "time permit", mb(permit),
		"P2P key node-a", mb(ka), "P2P key node-b", mb(kb))
	step("extract PIN 31415926", "PIN token", mb(tok))

	server, err := NewCSServer(ks)
	must(err)
	for _, mode := range []string{"plain", "permit", "PIN+permit"} {
		var c *CSClient
		switch mode {
		case "plain":
			c, err = NewCSClient(key, nil)
		case "permit":
			c, err = NewCSClient(key, permit)
		default:
			c, err = NewCSClientWithPIN(tok, pin, permit)
		}
		must(err)
		gb := gtBytes(c.pairingFor(""))
		hello, chs, err := c.Hello(rnd, now, "")
		must(err)
		step("CS "+mode+": client hello", "A", hx(EncodeG1(&c.a)), "e(K,Q) SHA-256", hx(sha(gb)),
			"id", hello.ID, "d", u64s(hello.Day), "t", u64s(hello.Time),
			"U", hx(hello.U), "y", hx(EncodeScalar(&chs.y)), "V", hx(hello.V))
		shs, err := server.Accept(rnd, hello)
		must(err)
		step("CS "+mode+": server verifies, W", "W", hx(shs.W()))
		r, cpms, err := chs.Finish(rnd, shs.W())
		must(err)
		step("CS "+mode+": client R, pre-master secret", "R", hx(r), "h",
			hx(EncodeScalar(csH(shs.a, shs.uB, &shs.y, shs.vB, r, shs.wB))), "pre_master_secret", hx(cpms))
		spms, err := shs.Finish(r)
		must(err)
		step("CS "+mode+": server pre-master secret", "pre_master_secret", hx(spms))
	}
	for _, dir := range [][2]*P2PKey{{ka, kb}, {kb, ka}} {
		ps, err := NewP2PServer(dir[0])
		must(err)
		pc, err := NewP2PClient(dir[1])
		must(err)
		name := "P2P " + ps.ID() + " serves " + pc.ID()
		hs, err := ps.Start(rnd)
		must(err)
		step(name+": server", "id_S", hs.ID(), "X_S", hx(hs.X()))
		wC, yC, cpms, err := pc.Respond(rnd, ps.ID(), hs.ID(), hs.X())
		must(err)
		step(name+": client", "id_C", pc.ID(), "W_C", hx(wC), "Y_C", hx(yC), "pre_master_secret", hx(cpms))
		spms, err := hs.Finish(pc.ID(), wC, yC)
		must(err)
		step(name+": server pre-master secret", "pre_master_secret", hx(spms))
	}
	return kf
}

func sha(b []byte) []byte { h := crypto.SHA256.New(); h.Write(b); return h.Sum(nil) }

func u64s(v uint64) string { return strings.TrimSpace(strings.ReplaceAll(jsonOf(v), "\"", "")) }

func jsonOf(v any) string { b, _ := json.Marshal(v); return string(b) }

func checkFile(t *testing.T, name string, v any) {
	t.Helper()
	got, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	path := filepath.Join("testdata", name)
	if updating() {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", path)
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		gl, wl := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
		for i := 0; i < len(gl) && i < len(wl); i++ {
			if gl[i] != wl[i] {
				t.Fatalf("%s differs at line %d:\n got  %s\n want %s", path, i+1, gl[i], wl[i])
			}
		}
		t.Fatalf("%s differs in length", path)
	}
}

func TestKAT(t *testing.T) { checkFile(t, "kat.json", genKAT(t)) }

// RFC 9380 vector format for our DSTs.
type hashSuite struct {
	Suite   string       `json:"ciphersuite"`
	DST     string       `json:"dst"`
	Vectors []hashVector `json:"vectors"`
}

type hashVector struct {
	Msg string            `json:"msg"`
	P   map[string]string `json:"P,omitempty"`
	U   []string          `json:"u,omitempty"`
}

var hashMsgs = []string{"", "abc", "alice@example.com", "abcdef0123456789",
	"q128_" + strings.Repeat("q", 128), "a512_" + strings.Repeat("a", 512)}

func fpHex(b []byte) string { return "0x" + hx(b) }

// g1XY and g2XY split circl's uncompressed encodings (flags are clear for
// non-identity points) into RFC 9380's x, y strings.
func g1XY(p *bls12381.G1) map[string]string {
	b := p.Bytes()
	return map[string]string{"x": fpHex(b[:48]), "y": fpHex(b[48:])}
}

func g2XY(p *bls12381.G2) map[string]string {
	b := p.Bytes() // x.c1 ‖ x.c0 ‖ y.c1 ‖ y.c0
	return map[string]string{"x": fpHex(b[48:96]) + "," + fpHex(b[:48]), "y": fpHex(b[144:]) + "," + fpHex(b[96:144])}
}

func genHashVectors() []hashSuite {
	var out []hashSuite
	for _, d := range []Domain{DomainCS, DomainP2P, DomainTP} {
		s1 := hashSuite{Suite: "BLS12381G1_XMD:SHA-256_SSWU_RO_", DST: string(d.DST("H1"))}
		s2 := hashSuite{Suite: "BLS12381G2_XMD:SHA-256_SSWU_RO_", DST: string(d.DST("H2"))}
		sq := hashSuite{Suite: "hash_to_field Z_r expand_message_xmd SHA-256 L=48 count=1", DST: string(d.DST("Hq"))}
		for _, m := range hashMsgs {
			s1.Vectors = append(s1.Vectors, hashVector{Msg: m, P: g1XY(H1(d, []byte(m)))})
			s2.Vectors = append(s2.Vectors, hashVector{Msg: m, P: g2XY(H2(d, []byte(m)))})
			sq.Vectors = append(sq.Vectors, hashVector{Msg: m, U: []string{"0x" + hx(EncodeScalar(Hq(d, []byte(m))))}})
		}
		out = append(out, s1, s2, sq)
	}
	return out
}

func TestHashVectors(t *testing.T) { checkFile(t, "hash_vectors.json", genHashVectors()) }

// TestRFC9380 proves the primitives on RFC 9380's own vectors (Appendix J.9.1,
// J.10.1 and K.1) with the standard DSTs.
func TestRFC9380(t *testing.T) {
	g1dst := []byte("QUUX-V01-CS02-with-BLS12381G1_XMD:SHA-256_SSWU_RO_")
	g2dst := []byte("QUUX-V01-CS02-with-BLS12381G2_XMD:SHA-256_SSWU_RO_")
	for _, tc := range []struct{ msg, x, y string }{
		{"", "0x052926add2207b76ca4fa57a8734416c8dc95e24501772c814278700eed6d1e4e8cf62d9c09db0fac349612b759e79a1",
			"0x08ba738453bfed09cb546dbb0783dbb3a5f1f566ed67bb6be0e8c67e2e81a4cc68ee29813bb7994998f3eae0c9c6a265"},
		{"abc", "0x03567bc5ef9c690c2ab2ecdf6a96ef1c139cc0b2f284dca0a9a7943388a49a3aee664ba5379a7655d3c68900be2f6903",
			"0x0b9c15f3fe6e5cf4211f346271d7b01c8f3b28be689c8429c85b67af215533311f0b8dfaaa154fa6b88176c229f2885d"},
	} {
		var p bls12381.G1
		p.Hash([]byte(tc.msg), g1dst)
		if got := g1XY(&p); got["x"] != tc.x || got["y"] != tc.y {
			t.Errorf("G1 %q: got %v", tc.msg, got)
		}
	}
	for _, tc := range []struct{ msg, x, y string }{
		{"", "0x0141ebfbdca40eb85b87142e130ab689c673cf60f1a3e98d69335266f30d9b8d4ac44c1038e9dcdd5393faf5c41fb78a,0x05cb8437535e20ecffaef7752baddf98034139c38452458baeefab379ba13dff5bf5dd71b72418717047f5b0f37da03d",
			"0x0503921d7f6a12805e72940b963c0cf3471c7b2a524950ca195d11062ee75ec076daf2d4bc358c4b190c0c98064fdd92,0x12424ac32561493f3fe3c260708a12b7c620e7be00099a974e259ddc7d1f6395c3c811cdd19f1e8dbf3e9ecfdcbab8d6"},
		{"abc", "0x02c2d18e033b960562aae3cab37a27ce00d80ccd5ba4b7fe0e7a210245129dbec7780ccc7954725f4168aff2787776e6,0x139cddbccdc5e91b9623efd38c49f81a6f83f175e80b06fc374de9eb4b41dfe4ca3a230ed250fbe3a2acf73a41177fd8",
			"0x1787327b68159716a37440985269cf584bcb1e621d3a7202be6ea05c4cfe244aeb197642555a0645fb87bf7466b2ba48,0x00aa65dae3c8d732d10ecd2c50f8a1baf3001578f71c694e03866e9f3d49ac1e1ce70dd94a733534f106d4cec0eddd16"},
	} {
		var p bls12381.G2
		p.Hash([]byte(tc.msg), g2dst)
		if got := g2XY(&p); got["x"] != tc.x || got["y"] != tc.y {
			t.Errorf("G2 %q: got %v", tc.msg, got)
		}
	}
	// expand_message_xmd, the core of Hq (RFC 9380 K.1).
	xdst := []byte("QUUX-V01-CS02-with-expander-SHA256-128")
	for msg, want := range map[string]string{
		"":    "68a985b87eb6b46952128911f2a4412bbc302a9d759667f87f7a21d803f07235",
		"abc": "d8ccab23b5985ccea865c6c97b6e5b8350e794e603b4b97902f53a8a0d605615",
	} {
		if got := hx(expander.NewExpanderMD(crypto.SHA256, xdst).Expand([]byte(msg), 32)); got != want {
			t.Errorf("expand_message_xmd(%q) = %s", msg, got)
		}
	}
	// Our DSTs are the spec's.
	if string(DomainCS.DST("H1")) != "MTLS1-CS-H1" || string(DomainP2P.DST("H2")) != "MTLS1-P2P-H2" || string(DomainTP.DST("Hq")) != "MTLS1-TP-Hq" {
		t.Error("DSTs")
	}
}
