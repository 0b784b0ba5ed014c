package mtls

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"time"

	"github.com/milagro-go/milagro/ciphersuite"
	"github.com/milagro-go/milagro/handshake"
	"github.com/milagro-go/milagro/internal/admission"
	"github.com/milagro-go/milagro/pairing"
)

// Alert is a TLS alert description.
type Alert = ciphersuite.Alert

// AlertError is a connection failure that carried a TLS alert, sent or received.
type AlertError = ciphersuite.AlertError

// FailedSuite returns the name of the cipher suite a server had chosen
// when its handshake failed with err ("" if it failed before choosing one,
// or err is not a handshake failure), for logs and metrics.
func FailedSuite(err error) string {
	var se *handshake.SuiteError
	if errors.As(err, &se) && se.Suite != nil {
		return se.Suite.Name
	}
	return ""
}

// Lockout counts failed Milagro CS proofs per client identity and source
// (see Config.CSLockout and docs/protocol.md, "Lockout").
type Lockout = admission.Lockout

// NewLockout returns a Lockout with the spec's defaults (5 failures of an
// identity from one source lock that source out for it, 100 from all
// sources lock everyone out; 1 minute doubling up to 1 hour).
func NewLockout() *Lockout { return &admission.Lockout{} }

// LockEvent describes a new lockout (Lockout.OnLock).
type LockEvent = admission.LockEvent

// Source names a client for the guards: an IPv4 address or an IPv6 /64
// (the prefix length is Guards.Keyer.IPv6Prefix).
type Source = admission.Source

// PairingGate admits the pairing work of Milagro hellos (see
// Config.PairingGate); FairGate is this module's. release must be called
// once, saying whether the client's proof verified.
type PairingGate interface {
	Acquire(ctx context.Context, source Source) (release func(verified bool), err error)
}

// FairGate is a PairingGate with a bound on concurrent pairing work,
// round-robin service across sources (sources without recent failures
// first) and a budget of failed proofs per source.
type FairGate = admission.Gate

// Guards is a server's admission and abuse control: source keys, failure
// budgets, pairing gate, lockout, replay cache and tarpit, reading one
// clock (see Config.Guards).
type Guards = admission.Guards

