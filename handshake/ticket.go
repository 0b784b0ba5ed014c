package handshake

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha512"
	"crypto/subtle"
	"errors"
	"io"
	"time"

	"github.com/milagro-go/milagro/ciphersuite"
	"golang.org/x/crypto/cryptobyte"
)

// Session tickets (RFC 5077) for the TLS 1.2 abbreviated handshake.
//
// A ticket is the session state sealed with AES-256-GCM under a named key:
//
//	key_name(16) ‖ nonce(12) ‖ AES-256-GCM(key, nonce, state, aad = key_name ‖ nonce)
//
// The key name and the AEAD key are both derived from the 32-byte ticket
// key secret with SHA-512 (as crypto/tls does), so servers sharing the
// secret (a fleet with one ticket-key file) resume each other's sessions.
// The state is encoded with cryptobyte (sessionStateVersion first).

// Extension and message numbers.
const (
	extSessionTicket       uint16 = 35
	typeNewSessionTicket   uint8  = 4
	ticketKeyNameLen              = 16
	ticketNonceLen                = 12
	ticketOverhead                = ticketKeyNameLen + ticketNonceLen + 16
	sessionStateVersion    uint8  = 2
	maxSessionBindingLen          = 64
	maxTicketLength               = 2048 // ours are ~200 bytes; bounded for peers
	maxSessionIdentityLen         = 1024
	DefaultTicketLifetime         = 24 * time.Hour
	maxTicketLifetimeHintS        = 7 * 24 * 3600
)

// SessionState is what a session ticket carries: what the full handshake
// established and the server needs to resume the session and re-check it.
type SessionState struct {
	Version      uint16
	Suite        uint16
	MasterSecret []byte // 48 bytes
	EMS          bool
	// PeerIdentity is the client's authenticated identity; LocalIdentity
	// the server's (CS / P2P id_S, or the PSK hint).
	PeerIdentity  string
	LocalIdentity string
	// PermitDay is the CS permit day of the full handshake (0: none).
	PermitDay uint64
	// PostQuantum: the full handshake was the ML-KEM hybrid (kept in the
	// flags byte beside EMS).
	PostQuantum bool
	// CreatedAt is the Unix time of the full handshake; resumptions keep it,
	// so a session's lifetime runs from its full handshake.
	CreatedAt uint64
	// Binding fingerprints the credential that authenticated the full
	// handshake, its server name and the issuing configuration
	// (ciphersuite.ServerConfig.SessionBinding); resumption recomputes it.
	Binding []byte
}

// Marshal encodes s (the ticket plaintext).
func (s *SessionState) Marshal() ([]byte, error) {
	if len(s.MasterSecret) != masterSecretLength || len(s.PeerIdentity) > maxSessionIdentityLen ||
		len(s.LocalIdentity) > maxSessionIdentityLen || len(s.Binding) > maxSessionBindingLen {
		return nil, errors.New("handshake: session state out of bounds")
	}
	var b cryptobyte.Builder
	b.AddUint8(sessionStateVersion)
	b.AddUint16(s.Version)
	b.AddUint16(s.Suite)
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(s.MasterSecret) })
	flags := uint8(0)
	if s.EMS {
		flags |= stateFlagEMS
	}
	if s.PostQuantum {
		flags |= stateFlagPQ
	}
	b.AddUint8(flags)
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(s.PeerIdentity)) })
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(s.LocalIdentity)) })
	b.AddUint64(s.PermitDay)
	b.AddUint64(s.CreatedAt)
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(s.Binding) })
	return b.Bytes()
}

var errBadSessionState = errors.New("handshake: malformed session state")

// The session state's flags byte.
const (
	stateFlagEMS uint8 = 1
	stateFlagPQ  uint8 = 2
)

// ParseSessionState decodes a ticket plaintext; anything malformed is an error.
func ParseSessionState(data []byte) (*SessionState, error) {
	s := cryptobyte.String(data)
	var v, ems uint8
	var master, peer, local, binding cryptobyte.String
	st := &SessionState{}
	if !s.ReadUint8(&v) || v != sessionStateVersion ||
		!s.ReadUint16(&st.Version) || !s.ReadUint16(&st.Suite) ||
		!s.ReadUint8LengthPrefixed(&master) || len(master) != masterSecretLength ||
		!s.ReadUint8(&ems) || ems&^(stateFlagEMS|stateFlagPQ) != 0 ||
		!s.ReadUint16LengthPrefixed(&peer) || len(peer) > maxSessionIdentityLen ||
		!s.ReadUint16LengthPrefixed(&local) || len(local) > maxSessionIdentityLen ||
		!s.ReadUint64(&st.PermitDay) || !s.ReadUint64(&st.CreatedAt) ||
		!s.ReadUint8LengthPrefixed(&binding) || len(binding) > maxSessionBindingLen || !s.Empty() {
		return nil, errBadSessionState
	}
	st.MasterSecret = append([]byte(nil), master...)
	st.EMS = ems&stateFlagEMS != 0
	st.PostQuantum = ems&stateFlagPQ != 0
	st.PeerIdentity = string(peer)
	st.LocalIdentity = string(local)
	st.Binding = append([]byte(nil), binding...)
	return st, nil
}

