package ciphersuite

import (
	"crypto/mlkem"
	"fmt"
	"io"
	"strings"

	"golang.org/x/crypto/cryptobyte"
)

// The post-quantum hybrid of the Milagro suites (docs/protocol.md §5b): an
// ML-KEM-768 shared secret mixed into the Milagro pre-master secret, so a
// session recorded today stays confidential if pairings later fall to a
// quantum computer. Authentication stays pairing-based.
//
//	ClientHello milagro_pq (0xFF4E)  encapsulation_key<1..2^16-1>  (ek, 1184 bytes)
//	ServerHello milagro_pq (0xFF4E)  ciphertext<1..2^16-1>         (ct, 1088 bytes)
//
// Alerts: a length other than 1184 / 1088 or a malformed vector is
// decode_error; an ek that fails the FIPS 203 §7.2 modulus check is
// illegal_parameter; a `require` side whose peer does not take part answers
// insufficient_security; a ServerHello milagro_pq that was not asked for or
// that comes beside a non-Milagro suite is unsupported_extension. A garbled
// ct gives (by ML-KEM's implicit rejection) a different secret, which the
// Finished check catches as bad_record_mac.

// ExtMilagroPQ is the milagro_pq hello extension.
const ExtMilagroPQ uint16 = 0xFF4E

// Sizes of the ML-KEM-768 values milagro_pq carries.
const (
	pqEncapsulationKeySize = mlkem.EncapsulationKeySize768 // 1184
	pqCiphertextSize       = mlkem.CiphertextSize768       // 1088
)

// PQPolicy says whether an endpoint uses the post-quantum hybrid. The zero
// value is PQPrefer.
type PQPolicy uint8

const (
	// PQPrefer (the default) offers the hybrid and uses it when the peer
	// does; with a peer that does not, the handshake is the classic one.
	PQPrefer PQPolicy = iota
	// PQOff never offers it and ignores a peer's offer.
	PQOff
	// PQRequire refuses any session that is not hybrid: a Milagro peer
	// without the extension gets insufficient_security, PSK suites (which
	// cannot be hybrid) are not offered or accepted, and a session that
	// was not hybrid is never resumed.
	PQRequire
)

func (p PQPolicy) String() string {
	switch p {
	case PQPrefer:
		return "prefer"
	case PQOff:
		return "off"
	case PQRequire:
		return "require"
	}
	return fmt.Sprintf("PQPolicy(%d)", uint8(p))
}

// ParsePQPolicy parses "off", "prefer" or "require" ("" is prefer).
func ParsePQPolicy(s string) (PQPolicy, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "prefer":
		return PQPrefer, nil
	case "off":
		return PQOff, nil
	case "require":
		return PQRequire, nil
	}
	return PQPrefer, fmt.Errorf("post-quantum policy %q: want off, prefer or require", s)
}

// ServerHelloExtender is implemented by server key exchanges that put an
// extension in the ServerHello of a full handshake (milagro_pq).
type ServerHelloExtender interface {
	ServerHelloExtensions() []Extension
}

// ServerHelloProcessor is implemented by client key exchanges that read
// the ServerHello of a full handshake: exts are the extensions the
// handshake itself does not handle (each answers one the client offered).
// It runs before the ServerKeyExchange is processed.
type ServerHelloProcessor interface {
	ProcessServerHello(s *Suite, exts []Extension) error
}

// PostQuantum is implemented by key exchanges that can be hybrid; it
// reports whether the ML-KEM secret went into the pre-master secret.
type PostQuantum interface {
	PostQuantum() bool
}

// pqEncapsulate runs ML-KEM-768 encapsulation. The randomness comes from
// crypto/rand (FIPS 203 wants an approved generator; crypto/tls does the
// same); known-answer tests replace it with the derandomized form.
var pqEncapsulate = func(ek *mlkem.EncapsulationKey768) (ss, ct []byte) { return ek.Encapsulate() }

// parsePQVector reads opaque value<1..2^16-1> holding exactly want bytes.
func parsePQVector(data []byte, want int, where, what string) ([]byte, error) {
	in := cryptobyte.String(data)
	var v cryptobyte.String
	if !in.ReadUint16LengthPrefixed(&v) || !in.Empty() {
		return nil, Errorf(AlertDecodeError, "ciphersuite: malformed %s (%d bytes: a length-prefixed %s and nothing else)", where, len(data), what)
	}
	if len(v) != want {
		return nil, Errorf(AlertDecodeError, "ciphersuite: %s in the %s is %d bytes, want %d (ML-KEM-768)", what, where, len(v), want)
	}
	return v, nil
}

// parsePQClientHello parses the ClientHello milagro_pq body and returns
// the 1184-byte encapsulation key (not yet checked: see checkPQKey).
func parsePQClientHello(data []byte) ([]byte, error) {
	return parsePQVector(data, pqEncapsulationKeySize, "ClientHello milagro_pq extension", "encapsulation key")
}

