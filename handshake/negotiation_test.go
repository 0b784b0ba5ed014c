package handshake

import (
	"bytes"
	"context"
	"testing"

	"github.com/milagro-go/milagro/ciphersuite"
)

func TestOutOfOrder(t *testing.T) {
	implementations(t, func(t *testing.T) {
		ecdhe := []*ciphersuite.Suite{ciphersuite.ByID(0xD001)}
		cases := []struct {
			name     string
			suites   []*ciphersuite.Suite
			client   bool // rewrite the client's messages (else the server's)
			rewrite  func(msg []byte) [][]byte
			failSide string
		}{
			{"ServerHelloDone before ServerHello", ecdhe, false, func(msg []byte) [][]byte {
				if msg[0] == typeServerHello {
					return [][]byte{{typeServerHelloDone, 0, 0, 0}, msg}
				}
				return [][]byte{msg}
			}, "client"},
			{"ServerKeyExchange missing for ECDHE_PSK", ecdhe, false, func(msg []byte) [][]byte {
				if msg[0] == typeServerKeyExchange {
					return nil
				}
				return [][]byte{msg}
			}, "client"},
			{"ServerKeyExchange twice", ecdhe, false, func(msg []byte) [][]byte {
				if msg[0] == typeServerKeyExchange {
					return [][]byte{msg, msg}
				}
				return [][]byte{msg}
			}, "client"},
			{"second ServerHello", ecdhe, false, func(msg []byte) [][]byte {
				if msg[0] == typeServerHello {
					return [][]byte{msg, msg}
				}
				return [][]byte{msg}
			}, "client"},
			{"Finished instead of ClientKeyExchange", ecdhe, true, func(msg []byte) [][]byte {
				if msg[0] == typeClientKeyExchange {
					return [][]byte{{typeFinished, 0, 0, 12, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}}
				}
				return [][]byte{msg}
			}, "server"},
			{"ClientHello twice", ecdhe, true, func(msg []byte) [][]byte {
				if msg[0] == typeClientHello {
					return [][]byte{msg, msg}
				}
				return [][]byte{msg}
			}, "server"},
			{"HelloRequest to the server", ecdhe, true, func(msg []byte) [][]byte {
				if msg[0] == typeClientKeyExchange {
					return [][]byte{{typeHelloRequest, 0, 0, 0}, msg}
				}
				return [][]byte{msg}
			}, "server"},
			{"ClientKeyExchange first", ecdhe, true, func(msg []byte) [][]byte {
				if msg[0] == typeClientHello {
					return [][]byte{{typeClientKeyExchange, 0, 0, 2, 0, 0}, msg}
				}
				return [][]byte{msg}
			}, "server"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				ccfg, scfg := testConfigs(tc.suites, "")
				r := runPairRL(t, ccfg, scfg, func(c, s *memRL) {
					if tc.client {
						c.onWrite = tc.rewrite
					} else {
						s.onWrite = tc.rewrite
					}
				})
				if tc.failSide == "client" {
					wantAlert(t, r.cerr, ciphersuite.AlertUnexpectedMessage)
				} else {
					wantAlert(t, r.serr, ciphersuite.AlertUnexpectedMessage)
				}
			})
		}
	})
}

// A HelloRequest that reaches the client mid-handshake is ignored and not
// hashed (RFC 5246 §7.4.1.1).
func TestClientIgnoresHelloRequest(t *testing.T) {
	implementations(t, func(t *testing.T) {
		ccfg, scfg := testConfigs(pskSuites(), "hint")
		r := runPairRL(t, ccfg, scfg, func(c, s *memRL) {
			s.onWrite = func(msg []byte) [][]byte {
				return [][]byte{{typeHelloRequest, 0, 0, 0}, msg}
			}
		})
		checkSuccess(t, r)
	})
}

