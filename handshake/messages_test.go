package handshake

import (
	"bytes"
	"context"
	"encoding/hex"
	"os"
	"strings"
	"testing"

	"github.com/milagro-go/milagro/ciphersuite"
)

func loadCapture(t testing.TB, name string) [][]byte {
	t.Helper()
	data, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := hex.DecodeString(strings.Join(strings.Fields(string(data)), ""))
	if err != nil {
		t.Fatal(err)
	}
	return recordsToMessages(t, raw)
}

func TestParseCapturedClientHellos(t *testing.T) {
	for _, tc := range []struct {
		file       string
		suite      uint16
		sni        string
		ecdhe, ems bool
	}{
		{"openssl_clienthello_psk.hex", 0x00A8, "", false, true},
		{"openssl_clienthello_ecdhe_sni.hex", 0xCCAC, "backend.example.com", true, true},
		{"gnutls_clienthello.hex", 0xCCAC, "", true, true},
	} {
		t.Run(tc.file, func(t *testing.T) {
			msgs := loadCapture(t, tc.file)
			if len(msgs) != 1 || msgs[0][0] != typeClientHello {
				t.Fatalf("%d messages", len(msgs))
			}
			typ, body, err := splitMessage(msgs[0])
			if err != nil || typ != typeClientHello {
				t.Fatal(err)
			}
			ch, err := parseClientHello(body)
			if err != nil {
				t.Fatal(err)
			}
			if ch.vers != 0x0303 || !ch.hasSuite(tc.suite) || ch.serverName != tc.sni || ch.ems != tc.ems {
				t.Fatalf("parsed %+v", ch)
			}
			if !ch.secureRenegExt && !ch.hasSuite(scsvRenegotiation) {
				t.Fatal("no RFC 5746 signal")
			}
			if tc.ecdhe && (len(ch.supportedCurves) == 0 || !containsUint8(ch.supportedPoints, 0)) {
				t.Fatalf("groups %v points %v", ch.supportedCurves, ch.supportedPoints)
			}
			// Re-marshalling is stable.
			m1, err := ch.marshal()
			if err != nil {
				t.Fatal(err)
			}
			ch2, err := parseClientHello(m1[4:])
			if err != nil {
				t.Fatal(err)
			}
			m2, _ := ch2.marshal()
			if !bytes.Equal(m1, m2) {
				t.Fatal("marshal not stable")
			}
		})
	}
}

// TestServerAnswersOpenSSLClientHello feeds a real OpenSSL ClientHello to
// our server and checks its answer.
func TestServerAnswersOpenSSLClientHello(t *testing.T) {
	requireReal(t)
	for _, tc := range []struct {
		file  string
		suite uint16
	}{
		{"openssl_clienthello_psk.hex", 0x00A8},
		{"openssl_clienthello_ecdhe_sni.hex", 0xCCAC},
		{"gnutls_clienthello.hex", 0xCCAC},
	} {
		_, scfg := testConfigs(pskSuites(), "srvhint")
		crl, srl := newMemPipe()
		done := make(chan error, 1)
		go func() {
			_, err := Server(context.Background(), srl, scfg)
			srl.close()
			done <- err
		}()
		crl.rawWrite(recHandshake, loadCapture(t, tc.file)[0])
		var got [][]byte
		for i := 0; i < 3; i++ {
			r, err := crl.rawRead()
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, r.data)
		}
		crl.close()
		<-done
		if got[0][0] != typeServerHello || got[1][0] != typeServerKeyExchange || !bytes.Equal(got[2], []byte{typeServerHelloDone, 0, 0, 0}) {
			t.Fatalf("%s: server flight %x", tc.file, got)
		}
		sh, err := parseServerHello(got[0][4:])
		if err != nil || sh.cipherSuite != tc.suite || !sh.ems || !sh.secureRenegExt {
			t.Fatalf("%s: ServerHello %+v %v", tc.file, sh, err)
		}
	}
}

