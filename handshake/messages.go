package handshake

import (
	"errors"
	"strconv"

	"github.com/milagro-go/milagro/ciphersuite"
	"golang.org/x/crypto/cryptobyte"
)

// Handshake message types (RFC 5246 §7.4).
const (
	typeHelloRequest      uint8 = 0
	typeClientHello       uint8 = 1
	typeServerHello       uint8 = 2
	typeServerKeyExchange uint8 = 12
	typeServerHelloDone   uint8 = 14
	typeClientKeyExchange uint8 = 16
	typeFinished          uint8 = 20
)

// Extension types.
const (
	extServerName           uint16 = 0
	extSupportedGroups      uint16 = 10
	extECPointFormats       uint16 = 11
	extExtendedMasterSecret uint16 = 23
	extRenegotiationInfo    uint16 = 0xff01
)

const (
	versionTLS12       uint16 = 0x0303
	scsvRenegotiation  uint16 = 0x00ff
	compressionNone    uint8  = 0
	pointUncompressed  uint8  = 0
	maxSessionIDLength        = 32
	// maxHandshakeMessage bounds any handshake message we accept (header
	// excluded). Every message of our flows is far smaller.
	maxHandshakeMessage = 64 << 10
	// maxHelloMessage bounds the hellos a little tighter.
	maxHelloMessage = 32 << 10
)

func msgTypeName(t uint8) string {
	switch t {
	case typeHelloRequest:
		return "HelloRequest"
	case typeClientHello:
		return "ClientHello"
	case typeServerHello:
		return "ServerHello"
	case 11:
		return "Certificate"
	case typeServerKeyExchange:
		return "ServerKeyExchange"
	case 13:
		return "CertificateRequest"
	case typeServerHelloDone:
		return "ServerHelloDone"
	case 15:
		return "CertificateVerify"
	case typeClientKeyExchange:
		return "ClientKeyExchange"
	case typeFinished:
		return "Finished"
	}
	return "handshake message type " + strconv.Itoa(int(t))
}

var errMarshal = errors.New("handshake: message too large to marshal")

// marshalMessage wraps body in a handshake header of type typ.
func marshalMessage(typ uint8, body []byte) []byte {
	out := make([]byte, 4+len(body))
	out[0] = typ
	out[1] = byte(len(body) >> 16)
	out[2] = byte(len(body) >> 8)
	out[3] = byte(len(body))
	copy(out[4:], body)
	return out
}

// splitMessage checks a whole handshake message (header included) and
// returns its type and body. The body aliases msg.
func splitMessage(msg []byte) (uint8, []byte, error) {
	if len(msg) < 4 {
		return 0, nil, ciphersuite.Errorf(ciphersuite.AlertDecodeError,
			"handshake message of %d bytes is shorter than its 4-byte header", len(msg))
	}
	typ := msg[0]
	n := int(msg[1])<<16 | int(msg[2])<<8 | int(msg[3])
	if n != len(msg)-4 {
		return 0, nil, ciphersuite.Errorf(ciphersuite.AlertDecodeError,
			"%s header says %d bytes but the message has %d", msgTypeName(typ), n, len(msg)-4)
	}
	if n > maxHandshakeMessage {
		return 0, nil, ciphersuite.Errorf(ciphersuite.AlertDecodeError,
			"%s of %d bytes exceeds the %d-byte limit", msgTypeName(typ), n, maxHandshakeMessage)
	}
	return typ, msg[4:], nil
}

// addCommonExtensions appends the extensions both hellos may carry, in the
// order both send them: ec_point_formats, extended_master_secret,
// renegotiation_info, then the extra ones.
func addCommonExtensions(exts *cryptobyte.Builder, points []uint8, hasPoints, ems, renegExt bool,
	reneg []byte, extra []ciphersuite.Extension) {
	if hasPoints || len(points) > 0 {
		exts.AddUint16(extECPointFormats)
		exts.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
			b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(points) })
		})
	}
	if ems {
		exts.AddUint16(extExtendedMasterSecret)
		exts.AddUint16(0)
	}
	if renegExt {
		exts.AddUint16(extRenegotiationInfo)
		exts.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
			b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(reneg) })
		})
	}
	for _, e := range extra {
		exts.AddUint16(e.Type)
		exts.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(e.Data) })
	}
}

func decodeErr(what string) error {
	return ciphersuite.Errorf(ciphersuite.AlertDecodeError, "malformed %s", what)
}

