package mtls_test

import (
	"strings"
	"testing"

	"github.com/milagro-go/milagro/ciphersuite"
	"github.com/milagro-go/milagro/mtls"
)

func TestALPN(t *testing.T) {
	t.Run("agreed", func(t *testing.T) {
		ccfg, scfg := pskConfigs()
		ccfg.NextProtos = []string{"http/1.1", "h2"}
		scfg.NextProtos = []string{"h2", "http/1.1"}
		cc, sc := tcpPair(t, ccfg, scfg)
		if c, s := cc.ConnectionState(), sc.ConnectionState(); c.NegotiatedProtocol != "h2" || s.NegotiatedProtocol != "h2" {
			t.Fatalf("negotiated %q / %q, want h2", c.NegotiatedProtocol, s.NegotiatedProtocol)
		}
		exchange(t, cc, sc, 1000)
	})
	t.Run("server without ALPN", func(t *testing.T) {
		ccfg, scfg := pskConfigs()
		ccfg.NextProtos = []string{"h2"}
		cc, sc := tcpPair(t, ccfg, scfg)
		if c, s := cc.ConnectionState(), sc.ConnectionState(); c.NegotiatedProtocol != "" || s.NegotiatedProtocol != "" {
			t.Fatalf("negotiated %q / %q, want none", c.NegotiatedProtocol, s.NegotiatedProtocol)
		}
	})
	// Mismatch: the server refuses with no_application_protocol, which the
	// client receives as a remote alert.
	t.Run("mismatch PSK", func(t *testing.T) {
		ccfg, scfg := pskConfigs()
		ccfg.NextProtos = []string{"grpc-exp"}
		scfg.NextProtos = []string{"h2", "http/1.1"}
		r := milHandshakeTCP(t, ccfg, scfg, nil, nil)
		milExpectAlert(t, "server", r.serverErr, ciphersuite.AlertNoApplicationProtocol, false)
		milExpectAlert(t, "client", r.clientErr, ciphersuite.AlertNoApplicationProtocol, true)
		if !strings.Contains(r.clientErr.Error(), "no_application_protocol") {
			t.Fatalf("client error does not name the alert: %v", r.clientErr)
		}
	})
	t.Run("mismatch P2P", func(t *testing.T) {
		ccfg, scfg := milP2PConfigs(t, ciphersuite.ByKX(ciphersuite.KXMilagroP2P)[0].ID)
		ccfg.NextProtos = []string{"foo"}
		scfg.NextProtos = []string{"bar"}
		r := milHandshakeTCP(t, ccfg, scfg, nil, nil)
		milExpectAlert(t, "server", r.serverErr, ciphersuite.AlertNoApplicationProtocol, false)
		milExpectAlert(t, "client", r.clientErr, ciphersuite.AlertNoApplicationProtocol, true)
	})
	t.Run("CS agreed", func(t *testing.T) {
		ccfg, scfg := milCSConfigs(t, ciphersuite.ByKX(ciphersuite.KXMilagroCS)[0].ID)
		ccfg.NextProtos = []string{"h2"}
		scfg.NextProtos = []string{"h2"}
		r := milHandshakeTCP(t, ccfg, scfg, nil, nil)
		if r.clientErr != nil || r.serverErr != nil {
			t.Fatal(r.clientErr, r.serverErr)
		}
		if p := r.client.ConnectionState().NegotiatedProtocol; p != "h2" {
			t.Fatalf("client negotiated %q", p)
		}
	})
	t.Run("invalid NextProtos", func(t *testing.T) {
		ccfg, scfg := pskConfigs()
		ccfg.NextProtos = []string{""}
		cc, sc := pipePair(t, ccfg, scfg)
		go sc.Handshake()
		if err := cc.Handshake(); err == nil || !strings.Contains(err.Error(), "NextProtos") {
			t.Fatalf("client accepted an empty protocol name: %v", err)
		}
	})
	t.Run("GetConfigForClient sees protocols", func(t *testing.T) {
		ccfg, scfg := pskConfigs()
		ccfg.NextProtos = []string{"a", "b"}
		base := scfg
		var seen []string
		scfg = &mtls.Config{GetServerPSK: base.GetServerPSK, GetConfigForClient: func(h *mtls.ClientHelloInfo) (*mtls.Config, error) {
			seen = h.SupportedProtos
			c := base.Clone()
			c.NextProtos = []string{"b"}
			return c, nil
		}}
		cc, _ := tcpPair(t, ccfg, scfg)
		if strings.Join(seen, ",") != "a,b" || cc.ConnectionState().NegotiatedProtocol != "b" {
			t.Fatalf("seen %q, negotiated %q", seen, cc.ConnectionState().NegotiatedProtocol)
		}
	})
}