// parsePQServerHello parses the ServerHello milagro_pq body and returns the
// 1088-byte ciphertext.
func parsePQServerHello(data []byte) ([]byte, error) {
	return parsePQVector(data, pqCiphertextSize, "ServerHello milagro_pq extension", "ciphertext")
}

func marshalPQVector(v []byte) []byte {
	out := make([]byte, 2+len(v))
	out[0], out[1] = byte(len(v)>>8), byte(len(v))
	copy(out[2:], v)
	return out
}

// ---------------------------------------------------------------- client

// pqClient is the client's ML-KEM-768 key pair for one handshake: made
// fresh for the ClientHello, used once, then dropped.
type pqClient struct {
	dk *mlkem.DecapsulationKey768
}

// newPQClient makes the key pair from a 64-byte seed read from rand (as
// crypto/tls does, so Config.Rand drives it) and the ClientHello extension.
func newPQClient(rand io.Reader) (*pqClient, Extension, error) {
	seed := make([]byte, mlkem.SeedSize)
	defer clear(seed)
	if _, err := io.ReadFull(rand, seed); err != nil {
		return nil, Extension{}, Errorf(AlertInternalError, "ciphersuite: ML-KEM-768 key generation: reading randomness: %v", err)
	}
	dk, err := mlkem.NewDecapsulationKey768(seed)
	if err != nil {
		return nil, Extension{}, Errorf(AlertInternalError, "ciphersuite: ML-KEM-768 key generation: %v", err)
	}
	return &pqClient{dk: dk}, Extension{Type: ExtMilagroPQ, Data: marshalPQVector(dk.EncapsulationKey().Bytes())}, nil
}

// decapsulate parses the server's milagro_pq and returns ss. A ciphertext
// of the right length never fails: a garbled one yields a different
// secret (implicit rejection), caught by Finished.
func (p *pqClient) decapsulate(data []byte) ([]byte, error) {
	ct, err := parsePQServerHello(data)
	if err != nil {
		return nil, err
	}
	ss, err := p.dk.Decapsulate(ct)
	p.dk = nil
	if err != nil {
		return nil, Errorf(AlertDecodeError, "ciphersuite: milagro_pq ciphertext: %v", err)
	}
	return ss, nil
}

// ---------------------------------------------------------------- server

// pqServerOffer is what the server read of a ClientHello's milagro_pq:
// the raw key after the framing check (decode_error first, spec §6), then
// the parsed key after the modulus check (illegal_parameter).
type pqServerOffer struct {
	raw []byte
	ek  *mlkem.EncapsulationKey768
}

// pqDecode is the server's first check, with the other decode_error
// checks: nil when the policy is off or the client sent no milagro_pq.
func pqDecode(cfg *ServerConfig, hello *ClientHelloInfo) (*pqServerOffer, error) {
	if cfg.PQ == PQOff {
		return nil, nil
	}
	data, ok := hello.Extensions[ExtMilagroPQ]
	if !ok {
		return nil, nil
	}
	raw, err := parsePQClientHello(data)
	if err != nil {
		return nil, err
	}
	return &pqServerOffer{raw: raw}, nil
}

// pqValidate is the server's second check, after the other
// illegal_parameter checks: the FIPS 203 modulus check on ek, then the
// policy (insufficient_security when the server requires the hybrid and
// the client did not offer it). Both come before any pairing.
func pqValidate(cfg *ServerConfig, o *pqServerOffer, s *Suite) error {
	if o == nil {
		if cfg.PQ == PQRequire {
			return Errorf(AlertInsufficientSecurity, "ciphersuite: %s: the client did not offer the post-quantum hybrid (milagro_pq), which this server requires", s)
		}
		return nil
	}
	ek, err := mlkem.NewEncapsulationKey768(o.raw)
	if err != nil {
		return Errorf(AlertIllegalParameter, "ciphersuite: the client's ML-KEM-768 encapsulation key in milagro_pq is invalid (FIPS 203 modulus check): %v", err)
	}
	o.ek = ek
	return nil
}

// pqServer is the server's half of the hybrid for one handshake.
type pqServer struct {
	ct, ss []byte
}

// encapsulate runs Encaps(ek) for a validated offer (nil: no hybrid).
func (o *pqServerOffer) encapsulate() *pqServer {
	if o == nil || o.ek == nil {
		return nil
	}
	ss, ct := pqEncapsulate(o.ek)
	return &pqServer{ct: ct, ss: ss}
}

func (p *pqServer) extensions() []Extension {
	if p == nil {
		return nil
	}
	return []Extension{{Type: ExtMilagroPQ, Data: marshalPQVector(p.ct)}}
}

// secret returns ss (nil without the hybrid).
func (p *pqServer) secret() []byte {
	if p == nil {
		return nil
	}
	return p.ss
}
