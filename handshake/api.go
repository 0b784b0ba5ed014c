package handshake

import (
	"io"

	"github.com/milagro-go/milagro/ciphersuite"
)

// RecordLayer is what the handshake needs from the record layer (package
// mtls owns the real one; tests use an in-memory one). Errors it returns are
// final: the record layer has already sent or received the alert.
type RecordLayer interface {
	// ReadHandshake returns the next whole handshake message, 4-byte header
	// included, reassembled across records. A record of another type where a
	// handshake message is expected is an unexpected_message error,
	// except that ReadHandshake never consumes a ChangeCipherSpec.
	// HelloRequest messages are dropped by the record layer on the client
	// (they are never hashed).
	ReadHandshake() ([]byte, error)
	// WriteHandshake queues one whole handshake message (header included)
	// for the current flight.
	WriteHandshake(msg []byte) error
	// ReadChangeCipherSpec consumes the peer's ChangeCipherSpec, which must
	// be the next record, with no partial handshake message buffered, and
	// switches the read direction to next (sequence number reset to 0).
	ReadChangeCipherSpec(next ciphersuite.RecordCipher) error
	// WriteChangeCipherSpec queues a ChangeCipherSpec and switches the
	// write direction to next for everything queued after it.
	WriteChangeCipherSpec(next ciphersuite.RecordCipher) error
	// Flush sends the queued flight.
	Flush() error
	// SetVersion fixes the record version once ServerHello is sent or
	// received (0x0303 for every record after that).
	SetVersion(v uint16)
}

// ClientConfig configures a client handshake.
type ClientConfig struct {
	Rand   io.Reader                 // never nil
	Suites []*ciphersuite.Suite      // offered, in preference order
	KX     *ciphersuite.ClientConfig // key-exchange credentials
	// ServerName goes into server_name when non-empty and not an IP.
	ServerName string
	// InsecureAllowNoEMS allows a PSK suite without extended_master_secret.
	InsecureAllowNoEMS bool
	// KeyLog, if set, receives an NSS key-log line ("CLIENT_RANDOM ...").
	KeyLog io.Writer
	// Session, if set, is offered for resumption; RequestTicket asks the
	// server for a session ticket (resume_client.go).
	Session       *ClientSession
	RequestTicket bool
	// ResumptionOnly tells the handshake that the caller can reconnect
	// (a dialer, not a caller's own connection). When Session is a Milagro
	// CS session that may be offered, the ClientHello then carries only
	// that session's suite and ticket, with no key-exchange offer (no
	// milagro_cs proof, no milagro_pq key pair): resuming costs the client
	// no scalar multiplication. A server that does not resume such a hello
	// has no suite it can choose and answers handshake_failure before its
	// ServerHello; Client then returns an error matching
	// ErrResumptionRefused, and the caller drops the session and reconnects
	// once with a full offer (resume_client.go, docs/protocol.md §5c).
	ResumptionOnly bool
	// NextProtos are the ALPN protocols offered, in preference order
	// (RFC 7301; see alpn.go). Empty: no ALPN extension.
	NextProtos []string
}

// ServerConfig configures a server handshake.
type ServerConfig struct {
	Rand   io.Reader                 // never nil
	Suites []*ciphersuite.Suite      // accepted, in the server's preference order
	KX     *ciphersuite.ServerConfig // key-exchange credentials
	// InsecureAllowNoEMS allows a PSK suite without extended_master_secret.
	InsecureAllowNoEMS bool
	KeyLog             io.Writer
	// GetConfigForClient, if set, is called after the ClientHello is parsed
	// and may return a different configuration for this connection (nil: keep).
	GetConfigForClient func(*ciphersuite.ClientHelloInfo) (*ServerConfig, error)
	// Tickets, if set, enables session tickets (resume_server.go).
	Tickets *ServerTickets
	// NextProtos are the ALPN protocols accepted, in the server's
	// preference order (alpn.go). Empty: ALPN is ignored.
	NextProtos []string
}

// State is the result of a successful handshake.
type State struct {
	Version              uint16
	Suite                *ciphersuite.Suite
	ExtendedMasterSecret bool
	SecureRenegotiation  bool
	ServerName           string
	// NegotiatedProtocol is the ALPN protocol agreed on ("" when none).
	NegotiatedProtocol string
	// PeerIdentity is the peer's authenticated identity (server: the
	// client's PSK / CS / P2P identity; client: the P2P server identity or
	// the CS server identity id_S — never a PSK hint). LocalIdentity is the
	// one this side presented.
	PeerIdentity  string
	LocalIdentity string
	// PSKIdentityHint is the psk_identity_hint the server sent (client
	// side, PSK suites): unauthenticated, for choosing a key only.
	PSKIdentityHint string
	// PermitDay is the Milagro CS time permit day used (0: none).
	PermitDay uint64
	// PostQuantum reports that the session's keys include an ML-KEM-768
	// secret (the hybrid of docs/protocol.md §5b); a resumed session
	// reports its full handshake's.
	PostQuantum  bool
	ClientRandom [32]byte
	ServerRandom [32]byte
	// MasterSecret is exposed for tests of forward secrecy and key logging;
	// callers must not log it.
	MasterSecret []byte
	// ClientFinished and ServerFinished are the verify_data of each side
	// (kept for RFC 5746 renegotiation_info and tls-unique).
	ClientFinished []byte
	ServerFinished []byte
	// DidResume is set when the handshake resumed a session (abbreviated
	// handshake; the first Finished was the server's). Session (client) is
	// a session the server issued a ticket for, to offer next time.
	DidResume bool
	Session   *ClientSession
}
