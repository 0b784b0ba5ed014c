package handshake

import (
	"bytes"
	"strings"
	"testing"

	"github.com/milagro-go/milagro/ciphersuite"
	"golang.org/x/crypto/cryptobyte"
)

func TestALPNNegotiation(t *testing.T) {
	implementations(t, func(t *testing.T) {
		cases := []struct {
			name           string
			client, server []string
			want           string
			alert          bool // server sends no_application_protocol
		}{
			{"server preference wins", []string{"http/1.1", "h2"}, []string{"h2", "http/1.1"}, "h2", false},
			{"single overlap", []string{"spdy/3", "grpc-exp"}, []string{"h2", "grpc-exp"}, "grpc-exp", false},
			{"server without ALPN", []string{"h2"}, nil, "", false},
			{"client without ALPN", nil, []string{"h2"}, "", false},
			{"neither", nil, nil, "", false},
			{"h2 server, http/1.1 client: no ALPN", []string{"http/1.1"}, []string{"h2"}, "", false},
			{"no overlap", []string{"foo", "bar"}, []string{"h2", "http/1.1"}, "", true},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				ccfg, scfg := testConfigs(pskSuites(), "")
				ccfg.NextProtos, scfg.NextProtos = tc.client, tc.server
				r := runPair(t, ccfg, scfg)
				if tc.alert {
					wantAlert(t, r.serr, ciphersuite.AlertNoApplicationProtocol)
					if !strings.Contains(r.serr.Error(), `"foo"`) {
						t.Fatalf("error does not name the client's protocols: %v", r.serr)
					}
					if r.cerr == nil {
						t.Fatal("client succeeded although the server refused")
					}
					return
				}
				checkSuccess(t, r)
				if r.cst.NegotiatedProtocol != tc.want || r.sst.NegotiatedProtocol != tc.want {
					t.Fatalf("negotiated client %q server %q, want %q",
						r.cst.NegotiatedProtocol, r.sst.NegotiatedProtocol, tc.want)
				}
			})
		}
	})
}

// The client checks the server's answer: a protocol it did not offer, or an
// answer to an ALPN extension it never sent, ends the handshake.
func TestALPNServerMisbehaves(t *testing.T) {
	implementations(t, func(t *testing.T) {
		t.Run("unoffered protocol", func(t *testing.T) {
			withServerHello(t, func(m *serverHelloMsg) { m.alpnProtocol = "evil" })
			ccfg, scfg := testConfigs(pskSuites(), "")
			ccfg.NextProtos, scfg.NextProtos = []string{"h2", "http/1.1"}, []string{"h2"}
			r := runPair(t, ccfg, scfg)
			wantAlert(t, r.cerr, ciphersuite.AlertIllegalParameter)
			if !strings.Contains(r.cerr.Error(), `"evil"`) {
				t.Fatalf("error does not name the selected protocol: %v", r.cerr)
			}
		})
		t.Run("unrequested extension", func(t *testing.T) {
			withServerHello(t, func(m *serverHelloMsg) { m.alpnProtocol = "h2" })
			ccfg, scfg := testConfigs(pskSuites(), "")
			r := runPair(t, ccfg, scfg)
			wantAlert(t, r.cerr, ciphersuite.AlertUnsupportedExtension)
		})
		t.Run("two protocols selected", func(t *testing.T) {
			withServerHello(t, func(m *serverHelloMsg) {
				m.extra = append(m.extra, ciphersuite.Extension{Type: extALPN,
					Data: []byte{0, 6, 2, 'h', '2', 2, 'h', '3'}})
			})
			ccfg, scfg := testConfigs(pskSuites(), "")
			ccfg.NextProtos = []string{"h2", "h3"}
			r := runPair(t, ccfg, scfg)
			wantAlert(t, r.cerr, ciphersuite.AlertDecodeError)
		})
	})
}

func TestALPNClientHelloMalformed(t *testing.T) {
	implementations(t, func(t *testing.T) {
		cases := []struct {
			name  string
			hook  func(*clientHelloMsg)
			alert ciphersuite.Alert
		}{
			{"empty protocol name", func(m *clientHelloMsg) { m.alpnProtocols = []string{"h2", ""} }, ciphersuite.AlertDecodeError},
			{"empty list", func(m *clientHelloMsg) {
				m.extra = append(m.extra, ciphersuite.Extension{Type: extALPN, Data: []byte{0, 0}})
			}, ciphersuite.AlertDecodeError},
			{"empty body", func(m *clientHelloMsg) {
				m.extra = append(m.extra, ciphersuite.Extension{Type: extALPN})
			}, ciphersuite.AlertDecodeError},
			{"trailing byte", func(m *clientHelloMsg) {
				m.extra = append(m.extra, ciphersuite.Extension{Type: extALPN, Data: []byte{0, 3, 2, 'h', '2', 0}})
			}, ciphersuite.AlertDecodeError},
			{"name overruns list", func(m *clientHelloMsg) {
				m.extra = append(m.extra, ciphersuite.Extension{Type: extALPN, Data: []byte{0, 3, 5, 'h', '2'}})
			}, ciphersuite.AlertDecodeError},
			{"duplicate extension", func(m *clientHelloMsg) {
				m.alpnProtocols = []string{"h2"}
				m.extra = append(m.extra, ciphersuite.Extension{Type: extALPN, Data: []byte{0, 3, 2, 'h', '2'}})
			}, ciphersuite.AlertIllegalParameter},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				withClientHello(t, tc.hook)
				ccfg, scfg := testConfigs(pskSuites(), "")
				scfg.NextProtos = []string{"h2"}
				r := runPair(t, ccfg, scfg)
				wantAlert(t, r.serr, tc.alert)
			})
		}
	})
}