// NewGuards returns Guards with the defaults reading clock (nil: time.Now).
func NewGuards(clock func() time.Time) *Guards { return admission.New(clock) }

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

	// Client PSK (the standard PSK suites, which OpenSSL, GnuTLS and
	// stunnel speak): PSKIdentity and PSK, or GetClientPSK (which wins).
	PSKIdentity  string
	PSK          []byte
	GetClientPSK func(hint []byte) (identity string, psk []byte, err error)
	// Server PSK: GetServerPSK returns the key for a client identity (an
	// error refuses the client with unknown_psk_identity); PSKIdentityHint,
	// if set, is sent to clients (it authenticates nothing).
	GetServerPSK    func(identity string) ([]byte, error)
	PSKIdentityHint string

	// ServerName (client) is sent as server_name (SNI); Dial sets it from
	// the address's host when empty. It is not authenticated: use
	// ServerIdentity to make the server prove who it is.
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

	// Milagro CS, client: CSKey (the client key from the D-TAs), or
	// CSToken (a PIN-protected key) with GetPIN, which supplies the PIN,
	// the second factor. GetPIN is called once, when the first handshake
	// needs it, and again only after it failed; a Config and its Clones
	// share the PIN (to retry a wrong PIN, make a new Config).
	//
	// Time permits prove the D-TAs did not revoke this client today. A
	// server that requires them (the default) refuses a client without
	// one. CSPermits holds permits for one or more days; each handshake
	// uses the one for the client's own day (by Time), or, within 30 s of
	// midnight, the neighbouring day's, so holding today's and tomorrow's
	// lets a client switch at midnight. GetCSPermit, if set, is asked
	// instead, for the day (a nil permit: send none), like crypto/tls's
	// GetClientCertificate; use it when permits are renewed while the
	// Config is in use.
	CSKey       *pairing.CSClientKey
	CSToken     *pairing.PINToken
	GetPIN      func() (uint32, error)
	CSPermits   []*pairing.TimePermit
	GetCSPermit func(day uint64) (*pairing.TimePermit, error)

	// ServerIdentity (client) is the server identity this client expects:
	// for Milagro CS the identity whose server key the server must hold
	// (empty: the deployment-wide key, which any server of the deployment
	// holds), for Milagro P2P the identity the server must present
	// (required). It is reported as ConnectionState.PeerIdentity only once
	// the server proved it. With it set, no PSK suite is offered: a PSK
	// server proves no identity.
	ServerIdentity string

	// Milagro CS, server: the server keys, one per server identity the
	// server answers to (a key's identity is its ID(), "" for the
	// deployment-wide key). CSServerKeys holds them; GetCSServerKey, if
	// set, is asked instead, like crypto/tls's GetCertificate, for the
	// identity a client asks for (nil, nil: none, and the client is
	// refused with unrecognized_name). A client that asks for no identity
	// is answered only with the deployment-wide key.
	CSServerKeys   []*pairing.CSServerSecret
	GetCSServerKey func(serverID string) (*pairing.CSServerSecret, error)
	// ClockSkew is the clock difference accepted between client and
	// server (0: 30 s).
	ClockSkew time.Duration
	// PermitMode is the server's time permit policy. The zero value,
	// pairing.PermitsRequired, refuses a client without a valid permit for
	// today: only then does revoking a client (the D-TAs stop issuing its
	// permits) lock it out. pairing.PermitsOptional also accepts clients
	// without a permit (while permits roll out); a valid permit is
	// accepted in either mode.
	PermitMode pairing.PermitMode
	// CSLockout refuses a client identity for a while after repeated
	// failed proofs: 5 from one source (an IPv4 address or IPv6 /64) lock
	// that source out for it, 100 from all sources lock everyone out; 1
	// min doubling to 1 h; only a completed handshake resets it (see
	// docs/protocol.md §3.5). Nil means Guards.Lockout; set one to share
	// it across Configs. Its Clock, if nil, is time.Now: give it this
	// Config's Time when you set that. DisableCSLockout turns it off.
	CSLockout        *Lockout
	DisableCSLockout bool
	// PairingGate admits the pairing work of Milagro hellos (CS and P2P),
	// keyed by source: nil means Guards.Gate (GOMAXPROCS at once,
	// round-robin across sources, a budget of failed proofs per source).
	PairingGate PairingGate
	// Guards is the server's admission and abuse control (failure budgets
	// per source, pairing gate, lockout, replay cache, tarpit of refused
	// connections). Nil means one set per Config, shared by its Clones and
	// by the Configs its GetConfigForClient returns; set one to share it
	// across Configs (the proxy keeps one across reloads).
	Guards *Guards

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
	// InsecureAllowNoEMS allows PSK suites without the extended master
	// secret (RFC 7627), for old peers; it weakens channel bindings.
	InsecureAllowNoEMS bool
	// Logger receives debug logs; nil means none.
	Logger *slog.Logger

	// Session resumption (RFC 5077 tickets: a returning client skips the
	// key exchange, and the server re-checks its identity). A server issues
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
	// by milagroHolderMu.
	milagro *milagroPrepared
}

// ClientHelloInfo is what GetConfigForClient sees of a ClientHello: the
// server name, cipher suites, supported groups, point formats and ALPN
// protocols the client offered (a copy; Extensions is nil).
type ClientHelloInfo = ciphersuite.ClientHelloInfo

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
	// ResumptionRetried reports (client) that Dial first offered a cached
	// Milagro CS session alone (a resumption-only ClientHello), the server
	// refused it, and this connection is the dialer's one reconnection,
	// with a full handshake (docs/protocol.md §5c).
	ResumptionRetried bool
}

// ErrResumptionRefused matches (errors.Is) a server's handshake error for a
// resumption-only ClientHello whose session ticket it did not resume: the
// client dialer reconnects with a full handshake, so this is routine (for
// example after a ticket key rotation or a restart), not an attack.
var ErrResumptionRefused = handshake.ErrResumptionRefused

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
