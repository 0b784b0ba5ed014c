package pairing

// IssueTimePermitShare returns the 48-byte compressed encoding of this
// D-TA's share s_i·H1_TP(d ‖ id) of id's permit for day d: the point of
// the permit IssueTimePermit returns, without its key-file framing (and
// without the TimePermit a D-TA serving a whole deployment every day has
// no use for). Both compute with the build's pairing engine (blst when cgo
// is on; see Engine). The caller may clear the returned bytes.
func (m *MasterShare) IssueTimePermitShare(id string, day uint64) ([]byte, error) {
	if err := CheckID(id); err != nil {
		return nil, err
	}
	if day == 0 {
		return nil, ErrPermitDay
	}
	h := ePermitPoint(id, day)
	var p eG1
	eMul(&p, &m.s, h)
	defer eZeroG1(&p)
	// s_i ≠ 0 and H1 never returns the identity; defence in depth (a
	// zero MasterShare).
	if eIsIdentity(&p) {
		return nil, ErrIdentity
	}
	return eBytesG1(&p), nil
}