func TestALPNConfigChecked(t *testing.T) {
	useFakes(t)
	for _, bad := range [][]string{{""}, {strings.Repeat("x", 256)}, {"h2", "h2"}, make([]string, 65)} {
		ccfg, scfg := testConfigs(pskSuites(), "")
		ccfg.NextProtos = bad
		r := runPair(t, ccfg, scfg)
		wantAlert(t, r.cerr, ciphersuite.AlertInternalError)
	}
	if err := CheckNextProtos([]string{"h2", strings.Repeat("x", 255)}); err != nil {
		t.Fatalf("valid list refused: %v", err)
	}
}

// GetConfigForClient sees the client's protocols and its returned
// configuration's NextProtos is the one that negotiates.
func TestALPNGetConfigForClient(t *testing.T) {
	useFakes(t)
	ccfg, scfg := testConfigs(pskSuites(), "")
	_, other := testConfigs(pskSuites(), "")
	other.NextProtos = []string{"b"}
	ccfg.NextProtos = []string{"a", "b"}
	scfg.NextProtos = []string{"a"}
	var seen []string
	scfg.GetConfigForClient = func(h *ciphersuite.ClientHelloInfo) (*ServerConfig, error) {
		seen = h.SupportedProtos
		return other, nil
	}
	r := runPair(t, ccfg, scfg)
	checkSuccess(t, r)
	if strings.Join(seen, ",") != "a,b" || r.sst.NegotiatedProtocol != "b" || r.cst.NegotiatedProtocol != "b" {
		t.Fatalf("seen %q, negotiated %q/%q", seen, r.sst.NegotiatedProtocol, r.cst.NegotiatedProtocol)
	}
}

func TestALPNWire(t *testing.T) {
	m := &clientHelloMsg{vers: versionTLS12, random: make([]byte, 32), cipherSuites: []uint16{0xD001},
		compressionMethods: []uint8{0}, alpnProtocols: []string{"h2", "http/1.1"}}
	msg, err := m.marshal()
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{0, 16, 0, 14, 0, 12, 2, 'h', '2', 8, 'h', 't', 't', 'p', '/', '1', '.', '1'}
	if !bytes.Contains(msg, want) {
		t.Fatalf("ClientHello lacks the RFC 7301 encoding %x:\n%x", want, msg)
	}
	ch, err := parseClientHello(msg[4:])
	if err != nil || strings.Join(ch.alpnProtocols, ",") != "h2,http/1.1" {
		t.Fatalf("parse: %v %q", err, ch.alpnProtocols)
	}
	sh := &serverHelloMsg{vers: versionTLS12, random: make([]byte, 32), cipherSuite: 0xD001, alpnProtocol: "h2"}
	msg, err = sh.marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(msg, []byte{0, 16, 0, 5, 0, 3, 2, 'h', '2'}) {
		t.Fatalf("ServerHello lacks the ALPN answer: %x", msg)
	}
	sh2, err := parseServerHello(msg[4:])
	if err != nil || sh2.alpnProtocol != "h2" {
		t.Fatalf("parse: %v %q", err, sh2.alpnProtocol)
	}
}

// FuzzALPNExtension feeds arbitrary extension bodies to both ALPN parsers:
// no panic, every error carries an alert, and whatever parses re-encodes to
// exactly the same bytes.
func FuzzALPNExtension(f *testing.F) {
	for _, seed := range [][]byte{
		{0, 3, 2, 'h', '2'},
		{0, 12, 2, 'h', '2', 8, 'h', 't', 't', 'p', '/', '1', '.', '1'},
		{0, 0}, {}, {0, 1, 0}, {0, 3, 2, 'h', '2', 0}, {0, 4, 3, 'h', '2'},
		{0xff, 0xff, 1},
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		protos, err := parseALPNList(cryptobyte.String(data), "ClientHello")
		one, err1 := parseALPNServer(cryptobyte.String(data))
		if err != nil {
			if _, ok := ciphersuite.AlertOf(err); !ok {
				t.Fatalf("error without alert: %v", err)
			}
			if err1 == nil {
				t.Fatal("ServerHello parser accepts what the list parser refuses")
			}
			return
		}
		if len(protos) == 0 {
			t.Fatal("empty list accepted")
		}
		var b cryptobyte.Builder
		addALPNExtension(&b, protos)
		out, berr := b.Bytes()
		if berr != nil || !bytes.Equal(out[4:], data) {
			t.Fatalf("round trip differs: %x -> %q -> %x (%v)", data, protos, out, berr)
		}
		if (err1 == nil) != (len(protos) == 1) || (err1 == nil && one != protos[0]) {
			t.Fatalf("ServerHello parse %q, %v for list %q", one, err1, protos)
		}
	})
}
