package ciphersuite

import (
	"golang.org/x/crypto/cryptobyte"

	"github.com/milagro-go/milagro/pairing"
)

// Parsers and builders for the Milagro messages (docs/protocol.md §3.3). The parsers check
// only the framing (lengths, bounds, nothing trailing, UTF-8 identities);
// group elements are validated by package pairing when they are used.

// readWireID reads identity<1..2^10>.
func readWireID(in *cryptobyte.String, where string) (string, error) {
	var id cryptobyte.String
	if !in.ReadUint16LengthPrefixed(&id) {
		return "", Errorf(AlertDecodeError, "ciphersuite: truncated identity in %s", where)
	}
	if len(id) < 1 || len(id) > pairing.MaxIDLen {
		return "", Errorf(AlertDecodeError, "ciphersuite: identity in %s is %d bytes, must be 1..%d", where, len(id), pairing.MaxIDLen)
	}
	if err := checkWireID(id, where); err != nil {
		return "", err
	}
	return string(id), nil
}

func addWireID(b *cryptobyte.Builder, id string) {
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(id)) })
}

func checkLocalID(id string) error {
	if len(id) < 1 || len(id) > pairing.MaxIDLen {
		return Errorf(AlertInternalError, "ciphersuite: configuration error: identity is %d bytes, must be 1..%d", len(id), pairing.MaxIDLen)
	}
	return nil
}

// ParseCSResumeHello parses the milagro_cs_resume ClientHello extension:
// server_identity<0..2^10> (empty: the deployment-wide CS key), nothing
// after it. A bad length is decode_error, an identity that is not valid
// UTF-8 or breaks the identity rules illegal_parameter.
func ParseCSResumeHello(data []byte) (serverID string, err error) {
	const where = "milagro_cs_resume extension"
	in := cryptobyte.String(data)
	var sid cryptobyte.String
	if !in.ReadUint16LengthPrefixed(&sid) {
		return "", Errorf(AlertDecodeError, "ciphersuite: truncated server_identity in the %s (%d bytes)", where, len(data))
	}
	if len(sid) > pairing.MaxIDLen {
		return "", Errorf(AlertDecodeError, "ciphersuite: server_identity in the %s is %d bytes, at most %d", where, len(sid), pairing.MaxIDLen)
	}
	if !in.Empty() {
		return "", Errorf(AlertDecodeError, "ciphersuite: %d trailing bytes in the %s", len(in), where)
	}
	if len(sid) > 0 {
		if err := checkWireID(sid, where); err != nil {
			return "", err
		}
	}
	return string(sid), nil
}

// MarshalCSResumeHello builds the milagro_cs_resume extension body for
// the server identity serverID.
func MarshalCSResumeHello(serverID string) ([]byte, error) {
	if len(serverID) > pairing.MaxIDLen {
		return nil, Errorf(AlertInternalError, "ciphersuite: configuration error: server identity is %d bytes, at most %d", len(serverID), pairing.MaxIDLen)
	}
	var b cryptobyte.Builder
	addWireID(&b, serverID)
	return b.Bytes()
}

// parseCSHello parses the milagro_cs ClientHello extension.
func parseCSHello(data []byte) (*pairing.CSHello, error) {
	const where = "milagro_cs extension"
	in := cryptobyte.String(data)
	id, err := readWireID(&in, where)
	if err != nil {
		return nil, err
	}
	h := &pairing.CSHello{ID: id}
	var u, v []byte
	if !in.ReadUint64(&h.Day) || !in.ReadUint64(&h.Time) ||
		!in.ReadBytes(&u, pairing.G1Size) || !in.ReadBytes(&v, pairing.G1Size) {
		return nil, Errorf(AlertDecodeError, "ciphersuite: truncated %s (%d bytes)", where, len(data))
	}
	var sid cryptobyte.String
	if !in.ReadUint16LengthPrefixed(&sid) {
		return nil, Errorf(AlertDecodeError, "ciphersuite: truncated server_identity in the %s", where)
	}
	if len(sid) > pairing.MaxIDLen {
		return nil, Errorf(AlertDecodeError, "ciphersuite: server_identity in the %s is %d bytes, at most %d", where, len(sid), pairing.MaxIDLen)
	}
	if !in.Empty() {
		return nil, Errorf(AlertDecodeError, "ciphersuite: %d trailing bytes in the %s", len(in), where)
	}
	h.U = append([]byte(nil), u...)
	h.V = append([]byte(nil), v...)
	h.ServerID = string(sid)
	return h, nil
}