// clientHelloMsg is a parsed or to-be-sent ClientHello.
type clientHelloMsg struct {
	vers               uint16
	random             []byte
	sessionID          []byte
	cipherSuites       []uint16
	compressionMethods []uint8

	serverName          string
	supportedCurves     []ciphersuite.CurveID
	supportedPoints     []uint8
	hasPointFormats     bool
	ems                 bool
	secureRenegExt      bool   // renegotiation_info extension present
	secureRenegotiation []byte // its renegotiated_connection field
	// alpnProtocols is the ALPN protocol list (alpn.go).
	alpnProtocols []string
	// extra are extensions other than the ones above, in order (marshal
	// sends them; parse collects unknown ones here).
	extra []ciphersuite.Extension

	// raw holds the bodies of every extension received (parse only).
	raw map[uint16][]byte
}

func (m *clientHelloMsg) hasSuite(id uint16) bool {
	for _, c := range m.cipherSuites {
		if c == id {
			return true
		}
	}
	return false
}

// marshal returns the whole message (header included).
func (m *clientHelloMsg) marshal() ([]byte, error) {
	var exts cryptobyte.Builder
	if m.serverName != "" {
		exts.AddUint16(extServerName)
		exts.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
			b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
				b.AddUint8(0) // host_name
				b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
					b.AddBytes([]byte(m.serverName))
				})
			})
		})
	}
	if len(m.supportedCurves) > 0 {
		exts.AddUint16(extSupportedGroups)
		exts.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
			b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
				for _, c := range m.supportedCurves {
					b.AddUint16(uint16(c))
				}
			})
		})
	}
	addALPNExtension(&exts, m.alpnProtocols)
	addCommonExtensions(&exts, m.supportedPoints, m.hasPointFormats, m.ems,
		m.secureRenegExt, m.secureRenegotiation, m.extra)
	extBytes, err := exts.Bytes()
	if err != nil {
		return nil, err
	}

	var b cryptobyte.Builder
	b.AddUint8(typeClientHello)
	b.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) {
		b.AddUint16(m.vers)
		b.AddBytes(m.random)
		b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) {
			b.AddBytes(m.sessionID)
		})
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
			for _, c := range m.cipherSuites {
				b.AddUint16(c)
			}
		})
		b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) {
			b.AddBytes(m.compressionMethods)
		})
		if len(extBytes) > 0 {
			b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
				b.AddBytes(extBytes)
			})
		}
	})
	out, err := b.Bytes()
	if err != nil {
		return nil, errMarshal
	}
	if len(out)-4 > maxHelloMessage {
		return nil, errMarshal
	}
	return out, nil
}

