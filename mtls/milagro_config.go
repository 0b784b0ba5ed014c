package mtls

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"time"
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
// pairing objects are built once and shared by every handshake that uses
// them, in two places:
//
//   - Credentials that are complete by themselves (CSKey with a permit,
//     a CS server key, P2PKey) are prepared once per set of credential
//     objects, in a package-wide cache keyed by their pointers (prepCache).
//     Any Config holding the same objects shares them: a Clone, the Clone
//     that Dial makes of a Config without ServerName, and the fresh Configs
//     a GetConfigForClient may return. Entries hold the objects only weakly
//     and go away when one of them is garbage collected. Config is
//     read-only once used (api.go), so a pointer always means the same key.
//
//   - A PIN token is only a key once the PIN is added, and the PIN belongs
//     to the Config that asked for it, not to the token: two Configs with
//     the same token and different GetPIN callbacks must not share a PIN.
//     So the PIN is asked for and the key recovered (CSToken + PIN) in a
//     holder that belongs to the Config, like crypto/tls's session ticket
//     keys: Config.milagro, created on first use or by the first Clone
//     (milagroHolder), and shared by every Clone made afterwards, so a
//     Clone made before the first handshake shares it too. The client
//     prepared from the recovered key (and permit) is then cached like a
//     CSKey's, under that holder-owned key object; it lives as long as the
//     holder.
//
// GetPIN is therefore called once per holder (once per Config and its
// Clones, for as long as CSToken stays the same) the first time a handshake
// needs the CS credentials; a Clone with other CSPermits reuses the PIN.
// An error from GetPIN is not cached: the next handshake asks again. A wrong
// PIN is not detectable here (that is the point of the token): it is kept
// like a right one and the server refuses every handshake with
// access_denied; to retry with another PIN, use a new Config (not a Clone of
// this one), or a Clone with a fresh copy of the token. The holder keeps the
// recovered key (K = token + PIN·A) while the Config lives; the prepared
// client holds K + permit anyway, so this keeps no more secret than before.

// milagroPrepared is the per-Config holder (see above). Configs that share
// it (a Config and its Clones) share its PIN.
type milagroPrepared struct {
	mu     sync.Mutex           // held while GetPIN runs: concurrent first handshakes wait for one call
	token  *pairing.PINToken    // the CSToken pinKey was recovered from
	pinKey *pairing.CSClientKey // token + PIN; nil until GetPIN succeeds

	guardsOnce sync.Once
	guards     *Guards // admission guards when Config.Guards is nil (milagro_guard.go)

	tickets ticketKeyState // session ticket keys (ticket.go)
}

// milagroHolderMu guards Config.milagro in every Config. It is held only to
// read or create the pointer, never while preparing.
var milagroHolderMu sync.Mutex

// milagroHolder returns c's holder, creating it on first use. Clone calls it
// before copying c, so that the copy shares the holder.
func (c *Config) milagroHolder() *milagroPrepared {
	milagroHolderMu.Lock()
	defer milagroHolderMu.Unlock()
	if c.milagro == nil {
		c.milagro = new(milagroPrepared)
	}
	return c.milagro
}

// keyFor returns the key recovered from token with the PIN from get, asking
// for the PIN only the first time (or after an error, or for a new token).
func (h *milagroPrepared) keyFor(token *pairing.PINToken, get func() (uint32, error)) (*pairing.CSClientKey, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.pinKey != nil && h.token == token {
		return h.pinKey, nil
	}
	pin, err := get()
	if err != nil {
		return nil, fmt.Errorf("GetPIN: %w", err)
	}
	if pin > pairing.MaxPIN {
		return nil, fmt.Errorf("GetPIN returned %d: %w", pin, pairing.ErrInvalidPIN)
	}
	key, err := token.AddPIN(pin)
	if err != nil {
		return nil, err
	}
	// A Clone with another token replaces the key; the old one is not
	// Zeroized here because a handshake may be preparing a client from it.
	h.token, h.pinKey = token, key
	return key, nil
}

// serverIdentity is the server identity a client expects (ServerIdentity),
// checked.
func (c *Config) serverIdentity() (string, error) {
	a := c.ServerIdentity
	if a != "" {
		if err := pairing.CheckID(a); err != nil {
			return "", fmt.Errorf("mtls: Config.ServerIdentity: %w", err)
		}
	}
	return a, nil
}