func TestDuplicateExtensions(t *testing.T) {
	implementations(t, func(t *testing.T) {
		t.Run("ClientHello", func(t *testing.T) {
			withClientHello(t, func(m *clientHelloMsg) {
				m.extra = append(m.extra, ciphersuite.Extension{Type: extExtendedMasterSecret})
			})
			ccfg, scfg := testConfigs(pskSuites(), "")
			r := runPair(t, ccfg, scfg)
			wantAlert(t, r.serr, ciphersuite.AlertIllegalParameter)
		})
		t.Run("ClientHello unknown", func(t *testing.T) {
			withClientHello(t, func(m *clientHelloMsg) {
				m.extra = append(m.extra, ciphersuite.Extension{Type: 0x4444}, ciphersuite.Extension{Type: 0x4444, Data: []byte{1}})
			})
			ccfg, scfg := testConfigs(pskSuites(), "")
			r := runPair(t, ccfg, scfg)
			wantAlert(t, r.serr, ciphersuite.AlertIllegalParameter)
		})
		t.Run("ServerHello", func(t *testing.T) {
			withServerHello(t, func(m *serverHelloMsg) {
				m.extra = append(m.extra, ciphersuite.Extension{Type: extExtendedMasterSecret})
			})
			ccfg, scfg := testConfigs(pskSuites(), "")
			r := runPair(t, ccfg, scfg)
			wantAlert(t, r.cerr, ciphersuite.AlertIllegalParameter)
		})
	})
}

func TestUnknownClientHelloExtensionIgnored(t *testing.T) {
	implementations(t, func(t *testing.T) {
		withClientHello(t, func(m *clientHelloMsg) {
			m.extra = append(m.extra, ciphersuite.Extension{Type: 0x1a1a, Data: []byte("grease")}, ciphersuite.Extension{Type: 16, Data: []byte{0, 3, 2, 'h', '2'}})
		})
		ccfg, scfg := testConfigs(pskSuites(), "")
		checkSuccess(t, runPair(t, ccfg, scfg))
	})
}

func TestUnsolicitedServerHelloExtension(t *testing.T) {
	implementations(t, func(t *testing.T) {
		for name, hook := range map[string]func(*serverHelloMsg){
			"unknown":         func(m *serverHelloMsg) { m.extra = append(m.extra, ciphersuite.Extension{Type: 0x1234}) },
			"server_name ack": func(m *serverHelloMsg) { m.serverNameAck = true },
			"milagro_cs not offered": func(m *serverHelloMsg) {
				m.extra = append(m.extra, ciphersuite.Extension{Type: ciphersuite.ExtMilagroCS})
			},
			"ec_point_formats for PSK only": func(m *serverHelloMsg) {
				m.supportedPoints = []uint8{0}
			},
		} {
			t.Run(name, func(t *testing.T) {
				withServerHello(t, hook)
				ccfg, scfg := testConfigs(ciphersuite.ByKX(ciphersuite.KXPSK), "")
				r := runPair(t, ccfg, scfg)
				wantAlert(t, r.cerr, ciphersuite.AlertUnsupportedExtension)
			})
		}
	})
}

func TestServerChoosesSuiteNotOffered(t *testing.T) {
	implementations(t, func(t *testing.T) {
		for _, id := range []uint16{0x00A9, 0xFF01, 0x1301, scsvRenegotiation} {
			withServerHello(t, func(m *serverHelloMsg) { m.cipherSuite = id })
			ccfg, scfg := testConfigs([]*ciphersuite.Suite{ciphersuite.ByID(0x00A8)}, "")
			r := runPair(t, ccfg, scfg)
			wantAlert(t, r.cerr, ciphersuite.AlertIllegalParameter)
		}
	})
}

func TestServerHelloVersionAndCompression(t *testing.T) {
	implementations(t, func(t *testing.T) {
		for _, v := range []uint16{0x0301, 0x0302, 0x0304} {
			withServerHello(t, func(m *serverHelloMsg) { m.vers = v })
			ccfg, scfg := testConfigs(pskSuites(), "")
			wantAlert(t, runPair(t, ccfg, scfg).cerr, ciphersuite.AlertProtocolVersion)
		}
		withServerHello(t, func(m *serverHelloMsg) { m.compressionMethod = 1 })
		ccfg, scfg := testConfigs(pskSuites(), "")
		wantAlert(t, runPair(t, ccfg, scfg).cerr, ciphersuite.AlertIllegalParameter)
	})
}

