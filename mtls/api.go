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

// Lockout counts failed Milagro CS proofs per client identity (see
// Config.CSLockout).
type Lockout = ciphersuite.Lockout

// NewLockout returns a Lockout with the spec's defaults (5 failures, then
// 1 minute doubling up to 1 hour).
func NewLockout() *Lockout { return ciphersuite.NewLockout() }

// PairingGate admits the pairing work of Milagro CS hellos (see
// Config.PairingGate); FairGate is this module's.
type PairingGate = ciphersuite.PairingGate

// FairGate is a PairingGate with a bound on concurrent pairing work,
// round-robin service across client addresses and a budget of failed
// proofs per address.
type FairGate = ciphersuite.FairGate

// DefaultHandshakeTimeout bounds a handshake when Config.HandshakeTimeout
// is 0 and the context has no deadline.
const DefaultHandshakeTimeout = 10 * time.Second

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
	// second factor). Time permits: CSPermit and CSPermits hold permits for
	// one or more days, and the handshake uses the one for the client's own
	// day (by Time), or, within pairing.DefaultSkew of midnight, the
	// neighbouring day's; GetCSPermit, if set, is asked instead for the day
	// (a nil permit: none). Holding today's and tomorrow's lets a client
	// switch at midnight by its own clock.
	// The credentials are prepared once and shared by every handshake: a
	// CSKey (or any server or P2P key) by every Config holding the same
	// key object, a CSToken's PIN by this Config and its Clones (made with
	// Clone, before or after first use; not by copying the struct). GetPIN
	// is called once, when the first handshake needs it; if it fails, the
	// next handshake calls it again. Another Config with the same CSToken
	// asks its own GetPIN; to retry a wrong PIN, use a new Config, not a
	// Clone (milagro_config.go).
	CSKey       *pairing.CSClientKey
	CSToken     *pairing.PINToken
	GetPIN      func() (uint32, error)
	CSPermit    *pairing.TimePermit
	CSPermits   []*pairing.TimePermit
	GetCSPermit func(day uint64) (*pairing.TimePermit, error)

	// ServerIdentity (client) is the server identity this client expects:
	// for Milagro CS the id_S the server must hold the key for (empty: the
	// deployment-wide key), for Milagro P2P the id_S it must present. It is
	// reported as ConnectionState.PeerIdentity only after the server's
	// Finished verified. With it set, no PSK suite is offered (a PSK
	// server proves no identity; docs/protocol.md §5). ExpectedServerIdentity is the
	// older name of the same setting (set either, or both equal).
	ServerIdentity         string
	ExpectedServerIdentity string

	// Milagro CS, server: the server keys, one per server identity the
	// server answers to (CSServerSecret and CSServerKeys; a key's identity
	// is its ID(), "" for the deployment-wide key), or GetCSServerKey,
	// which, like crypto/tls's GetCertificate, returns the key for the
	// identity a client asks for (nil, nil: none — unrecognized_name).
	CSServerSecret *pairing.CSServerSecret
	CSServerKeys   []*pairing.CSServerSecret
	GetCSServerKey func(serverID string) (*pairing.CSServerSecret, error)
	// ClockSkew is the accepted clock difference (0: pairing.DefaultSkew,
	// 30 s). PermitMode is the permit policy (off, optional, required);
	// RequirePermits is the older switch for PermitsRequired.
	ClockSkew      time.Duration
	PermitMode     pairing.PermitMode
	RequirePermits bool
	// CSLockout refuses a client identity for a while after repeated
	// failed proofs (docs/protocol.md §3.4: 5 failures, then 1 min doubling to 1 h). Nil
	// means one Lockout with the defaults per Config (shared by its
	// Clones and the Configs its GetConfigForClient returns); set one to
	// share it across Configs (the proxy keeps one across reloads).
	// DisableCSLockout turns it off.
	CSLockout        *Lockout
	DisableCSLockout bool
	// PairingGate admits the pairing work of Milagro CS hellos, keyed by
	// the client's IP address: nil means one FairGate per Config (GOMAXPROCS
	// at once, round-robin across addresses, a budget of failed proofs per
	// address).
	PairingGate PairingGate

	// Milagro P2P, either side: this peer's keys (its identity is P2PKey.ID()).
	// A P2P client must name the server identity it expects (ServerIdentity).
	P2PKey *pairing.P2PKey

	// PostQuantum is the post-quantum hybrid policy of the Milagro suites
	// (docs/protocol.md §5b), on either side. PostQuantumPrefer (the zero
	// value) adds a fresh ML-KEM-768 key exchange to every Milagro
	// handshake whose peer takes part, and falls back to the classic one
	// with a peer that does not. PostQuantumRequire refuses any session
	// that is not hybrid: a Milagro peer without it gets
	// insufficient_security, PSK suites are neither offered nor accepted,
	// and a classic session is never resumed. PostQuantumOff never uses it.
	PostQuantum PostQuantumPolicy

	// HandshakeTimeout bounds Handshake when no deadline/context is given;
	// 0 means DefaultHandshakeTimeout, a negative value means none.
	HandshakeTimeout time.Duration
	// KeyLogWriter receives NSS key-log lines for Wireshark. Insecure; debugging only.
	KeyLogWriter io.Writer
	// InsecureAllowNoEMS allows PSK suites without the extended master secret.
	InsecureAllowNoEMS bool
	// Logger receives debug logs; nil means none.
	Logger *slog.Logger

	// Session resumption (RFC 5077 tickets; ticket.go). A server issues
	// tickets unless SessionTicketsDisabled, under TicketKeys (called per
	// handshake; newest first), else the keys given to
	// SetSessionTicketKeys, else automatic keys (a new one each day, each
	// accepted for 7 days). SessionTicketLifetime bounds how long after its
	// full handshake a session may be resumed (0: 24 h, the maximum). A
	// client resumes with a ClientSessionCache (NewLRUClientSessionCache).
	SessionTicketsDisabled bool
	SessionTicketLifetime  time.Duration
	TicketKeys             func() [][32]byte
	ClientSessionCache     ClientSessionCache

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
	// client's PSK / Milagro identity; on a client the Milagro server
	// identity it asked for and the server proved (P2P id_S, CS id_S; empty
	// for the deployment-wide CS key and for PSK suites).
	PeerIdentity string
	// PSKIdentityHint is the server's psk_identity_hint (client, PSK
	// suites). It is not authenticated: never treat it as an identity.
	PSKIdentityHint string
	// PermitDay is the Milagro CS time permit day used (0: none).
	PermitDay uint64
	// LocalIdentity is the identity this side presented.
	LocalIdentity string
	// TLSUnique is the tls-unique channel binding (RFC 5929).
	TLSUnique []byte
	// DidResume reports a resumed session (abbreviated handshake, no key
	// exchange); the identities and permit day are the full handshake's.
	DidResume bool
	// PostQuantum reports that the session keys include an ML-KEM-768
	// secret (Config.PostQuantum): a recording of this session stays
	// confidential even if pairings later fall to a quantum computer. A
	// resumed session reports its full handshake's.
	PostQuantum bool
}

// PostQuantumPolicy is Config.PostQuantum: off, prefer (the default) or
// require.
type PostQuantumPolicy = ciphersuite.PQPolicy

// The values of Config.PostQuantum.
const (
	PostQuantumPrefer  = ciphersuite.PQPrefer
	PostQuantumOff     = ciphersuite.PQOff
	PostQuantumRequire = ciphersuite.PQRequire
)

// ParsePostQuantumPolicy parses "off", "prefer" or "require" (as the
// --pq flag of the mtls command takes them).
func ParsePostQuantumPolicy(s string) (PostQuantumPolicy, error) { return ciphersuite.ParsePQPolicy(s) }
