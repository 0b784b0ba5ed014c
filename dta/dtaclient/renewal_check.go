package dtaclient

import (
	"bytes"
	"errors"
	"fmt"
	"slices"

	"github.com/milagro-go/milagro/dta/dtawire"
	"github.com/milagro-go/milagro/mtls"
	"github.com/milagro-go/milagro/pairing"
)

// CheckConfig reports why this renewal file does not belong to the keys of
// cfg, the configuration of the endpoint that is to use it: server tells
// whether that endpoint is a server. A client's file (KindClient) needs
// cfg.CSKey or cfg.CSToken of its identity, a server's one of
// cfg.CSServerKeys, a P2P peer's cfg.P2PKey; and the key must come from
// exactly the D-TAs the file names (a permit from another D-TA set would
// never verify).
func (r *Renewal) CheckConfig(cfg *mtls.Config, server bool) error {
	if cfg == nil {
		return errors.New("dta: no configuration to check the renewal file against")
	}
	fps := make([]pairing.Fingerprint, 0, len(r.DTAs))
	for _, d := range r.DTAs {
		fp, err := pairing.ParseFingerprint(d.Fingerprint)
		if err != nil {
			return err
		}
		fps = append(fps, fp)
	}
	sameDTAs := func(what string, have []pairing.Fingerprint) error {
		a, b := slices.Clone(have), slices.Clone(fps)
		slices.SortFunc(a, compareFingerprints)
		slices.SortFunc(b, compareFingerprints)
		if !slices.Equal(a, b) {
			return fmt.Errorf("the file names D-TAs %s, but %s comes from %s", pairing.FormatFingerprints(fps), what, pairing.FormatFingerprints(have))
		}
		return nil
	}
	switch r.Kind {
	case dtawire.KindClient:
		if server {
			return errors.New("it is a CS client's (time permits are for clients); a server's renewal file comes from enrolling with a server code")
		}
		var id, what string
		var have []pairing.Fingerprint
		switch {
		case cfg.CSKey != nil:
			id, have, what = cfg.CSKey.ID(), cfg.CSKey.DTAs(), "the CS client key"
		case cfg.CSToken != nil:
			id, have, what = cfg.CSToken.ID(), cfg.CSToken.DTAs(), "the PIN token"
		default:
			return errors.New("time permits need the CS client key or PIN token they are for")
		}
		if id != r.Identity {
			return fmt.Errorf("the file is for %q, but %s is for %q", r.Identity, what, id)
		}
		return sameDTAs(what, have)
	case dtawire.KindServer:
		for _, k := range cfg.CSServerKeys {
			if k.ID() == r.Identity {
				return sameDTAs("the server key", k.DTAs())
			}
		}
		if !server {
			return errors.New("it is a server's; a client needs its own (kind client or p2p)")
		}
		return fmt.Errorf("it is for server identity %q, and no server key is for that identity", r.Identity)
	case dtawire.KindP2P:
		if cfg.P2PKey == nil || cfg.P2PKey.ID() != r.Identity {
			return fmt.Errorf("it is for P2P peer %q: give that peer's P2P key", r.Identity)
		}
		return sameDTAs("the P2P key", cfg.P2PKey.DTAs())
	}
	return fmt.Errorf("unknown kind %q", r.Kind)
}

func compareFingerprints(a, b pairing.Fingerprint) int { return bytes.Compare(a[:], b[:]) }