func TestOldClientHelloVersion(t *testing.T) {
	implementations(t, func(t *testing.T) {
		for _, v := range []uint16{0x0300, 0x0301, 0x0302} {
			withClientHello(t, func(m *clientHelloMsg) { m.vers = v })
			ccfg, scfg := testConfigs(pskSuites(), "")
			r := runPair(t, ccfg, scfg)
			wantAlert(t, r.serr, ciphersuite.AlertProtocolVersion)
		}
		// A client that supports a later version negotiates TLS 1.2.
		withClientHello(t, func(m *clientHelloMsg) { m.vers = 0x0304 })
		ccfg, scfg := testConfigs(pskSuites(), "")
		checkSuccess(t, runPair(t, ccfg, scfg))
	})
}

func TestClientHelloWithoutNullCompression(t *testing.T) {
	implementations(t, func(t *testing.T) {
		withClientHello(t, func(m *clientHelloMsg) { m.compressionMethods = []uint8{1} })
		ccfg, scfg := testConfigs(pskSuites(), "")
		wantAlert(t, runPair(t, ccfg, scfg).serr, ciphersuite.AlertIllegalParameter)
	})
}

func sentHello(t *testing.T, rl *memRL, typ uint8) []byte {
	t.Helper()
	for _, m := range rl.sent {
		if m[0] == typ {
			return m
		}
	}
	t.Fatalf("no message of type %d sent", typ)
	return nil
}

func TestRenegotiationInfo(t *testing.T) {
	implementations(t, func(t *testing.T) {
		t.Run("extension", func(t *testing.T) {
			ccfg, scfg := testConfigs(pskSuites(), "")
			r := runPair(t, ccfg, scfg)
			checkSuccess(t, r)
			ch, err := parseClientHello(sentHello(t, r.crl, typeClientHello)[4:])
			if err != nil || !ch.secureRenegExt || len(ch.secureRenegotiation) != 0 || ch.hasSuite(scsvRenegotiation) {
				t.Fatalf("client hello renegotiation_info: %+v %v", ch, err)
			}
			sh, err := parseServerHello(sentHello(t, r.srl, typeServerHello)[4:])
			if err != nil || !sh.secureRenegExt || len(sh.secureRenegotiation) != 0 {
				t.Fatalf("server hello renegotiation_info: %+v %v", sh, err)
			}
			if !r.cst.SecureRenegotiation || !r.sst.SecureRenegotiation {
				t.Fatal("secure renegotiation not reported")
			}
		})
		t.Run("SCSV", func(t *testing.T) {
			withClientHello(t, func(m *clientHelloMsg) {
				m.secureRenegExt = false
				m.cipherSuites = append(m.cipherSuites, scsvRenegotiation)
			})
			ccfg, scfg := testConfigs(pskSuites(), "")
			r := runPair(t, ccfg, scfg)
			checkSuccess(t, r)
			sh, _ := parseServerHello(sentHello(t, r.srl, typeServerHello)[4:])
			if !sh.secureRenegExt || !r.sst.SecureRenegotiation {
				t.Fatal("server did not answer the SCSV with renegotiation_info")
			}
		})
		t.Run("neither", func(t *testing.T) {
			withClientHello(t, func(m *clientHelloMsg) { m.secureRenegExt = false })
			ccfg, scfg := testConfigs(pskSuites(), "")
			r := runPair(t, ccfg, scfg)
			checkSuccess(t, r)
			sh, _ := parseServerHello(sentHello(t, r.srl, typeServerHello)[4:])
			if sh.secureRenegExt || r.sst.SecureRenegotiation || r.cst.SecureRenegotiation {
				t.Fatal("renegotiation_info sent or reported without the client's signal")
			}
		})
		t.Run("server omits", func(t *testing.T) {
			withServerHello(t, func(m *serverHelloMsg) { m.secureRenegExt = false })
			ccfg, scfg := testConfigs(pskSuites(), "")
			r := runPair(t, ccfg, scfg)
			if r.cerr != nil || r.cst.SecureRenegotiation {
				t.Fatalf("client: %v, secure renegotiation %v", r.cerr, r.cst != nil && r.cst.SecureRenegotiation)
			}
		})
		t.Run("client non-empty", func(t *testing.T) {
			withClientHello(t, func(m *clientHelloMsg) { m.secureRenegotiation = make([]byte, 12) })
			ccfg, scfg := testConfigs(pskSuites(), "")
			wantAlert(t, runPair(t, ccfg, scfg).serr, ciphersuite.AlertHandshakeFailure)
		})
		t.Run("server non-empty", func(t *testing.T) {
			withServerHello(t, func(m *serverHelloMsg) { m.secureRenegotiation = make([]byte, 24) })
			ccfg, scfg := testConfigs(pskSuites(), "")
			wantAlert(t, runPair(t, ccfg, scfg).cerr, ciphersuite.AlertHandshakeFailure)
		})
	})
}

