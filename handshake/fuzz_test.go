package handshake

import (
	"bytes"
	"context"
	"encoding/binary"
	"testing"

	"github.com/milagro-go/milagro/ciphersuite"
)

// Seeds: real OpenSSL/GnuTLS messages from testdata plus our own.

func seedMessages(f *testing.F, typ uint8) {
	for _, file := range []string{
		"openssl_clienthello_psk.hex", "openssl_clienthello_ecdhe_sni.hex", "gnutls_clienthello.hex",
		"openssl_server_flight_psk_hint.hex", "openssl_server_flight_ecdhe_psk.hex",
	} {
		for _, m := range loadCapture(f, file) {
			if m[0] == typ {
				f.Add(m[4:])
			}
		}
	}
	ch := &clientHelloMsg{vers: 0x0303, random: make([]byte, 32), cipherSuites: []uint16{0xCCAC, 0x00A8},
		compressionMethods: []uint8{0}, serverName: "a.example", supportedCurves: []ciphersuite.CurveID{29},
		supportedPoints: []uint8{0}, ems: true, secureRenegExt: true,
		extra: []ciphersuite.Extension{{Type: ciphersuite.ExtMilagroCS, Data: []byte{0, 1, 'a'}}}}
	sh := &serverHelloMsg{vers: 0x0303, random: make([]byte, 32), cipherSuite: 0xCCAC, ems: true,
		secureRenegExt: true, supportedPoints: []uint8{0}}
	switch typ {
	case typeClientHello:
		b, _ := ch.marshal()
		f.Add(b[4:])
	case typeServerHello:
		b, _ := sh.marshal()
		f.Add(b[4:])
	}
}

func FuzzSplitMessage(f *testing.F) {
	f.Add([]byte{typeServerHelloDone, 0, 0, 0})
	f.Add([]byte{typeFinished, 0, 0, 12, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12})
	f.Add([]byte{typeClientHello, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, msg []byte) {
		typ, body, err := splitMessage(msg)
		if err == nil && (typ != msg[0] || len(body) != len(msg)-4) {
			t.Fatal("inconsistent split")
		}
	})
}

func FuzzClientHello(f *testing.F) {
	seedMessages(f, typeClientHello)
	f.Fuzz(func(t *testing.T, body []byte) {
		ch, err := parseClientHello(body)
		if err != nil {
			if _, ok := ciphersuite.AlertOf(err); !ok {
				t.Fatalf("error without alert: %v", err)
			}
			return
		}
		m1, err := ch.marshal()
		if err != nil {
			return // e.g. grew past the size limit
		}
		ch2, err := parseClientHello(m1[4:])
		if err != nil {
			t.Fatalf("re-parse of our own marshalling failed: %v", err)
		}
		m2, err := ch2.marshal()
		if err != nil || !bytes.Equal(m1, m2) {
			t.Fatalf("marshal not stable: %v", err)
		}
		if ch2.serverName != ch.serverName || ch2.ems != ch.ems || len(ch2.cipherSuites) != len(ch.cipherSuites) {
			t.Fatal("fields changed in a round trip")
		}
	})
}

func FuzzServerHello(f *testing.F) {
	seedMessages(f, typeServerHello)
	f.Fuzz(func(t *testing.T, body []byte) {
		sh, err := parseServerHello(body)
		if err != nil {
			if _, ok := ciphersuite.AlertOf(err); !ok {
				t.Fatalf("error without alert: %v", err)
			}
			return
		}
		m1, err := sh.marshal()
		if err != nil {
			return
		}
		sh2, err := parseServerHello(m1[4:])
		if err != nil {
			t.Fatalf("re-parse failed: %v", err)
		}
		if m2, _ := sh2.marshal(); !bytes.Equal(m1, m2) {
			t.Fatal("marshal not stable")
		}
	})
}

func FuzzFinished(f *testing.F) {
	f.Add(make([]byte, 12))
	f.Add(make([]byte, 13))
	f.Fuzz(func(t *testing.T, body []byte) {
		v, err := parseFinished(body)
		if (err == nil) != (len(body) == 12) || (err == nil && !bytes.Equal(v, body)) {
			t.Fatalf("parseFinished(%x) = %x, %v", body, v, err)
		}
	})
}

// FuzzEmptyMessages covers ServerHelloDone and HelloRequest.
func FuzzEmptyMessages(f *testing.F) {
	f.Add(typeServerHelloDone, []byte{})
	f.Add(typeHelloRequest, []byte{0})
	f.Fuzz(func(t *testing.T, typ uint8, body []byte) {
		if err := parseEmpty(typ, body); (err == nil) != (len(body) == 0) {
			t.Fatal(err)
		}
	})
}

