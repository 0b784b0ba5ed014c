package ciphersuite

import (
	"bytes"
	"crypto/cipher"
	"encoding/binary"
	"encoding/hex"
	"testing"

	"golang.org/x/crypto/chacha20poly1305"
)

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// aeadSuites returns one suite per AEAD.
func aeadSuites() []*Suite {
	return []*Suite{ByID(0x00A8), ByID(0x00A9), ByID(0xCCAB)}
}

func testKeyIV(s *Suite) (key, iv []byte) {
	key = make([]byte, s.KeyLen())
	iv = make([]byte, s.IVLen())
	for i := range key {
		key[i] = byte(i + 1)
	}
	for i := range iv {
		iv[i] = byte(0xA0 + i)
	}
	return key, iv
}

func newTestCipher(t testing.TB, s *Suite) RecordCipher {
	t.Helper()
	key, iv := testKeyIV(s)
	c, err := NewRecordCipher(s, key, iv)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestRecordCipherParams(t *testing.T) {
	for _, s := range aeadSuites() {
		c := newTestCipher(t, s)
		wantExplicit := 8
		if s.AEAD == ChaCha20Poly1305 {
			wantExplicit = 0
		}
		if c.ExplicitNonceLen() != wantExplicit || c.Overhead() != wantExplicit+16 {
			t.Errorf("%s: explicit %d overhead %d", s, c.ExplicitNonceLen(), c.Overhead())
		}
	}
}

func TestNewRecordCipherBadInput(t *testing.T) {
	s := ByID(0x00A8)
	if _, err := NewRecordCipher(s, make([]byte, 15), make([]byte, 4)); err == nil {
		t.Error("short key accepted")
	}
	if _, err := NewRecordCipher(s, make([]byte, 16), make([]byte, 12)); err == nil {
		t.Error("wrong IV length accepted")
	}
	if _, err := NewRecordCipher(nil, nil, nil); err == nil {
		t.Error("nil suite accepted")
	}
	bogus := *s
	bogus.AEAD = 99
	if _, err := NewRecordCipher(&bogus, make([]byte, 32), make([]byte, 12)); err == nil {
		t.Error("unknown AEAD accepted")
	}
}

// TestRecordConstruction checks Seal against the AEAD called directly with
// the nonce and AAD built as RFC 5288 / RFC 7905 say.
func TestRecordConstruction(t *testing.T) {
	const seq, typ, version = 0x0102030405060708, 23, 0x0303
	pt := []byte("the quick brown fox")
	aad := []byte{1, 2, 3, 4, 5, 6, 7, 8, typ, 3, 3, 0, byte(len(pt))}
	for _, s := range aeadSuites() {
		key, iv := testKeyIV(s)
		var ref cipher.AEAD
		var want []byte
		if s.AEAD == ChaCha20Poly1305 {
			ref, _ = chacha20poly1305.New(key)
			nonce := append([]byte(nil), iv...)
			for i := 0; i < 8; i++ {
				nonce[4+i] ^= byte(uint64(seq) >> (56 - 8*i))
			}
			want = ref.Seal(nil, nonce, pt, aad)
		} else {
			ref = gcmFor(t, key)
			nonce := binary.BigEndian.AppendUint64(append([]byte(nil), iv...), seq)
			want = ref.Seal(nonce[4:], nonce, pt, aad)
		}
		c := newTestCipher(t, s)
		got := c.Seal([]byte("hdr"), seq, typ, version, pt)
		if !bytes.Equal(got[:3], []byte("hdr")) || !bytes.Equal(got[3:], want) {
			t.Errorf("%s: Seal\n got %x\nwant %x", s, got[3:], want)
		}
		back, err := c.Open(nil, seq, typ, version, got[3:])
		if err != nil || !bytes.Equal(back, pt) {
			t.Errorf("%s: Open = %q, %v", s, back, err)
		}
	}
}

// TestChaChaRFC8439 runs the RFC 8439 §2.8.2 AEAD vector through the
// library our ChaCha20-Poly1305 record cipher is built on.
func TestChaChaRFC8439(t *testing.T) {
	key := mustHex(t, "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f")
	nonce := mustHex(t, "070000004041424344454647")
	aad := mustHex(t, "50515253c0c1c2c3c4c5c6c7")
	pt := []byte("Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.")
	want := mustHex(t, "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d63dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b3692ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc3ff4def08e4b7a9de576d26586cec64b6116"+
		"1ae10b594f09e26a7e902ecbd0600691")
	a, err := chacha20poly1305.New(key)
	if err != nil {
		t.Fatal(err)
	}
	if got := a.Seal(nil, nonce, pt, aad); !bytes.Equal(got, want) {
		t.Fatalf("RFC 8439 vector: got %x", got)
	}
	// Our construction with IV = that nonce and seq 0 uses exactly that nonce.
	c, err := NewRecordCipher(ByID(0xCCAB), key, nonce)
	if err != nil {
		t.Fatal(err)
	}
	rec := c.Seal(nil, 0, 23, 0x0303, pt)
	tlsAAD := []byte{0, 0, 0, 0, 0, 0, 0, 0, 23, 3, 3, 0, byte(len(pt))}
	if !bytes.Equal(rec, a.Seal(nil, nonce, pt, tlsAAD)) {
		t.Fatal("seq 0 nonce is not the IV")
	}
}

func TestRecordRoundTripAndTamper(t *testing.T) {
	for _, s := range aeadSuites() {
		c := newTestCipher(t, s)
		for _, n := range []int{0, 1, 16, 1000, 1 << 14} {
			pt := bytes.Repeat([]byte{byte(n)}, n)
			rec := c.Seal(nil, uint64(n), 23, 0x0303, pt)
			if len(rec) != n+c.Overhead() {
				t.Fatalf("%s: record length %d for %d bytes", s, len(rec), n)
			}
			if c.ExplicitNonceLen() == 8 && binary.BigEndian.Uint64(rec) != uint64(n) {
				t.Errorf("%s: explicit nonce %x is not the sequence number", s, rec[:8])
			}
			got, err := c.Open(nil, uint64(n), 23, 0x0303, rec)
			if err != nil || !bytes.Equal(got, pt) {
				t.Fatalf("%s: Open(%d bytes): %v", s, n, err)
			}
			if n > 16 {
				continue
			}
			// Every single-bit change and every other header must fail.
			for i := range rec {
				bad := append([]byte(nil), rec...)
				bad[i] ^= 0x40
				wantBadMAC(t, s, c, uint64(n), 23, 0x0303, bad)
			}
			wantBadMAC(t, s, c, uint64(n)+1, 23, 0x0303, rec)
			wantBadMAC(t, s, c, uint64(n), 22, 0x0303, rec)
			wantBadMAC(t, s, c, uint64(n), 23, 0x0301, rec)
			for cut := 0; cut < len(rec); cut++ {
				wantBadMAC(t, s, c, uint64(n), 23, 0x0303, rec[:cut])
			}
			wantBadMAC(t, s, c, uint64(n), 23, 0x0303, append(append([]byte(nil), rec...), 0))
		}
		wantBadMAC(t, s, c, 0, 23, 0x0303, nil)
		wantBadMAC(t, s, c, 0, 23, 0x0303, make([]byte, 0x10000+c.Overhead()))
	}
}

func wantBadMAC(t *testing.T, s *Suite, c RecordCipher, seq uint64, typ uint8, v uint16, frag []byte) {
	t.Helper()
	out, err := c.Open(nil, seq, typ, v, frag)
	if err == nil {
		t.Fatalf("%s: Open accepted a bad record (%d bytes)", s, len(frag))
	}
	if a, ok := AlertOf(err); !ok || a != AlertBadRecordMAC {
		t.Fatalf("%s: Open error %v, want bad_record_mac", s, err)
	}
	if out != nil {
		t.Fatalf("%s: Open returned data with an error", s)
	}
}

// TestRecordInPlace seals and opens in one buffer, as a record layer does.
func TestRecordInPlace(t *testing.T) {
	for _, s := range aeadSuites() {
		c := newTestCipher(t, s)
		pt := []byte("in-place record plaintext")
		buf := make([]byte, 5+c.ExplicitNonceLen()+len(pt), 5+len(pt)+c.Overhead())
		copy(buf[5+c.ExplicitNonceLen():], pt)
		rec := c.Seal(buf[:5], 9, 23, 0x0303, buf[5+c.ExplicitNonceLen():])
		want := c.Seal(nil, 9, 23, 0x0303, pt)
		if !bytes.Equal(rec[5:], want) {
			t.Fatalf("%s: in-place Seal differs", s)
		}
		frag := rec[5:]
		got, err := c.Open(frag[c.ExplicitNonceLen():c.ExplicitNonceLen()], 9, 23, 0x0303, frag)
		if err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("%s: in-place Open: %q %v", s, got, err)
		}
	}
}

