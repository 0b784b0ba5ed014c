package mtls

import "github.com/milagro-go/milagro/pairing"

// One-D-TA keys: a single share combined into a key (a share itself is
// refused where a key is expected).
func combinedCS(k *pairing.CSClientKey, err error) (*pairing.CSClientKey, error) {
	if err != nil {
		return nil, err
	}
	return pairing.CombineCSClientKeys(k)
}

func combinedP2P(k *pairing.P2PKey, err error) (*pairing.P2PKey, error) {
	if err != nil {
		return nil, err
	}
	return pairing.CombineP2PKeys(k)
}

func combinedPermit(p *pairing.TimePermit, err error) (*pairing.TimePermit, error) {
	if err != nil {
		return nil, err
	}
	return pairing.CombineTimePermits(p)
}

func combinedSecret(k *pairing.CSServerSecret) *pairing.CSServerSecret {
	out, err := pairing.CombineCSServerSecrets(k)
	if err != nil {
		panic(err)
	}
	return out
}