// FuzzKeyExchangeMessages covers the framing of ServerKeyExchange and
// ClientKeyExchange; their bodies go to the real PSK / ECDHE_PSK parsers.
func FuzzKeyExchangeMessages(f *testing.F) {
	seedMessages(f, typeServerKeyExchange)
	f.Add([]byte{0, 7, 'c', 'l', 'i', 'e', 'n', 't', '1'})
	f.Fuzz(func(t *testing.T, body []byte) {
		if _, err := parseKeyExchange(typeServerKeyExchange, body); err != nil {
			return
		}
		if ccfg, _ := testConfigs(nil, ""); ccfg.KX.Supports(ciphersuite.ByID(0xCCAC)) {
			for _, id := range []uint16{0x00A8, 0xCCAC} {
				s := ciphersuite.ByID(id)
				kx, err := ciphersuite.NewClientKX(ccfg.KX, []*ciphersuite.Suite{s})
				if err != nil {
					t.Fatal(err)
				}
				if kx.ProcessServerKeyExchange(s, body) == nil {
					_, _, _ = kx.GenerateClientKeyExchange(s)
				}
			}
		}
	})
}

// Record stream encoding for the state-machine fuzzers: repeated
// kind(1: 0 handshake, 1 ChangeCipherSpec) ‖ uint16 length ‖ data.
func encodeRecords(recs []memRecord) []byte {
	var out []byte
	for _, r := range recs {
		k := byte(0)
		if r.typ == recCCS {
			k = 1
		}
		out = append(out, k)
		out = binary.BigEndian.AppendUint16(out, uint16(len(r.data)))
		out = append(out, r.data...)
	}
	return out
}

func decodeRecords(data []byte) []memRecord {
	var recs []memRecord
	for len(data) >= 3 && len(recs) < 32 {
		typ := recHandshake
		if data[0]&1 == 1 {
			typ = recCCS
		}
		n := int(binary.BigEndian.Uint16(data[1:3]))
		data = data[3:]
		if n > len(data) {
			n = len(data)
		}
		recs = append(recs, memRecord{typ, data[:n]})
		data = data[n:]
	}
	return recs
}

// recordedFlights runs a real handshake in plaintext mode and returns what
// each side sent.
func recordedFlights(t testing.TB, suites []*ciphersuite.Suite, hint string) (client, server []memRecord) {
	ccfg, scfg := testConfigs(suites, hint)
	var cw, sw []memRecord
	r := runPairRL(t, ccfg, scfg, func(c, s *memRL) {
		c.plaintext, s.plaintext = true, true
		c.tap, s.tap = &cw, &sw
	})
	if r.cerr != nil || r.serr != nil {
		t.Fatalf("seed handshake: %v %v", r.cerr, r.serr)
	}
	return cw, sw
}

// FuzzServerHandshake feeds a hostile client's records to the server state
// machine (real PSK/ECDHE_PSK key exchange, no record protection).
func FuzzServerHandshake(f *testing.F) {
	requireReal(f)
	for _, s := range []uint16{0x00A8, 0xCCAC, 0xD002} {
		cw, _ := recordedFlights(f, []*ciphersuite.Suite{ciphersuite.ByID(s)}, "hint")
		f.Add(encodeRecords(cw))
	}
	for _, file := range []string{"openssl_clienthello_psk.hex", "gnutls_clienthello.hex"} {
		f.Add(encodeRecords([]memRecord{{recHandshake, loadCapture(f, file)[0]}}))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		_, scfg := testConfigs(pskSuites(), "hint")
		crl, srl := newMemPipe()
		srl.plaintext = true
		for _, r := range decodeRecords(data) {
			crl.rawWrite(r.typ, r.data)
		}
		crl.close()
		go func() {
			for {
				if _, err := crl.rawRead(); err != nil {
					return
				}
			}
		}()
		_, _ = Server(context.Background(), srl, scfg)
		srl.close()
	})
}

// FuzzClientHandshake feeds a hostile server's records to the client.
func FuzzClientHandshake(f *testing.F) {
	requireReal(f)
	for _, s := range []uint16{0x00A8, 0xCCAC, 0xD002} {
		_, sw := recordedFlights(f, []*ciphersuite.Suite{ciphersuite.ByID(s)}, "hint")
		f.Add(encodeRecords(sw))
	}
	for _, file := range []string{"openssl_server_flight_psk_hint.hex", "openssl_server_flight_ecdhe_psk.hex"} {
		var recs []memRecord
		for _, m := range loadCapture(f, file) {
			recs = append(recs, memRecord{recHandshake, m})
		}
		f.Add(encodeRecords(recs))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ccfg, _ := testConfigs(pskSuites(), "")
		crl, srl := newMemPipe()
		crl.plaintext = true
		for _, r := range decodeRecords(data) {
			srl.rawWrite(r.typ, r.data)
		}
		srl.close()
		go func() {
			for {
				if _, err := srl.rawRead(); err != nil {
					return
				}
			}
		}()
		_, _ = Client(context.Background(), crl, ccfg)
		crl.close()
	})
}
