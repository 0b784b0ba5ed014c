package pairing

import "bytes"

// csDecoded keeps U and V decoded by DecodeElements, with the bytes they
// were decoded from.
type csDecoded struct {
	uB, vB []byte
	u, v   eG1
}

// DecodeElements decodes U and V strictly (length, canonical form, curve,
// subgroup, not the identity) and keeps the result for Accept/Verify, so a
// server can order its checks as docs/protocol.md §3.4 does (invalid elements before
// policy) without decoding twice.
func (h *CSHello) DecodeElements() error {
	u, err := eDecodeG1(h.U)
	if err != nil {
		return decodeErr("U", err)
	}
	v, err := eDecodeG1(h.V)
	if err != nil {
		return decodeErr("V", err)
	}
	h.dec = &csDecoded{uB: bytes.Clone(h.U), vB: bytes.Clone(h.V), u: *u, v: *v}
	return nil
}

// elements returns U and V, decoded now unless DecodeElements already did
// for the same bytes.
func (h *CSHello) elements() (u, v *eG1, err error) {
	if d := h.dec; d != nil && bytes.Equal(d.uB, h.U) && bytes.Equal(d.vB, h.V) {
		uc, vc := d.u, d.v
		return &uc, &vc, nil
	}
	if u, err = eDecodeG1(h.U); err != nil {
		return nil, nil, err
	}
	if v, err = eDecodeG1(h.V); err != nil {
		return nil, nil, err
	}
	return u, v, nil
}
