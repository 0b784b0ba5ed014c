package ciphersuite

import (
	"io"
	"time"
)

// This file is the key-exchange seam (the shape of crypto/tls's keyAgreement).
// The handshake package drives it; it knows nothing of sockets or of the
// handshake message framing: it sees and returns message bodies only.

// CurveID is a TLS named group (supported_groups).
type CurveID uint16

// Named groups for ECDHE_PSK.
const (
	X25519 CurveID = 29
	P256   CurveID = 23
)

// Extension is a raw hello extension.
type Extension struct {
	Type uint16
	Data []byte
}

// ExtMilagroCS is the milagro_cs ClientHello extension (docs/protocol.md §3.3).
const ExtMilagroCS uint16 = 0xFF4D

// ExtMilagroCSResume is the milagro_cs_resume ClientHello extension of a
// resumption-only hello (docs/protocol.md §5c): the server identity id_S
// the client asks for, beside a Milagro CS session ticket, in place of the
// milagro_cs proof.
const ExtMilagroCSResume uint16 = 0xFF4F

// ClientConfig is what the client side of every key exchange needs. Fields
// for a kind of key exchange left nil make the suites of that kind unusable.
type ClientConfig struct {
	Rand io.Reader        // never nil when handed to NewClientKX
	Time func() time.Time // never nil when handed to NewClientKX

	// PSK returns the identity and key to use, given the server's
	// psk_identity_hint (nil when the server sent none).
	PSK func(hint []byte) (identity, key []byte, err error)
	// Curves offered in supported_groups, in preference order (ECDHE_PSK).
	Curves []CurveID

	// Milagro credentials (see milagro.go). Nil: those suites are unusable.
	CS  *CSClient
	P2P *P2PClient

	// PQ is the post-quantum hybrid policy for the Milagro suites (pq.go;
	// zero: PQPrefer). PQRequire also makes the PSK suites unusable.
	PQ PQPolicy
}

// ServerConfig is what the server side of every key exchange needs.
type ServerConfig struct {
	Rand io.Reader
	Time func() time.Time

	// PSK returns the key for a client's psk_identity; an unknown identity
	// must return an error (the handshake answers unknown_psk_identity).
	PSK func(identity []byte) (key []byte, err error)
	// Hint is the psk_identity_hint; plain PSK sends a ServerKeyExchange only
	// when it is non-empty; ECDHE_PSK always sends it (possibly empty).
	Hint []byte
	// Curves the server accepts, in preference order.
	Curves []CurveID

	// VerifyPeerIdentity, if set, is called with every authenticated peer
	// identity (PSK identity, CS or P2P client identity); an error denies
	// the peer with access_denied (unknown_psk_identity for PSK).
	VerifyPeerIdentity func(id string) error

	CS  *CSServer
	P2P *P2PServer

	// PQ is the post-quantum hybrid policy for the Milagro suites (pq.go;
	// zero: PQPrefer). Under PQRequire the handshake accepts no PSK suite.
	PQ PQPolicy
	// TicketScope, if set, names the configuration that issues sessions;
	// it is bound into every session ticket (see SessionBinding).
	TicketScope []byte
}

// ClientHelloInfo is what a server sees of a ClientHello: its key exchange
// (NewServerKX, Supports) and a GetConfigForClient callback (which gets a
// copy, without Extensions).
type ClientHelloInfo struct {
	// ServerName is the server_name (SNI) the client asked for ("" if none).
	ServerName   string
	CipherSuites []uint16
	// Curves are the client's supported_groups, PointFormats its
	// ec_point_formats.
	Curves       []CurveID
	PointFormats []uint8
	// SupportedProtos are the client's ALPN protocols (nil if it sent none).
	SupportedProtos []string
	// Extensions holds the raw bodies of extensions a key exchange needs
	// (ExtMilagroCS, ExtMilagroPQ); the handshake has already rejected
	// duplicates.
	Extensions map[uint16][]byte
}

// ClientKX is the client side of the key exchange for one handshake. It is
// created before the ClientHello for the set of offered suites, because a
// Milagro CS offer puts its proof in a ClientHello extension.
type ClientKX interface {
	// HelloExtensions returns extra ClientHello extensions for the offered
	// suites (milagro_cs when a CS suite is offered). Called once.
	HelloExtensions() ([]Extension, error)
	// ProcessServerKeyExchange is given the body of the server's
	// ServerKeyExchange for the chosen suite s, or nil when the server sent
	// none (allowed only when s.ServerKeyExchangeOptional()).
	ProcessServerKeyExchange(s *Suite, body []byte) error
	// GenerateClientKeyExchange returns the ClientKeyExchange body and the
	// pre-master secret.
	GenerateClientKeyExchange(s *Suite) (body, preMaster []byte, err error)
	// PeerIdentity is the server's authenticated identity when the suite
	// provides one (P2P id_S, CS id_S), after success; never a PSK hint.
	PeerIdentity() string
	// LocalIdentity is the identity this client presented (PSK identity, CS or P2P id).
	LocalIdentity() string
}

// ServerKX is the server side of the key exchange for one handshake.
type ServerKX interface {
	// GenerateServerKeyExchange returns the ServerKeyExchange body, or nil
	// when none is to be sent.
	GenerateServerKeyExchange() ([]byte, error)
	// ProcessClientKeyExchange parses the ClientKeyExchange body and returns
	// the pre-master secret.
	ProcessClientKeyExchange(body []byte) (preMaster []byte, err error)
	// PeerIdentity is the client's authenticated identity after success
	// (PSK identity, CS or P2P client identity).
	PeerIdentity() string
}

// RecordCipher protects the records of one direction of one connection
// (AEAD with the suite's nonce construction). It keeps scratch buffers, so a
// RecordCipher is used by one goroutine at a time, and Seal/Open allocate
// nothing when dst has room.
type RecordCipher interface {
	// ExplicitNonceLen is the per-record explicit nonce sent before the
	// ciphertext (8 for AES-GCM, 0 for ChaCha20-Poly1305).
	ExplicitNonceLen() int
	// Overhead is ExplicitNonceLen plus the tag length.
	Overhead() int
	// Seal appends explicit_nonce ‖ ciphertext ‖ tag for one record to dst.
	// AAD = seq ‖ typ ‖ version ‖ uint16(len(plaintext)).
	Seal(dst []byte, seq uint64, typ uint8, version uint16, plaintext []byte) []byte
	// Open authenticates and decrypts a record fragment (explicit nonce,
	// ciphertext and tag) and appends the plaintext to dst. Any failure is
	// reported as an error for which the caller sends bad_record_mac.
	Open(dst []byte, seq uint64, typ uint8, version uint16, fragment []byte) ([]byte, error)
}