// TestParseCapturedServerFlights parses OpenSSL's answers and runs our
// client's ServerHello checks on them.
func TestParseCapturedServerFlights(t *testing.T) {
	for _, tc := range []struct {
		file  string
		suite uint16
	}{
		{"openssl_server_flight_psk_hint.hex", 0x00A8},
		{"openssl_server_flight_ecdhe_psk.hex", 0xCCAC},
	} {
		msgs := loadCapture(t, tc.file)
		if len(msgs) != 3 {
			t.Fatalf("%s: %d messages", tc.file, len(msgs))
		}
		sh, err := parseServerHello(msgs[0][4:])
		if err != nil || sh.vers != 0x0303 || sh.cipherSuite != tc.suite || !sh.ems || !sh.secureRenegExt {
			t.Fatalf("%s: %+v %v", tc.file, sh, err)
		}
		if _, err := parseKeyExchange(typeServerKeyExchange, msgs[1][4:]); err != nil || msgs[1][0] != typeServerKeyExchange {
			t.Fatal(err)
		}
		if msgs[2][0] != typeServerHelloDone || parseEmpty(msgs[2][0], msgs[2][4:]) != nil {
			t.Fatal("ServerHelloDone")
		}
	}
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		panic(err)
	}
	return b
}

// minimal ClientHello body: version, random, empty session id, one suite,
// null compression; extensions appended by the cases.
func chBody(sessionID, suites, comp, tail string) []byte {
	return mustHex("0303" + strings.Repeat("ab", 32) + sessionID + suites + comp + tail)
}

func TestParseClientHelloErrors(t *testing.T) {
	ok := chBody("00", "000200a8", "0100", "")
	if _, err := parseClientHello(ok); err != nil {
		t.Fatalf("minimal hello: %v", err)
	}
	if _, err := parseClientHello(chBody("00", "000200a8", "0100", "0000")); err != nil {
		t.Fatalf("empty extensions block: %v", err)
	}
	cases := []struct {
		name string
		body []byte
		want ciphersuite.Alert
	}{
		{"empty", nil, ciphersuite.AlertDecodeError},
		{"short random", mustHex("0303abab"), ciphersuite.AlertDecodeError},
		{"session id 33", chBody("21"+strings.Repeat("00", 33), "000200a8", "0100", ""), ciphersuite.AlertDecodeError},
		{"no suites", chBody("00", "0000", "0100", ""), ciphersuite.AlertDecodeError},
		{"odd suites", chBody("00", "000300a800", "0100", ""), ciphersuite.AlertDecodeError},
		{"no compression", chBody("00", "000200a8", "00", ""), ciphersuite.AlertDecodeError},
		{"trailing byte", chBody("00", "000200a8", "0100", "000000"), ciphersuite.AlertDecodeError},
		{"trailing after extensions", chBody("00", "000200a8", "0100", "0004001700 00ff"), ciphersuite.AlertDecodeError},
		{"truncated extension", chBody("00", "000200a8", "0100", "00040017 0001"), ciphersuite.AlertDecodeError},
		{"duplicate EMS", chBody("00", "000200a8", "0100", "0008 00170000 00170000"), ciphersuite.AlertIllegalParameter},
		{"duplicate unknown", chBody("00", "000200a8", "0100", "000a 44440001aa 44440000 "), ciphersuite.AlertDecodeError},
		{"EMS with body", chBody("00", "000200a8", "0100", "0005 0017000100"), ciphersuite.AlertDecodeError},
		{"reneg bad length", chBody("00", "000200a8", "0100", "0005 ff01000105"), ciphersuite.AlertDecodeError},
		{"groups odd", chBody("00", "000200a8", "0100", "0007 000a0003000100"), ciphersuite.AlertDecodeError},
		{"groups empty", chBody("00", "000200a8", "0100", "0006 000a00020000"), ciphersuite.AlertDecodeError},
		{"points empty", chBody("00", "000200a8", "0100", "0005 000b000100"), ciphersuite.AlertDecodeError},
		{"sni two hosts", chBody("00", "000200a8", "0100", "0010 0000000c 000a 00000161 00000162"), ciphersuite.AlertDecodeError},
		{"sni trailing dot", chBody("00", "000200a8", "0100", "000b 00000007 0005 0000026 12e"), ciphersuite.AlertDecodeError},
		{"sni empty name", chBody("00", "000200a8", "0100", "0009 00000005 0003 000000"), ciphersuite.AlertDecodeError},
		{"too large", make([]byte, maxHelloMessage+1), ciphersuite.AlertDecodeError},
	}
	for _, tc := range cases {
		_, err := parseClientHello(tc.body)
		if err == nil {
			t.Errorf("%s: accepted", tc.name)
			continue
		}
		if a, _ := ciphersuite.AlertOf(err); a != tc.want {
			// "duplicate unknown" is malformed before it is duplicate.
			t.Errorf("%s: %v, want %s", tc.name, err, tc.want)
		}
	}
	// A real duplicate of an unknown extension.
	if _, err := parseClientHello(chBody("00", "000200a8", "0100", "0009 44440001aa 44440000")); err == nil {
		t.Error("duplicate unknown extension accepted")
	} else if a, _ := ciphersuite.AlertOf(err); a != ciphersuite.AlertIllegalParameter {
		t.Errorf("duplicate unknown extension: %v", err)
	}
}

