package mtls

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"unsafe"
	"weak"

	"github.com/milagro-go/milagro/ciphersuite"
	"github.com/milagro-go/milagro/pairing"
)

// Milagro credential mapping, called by clientHandshakeConfig /
// serverHandshakeConfig in config.go for every handshake.
//
// Preparing a Milagro credential is expensive (a CS client computes e(K, Q);
// servers precompute Miller-loop lines and keep a cache of per-identity
// points), and a PIN token needs the PIN from GetPIN. So the prepared
// pairing objects are built once and shared by every handshake that uses the
// same credentials. They are cached by the identity of the credential
// objects (the *pairing.CSClientKey, *PINToken, *TimePermit,
// *CSServerSecret, *P2PKey pointers, plus the GetPIN callback for a token)
// rather than by the *Config, because Dial clones a Config that has no
// ServerName and GetConfigForClient may return fresh Configs: both still
// reuse the prepared objects. Entries hold the keys only weakly and are
// dropped when the key object is garbage collected. Config is read-only
// once used (api.go), so a credential pointer always means the same key.
//
// GetPIN is therefore called once per (CSToken, CSPermit, GetPIN) — in
// practice once per Config and its clones — the first time a handshake
// needs the CS credentials. An error from GetPIN is not cached: the next
// handshake asks again. A wrong PIN is not detectable here (that is the
// point of the token): it is cached like a right one and the server refuses
// every handshake with access_denied; to retry with another PIN, use a new
// Config with another GetPIN callback (or a fresh copy of the token).

// milagroClientKX adds the client's Milagro CS / P2P credentials to kx.
func (c *Config) milagroClientKX(kx *ciphersuite.ClientConfig) error {
	if c.CSKey != nil || c.CSToken != nil {
		cs, err := c.preparedCSClient()
		if err != nil {
			return err
		}
		kx.CS = &ciphersuite.CSClient{Client: cs}
	} else if c.CSPermit != nil {
		return errors.New("mtls: Config.CSPermit is set without CSKey or CSToken")
	}
	if c.P2PKey != nil {
		if c.ExpectedServerIdentity == "" {
			return errors.New("mtls: a Milagro P2P client needs Config.ExpectedServerIdentity (the server identity it accepts)")
		}
		if err := pairing.CheckID(c.ExpectedServerIdentity); err != nil {
			return fmt.Errorf("mtls: Config.ExpectedServerIdentity: %w", err)
		}
		v, err := preparedFor(c.P2PKey, prepKey{p2p: weak.Make(c.P2PKey)}, func() (any, error) {
			return pairing.NewP2PClient(c.P2PKey)
		})
		if err != nil {
			return fmt.Errorf("mtls: Config.P2PKey: %w", err)
		}
		kx.P2P = &ciphersuite.P2PClient{Client: v.(*pairing.P2PClient), ExpectedServerID: c.ExpectedServerIdentity}
	}
	return nil
}

func (c *Config) preparedCSClient() (*pairing.CSClient, error) {
	permit := c.CSPermit
	var v any
	var err error
	switch {
	case c.CSKey != nil && c.CSToken != nil:
		return nil, errors.New("mtls: set Config.CSKey or Config.CSToken (with GetPIN), not both")
	case c.CSKey != nil:
		key := c.CSKey
		v, err = preparedFor(key, prepKey{csKey: weak.Make(key), permit: weak.Make(permit)}, func() (any, error) {
			return pairing.NewCSClient(key, permit)
		})
	default:
		token, get := c.CSToken, c.GetPIN
		if get == nil {
			return nil, errors.New("mtls: Config.CSToken needs Config.GetPIN to supply the PIN")
		}
		k := prepKey{token: weak.Make(token), permit: weak.Make(permit), getPIN: funcIdentity(get)}
		v, err = preparedFor(token, k, func() (any, error) {
			pin, err := get()
			if err != nil {
				return nil, fmt.Errorf("GetPIN: %w", err)
			}
			if pin > pairing.MaxPIN {
				return nil, fmt.Errorf("GetPIN returned %d: %w", pin, pairing.ErrInvalidPIN)
			}
			return pairing.NewCSClientWithPIN(token, pin, permit)
		})
	}
	if err != nil {
		if errors.Is(err, pairing.ErrMismatch) && permit != nil {
			return nil, fmt.Errorf("mtls: Config.CSPermit (for %q) does not belong to the CS key: %w", permit.ID(), err)
		}
		return nil, fmt.Errorf("mtls: Milagro CS client credentials: %w", err)
	}
	return v.(*pairing.CSClient), nil
}