// TicketKey is one session ticket key, derived from a 32-byte secret.
type TicketKey struct {
	name [ticketKeyNameLen]byte
	aead cipher.AEAD
	// Created is when the key was made (automatic rotation uses it).
	Created time.Time
}

// NewTicketKey derives the named AES-256-GCM ticket key from secret.
func NewTicketKey(secret [32]byte, created time.Time) TicketKey {
	h := sha512.Sum512(secret[:])
	var k TicketKey
	copy(k.name[:], h[:ticketKeyNameLen])
	block, err := aes.NewCipher(h[32:64])
	if err != nil {
		panic("handshake: AES-256: " + err.Error()) // cannot happen: 32-byte key
	}
	k.aead, err = cipher.NewGCM(block)
	if err != nil {
		panic("handshake: GCM: " + err.Error())
	}
	clear(h[:])
	k.Created = created
	return k
}

// Name returns the key's public name (the first 16 bytes of its tickets).
func (k TicketKey) Name() [ticketKeyNameLen]byte { return k.name }

// SealTicket encrypts s under key (nonce from rand).
func SealTicket(rand io.Reader, key TicketKey, s *SessionState) ([]byte, error) {
	if key.aead == nil {
		return nil, errors.New("handshake: zero ticket key")
	}
	plain, err := s.Marshal()
	if err != nil {
		return nil, err
	}
	defer clear(plain)
	out := make([]byte, ticketKeyNameLen+ticketNonceLen, ticketOverhead+len(plain))
	copy(out, key.name[:])
	if _, err := io.ReadFull(rand, out[ticketKeyNameLen:]); err != nil {
		return nil, err
	}
	out = key.aead.Seal(out, out[ticketKeyNameLen:], plain, out[:ticketKeyNameLen+ticketNonceLen])
	if len(out) > maxTicketLength {
		return nil, errors.New("handshake: session ticket too long")
	}
	return out, nil
}

// OpenTicket decrypts a ticket under the key it names among keys. It
// returns the state and the index of the key, or ok=false for anything
// wrong (unknown key, tampered, malformed): the caller then runs a full
// handshake.
func OpenTicket(keys []TicketKey, ticket []byte) (s *SessionState, keyIndex int, ok bool) {
	if len(ticket) < ticketOverhead || len(ticket) > maxTicketLength {
		return nil, 0, false
	}
	name := ticket[:ticketKeyNameLen]
	idx := -1
	for i := range keys {
		if keys[i].aead != nil && subtle.ConstantTimeCompare(keys[i].name[:], name) == 1 {
			idx = i
			break
		}
	}
	if idx < 0 {
		return nil, 0, false
	}
	hdr := ticket[:ticketKeyNameLen+ticketNonceLen]
	plain, err := keys[idx].aead.Open(nil, ticket[ticketKeyNameLen:ticketKeyNameLen+ticketNonceLen],
		ticket[ticketKeyNameLen+ticketNonceLen:], hdr)
	if err != nil {
		return nil, 0, false
	}
	defer clear(plain)
	st, err := ParseSessionState(plain)
	if err != nil {
		return nil, 0, false
	}
	return st, idx, true
}

// newSessionTicketMsg is the NewSessionTicket message (RFC 5077 §3.3).
type newSessionTicketMsg struct {
	lifetimeHint uint32
	ticket       []byte
}

func (m *newSessionTicketMsg) marshal() ([]byte, error) {
	var b cryptobyte.Builder
	b.AddUint8(typeNewSessionTicket)
	b.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) {
		b.AddUint32(m.lifetimeHint)
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(m.ticket) })
	})
	return b.Bytes()
}

// parseNewSessionTicket parses a NewSessionTicket body (header excluded).
// An empty ticket is legal (the server changed its mind); a ticket longer
// than we would ever store is refused.
func parseNewSessionTicket(body []byte) (*newSessionTicketMsg, error) {
	s := cryptobyte.String(body)
	m := &newSessionTicketMsg{}
	var t cryptobyte.String
	if !s.ReadUint32(&m.lifetimeHint) || !s.ReadUint16LengthPrefixed(&t) || !s.Empty() {
		return nil, decodeErr("NewSessionTicket")
	}
	if len(t) > maxClientTicketLength {
		return nil, ciphersuite.Errorf(ciphersuite.AlertDecodeError,
			"NewSessionTicket ticket of %d bytes exceeds the %d-byte limit", len(t), maxClientTicketLength)
	}
	m.ticket = append([]byte(nil), t...)
	return m, nil
}

// maxClientTicketLength bounds tickets the client keeps from any server
// (OpenSSL's and GnuTLS's are a few hundred bytes).
const maxClientTicketLength = 16 << 10
