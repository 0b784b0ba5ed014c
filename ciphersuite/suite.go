package ciphersuite

import (
	"crypto"
	"strings"
)

// KXKind identifies a key exchange.
type KXKind uint8

// Key exchanges.
const (
	KXPSK        KXKind = iota + 1 // RFC 4279 plain PSK
	KXECDHEPSK                     // RFC 5489 ECDHE_PSK
	KXMilagroCS                    // docs/protocol.md §3
	KXMilagroP2P                   // docs/protocol.md §4
)

// IsMilagro reports whether k is a Milagro key exchange (CS or P2P), the
// kinds that can carry the post-quantum hybrid.
func (k KXKind) IsMilagro() bool { return isMilagroKind(k) }

func (k KXKind) String() string {
	switch k {
	case KXPSK:
		return "PSK"
	case KXECDHEPSK:
		return "ECDHE_PSK"
	case KXMilagroCS:
		return "MILAGRO_CS"
	case KXMilagroP2P:
		return "MILAGRO_P2P"
	}
	return "unknown"
}

// AEADKind identifies a record protection algorithm.
type AEADKind uint8

// AEADs.
const (
	AES128GCM        AEADKind = iota + 1 // RFC 5288
	AES256GCM                            // RFC 5288
	ChaCha20Poly1305                     // RFC 7905
)

// Suite is one row of the cipher suite table. Suites are compared by pointer
// identity; the table is read-only.
type Suite struct {
	ID            uint16
	Name          string // IANA-style name, e.g. TLS_PSK_WITH_AES_128_GCM_SHA256
	AEAD          AEADKind
	Hash          crypto.Hash // PRF and transcript hash: crypto.SHA256 or crypto.SHA384
	KX            KXKind
	ForwardSecret bool
}

// KeyLen is the AEAD key length in bytes.
func (s *Suite) KeyLen() int {
	if s.AEAD == AES128GCM {
		return 16
	}
	return 32
}

// IVLen is the length of the fixed IV cut from the key block: 4 bytes of
// implicit salt for AES-GCM (RFC 5288), 12 bytes for ChaCha20-Poly1305 (RFC 7905).
func (s *Suite) IVLen() int {
	if s.AEAD == ChaCha20Poly1305 {
		return 12
	}
	return 4
}

// ServerKeyExchangeOptional reports whether the server may omit
// ServerKeyExchange (plain PSK without a hint).
func (s *Suite) ServerKeyExchangeOptional() bool { return s.KX == KXPSK }

// RequiresEMS reports whether the suite always requires the extended master
// secret (the Milagro suites do; PSK suites require it unless the insecure
// switch allows otherwise).
func (s *Suite) RequiresEMS() bool { return s.KX == KXMilagroCS || s.KX == KXMilagroP2P }

func (s *Suite) String() string { return s.Name }

var suites = []*Suite{
	{0xCCAC, "TLS_ECDHE_PSK_WITH_CHACHA20_POLY1305_SHA256", ChaCha20Poly1305, crypto.SHA256, KXECDHEPSK, true},
	{0xD001, "TLS_ECDHE_PSK_WITH_AES_128_GCM_SHA256", AES128GCM, crypto.SHA256, KXECDHEPSK, true},
	{0xD002, "TLS_ECDHE_PSK_WITH_AES_256_GCM_SHA384", AES256GCM, crypto.SHA384, KXECDHEPSK, true},
	{0x00A8, "TLS_PSK_WITH_AES_128_GCM_SHA256", AES128GCM, crypto.SHA256, KXPSK, false},
	{0x00A9, "TLS_PSK_WITH_AES_256_GCM_SHA384", AES256GCM, crypto.SHA384, KXPSK, false},
	{0xCCAB, "TLS_PSK_WITH_CHACHA20_POLY1305_SHA256", ChaCha20Poly1305, crypto.SHA256, KXPSK, false},
	{0xFF01, "TLS_MILAGRO_CS_WITH_AES_128_GCM_SHA256", AES128GCM, crypto.SHA256, KXMilagroCS, true},
	{0xFF02, "TLS_MILAGRO_CS_WITH_AES_256_GCM_SHA384", AES256GCM, crypto.SHA384, KXMilagroCS, true},
	{0xFF03, "TLS_MILAGRO_CS_WITH_CHACHA20_POLY1305_SHA256", ChaCha20Poly1305, crypto.SHA256, KXMilagroCS, true},
	{0xFF11, "TLS_MILAGRO_P2P_WITH_AES_128_GCM_SHA256", AES128GCM, crypto.SHA256, KXMilagroP2P, true},
	{0xFF12, "TLS_MILAGRO_P2P_WITH_AES_256_GCM_SHA384", AES256GCM, crypto.SHA384, KXMilagroP2P, true},
	{0xFF13, "TLS_MILAGRO_P2P_WITH_CHACHA20_POLY1305_SHA256", ChaCha20Poly1305, crypto.SHA256, KXMilagroP2P, true},
}

// All returns every suite this module implements, in default preference
// order (the caller must not modify the slice).
func All() []*Suite { return suites }

// ByID returns the suite with the given code point, or nil.
func ByID(id uint16) *Suite {
	for _, s := range suites {
		if s.ID == id {
			return s
		}
	}
	return nil
}

// ByName returns the suite with the given name, or nil. The match is
// case-insensitive and the "TLS_" prefix may be omitted.
func ByName(name string) *Suite {
	n := strings.ToUpper(strings.TrimSpace(name))
	for _, s := range suites {
		if n == s.Name || "TLS_"+n == s.Name {
			return s
		}
	}
	return nil
}

// ByKX returns the suites of one key exchange, in default preference order.
func ByKX(k KXKind) []*Suite {
	var out []*Suite
	for _, s := range suites {
		if s.KX == k {
			out = append(out, s)
		}
	}
	return out
}