func TestECPointFormatsAndGroups(t *testing.T) {
	implementations(t, func(t *testing.T) {
		ccfg, scfg := testConfigs(pskSuites(), "")
		r := runPair(t, ccfg, scfg)
		checkSuccess(t, r)
		ch, _ := parseClientHello(sentHello(t, r.crl, typeClientHello)[4:])
		if len(ch.supportedCurves) == 0 || !bytes.Equal(ch.supportedPoints, []byte{0}) {
			t.Fatalf("ClientHello groups %v points %v", ch.supportedCurves, ch.supportedPoints)
		}
		sh, _ := parseServerHello(sentHello(t, r.srl, typeServerHello)[4:])
		if !bytes.Equal(sh.supportedPoints, []byte{0}) {
			t.Fatalf("ServerHello points %v for %v", sh.supportedPoints, r.sst.Suite)
		}
		// Plain PSK only: neither extension.
		ccfg, scfg = testConfigs(ciphersuite.ByKX(ciphersuite.KXPSK), "")
		r = runPair(t, ccfg, scfg)
		checkSuccess(t, r)
		ch, _ = parseClientHello(sentHello(t, r.crl, typeClientHello)[4:])
		if ch.supportedCurves != nil || ch.hasPointFormats {
			t.Fatal("ECDHE extensions sent without an ECDHE suite")
		}
		// Server's point formats without uncompressed.
		withServerHello(t, func(m *serverHelloMsg) { m.supportedPoints = []uint8{1} })
		ccfg, scfg = testConfigs(ciphersuite.ByKX(ciphersuite.KXECDHEPSK), "")
		wantAlert(t, runPair(t, ccfg, scfg).cerr, ciphersuite.AlertIllegalParameter)
	})
}

func TestServerNameAndGetConfigForClient(t *testing.T) {
	implementations(t, func(t *testing.T) {
		ccfg, scfg := testConfigs(pskSuites(), "")
		ccfg.ServerName = "backend.example.com"
		var seen *ciphersuite.ClientHelloInfo
		_, alt := testConfigs([]*ciphersuite.Suite{ciphersuite.ByID(0x00A9)}, "alt-hint")
		scfg.GetConfigForClient = func(info *ciphersuite.ClientHelloInfo) (*ServerConfig, error) {
			seen = info
			// The callback gets a copy: scribbling on it changes nothing
			// the handshake reads (the suite offers, the curves).
			clear(info.CipherSuites)
			clear(info.Curves)
			return alt, nil
		}
		r := runPair(t, ccfg, scfg)
		checkSuccess(t, r)
		if seen == nil || seen.ServerName != "backend.example.com" || len(seen.CipherSuites) != len(pskSuites()) || len(seen.Curves) == 0 || seen.Extensions != nil {
			t.Fatalf("GetConfigForClient saw %+v", seen)
		}
		if r.sst.ServerName != "backend.example.com" || r.cst.ServerName != "backend.example.com" {
			t.Fatalf("State.ServerName %q / %q", r.sst.ServerName, r.cst.ServerName)
		}
		if r.sst.Suite.ID != 0x00A9 || r.cst.PSKIdentityHint != "alt-hint" {
			t.Fatalf("the returned config was not used: %v %q", r.sst.Suite, r.cst.PSKIdentityHint)
		}

		// An IP address is not sent as server_name.
		for _, ip := range []string{"127.0.0.1", "::1", "[::1]"} {
			ccfg.ServerName = ip
			seen = nil
			r = runPair(t, ccfg, scfg)
			checkSuccess(t, r)
			if seen.ServerName != "" {
				t.Fatalf("%s sent as server_name", ip)
			}
		}

		// A callback error ends the handshake with its alert.
		scfg.GetConfigForClient = func(*ciphersuite.ClientHelloInfo) (*ServerConfig, error) {
			return nil, ciphersuite.Errorf(ciphersuite.AlertUnrecognizedName, "no such virtual host")
		}
		wantAlert(t, runPair(t, ccfg, scfg).serr, ciphersuite.AlertUnrecognizedName)
	})
}

