package dtls

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	piondtls "github.com/pion/dtls/v3"

	"github.com/milagro-go/milagro/pairing"
)

// Cipher suites offered (spec dtls-p2p.md "Suites"). All are plain PSK key
// exchanges: in Milagro P2P mode the pairing agreement supplies the PSK.
const (
	TLS_PSK_WITH_AES_128_GCM_SHA256       uint16 = 0x00A8
	TLS_PSK_WITH_CHACHA20_POLY1305_SHA256 uint16 = 0xCCAB
	TLS_PSK_WITH_AES_128_CCM_8            uint16 = 0xC0A8
)

var defaultSuites = []uint16{
	TLS_PSK_WITH_AES_128_GCM_SHA256,
	TLS_PSK_WITH_CHACHA20_POLY1305_SHA256,
	TLS_PSK_WITH_AES_128_CCM_8,
}

const (
	// DefaultHandshakeTimeout bounds a handshake when Config.HandshakeTimeout is 0.
	DefaultHandshakeTimeout = 15 * time.Second
	// cidSize is the length of the connection IDs this package asks peers to send.
	cidSize = 8
)

// Mode says which key exchange a Config speaks.
type Mode int

const (
	// ModeP2P is Milagro P2P (Chow–Choo) carried in the PSK hint and identity.
	ModeP2P Mode = iota + 1
	// ModePSK is plain DTLS-PSK with a configured identity and key.
	ModePSK
)

func (m Mode) String() string {
	switch m {
	case ModeP2P:
		return "milagro-p2p"
	case ModePSK:
		return "psk"
	}
	return "unknown"
}

// Config configures a DTLS client or server. Exactly one of P2PKey (Milagro
// P2P) and PSK/GetPSK (static PSK) is set. A Config must not be modified
// after its first use; one Config may serve many connections.
type Config struct {
	// P2PKey is this peer's combined Milagro P2P key. As a server the peer
	// proves the key's identity; as a client it proves its own and
	// expects ServerIdentity.
	P2PKey *pairing.P2PKey
	// ServerIdentity is the server identity a P2P client expects
	// (required for a P2P client). A server presenting another one is
	// refused before any key is derived.
	ServerIdentity string

	// PSK is the static pre-shared key (client: the key it uses; server:
	// the key of PSKIdentity when GetPSK is nil).
	PSK []byte
	// PSKIdentity is the identity a static-PSK client sends, and the only
	// identity a static-PSK server accepts when GetPSK is nil.
	PSKIdentity string
	// GetPSK, on a static-PSK server, returns the key of a client identity.
	GetPSK func(identity string) ([]byte, error)
	// PSKIdentityHint is an optional hint a static-PSK server sends.
	PSKIdentityHint []byte

	// VerifyPeerIdentity, if set, decides whether the authenticated peer
	// identity may connect. It runs only once the peer has proved its
	// key: on a server after the client's Finished verified (a refusal is
	// a fatal alert), on a client after the handshake completed (a refusal
	// closes the connection). The handshake then fails with its error.
	VerifyPeerIdentity func(identity string) error

	// CipherSuites lists the suites to offer or accept, in preference
	// order; nil means GCM, ChaCha20-Poly1305, CCM_8.
	CipherSuites []uint16
	// HandshakeTimeout bounds a handshake; 0 means DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration
	// FlightInterval is the first retransmission interval (pion's
	// default, 1s, when 0).
	FlightInterval time.Duration
	// MTU bounds handshake fragments (1200 bytes when 0).
	MTU int
	// DisableConnectionID turns off RFC 9146 connection IDs (on by default:
	// the peer keeps its session when its address changes).
	DisableConnectionID bool

	// Rand is the source of the P2P secrets, connection IDs and the
	// client random (crypto/rand when nil). pion takes the rest of its
	// randomness and its clock from the system.
	Rand io.Reader
	// KeyLogWriter, if set, receives NSS key log lines (debugging only:
	// it exposes the traffic keys).
	KeyLogWriter io.Writer

	srvOnce sync.Once
	p2pSrv  *pairing.P2PServer
	srvErr  error
	cliOnce sync.Once
	p2pCli  *pairing.P2PClient
	cliErr  error
}

// Errors of configuration and policy.
var (
	ErrConfig = errors.New("dtls: invalid config")
	// ErrPeerIdentity is returned when VerifyPeerIdentity refuses a peer.
	ErrPeerIdentity = errors.New("dtls: peer identity refused")
)

