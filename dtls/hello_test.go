package dtls

import (
	"bytes"
	"encoding/hex"
	"testing"

	"golang.org/x/crypto/cryptobyte"
)

// pionHello is a first ClientHello as a pion v3 client sends it (offering
// the three PSK suites, the extended master secret and a connection ID).
const pionHello = "16fefd0000000000000000007e010000720000000000000072fefd6b156e9f50d6aba857e2f69750d3c2fda15a0d8d0c4fb56984c2c324c6b4dc0f0000000600a8ccabc0a801000042000d001600140403050306030807080408050806040105010601ff01000100000a00080006001d00170018000b00020100001700000036000908d1d09914059d7c12"

// testHello builds a one-record DTLS 1.2 ClientHello with the given
// message sequence, cookie and random.
func testHello(seq uint16, cookie, random []byte) []byte {
	return testHelloRec(0, seq, cookie, random)
}

// testHelloRec is testHello in the record with sequence number recSeq.
func testHelloRec(recSeq uint64, seq uint16, cookie, random []byte) []byte {
	var body cryptobyte.Builder
	body.AddUint16(dtlsVersion12)
	body.AddBytes(random[:32])
	body.AddUint8LengthPrefixed(func(*cryptobyte.Builder) {})
	body.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(cookie) })
	body.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddUint16(TLS_PSK_WITH_AES_128_GCM_SHA256) })
	body.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddUint8(0) })
	body.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
		b.AddUint16(23) // extended_master_secret
		b.AddUint16LengthPrefixed(func(*cryptobyte.Builder) {})
	})
	bb := body.BytesOrPanic()
	var rec cryptobyte.Builder
	rec.AddUint8(contentHandshake)
	rec.AddUint16(dtlsVersion10)
	rec.AddUint16(0)
	rec.AddUint16(uint16(recSeq >> 32))
	rec.AddUint32(uint32(recSeq))
	rec.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
		b.AddUint8(handshakeClientHello)
		b.AddUint24(uint32(len(bb)))
		b.AddUint16(seq)
		b.AddUint24(0)
		b.AddUint24(uint32(len(bb)))
		b.AddBytes(bb)
	})
	return rec.BytesOrPanic()
}

func TestParseClientHello(t *testing.T) {
	real, _ := hex.DecodeString(pionHello)
	h, err := parseClientHello(real)
	if err != nil || h.messageSeq != 0 || len(h.cookie) != 0 {
		t.Fatalf("pion's hello: %+v %v", h, err)
	}
	h, err = parseClientHello(testHello(1, []byte("cookie"), make([]byte, 32)))
	if err != nil || h.messageSeq != 1 || string(h.cookie) != "cookie" {
		t.Fatalf("built hello: %+v %v", h, err)
	}
	for name, b := range map[string][]byte{
		"empty":        nil,
		"truncated":    real[:len(real)-1],
		"trailing":     append(bytes.Clone(real[:len(real)]), 0), // extra bytes after the record are another record: accepted below
		"not hs":       append([]byte{23}, real[1:]...),
		"epoch 1":      func() []byte { b := bytes.Clone(real); b[4] = 1; return b }(),
		"server hello": func() []byte { b := bytes.Clone(real); b[13] = 2; return b }(),
		"fragment":     func() []byte { b := bytes.Clone(real); b[19] = 1; return b }(),
		"tls version":  func() []byte { b := bytes.Clone(real); b[1] = 3; return b }(),
	} {
		_, err := parseClientHello(b)
		if name == "trailing" {
			if err != nil {
				t.Errorf("%s: a datagram may carry more records: %v", name, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzParseClientHello(f *testing.F) {
	real, _ := hex.DecodeString(pionHello)
	f.Add(real)
	f.Add(testHello(0, nil, make([]byte, 32)))
	f.Add(testHello(1, bytes.Repeat([]byte{7}, 255), make([]byte, 32)))
	f.Add(real[:20])
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := parseClientHello(b)
		if err != nil {
			return
		}
		if len(h.cookie) > 255 || !bytes.Contains(b, h.cookie) {
			t.Fatalf("cookie %x not from the input", h.cookie)
		}
	})
}

func FuzzParseHelloVerifyRequest(f *testing.F) {
	f.Add(helloVerifyRequest([]byte("0123456789abcdefghij")))
	f.Add(helloVerifyRequest(nil))
	f.Add([]byte{22, 0xfe, 0xfd})
	f.Fuzz(func(t *testing.T, b []byte) {
		if cookie, ok := parseHelloVerifyRequest(b); ok && (len(cookie) == 0 || !bytes.Contains(b, cookie)) {
			t.Fatalf("cookie %x", cookie)
		}
	})
}