func TestServerKXError(t *testing.T) {
	useFakes(t)
	fakeServerKXErr = ciphersuite.Errorf(ciphersuite.AlertAccessDenied, "proof does not verify")
	ccfg, scfg := testConfigs(pskSuites(), "")
	wantAlert(t, runPair(t, ccfg, scfg).serr, ciphersuite.AlertAccessDenied)
}

func TestKXHelloExtensions(t *testing.T) {
	useFakes(t)
	fakeHelloExts = []ciphersuite.Extension{{Type: ciphersuite.ExtMilagroCS, Data: []byte("proof")}}
	var got []byte
	newServer := newServerKX
	newServerKX = func(cfg *ciphersuite.ServerConfig, s *ciphersuite.Suite, h *ciphersuite.ClientHelloInfo) (ciphersuite.ServerKX, error) {
		got = h.Extensions[ciphersuite.ExtMilagroCS]
		return newServer(cfg, s, h)
	}
	ccfg, scfg := testConfigs(pskSuites(), "")
	checkSuccess(t, runPair(t, ccfg, scfg))
	if string(got) != "proof" {
		t.Fatalf("server key exchange saw milagro_cs %q", got)
	}
	// A key exchange that duplicates a built-in extension is a bug.
	fakeHelloExts = []ciphersuite.Extension{{Type: extExtendedMasterSecret}}
	wantAlert(t, runPair(t, ccfg, scfg).cerr, ciphersuite.AlertInternalError)
}

func TestContextCanceled(t *testing.T) {
	useFakes(t)
	ccfg, scfg := testConfigs(pskSuites(), "")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	c, _ := newMemPipe()
	if _, err := Client(ctx, c, ccfg); err != context.Canceled {
		t.Fatalf("client: %v", err)
	}
	if _, err := Server(ctx, c, scfg); err != context.Canceled {
		t.Fatalf("server: %v", err)
	}
	// Canceled mid-handshake: the server waits for a ClientKeyExchange
	// that the test withholds, then the context is canceled.
	crl, srl := newMemPipe()
	ctx, cancel = context.WithCancel(context.Background())
	srl.onRead = func(n int) {
		if n == 1 {
			cancel()
		}
	}
	errc := make(chan error, 1)
	go func() {
		_, err := Server(ctx, srl, scfg)
		srl.close()
		errc <- err
	}()
	_, _ = Client(context.Background(), crl, ccfg)
	crl.close()
	if err := <-errc; err != context.Canceled {
		t.Fatalf("server after cancel: %v", err)
	}
}

func TestRecordLayerErrorsPassThrough(t *testing.T) {
	useFakes(t)
	ccfg, scfg := testConfigs(pskSuites(), "")
	crl, srl := newMemPipe()
	srl.close()
	crl.close()
	if _, err := Client(context.Background(), crl, ccfg); err != errPeerGone {
		t.Fatalf("client: %v", err)
	}
	if _, err := Server(context.Background(), srl, scfg); err != errPeerGone {
		t.Fatalf("server: %v", err)
	}
}