func (c *Config) mode() (Mode, error) {
	if c == nil {
		return 0, fmt.Errorf("%w: nil", ErrConfig)
	}
	static := c.PSK != nil || c.GetPSK != nil
	switch {
	case c.P2PKey != nil && static:
		return 0, fmt.Errorf("%w: both a P2P key and a static PSK", ErrConfig)
	case c.P2PKey != nil:
		return ModeP2P, nil
	case static:
		return ModePSK, nil
	}
	return 0, fmt.Errorf("%w: neither a P2P key nor a PSK", ErrConfig)
}

// checkServer validates c for the server role.
func (c *Config) checkServer() (Mode, error) {
	mode, err := c.mode()
	if err != nil {
		return 0, err
	}
	if mode == ModePSK && c.GetPSK == nil && c.PSKIdentity == "" {
		return 0, fmt.Errorf("%w: a static-PSK server needs GetPSK, or PSK with PSKIdentity", ErrConfig)
	}
	if _, err := c.base(); err != nil {
		return 0, err
	}
	return mode, nil
}

func (c *Config) rand() io.Reader {
	if c.Rand != nil {
		return c.Rand
	}
	return rand.Reader
}

func (c *Config) handshakeTimeout() time.Duration {
	if c.HandshakeTimeout > 0 {
		return c.HandshakeTimeout
	}
	return DefaultHandshakeTimeout
}

func (c *Config) p2pServer() (*pairing.P2PServer, error) {
	c.srvOnce.Do(func() { c.p2pSrv, c.srvErr = pairing.NewP2PServer(c.P2PKey) })
	return c.p2pSrv, c.srvErr
}

func (c *Config) p2pClient() (*pairing.P2PClient, error) {
	c.cliOnce.Do(func() { c.p2pCli, c.cliErr = pairing.NewP2PClient(c.P2PKey) })
	return c.p2pCli, c.cliErr
}

// base returns the pion settings shared by both roles.
func (c *Config) base() (*piondtls.Config, error) {
	suites := c.CipherSuites
	if len(suites) == 0 {
		suites = defaultSuites
	}
	ids := make([]piondtls.CipherSuiteID, 0, len(suites))
	for _, s := range suites {
		switch s {
		case TLS_PSK_WITH_AES_128_GCM_SHA256, TLS_PSK_WITH_CHACHA20_POLY1305_SHA256, TLS_PSK_WITH_AES_128_CCM_8:
			ids = append(ids, piondtls.CipherSuiteID(s))
		default:
			return nil, fmt.Errorf("%w: unsupported cipher suite 0x%04X", ErrConfig, s)
		}
	}
	p := &piondtls.Config{
		CipherSuites:         ids,
		ExtendedMasterSecret: piondtls.RequireExtendedMasterSecret,
		FlightInterval:       c.FlightInterval,
		MTU:                  c.MTU,
		KeyLogWriter:         c.KeyLogWriter,
	}
	if !c.DisableConnectionID {
		r := c.rand()
		p.ConnectionIDGenerator = func() []byte {
			b := make([]byte, cidSize)
			if _, err := io.ReadFull(r, b); err != nil {
				// pion's generator cannot fail; an all-zero ID only
				// weakens routing, never the keys.
				clear(b)
			}
			return b
		}
	}
	return p, nil
}

// Clone returns a copy of the exported settings of c (not its prepared
// key state), for a caller that wants to change a field.
func (c *Config) Clone() *Config {
	if c == nil {
		return nil
	}
	return &Config{
		P2PKey: c.P2PKey, ServerIdentity: c.ServerIdentity,
		PSK: c.PSK, PSKIdentity: c.PSKIdentity, GetPSK: c.GetPSK, PSKIdentityHint: c.PSKIdentityHint,
		VerifyPeerIdentity: c.VerifyPeerIdentity,
		CipherSuites:       append([]uint16(nil), c.CipherSuites...),
		HandshakeTimeout:   c.HandshakeTimeout, FlightInterval: c.FlightInterval, MTU: c.MTU,
		DisableConnectionID: c.DisableConnectionID, Rand: c.Rand, KeyLogWriter: c.KeyLogWriter,
	}
}

// CipherSuiteName returns the IANA name of a suite this package speaks, or
// its number in hex.
func CipherSuiteName(id uint16) string {
	switch id {
	case TLS_PSK_WITH_AES_128_GCM_SHA256:
		return "TLS_PSK_WITH_AES_128_GCM_SHA256"
	case TLS_PSK_WITH_CHACHA20_POLY1305_SHA256:
		return "TLS_PSK_WITH_CHACHA20_POLY1305_SHA256"
	case TLS_PSK_WITH_AES_128_CCM_8:
		return "TLS_PSK_WITH_AES_128_CCM_8"
	}
	return fmt.Sprintf("0x%04X", id)
}
