package mtls

import (
	"io"
	"log/slog"
	"time"

	"github.com/milagro-go/milagro/ciphersuite"
	"github.com/milagro-go/milagro/pairing"
)

// Alert is a TLS alert description.
type Alert = ciphersuite.Alert

// AlertError is a connection failure that carried a TLS alert, sent or received.
type AlertError = ciphersuite.AlertError

// Config configures a client or server. It must not be modified after it is
// passed to a function of this package.
type Config struct {
	// Rand is the source of all randomness; nil means crypto/rand.Reader.
	Rand io.Reader
	// Time returns the current time; nil means time.Now.
	Time func() time.Time

	// CipherSuites lists the enabled suites by code point, in preference
	// order; nil means every suite for which credentials are configured.
	CipherSuites []uint16
	// CurvePreferences for ECDHE_PSK; nil means X25519, P-256.
	CurvePreferences []ciphersuite.CurveID

	// Client PSK: PSKIdentity and PSK, or GetClientPSK (which wins).
	PSKIdentity  string
	PSK          []byte
	GetClientPSK func(hint []byte) (identity string, psk []byte, err error)
	// Server PSK: the key for a client identity; an unknown identity returns an error.
	GetServerPSK    func(identity string) ([]byte, error)
	PSKIdentityHint string

	// ServerName is sent in server_name by the client.
	ServerName string
	// NextProtos is the list of supported application protocols for ALPN
	// (RFC 7301), in preference order (a server's order wins), e.g.
	// []string{"h2", "http/1.1"}. nil: no ALPN. A server with NextProtos
	// refuses a client whose ALPN list shares none of them with a fatal
	// no_application_protocol alert (except an "http/1.1" client of an "h2"
	// server, which proceeds without ALPN, as in crypto/tls); a client whose
	// server ignores ALPN proceeds with NegotiatedProtocol "".
	NextProtos []string
	// GetConfigForClient (server) may choose a Config per ClientHello.
	GetConfigForClient func(*ClientHelloInfo) (*Config, error)
	// VerifyPeerIdentity (server) is called with the client's authenticated
	// identity; an error denies it with access_denied.
	VerifyPeerIdentity func(id string) error

	// Milagro CS, client: CSKey, or CSToken with the PIN from GetPIN (the
	// second factor). CSPermit is the time permit for today, if any.
	// The credentials are prepared once and shared by every handshake: a
	// CSKey (or any server or P2P key) by every Config holding the same
	// key object, a CSToken's PIN by this Config and its Clones (made with
	// Clone, before or after first use; not by copying the struct). GetPIN
	// is called once, when the first handshake needs it; if it fails, the
	// next handshake calls it again. Another Config with the same CSToken
	// asks its own GetPIN; to retry a wrong PIN, use a new Config, not a
	// Clone (milagro_config.go).
	CSKey    *pairing.CSClientKey
	CSToken  *pairing.PINToken
	GetPIN   func() (uint32, error)
	CSPermit *pairing.TimePermit
	// Milagro CS, server: the server secret s·Q, the accepted clock skew
	// (0 means pairing.DefaultSkew, 30 s) and whether time permits are required.
	CSServerSecret *pairing.CSServerSecret
	ClockSkew      time.Duration
	RequirePermits bool
	// Milagro P2P, either side: this peer's keys (its identity is P2PKey.ID()).
	// A P2P client must name the server identity it expects.
	P2PKey                 *pairing.P2PKey
	ExpectedServerIdentity string

	// HandshakeTimeout bounds Handshake when no deadline/context is given; 0 means none.
	HandshakeTimeout time.Duration
	// KeyLogWriter receives NSS key-log lines for Wireshark. Insecure; debugging only.
	KeyLogWriter io.Writer
	// InsecureAllowNoEMS allows PSK suites without the extended master secret.
	InsecureAllowNoEMS bool
	// Logger receives debug logs; nil means none.
	Logger *slog.Logger

	// milagro holds what this Config and its Clones share of the prepared
	// Milagro credentials (the PIN); set on first use or by Clone, guarded
	// by milagroHolderMu (milagro_config.go).
	milagro *milagroPrepared
}

// ClientHelloInfo is what GetConfigForClient sees of a ClientHello.
type ClientHelloInfo struct {
	ServerName   string
	CipherSuites []uint16
	// Curves are the client's supported_groups.
	Curves []ciphersuite.CurveID
	// SupportedProtos are the client's ALPN protocols (nil if it sent none).
	SupportedProtos []string
}

// ConnectionState describes an established connection.
type ConnectionState struct {
	Version              uint16
	HandshakeComplete    bool
	CipherSuite          uint16
	CipherSuiteName      string
	KeyExchange          ciphersuite.KXKind
	ExtendedMasterSecret bool
	ServerName           string
	// NegotiatedProtocol is the application protocol agreed with ALPN
	// ("" when none was).
	NegotiatedProtocol string
	// PeerIdentity is the peer's authenticated identity: on a server the
	// client's PSK / Milagro identity; on a client the P2P server identity
	// (or the PSK identity hint, which is not authenticated by itself).
	PeerIdentity string
	// LocalIdentity is the identity this side presented.
	LocalIdentity string
	// TLSUnique is the tls-unique channel binding (RFC 5929).
	TLSUnique []byte
}
