package handshake

// Application-Layer Protocol Negotiation (RFC 7301).
//
// The client lists the protocols it speaks in the ClientHello; the server
// picks one in its own preference order and names it in the ServerHello.
// Behaviour, matching crypto/tls unless noted:
//
//   - A ClientHello ALPN extension with an empty list, an empty protocol
//     name or trailing bytes is a decode_error.
//   - A ServerHello ALPN extension that does not hold exactly one non-empty
//     name is a decode_error.
//   - A ServerHello ALPN extension when the client offered none is an
//     unsupported_extension (like every unrequested extension).
//   - A server selecting a protocol the client did not offer is an
//     illegal_parameter (BoringSSL's choice; crypto/tls sends
//     unsupported_extension; RFC 7301 names no alert).
//   - A server with NextProtos whose list shares nothing with the client's
//     sends a fatal no_application_protocol (120), as RFC 7301 §3.2 says
//     and crypto/tls does. One exception, also crypto/tls's: a server
//     offering "h2" to a client offering "http/1.1" proceeds without ALPN
//     (so HTTP/1.1-only clients reach h2-capable servers).
//   - A server without NextProtos, or a client that sent no ALPN, gives no
//     ALPN extension and an empty NegotiatedProtocol.
//   - A client whose server did not answer ALPN proceeds with an empty
//     NegotiatedProtocol (the application decides; net/http falls back to
//     HTTP/1.1).

import (
	"fmt"
	"slices"
	"strings"

	"github.com/milagro-go/milagro/ciphersuite"
	"golang.org/x/crypto/cryptobyte"
)

// extALPN is the application_layer_protocol_negotiation extension (RFC 7301).
const extALPN uint16 = 16

// maxALPNProtocols bounds how many protocols a configuration may list (the
// 16-bit list length allows far fewer than 64 KiB names anyway).
const maxALPNProtocols = 64

// CheckNextProtos reports whether protos is a valid ALPN protocol list to
// send: every name 1..255 bytes, no duplicates, at most 64 names.
func CheckNextProtos(protos []string) error {
	if len(protos) > maxALPNProtocols {
		return fmt.Errorf("handshake: %d ALPN protocols exceed the limit of %d", len(protos), maxALPNProtocols)
	}
	for i, p := range protos {
		if len(p) == 0 || len(p) > 255 {
			return fmt.Errorf("handshake: ALPN protocol %q must be 1 to 255 bytes long", p)
		}
		for _, q := range protos[:i] {
			if p == q {
				return fmt.Errorf("handshake: ALPN protocol %q listed twice", p)
			}
		}
	}
	return nil
}

// addALPNExtension appends the ALPN extension carrying protos (nothing when
// protos is empty). The ServerHello passes its single selected protocol.
func addALPNExtension(exts *cryptobyte.Builder, protos []string) {
	if len(protos) == 0 {
		return
	}
	exts.AddUint16(extALPN)
	exts.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
			for _, p := range protos {
				b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) {
					b.AddBytes([]byte(p))
				})
			}
		})
	})
}

// parseALPNList parses the body of an ALPN extension: a non-empty
// ProtocolNameList of non-empty names, with nothing after it. The names are
// copied out of data.
func parseALPNList(data cryptobyte.String, hello string) ([]string, error) {
	var list cryptobyte.String
	if !data.ReadUint16LengthPrefixed(&list) || list.Empty() || !data.Empty() {
		return nil, ciphersuite.Errorf(ciphersuite.AlertDecodeError,
			"malformed %s ALPN extension (empty protocol list, bad length or trailing bytes)", hello)
	}
	var out []string
	for !list.Empty() {
		var name cryptobyte.String
		if !list.ReadUint8LengthPrefixed(&name) || name.Empty() {
			return nil, ciphersuite.Errorf(ciphersuite.AlertDecodeError,
				"malformed %s ALPN extension (empty or truncated protocol name)", hello)
		}
		out = append(out, string(name))
	}
	return out, nil
}

// parseALPNServer parses a ServerHello ALPN body: exactly one protocol.
func parseALPNServer(data cryptobyte.String) (string, error) {
	protos, err := parseALPNList(data, "ServerHello")
	if err != nil {
		return "", err
	}
	if len(protos) != 1 {
		return "", ciphersuite.Errorf(ciphersuite.AlertDecodeError,
			"ServerHello ALPN extension names %d protocols; exactly one is allowed", len(protos))
	}
	return protos[0], nil
}

// negotiateALPN chooses the connection's protocol: the first of the
// server's protocols that the client also offers. It chooses none ("", no
// error) when either side lists none, or when the client's HTTP/1.1 can
// still talk to an h2 server (see h1ClientOfH2Server); any other empty
// intersection is a no_application_protocol alert.
func negotiateALPN(serverProtos, clientProtos []string) (string, error) {
	if len(serverProtos) == 0 || len(clientProtos) == 0 {
		return "", nil
	}
	offered := func(p string) bool { return slices.Contains(clientProtos, p) }
	if i := slices.IndexFunc(serverProtos, offered); i >= 0 {
		return serverProtos[i], nil
	}
	if h1ClientOfH2Server(serverProtos, clientProtos) {
		return "", nil
	}
	return "", ciphersuite.Errorf(ciphersuite.AlertNoApplicationProtocol,
		"client offers application protocols %s, none of which this server speaks (it speaks %s)",
		quoteProtos(clientProtos), quoteProtos(serverProtos))
}

// h1ClientOfH2Server reports the one mismatch that is not refused: a server
// speaking h2 and a client offering http/1.1. An HTTP server that speaks h2
// also serves HTTP/1.1 without ALPN, so such clients keep working.
func h1ClientOfH2Server(serverProtos, clientProtos []string) bool {
	return slices.Contains(serverProtos, "h2") && slices.Contains(clientProtos, "http/1.1")
}

// checkServerALPN checks the server's selection against what the client offered.
func checkServerALPN(offered []string, selected string, sent bool) error {
	if !sent {
		return nil
	}
	for _, p := range offered {
		if p == selected {
			return nil
		}
	}
	return ciphersuite.Errorf(ciphersuite.AlertIllegalParameter,
		"server selected application protocol %s, which the client did not offer (it offered %s)",
		quoteProtos([]string{selected}), quoteProtos(offered))
}

// quoteProtos renders a protocol list for an error message, bounded.
func quoteProtos(protos []string) string {
	const max = 8
	var b strings.Builder
	b.WriteByte('[')
	for i, p := range protos {
		if i == max {
			b.WriteString(" ...")
			break
		}
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(quoteID(p))
	}
	b.WriteByte(']')
	return b.String()
}