// parseClientHello parses a ClientHello body (header excluded). It checks
// structure only; version and policy checks are the server's.
func parseClientHello(body []byte) (*clientHelloMsg, error) {
	if len(body) > maxHelloMessage {
		return nil, ciphersuite.Errorf(ciphersuite.AlertDecodeError,
			"ClientHello of %d bytes exceeds the %d-byte limit", len(body), maxHelloMessage)
	}
	m := &clientHelloMsg{}
	s := cryptobyte.String(body)
	var sessionID, suites, comp cryptobyte.String
	if !s.ReadUint16(&m.vers) || !s.ReadBytes(&m.random, randomLength) ||
		!s.ReadUint8LengthPrefixed(&sessionID) {
		return nil, decodeErr("ClientHello header")
	}
	if len(sessionID) > maxSessionIDLength {
		return nil, ciphersuite.Errorf(ciphersuite.AlertDecodeError,
			"ClientHello session_id of %d bytes exceeds 32", len(sessionID))
	}
	m.sessionID = sessionID
	if !s.ReadUint16LengthPrefixed(&suites) || len(suites) == 0 || len(suites)%2 != 0 {
		return nil, decodeErr("ClientHello cipher_suites (empty or odd length)")
	}
	m.cipherSuites = make([]uint16, 0, len(suites)/2)
	for !suites.Empty() {
		var c uint16
		suites.ReadUint16(&c)
		m.cipherSuites = append(m.cipherSuites, c)
	}
	if !s.ReadUint8LengthPrefixed(&comp) || len(comp) == 0 {
		return nil, decodeErr("ClientHello compression_methods")
	}
	m.compressionMethods = comp
	if s.Empty() {
		return m, nil // no extensions block
	}
	var exts cryptobyte.String
	if !s.ReadUint16LengthPrefixed(&exts) || !s.Empty() {
		return nil, decodeErr("ClientHello extensions block (or trailing bytes)")
	}
	m.raw = make(map[uint16][]byte)
	for !exts.Empty() {
		var typ uint16
		var data cryptobyte.String
		if !exts.ReadUint16(&typ) || !exts.ReadUint16LengthPrefixed(&data) {
			return nil, decodeErr("ClientHello extension")
		}
		if _, dup := m.raw[typ]; dup {
			return nil, ciphersuite.Errorf(ciphersuite.AlertIllegalParameter,
				"ClientHello carries extension %d twice", typ)
		}
		m.raw[typ] = data
		if err := m.parseExtension(typ, data); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *clientHelloMsg) parseExtension(typ uint16, data cryptobyte.String) error {
	switch typ {
	case extServerName:
		var list cryptobyte.String
		if !data.ReadUint16LengthPrefixed(&list) || list.Empty() || !data.Empty() {
			return decodeErr("server_name extension")
		}
		for !list.Empty() {
			var nameType uint8
			var name cryptobyte.String
			if !list.ReadUint8(&nameType) || !list.ReadUint16LengthPrefixed(&name) || len(name) == 0 {
				return decodeErr("server_name extension entry")
			}
			if nameType != 0 {
				continue
			}
			if m.serverName != "" {
				return ciphersuite.Errorf(ciphersuite.AlertDecodeError,
					"server_name extension lists more than one host_name")
			}
			if !validHostName(name) {
				return ciphersuite.Errorf(ciphersuite.AlertDecodeError,
					"server_name host_name %q is not a valid host name", string(name))
			}
			m.serverName = string(name)
		}
	case extSupportedGroups:
		var list cryptobyte.String
		if !data.ReadUint16LengthPrefixed(&list) || list.Empty() || len(list)%2 != 0 || !data.Empty() {
			return decodeErr("supported_groups extension")
		}
		m.supportedCurves = make([]ciphersuite.CurveID, 0, len(list)/2)
		for !list.Empty() {
			var c uint16
			list.ReadUint16(&c)
			m.supportedCurves = append(m.supportedCurves, ciphersuite.CurveID(c))
		}
	case extECPointFormats:
		var list cryptobyte.String
		if !data.ReadUint8LengthPrefixed(&list) || list.Empty() || !data.Empty() {
			return decodeErr("ec_point_formats extension")
		}
		m.hasPointFormats = true
		m.supportedPoints = list
	case extExtendedMasterSecret:
		if !data.Empty() {
			return decodeErr("extended_master_secret extension (must be empty)")
		}
		m.ems = true
	case extRenegotiationInfo:
		var rc cryptobyte.String
		if !data.ReadUint8LengthPrefixed(&rc) || !data.Empty() {
			return decodeErr("renegotiation_info extension")
		}
		m.secureRenegExt = true
		m.secureRenegotiation = rc
	case extALPN:
		protos, err := parseALPNList(data, "ClientHello")
		if err != nil {
			return err
		}
		m.alpnProtocols = protos
	default:
		m.extra = append(m.extra, ciphersuite.Extension{Type: typ, Data: data})
	}
	return nil
}

// validHostName accepts printable ASCII without a trailing dot, up to 255 bytes.
func validHostName(b []byte) bool {
	if len(b) == 0 || len(b) > 255 || b[len(b)-1] == '.' {
		return false
	}
	for _, c := range b {
		if c <= 0x20 || c >= 0x7f {
			return false
		}
	}
	return true
}

// serverHelloMsg is a parsed or to-be-sent ServerHello.
type serverHelloMsg struct {
	vers              uint16
	random            []byte
	sessionID         []byte
	cipherSuite       uint16
	compressionMethod uint8

	ems                 bool
	secureRenegExt      bool
	secureRenegotiation []byte
	supportedPoints     []uint8
	hasPointFormats     bool
	serverNameAck       bool
	alpnProtocol        string // selected ALPN protocol ("" when none; alpn.go)
	extra               []ciphersuite.Extension
	// extTypes lists every extension received, in order (parse only).
	extTypes []uint16
}

func (m *serverHelloMsg) marshal() ([]byte, error) {
	var exts cryptobyte.Builder
	if m.serverNameAck {
		exts.AddUint16(extServerName)
		exts.AddUint16(0)
	}
	if m.alpnProtocol != "" {
		addALPNExtension(&exts, []string{m.alpnProtocol})
	}
	addCommonExtensions(&exts, m.supportedPoints, m.hasPointFormats, m.ems,
		m.secureRenegExt, m.secureRenegotiation, m.extra)
	extBytes, err := exts.Bytes()
	if err != nil {
		return nil, err
	}
	var b cryptobyte.Builder
	b.AddUint8(typeServerHello)
	b.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) {
		b.AddUint16(m.vers)
		b.AddBytes(m.random)
		b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) {
			b.AddBytes(m.sessionID)
		})
		b.AddUint16(m.cipherSuite)
		b.AddUint8(m.compressionMethod)
		if len(extBytes) > 0 {
			b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
				b.AddBytes(extBytes)
			})
		}
	})
	out, err := b.Bytes()
	if err != nil || len(out)-4 > maxHelloMessage {
		return nil, errMarshal
	}
	return out, nil
}