// milagroClientKX adds the client's Milagro CS / P2P credentials to kx.
func (c *Config) milagroClientKX(kx *ciphersuite.ClientConfig) error {
	idS, err := c.serverIdentity()
	if err != nil {
		return err
	}
	if c.CSKey != nil || c.CSToken != nil {
		if err := c.checkCSClientConfig(); err != nil {
			return err
		}
		// The permit for the client's day is picked now, as the handshake
		// starts, so configuration problems fail before any byte is sent.
		cs, err := c.csClientFor(kx.Time())
		if err != nil {
			return err
		}
		kx.CS = &ciphersuite.CSClient{Client: cs, ServerID: idS}
	} else if len(c.CSPermits) > 0 || c.GetCSPermit != nil {
		return errors.New("mtls: Config.CSPermits or GetCSPermit is set without CSKey or CSToken")
	}
	if c.P2PKey != nil {
		if idS == "" {
			return errors.New("mtls: a Milagro P2P client needs Config.ServerIdentity: the server identity it accepts")
		}
		v, err := preparedFor(prepKey{p2p: weak.Make(c.P2PKey)}, func() (any, error) {
			return pairing.NewP2PClient(c.P2PKey)
		})
		if err != nil {
			return fmt.Errorf("mtls: Config.P2PKey: %w", err)
		}
		kx.P2P = &ciphersuite.P2PClient{Client: v.(*pairing.P2PClient), ServerID: idS}
	}
	return nil
}

// checkCSClientConfig reports configuration mistakes before a handshake.
func (c *Config) checkCSClientConfig() error {
	switch {
	case c.CSKey != nil && c.CSToken != nil:
		return errors.New("mtls: set Config.CSKey or Config.CSToken (with GetPIN), not both")
	case c.CSKey == nil && c.GetPIN == nil:
		return errors.New("mtls: Config.CSToken needs Config.GetPIN to supply the PIN")
	}
	return nil
}

// permitFor picks the permit for the client's day at now (docs/protocol.md §3.2: the
// client switches on its own clock): the one for day(now), else one for a
// neighbouring day the server accepts within the default skew. No permits
// configured: nil.
func (c *Config) permitFor(now time.Time) (*pairing.TimePermit, error) {
	today := pairing.Day(now)
	if get := c.GetCSPermit; get != nil {
		p, err := get(today)
		if err != nil {
			return nil, fmt.Errorf("GetCSPermit(%d): %w", today, err)
		}
		return p, nil // the callback's choice, even another day's
	}
	held := c.CSPermits
	if len(held) == 0 {
		return nil, nil
	}
	for _, d := range append([]uint64{today}, pairing.PermitDays(now, pairing.DefaultClockSkew)...) {
		for _, p := range held {
			if p != nil && p.Day() == d {
				return p, nil
			}
		}
	}
	days := make([]string, 0, len(held))
	for _, p := range held {
		if p != nil {
			days = append(days, fmt.Sprintf("%d (%s)", p.Day(), pairing.FormatDay(p.Day())))
		}
	}
	return nil, fmt.Errorf("no time permit for today, day %d (%s) by this machine's clock; held: %s — renew the permits (mtls keys renew) or check the clock",
		today, pairing.FormatDay(today), strings.Join(days, ", "))
}

// csClientFor returns the prepared CS client for a handshake at now.
func (c *Config) csClientFor(now time.Time) (*pairing.CSClient, error) {
	permit, err := c.permitFor(now)
	if err != nil {
		return nil, fmt.Errorf("mtls: Milagro CS client (Config.CSPermits/GetCSPermit): %w", err)
	}
	return c.preparedCSClient(permit)
}