func TestParseServerHelloErrors(t *testing.T) {
	base := "0303" + strings.Repeat("cd", 32) + "00" + "00a8" + "00"
	if _, err := parseServerHello(mustHex(base)); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, hex string
		want      ciphersuite.Alert
	}{
		{"trailing", base + "00", ciphersuite.AlertDecodeError},
		{"short", base[:20], ciphersuite.AlertDecodeError},
		{"session id 33", "0303" + strings.Repeat("cd", 32) + "21" + strings.Repeat("00", 33) + "00a800", ciphersuite.AlertDecodeError},
		{"duplicate", base + "0008 00170000 00170000", ciphersuite.AlertIllegalParameter},
		{"EMS with body", base + "0005 0017000100", ciphersuite.AlertDecodeError},
		{"sni ack with body", base + "0005 0000000100", ciphersuite.AlertDecodeError},
		{"extensions trailing", base + "0004 00170000 00", ciphersuite.AlertDecodeError},
	}
	for _, tc := range cases {
		_, err := parseServerHello(mustHex(tc.hex))
		if a, _ := ciphersuite.AlertOf(err); err == nil || a != tc.want {
			t.Errorf("%s: %v, want %s", tc.name, err, tc.want)
		}
	}
}

func TestSplitMessageAndSmallMessages(t *testing.T) {
	for _, msg := range [][]byte{nil, {1}, {1, 0, 0}, {1, 0, 0, 1}, {1, 0, 0, 0, 0}, {20, 0xff, 0xff, 0xff}} {
		if _, _, err := splitMessage(msg); err == nil {
			t.Errorf("splitMessage(%x) accepted", msg)
		}
	}
	big := marshalMessage(typeClientKeyExchange, make([]byte, maxHandshakeMessage+1))
	if _, _, err := splitMessage(big); err == nil {
		t.Error("oversized message accepted")
	}
	if _, err := parseFinished(make([]byte, 11)); err == nil {
		t.Error("11-byte Finished accepted")
	}
	if _, err := parseFinished(make([]byte, 13)); err == nil {
		t.Error("13-byte Finished accepted")
	}
	if err := parseEmpty(typeServerHelloDone, []byte{0}); err == nil {
		t.Error("non-empty ServerHelloDone accepted")
	}
	if _, err := parseKeyExchange(typeClientKeyExchange, nil); err == nil {
		t.Error("empty ClientKeyExchange accepted")
	}
}

func TestMessageRoundTrip(t *testing.T) {
	ch := &clientHelloMsg{
		vers: 0x0303, random: bytes.Repeat([]byte{1}, 32), sessionID: []byte{1, 2, 3},
		cipherSuites: []uint16{0xCCAC, 0x00A8, 0x00FF}, compressionMethods: []uint8{0},
		serverName: "example.com", supportedCurves: []ciphersuite.CurveID{29, 23}, supportedPoints: []uint8{0},
		ems: true, secureRenegExt: true, extra: []ciphersuite.Extension{{Type: 0xFF4D, Data: []byte("x")}},
	}
	b, err := ch.marshal()
	if err != nil {
		t.Fatal(err)
	}
	got, err := parseClientHello(b[4:])
	if err != nil {
		t.Fatal(err)
	}
	if got.serverName != ch.serverName || len(got.supportedCurves) != 2 || !got.ems || !got.secureRenegExt ||
		string(got.raw[0xFF4D]) != "x" || len(got.extra) != 1 || !got.hasSuite(0x00FF) || !bytes.Equal(got.sessionID, ch.sessionID) {
		t.Fatalf("round trip: %+v", got)
	}
	sh := &serverHelloMsg{vers: 0x0303, random: bytes.Repeat([]byte{2}, 32), cipherSuite: 0xCCAC,
		ems: true, secureRenegExt: true, supportedPoints: []uint8{0}, serverNameAck: true}
	b, err = sh.marshal()
	if err != nil {
		t.Fatal(err)
	}
	gs, err := parseServerHello(b[4:])
	if err != nil || !gs.ems || !gs.secureRenegExt || !gs.serverNameAck || gs.cipherSuite != 0xCCAC || len(gs.extTypes) != 4 {
		t.Fatalf("round trip: %+v %v", gs, err)
	}
}