func TestRecordZeroAllocs(t *testing.T) {
	for _, s := range aeadSuites() {
		c := newTestCipher(t, s)
		pt := make([]byte, 1<<14)
		dst := make([]byte, 0, len(pt)+c.Overhead())
		out := make([]byte, 0, len(pt))
		rec := c.Seal(nil, 1, 23, 0x0303, pt)
		var seq uint64
		if n := testing.AllocsPerRun(50, func() {
			seq++
			c.Seal(dst, seq, 23, 0x0303, pt)
		}); n != 0 {
			t.Errorf("%s: Seal allocates %v times", s, n)
		}
		if n := testing.AllocsPerRun(50, func() {
			if _, err := c.Open(out, 1, 23, 0x0303, rec); err != nil {
				t.Fatal(err)
			}
		}); n != 0 {
			t.Errorf("%s: Open allocates %v times", s, n)
		}
		if n := testing.AllocsPerRun(50, func() {
			if _, err := c.Open(out, 2, 23, 0x0303, rec); err == nil {
				t.Fatal("bad record opened")
			}
		}); n != 0 {
			t.Errorf("%s: failing Open allocates %v times", s, n)
		}
	}
}

func TestSealTooLongPanics(t *testing.T) {
	c := newTestCipher(t, ByID(0x00A8))
	defer func() {
		if recover() == nil {
			t.Error("Seal of a 64 KiB record did not panic")
		}
	}()
	c.Seal(nil, 0, 23, 0x0303, make([]byte, 0x10000))
}