// milagroServerKX adds the server's Milagro CS / P2P credentials to kx.
func (c *Config) milagroServerKX(kx *ciphersuite.ServerConfig) error {
	if c.ClockSkew < 0 {
		return fmt.Errorf("mtls: Config.ClockSkew is negative (%s)", c.ClockSkew)
	}
	if sec := c.CSServerSecret; sec != nil {
		v, err := preparedFor(sec, prepKey{secret: weak.Make(sec)}, func() (any, error) {
			return pairing.NewCSServer(sec)
		})
		if err != nil {
			return fmt.Errorf("mtls: Config.CSServerSecret: %w", err)
		}
		kx.CS = &ciphersuite.CSServer{
			Server:         v.(*pairing.CSServer),
			Skew:           c.ClockSkew, // 0: pairing.DefaultSkew
			RequirePermits: c.RequirePermits,
		}
	}
	if key := c.P2PKey; key != nil {
		v, err := preparedFor(key, prepKey{p2p: weak.Make(key), p2pServer: true}, func() (any, error) {
			return pairing.NewP2PServer(key)
		})
		if err != nil {
			return fmt.Errorf("mtls: Config.P2PKey: %w", err)
		}
		kx.P2P = &ciphersuite.P2PServer{Server: v.(*pairing.P2PServer)}
	}
	return nil
}

// prepKey names one prepared pairing object by the credentials it was made from.
type prepKey struct {
	csKey     weak.Pointer[pairing.CSClientKey]
	token     weak.Pointer[pairing.PINToken]
	permit    weak.Pointer[pairing.TimePermit]
	getPIN    unsafe.Pointer
	secret    weak.Pointer[pairing.CSServerSecret]
	p2p       weak.Pointer[pairing.P2PKey]
	p2pServer bool
}

type prepEntry struct {
	mu   sync.Mutex
	done bool
	val  any
}

var prepCache struct {
	sync.Mutex
	m map[prepKey]*prepEntry
}

// preparedFor returns the object built by build for key k, building it at
// most once (concurrent first callers wait for one build; a failed build is
// retried by the next caller). The entry goes away when owner is collected.
func preparedFor[T any](owner *T, k prepKey, build func() (any, error)) (any, error) {
	prepCache.Lock()
	e := prepCache.m[k]
	if e == nil {
		if prepCache.m == nil {
			prepCache.m = make(map[prepKey]*prepEntry)
		}
		e = &prepEntry{}
		prepCache.m[k] = e
		runtime.AddCleanup(owner, dropPrepared, k)
	}
	prepCache.Unlock()

	e.mu.Lock()
	defer e.mu.Unlock()
	if e.done {
		return e.val, nil
	}
	v, err := build()
	if err != nil {
		return nil, err
	}
	e.val, e.done = v, true
	return v, nil
}

// dropPrepared forgets the entry for k once its key object is unreachable.
// It does not Zeroize the prepared object: a handshake that started from a
// Config made on the fly (GetConfigForClient) may still be using it; the
// garbage collector reclaims it with the handshake.
func dropPrepared(k prepKey) {
	prepCache.Lock()
	delete(prepCache.m, k)
	prepCache.Unlock()
}

// funcIdentity is the address of the closure behind fn: Configs that share
// a GetPIN callback (a Config and its Clone) share the prepared client, a
// Config with another callback gets its own. Holding it in the cache key
// keeps the closure alive while the entry lives, so an address is never
// reused for another callback.
func funcIdentity(fn func() (uint32, error)) unsafe.Pointer {
	return *(*unsafe.Pointer)(unsafe.Pointer(&fn))
}