// parseServerHello parses a ServerHello body (header excluded).
func parseServerHello(body []byte) (*serverHelloMsg, error) {
	if len(body) > maxHelloMessage {
		return nil, ciphersuite.Errorf(ciphersuite.AlertDecodeError,
			"ServerHello of %d bytes exceeds the %d-byte limit", len(body), maxHelloMessage)
	}
	m := &serverHelloMsg{}
	s := cryptobyte.String(body)
	var sessionID cryptobyte.String
	if !s.ReadUint16(&m.vers) || !s.ReadBytes(&m.random, randomLength) ||
		!s.ReadUint8LengthPrefixed(&sessionID) || !s.ReadUint16(&m.cipherSuite) ||
		!s.ReadUint8(&m.compressionMethod) {
		return nil, decodeErr("ServerHello")
	}
	if len(sessionID) > maxSessionIDLength {
		return nil, ciphersuite.Errorf(ciphersuite.AlertDecodeError,
			"ServerHello session_id of %d bytes exceeds 32", len(sessionID))
	}
	m.sessionID = sessionID
	if s.Empty() {
		return m, nil
	}
	var exts cryptobyte.String
	if !s.ReadUint16LengthPrefixed(&exts) || !s.Empty() {
		return nil, decodeErr("ServerHello extensions block (or trailing bytes)")
	}
	for !exts.Empty() {
		var typ uint16
		var data cryptobyte.String
		if !exts.ReadUint16(&typ) || !exts.ReadUint16LengthPrefixed(&data) {
			return nil, decodeErr("ServerHello extension")
		}
		for _, t := range m.extTypes {
			if t == typ {
				return nil, ciphersuite.Errorf(ciphersuite.AlertIllegalParameter,
					"ServerHello carries extension %d twice", typ)
			}
		}
		if len(m.extTypes) >= 64 {
			return nil, ciphersuite.Errorf(ciphersuite.AlertDecodeError,
				"ServerHello carries more than 64 extensions")
		}
		m.extTypes = append(m.extTypes, typ)
		switch typ {
		case extServerName:
			if !data.Empty() {
				return nil, decodeErr("ServerHello server_name acknowledgement (must be empty)")
			}
			m.serverNameAck = true
		case extECPointFormats:
			var list cryptobyte.String
			if !data.ReadUint8LengthPrefixed(&list) || list.Empty() || !data.Empty() {
				return nil, decodeErr("ServerHello ec_point_formats extension")
			}
			m.hasPointFormats = true
			m.supportedPoints = list
		case extExtendedMasterSecret:
			if !data.Empty() {
				return nil, decodeErr("ServerHello extended_master_secret extension (must be empty)")
			}
			m.ems = true
		case extRenegotiationInfo:
			var rc cryptobyte.String
			if !data.ReadUint8LengthPrefixed(&rc) || !data.Empty() {
				return nil, decodeErr("ServerHello renegotiation_info extension")
			}
			m.secureRenegExt = true
			m.secureRenegotiation = rc
		case extALPN:
			p, err := parseALPNServer(data)
			if err != nil {
				return nil, err
			}
			m.alpnProtocol = p
		default:
			m.extra = append(m.extra, ciphersuite.Extension{Type: typ, Data: data})
		}
	}
	return m, nil
}

// parseEmpty checks the body of ServerHelloDone or HelloRequest.
func parseEmpty(typ uint8, body []byte) error {
	if len(body) != 0 {
		return ciphersuite.Errorf(ciphersuite.AlertDecodeError,
			"%s must be empty but has %d bytes", msgTypeName(typ), len(body))
	}
	return nil
}

// parseFinished checks a Finished body and returns verify_data.
func parseFinished(body []byte) ([]byte, error) {
	if len(body) != finishedVerifyLen {
		return nil, ciphersuite.Errorf(ciphersuite.AlertDecodeError,
			"Finished verify_data is %d bytes, want %d", len(body), finishedVerifyLen)
	}
	return body, nil
}

// parseKeyExchange bounds the opaque body of ServerKeyExchange or
// ClientKeyExchange, which the key exchange parses.
func parseKeyExchange(typ uint8, body []byte) ([]byte, error) {
	if len(body) == 0 {
		return nil, ciphersuite.Errorf(ciphersuite.AlertDecodeError, "%s is empty", msgTypeName(typ))
	}
	if len(body) > maxHandshakeMessage {
		return nil, ciphersuite.Errorf(ciphersuite.AlertDecodeError,
			"%s of %d bytes exceeds the %d-byte limit", msgTypeName(typ), len(body), maxHandshakeMessage)
	}
	return body, nil
}
