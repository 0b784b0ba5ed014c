package dta

import (
	"fmt"

	"github.com/milagro-go/milagro/dta/dtawire"
	"github.com/milagro-go/milagro/pairing"
)

// issueShare issues this D-TA's share for (kind, id) and returns the wire body.
func issueShare(m *pairing.MasterShare, kind dtawire.Kind, id string) (string, error) {
	var k interface{ MarshalBinary() ([]byte, error) }
	var err error
	switch kind {
	case dtawire.KindClient:
		k, err = m.IssueCSClientKey(id)
	case dtawire.KindServer:
		k, err = m.IssueCSServerKey(id)
	case dtawire.KindP2P:
		k, err = m.IssueP2PKey(id)
	default:
		return "", fmt.Errorf("dta: unknown kind %q", kind)
	}
	if err != nil {
		return "", err
	}
	enc, err := k.MarshalBinary()
	if err != nil {
		return "", err
	}
	defer clear(enc)
	if z, ok := k.(interface{ Zeroize() }); ok {
		defer z.Zeroize()
	}
	return dtawire.ShareBody(enc, dtawire.ShareSize(kind)), nil
}

// issuePermit issues this D-TA's permit share for (id, day), with the
// build's pairing engine (blst when cgo is on): it is the work of every
// permit request.
func issuePermit(m *pairing.MasterShare, id string, day uint64) (dtawire.PermitJSON, error) {
	enc, err := m.IssueTimePermitShare(id, day)
	if err != nil {
		return dtawire.PermitJSON{}, err
	}
	defer clear(enc)
	return dtawire.PermitJSON{Day: day, Share: dtawire.ShareBody(enc, pairing.G1Size)}, nil
}
