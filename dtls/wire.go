package dtls

import (
	"errors"
	"fmt"

	"golang.org/x/crypto/cryptobyte"

	"github.com/milagro-go/milagro/pairing"
)

// Wire format of the Milagro P2P values inside the DTLS PSK exchange
// (spec dtls-p2p.md):
//
//	hint     = "MTLS1-P2P" ‖ uint16 len ‖ id_S ‖ X_S (48)
//	identity = "MTLS1-P2P" ‖ uint16 len ‖ id_C ‖ W_C (48) ‖ Y_C (96)

const p2pPrefix = "MTLS1-P2P"

// ErrMalformed is returned for a hint or identity that does not parse.
var ErrMalformed = errors.New("dtls: malformed Milagro P2P hint or identity")

// p2pHint is the server's hint: its identity and X_S.
type p2pHint struct {
	id string
	x  []byte
}

// p2pIdentity is the client's PSK identity: its identity, W_C and Y_C.
type p2pIdentity struct {
	id   string
	w, y []byte
}

func (h *p2pHint) marshal() []byte {
	var b cryptobyte.Builder
	b.AddBytes([]byte(p2pPrefix))
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(h.id)) })
	b.AddBytes(h.x)
	return b.BytesOrPanic()
}

func (i *p2pIdentity) marshal() []byte {
	var b cryptobyte.Builder
	b.AddBytes([]byte(p2pPrefix))
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(i.id)) })
	b.AddBytes(i.w)
	b.AddBytes(i.y)
	return b.BytesOrPanic()
}

// readPrefixAndID reads the fixed prefix and a valid identity.
func readPrefixAndID(s *cryptobyte.String, what string) (string, error) {
	var prefix, id []byte
	if !s.ReadBytes(&prefix, len(p2pPrefix)) || string(prefix) != p2pPrefix {
		return "", fmt.Errorf("%w: %s without the %q prefix", ErrMalformed, what, p2pPrefix)
	}
	var idb cryptobyte.String
	if !s.ReadUint16LengthPrefixed(&idb) || !idb.ReadBytes(&id, len(idb)) {
		return "", fmt.Errorf("%w: %s identity length", ErrMalformed, what)
	}
	if err := pairing.CheckID(string(id)); err != nil {
		return "", fmt.Errorf("%w: %s: %v", ErrMalformed, what, err)
	}
	return string(id), nil
}

// parseHint parses a server hint; X_S is checked for length only (the
// caller decodes it strictly, in the pairing step).
func parseHint(b []byte) (*p2pHint, error) {
	s := cryptobyte.String(b)
	id, err := readPrefixAndID(&s, "hint")
	if err != nil {
		return nil, err
	}
	h := &p2pHint{id: id}
	if !s.ReadBytes(&h.x, pairing.G1Size) || !s.Empty() {
		return nil, fmt.Errorf("%w: hint X_S length or trailing bytes", ErrMalformed)
	}
	return h, nil
}

// parseIdentity parses a client identity; W_C and Y_C are checked for
// length only (the pairing step decodes them strictly).
func parseIdentity(b []byte) (*p2pIdentity, error) {
	s := cryptobyte.String(b)
	id, err := readPrefixAndID(&s, "identity")
	if err != nil {
		return nil, err
	}
	i := &p2pIdentity{id: id}
	if !s.ReadBytes(&i.w, pairing.G1Size) || !s.ReadBytes(&i.y, pairing.G2Size) || !s.Empty() {
		return nil, fmt.Errorf("%w: identity W_C/Y_C length or trailing bytes", ErrMalformed)
	}
	return i, nil
}