// marshalCSHello builds the milagro_cs extension body.
func marshalCSHello(h *pairing.CSHello) ([]byte, error) {
	if err := checkLocalID(h.ID); err != nil {
		return nil, err
	}
	if len(h.U) != pairing.G1Size || len(h.V) != pairing.G1Size {
		return nil, Errorf(AlertInternalError, "ciphersuite: milagro_cs: U or V has the wrong size")
	}
	var b cryptobyte.Builder
	addWireID(&b, h.ID)
	b.AddUint64(h.Day)
	b.AddUint64(h.Time)
	b.AddBytes(h.U)
	b.AddBytes(h.V)
	if len(h.ServerID) > pairing.MaxIDLen {
		return nil, Errorf(AlertInternalError, "ciphersuite: configuration error: server identity is %d bytes, at most %d", len(h.ServerID), pairing.MaxIDLen)
	}
	addWireID(&b, h.ServerID)
	out, err := b.Bytes()
	if err != nil {
		return nil, Errorf(AlertInternalError, "ciphersuite: building milagro_cs: %v", err)
	}
	return out, nil
}

// parseCSElement parses a CS ServerKeyExchange (W[48]) or ClientKeyExchange
// (R[48]) body.
func parseCSElement(body []byte, msg, name string) ([]byte, error) {
	if len(body) < pairing.G1Size {
		return nil, Errorf(AlertDecodeError, "ciphersuite: Milagro CS %s is %d bytes, want %s[%d]", msg, len(body), name, pairing.G1Size)
	}
	if len(body) > pairing.G1Size {
		return nil, Errorf(AlertDecodeError, "ciphersuite: %d trailing bytes in Milagro CS %s", len(body)-pairing.G1Size, msg)
	}
	return body, nil
}

// parseP2PServerKX parses identity<1..2^10> ‖ X_S[48].
func parseP2PServerKX(body []byte) (idS string, xS []byte, err error) {
	const where = "Milagro P2P ServerKeyExchange"
	in := cryptobyte.String(body)
	if idS, err = readWireID(&in, where); err != nil {
		return "", nil, err
	}
	if !in.ReadBytes(&xS, pairing.G1Size) {
		return "", nil, Errorf(AlertDecodeError, "ciphersuite: truncated X_S in %s", where)
	}
	if !in.Empty() {
		return "", nil, Errorf(AlertDecodeError, "ciphersuite: %d trailing bytes in %s", len(in), where)
	}
	return idS, xS, nil
}

func marshalP2PServerKX(idS string, xS []byte) ([]byte, error) {
	if err := checkLocalID(idS); err != nil {
		return nil, err
	}
	var b cryptobyte.Builder
	addWireID(&b, idS)
	b.AddBytes(xS)
	out, err := b.Bytes()
	if err != nil {
		return nil, Errorf(AlertInternalError, "ciphersuite: building P2P ServerKeyExchange: %v", err)
	}
	return out, nil
}

// parseP2PClientKX parses identity<1..2^10> ‖ W_C[48] ‖ Y_C[96].
func parseP2PClientKX(body []byte) (idC string, wC, yC []byte, err error) {
	const where = "Milagro P2P ClientKeyExchange"
	in := cryptobyte.String(body)
	if idC, err = readWireID(&in, where); err != nil {
		return "", nil, nil, err
	}
	if !in.ReadBytes(&wC, pairing.G1Size) || !in.ReadBytes(&yC, pairing.G2Size) {
		return "", nil, nil, Errorf(AlertDecodeError, "ciphersuite: truncated W_C or Y_C in %s", where)
	}
	if !in.Empty() {
		return "", nil, nil, Errorf(AlertDecodeError, "ciphersuite: %d trailing bytes in %s", len(in), where)
	}
	return idC, wC, yC, nil
}

func marshalP2PClientKX(idC string, wC, yC []byte) ([]byte, error) {
	if err := checkLocalID(idC); err != nil {
		return nil, err
	}
	var b cryptobyte.Builder
	addWireID(&b, idC)
	b.AddBytes(wC)
	b.AddBytes(yC)
	out, err := b.Bytes()
	if err != nil {
		return nil, Errorf(AlertInternalError, "ciphersuite: building P2P ClientKeyExchange: %v", err)
	}
	return out, nil
}