func (c *Config) preparedCSClient(permit *pairing.TimePermit) (*pairing.CSClient, error) {
	key := c.CSKey
	switch {
	case key != nil && c.CSToken != nil:
		return nil, errors.New("mtls: set Config.CSKey or Config.CSToken (with GetPIN), not both")
	case key == nil:
		if c.GetPIN == nil {
			return nil, errors.New("mtls: Config.CSToken needs Config.GetPIN to supply the PIN")
		}
		// The key recovered with this Config's PIN, owned by its holder:
		// the client prepared from it below is shared only by the Configs
		// sharing the holder.
		k, err := c.milagroHolder().keyFor(c.CSToken, c.GetPIN)
		if err != nil {
			return nil, fmt.Errorf("mtls: Milagro CS client credentials: %w", err)
		}
		key = k
	}
	v, err := preparedFor(prepKey{csKey: weak.Make(key), permit: weak.Make(permit)}, func() (any, error) {
		return pairing.NewCSClient(key, permit)
	})
	if err != nil {
		if errors.Is(err, pairing.ErrMismatch) && permit != nil {
			return nil, fmt.Errorf("mtls: Config.CSPermits: the time permit (for %q, day %d) does not belong to the CS key: %w", permit.ID(), permit.Day(), err)
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
	if len(c.CSServerKeys) > 0 || c.GetCSServerKey != nil {
		mode := c.PermitMode
		get, err := c.csServerLookup()
		if err != nil {
			return err
		}
		kx.CS = &ciphersuite.CSServer{
			GetServer: get,
			ClockSkew: c.ClockSkew, // 0: pairing.DefaultClockSkew
			Permits:   mode,
		}
	}
	if key := c.P2PKey; key != nil {
		v, err := preparedFor(prepKey{p2p: weak.Make(key), p2pServer: true}, func() (any, error) {
			return pairing.NewP2PServer(key)
		})
		if err != nil {
			return fmt.Errorf("mtls: Config.P2PKey: %w", err)
		}
		kx.P2P = &ciphersuite.P2PServer{Server: v.(*pairing.P2PServer)}
	}
	return nil
}

// prepKey names one prepared pairing object by the credential objects it
// was made from (a zero field: not used). A PIN token's client is keyed by
// the key its holder recovered, so it never matches another holder's.
type prepKey struct {
	csKey     weak.Pointer[pairing.CSClientKey]
	permit    weak.Pointer[pairing.TimePermit]
	secret    weak.Pointer[pairing.CSServerSecret]
	p2p       weak.Pointer[pairing.P2PKey]
	p2pServer bool
}

type prepEntry struct {
	mu   sync.Mutex
	done bool
	val  any
	// cleanups drop the entry when one of its credential objects is
	// collected (guarded by prepCache).
	cleanups []runtime.Cleanup
}

// prepCache is the package-wide cache of prepared credentials.
var prepCache struct {
	sync.Mutex
	m map[prepKey]*prepEntry
}

// preparedFor returns the object built by build for key k, building it at
// most once (concurrent first callers wait for one build; a failed build is
// retried by the next caller). The caller holds k's credential objects; the
// entry goes away when any of them is collected.
func preparedFor(k prepKey, build func() (any, error)) (any, error) {
	prepCache.Lock()
	e := prepCache.m[k]
	if e == nil {
		if prepCache.m == nil {
			prepCache.m = make(map[prepKey]*prepEntry)
		}
		e = &prepEntry{}
		prepCache.m[k] = e
		watch(e, k.csKey, k)
		watch(e, k.permit, k)
		watch(e, k.secret, k)
		watch(e, k.p2p, k)
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

// watch arranges for the entry e for k to be dropped when the object behind
// p (if any) is collected. k holds only weak pointers, so it does not keep
// the object alive.
func watch[T any](e *prepEntry, p weak.Pointer[T], k prepKey) {
	if obj := p.Value(); obj != nil {
		e.cleanups = append(e.cleanups, runtime.AddCleanup(obj, dropPrepared, k))
	}
}

// dropPrepared forgets the entry for k once one of its credential objects
// is unreachable, and cancels the cleanups registered on the others. It does
// not Zeroize the prepared object: a handshake that started from a Config
// made on the fly (GetConfigForClient) may still be using it; the garbage
// collector reclaims it with the handshake.
func dropPrepared(k prepKey) {
	prepCache.Lock()
	e := prepCache.m[k]
	delete(prepCache.m, k)
	var cleanups []runtime.Cleanup
	if e != nil {
		cleanups = e.cleanups
	}
	prepCache.Unlock()
	for _, c := range cleanups {
		c.Stop()
	}
}
