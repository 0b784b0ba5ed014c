package dtawire

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/milagro-go/milagro/pairing"
)

// Kind is what an identity enrolls for: a CS client key, a CS server key or
// a P2P key.
type Kind string

// The three kinds of enrollment.
const (
	KindClient Kind = "client"
	KindServer Kind = "server"
	KindP2P    Kind = "p2p"
)

// ParseKind parses "client", "server" or "p2p".
func ParseKind(s string) (Kind, error) {
	switch k := Kind(s); k {
	case KindClient, KindServer, KindP2P:
		return k, nil
	}
	return "", fmt.Errorf("dta: unknown kind %q: want client, server or p2p", s)
}

// CheckIdentity checks an identity for a kind: a valid pairing identity
// (docs/protocol.md §2); a server may also have the empty identity (the deployment-wide
// server key).
func CheckIdentity(kind Kind, id string) error {
	if kind == KindServer && id == "" {
		return nil
	}
	if err := pairing.CheckID(id); err != nil {
		return fmt.Errorf("dta: identity %q: %w", CutID(id), err)
	}
	return nil
}

// SecretSize is the size of enrollment-code and renewal secrets.
const SecretSize = 32

// CodeID names an enrollment code (8 random bytes, 16 hex digits).
type CodeID [8]byte

func (c CodeID) String() string { return hex.EncodeToString(c[:]) }

// ParseCodeID parses 16 lower-case hex digits.
func ParseCodeID(s string) (CodeID, error) {
	var c CodeID
	if len(s) != 16 || strings.ToLower(s) != s {
		return c, errors.New("dta: a code id is 16 lower-case hex digits")
	}
	if _, err := hex.Decode(c[:], []byte(s)); err != nil {
		return c, errors.New("dta: a code id is 16 lower-case hex digits")
	}
	return c, nil
}

// EnrollCode is a one-time enrollment code, written for people and files as
// mtls1-enroll:<fp>:<code_id>:<secret>.
type EnrollCode struct {
	DTA    pairing.Fingerprint
	ID     CodeID
	Secret [SecretSize]byte
}

const enrollCodePrefix = "mtls1-enroll:"

// String returns the code in its written form. It contains the secret.
func (c *EnrollCode) String() string {
	return enrollCodePrefix + c.DTA.String() + ":" + c.ID.String() + ":" +
		base64.RawURLEncoding.EncodeToString(c.Secret[:])
}

// ParseEnrollCode parses mtls1-enroll:<fp>:<code_id>:<secret>.
func ParseEnrollCode(s string) (*EnrollCode, error) {
	bad := func(why string) error {
		return fmt.Errorf("dta: malformed enrollment code (want mtls1-enroll:<16 hex>:<16 hex>:<43 base64url>): %s", why)
	}
	if len(s) > 128 {
		return nil, bad("too long")
	}
	rest, ok := strings.CutPrefix(s, enrollCodePrefix)
	if !ok {
		return nil, bad("missing the mtls1-enroll: prefix")
	}
	parts := strings.Split(rest, ":")
	if len(parts) != 3 {
		return nil, bad("wrong number of fields")
	}
	var c EnrollCode
	var err error
	if c.DTA, err = pairing.ParseFingerprint(parts[0]); err != nil || strings.ToLower(parts[0]) != parts[0] {
		return nil, bad("D-TA fingerprint")
	}
	if c.ID, err = ParseCodeID(parts[1]); err != nil {
		return nil, bad("code id")
	}
	sec, err := DecodeSecret(parts[2])
	if err != nil {
		return nil, bad("secret")
	}
	c.Secret = sec
	return &c, nil
}

// DecodeSecret decodes a 32-byte base64url secret without padding,
// canonically (re-encoding gives the same string).
func DecodeSecret(s string) ([SecretSize]byte, error) {
	var out [SecretSize]byte
	if len(s) != base64.RawURLEncoding.EncodedLen(SecretSize) {
		return out, errors.New("dta: a secret is 32 bytes of base64url without padding")
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil || len(b) != SecretSize {
		return out, errors.New("dta: a secret is 32 bytes of base64url without padding")
	}
	copy(out[:], b)
	clear(b)
	return out, nil
}

// PSKIdentity is a parsed PSK identity: an enrollment code
// (enroll:<code_id>) or a renewal credential (renew:<kind>:<identity>).
type PSKIdentity struct {
	Enroll   bool
	Code     CodeID // Enroll
	Kind     Kind   // renewal
	Identity string // renewal: everything after the second colon
}

// String returns the wire form.
func (p PSKIdentity) String() string {
	if p.Enroll {
		return "enroll:" + p.Code.String()
	}
	return "renew:" + string(p.Kind) + ":" + p.Identity
}

// ParsePSKIdentity parses a PSK identity received from a peer.
func ParsePSKIdentity(s string) (PSKIdentity, error) {
	if rest, ok := strings.CutPrefix(s, "enroll:"); ok {
		c, err := ParseCodeID(rest)
		if err != nil {
			return PSKIdentity{}, err
		}
		return PSKIdentity{Enroll: true, Code: c}, nil
	}
	if rest, ok := strings.CutPrefix(s, "renew:"); ok {
		k, id, ok := strings.Cut(rest, ":")
		if !ok {
			return PSKIdentity{}, errors.New("dta: a renewal PSK identity is renew:<kind>:<identity>")
		}
		kind, err := ParseKind(k)
		if err != nil {
			return PSKIdentity{}, err
		}
		if err := CheckIdentity(kind, id); err != nil {
			return PSKIdentity{}, err
		}
		return PSKIdentity{Kind: kind, Identity: id}, nil
	}
	return PSKIdentity{}, errors.New("dta: unknown PSK identity type (want enroll:… or renew:…)")
}

// KeyID names one renewal secret without revealing it: the client sends it
// as its TLS server_name so that, during a rotation, the D-TA knows whether
// the old or the new secret is the PSK (the PSK identity is the same).
func KeyID(secret []byte) string {
	h := sha256.New()
	h.Write([]byte("MTLS1-DTA-KEYID"))
	h.Write(secret)
	return "k" + hex.EncodeToString(h.Sum(nil)[:8]) + ".dta.invalid"
}

// MaxLoggedID is how much of a peer-chosen identity a log line or an error
// message shows.
const MaxLoggedID = 64

// CutID prepares a peer-chosen identity for a log line: at most
// MaxLoggedID bytes (on a rune boundary), marked when cut.
func CutID(s string) string {
	if len(s) <= MaxLoggedID {
		return s
	}
	i := MaxLoggedID
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + fmt.Sprintf("…(%d bytes)", len(s))
}
