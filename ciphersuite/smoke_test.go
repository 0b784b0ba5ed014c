package ciphersuite

import (
	"bytes"
	"crypto/rand"
	"testing"
)

func TestSmoke(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 16)
	for _, s := range append(ByKX(KXPSK), ByKX(KXECDHEPSK)...) {
		for _, curve := range []CurveID{X25519, P256} {
			cc := &ClientConfig{Rand: rand.Reader, Curves: []CurveID{curve}, PSK: func(h []byte) ([]byte, []byte, error) { return []byte("id"), key, nil }}
			sc := &ServerConfig{Rand: rand.Reader, Curves: DefaultCurves(), Hint: []byte("h"), PSK: func(id []byte) ([]byte, error) { return key, nil }}
			hello := &ClientHelloInfo{Curves: cc.Curves}
			ck, err := NewClientKX(cc, []*Suite{s})
			if err != nil {
				t.Fatal(err)
			}
			sk, err := NewServerKX(sc, s, hello)
			if err != nil {
				t.Fatal(err)
			}
			ske, err := sk.GenerateServerKeyExchange()
			if err != nil {
				t.Fatal(err)
			}
			if err := ck.ProcessServerKeyExchange(s, ske); err != nil {
				t.Fatal(err)
			}
			cke, pms1, err := ck.GenerateClientKeyExchange(s)
			if err != nil {
				t.Fatal(err)
			}
			pms2, err := sk.ProcessClientKeyExchange(cke)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(pms1, pms2) {
				t.Fatal(s, "pms differ")
			}
			rc, err := NewRecordCipher(s, make([]byte, s.KeyLen()), make([]byte, s.IVLen()))
			if err != nil {
				t.Fatal(err)
			}
			rec := rc.Seal(nil, 5, 23, 0x303, []byte("hello"))
			pt, err := rc.Open(nil, 5, 23, 0x303, rec)
			if err != nil || string(pt) != "hello" {
				t.Fatal(err)
			}
		}
	}
}
