package main

// Milagro credential flags of `mtls server`, `mtls client` and `mtls proxy`
// (through credentialFlags in creds.go):
//
//	--key F             client: CS client key or PIN token; server: CS server key (repeatable, one per server identity)
//	--pin N             client: the PIN for a PIN token (env MTLS_PIN)
//	--permit F          client: time permit (repeatable: today's and tomorrow's)
//	--p2p-key F         either side: P2P key
//	--id ID             either side: check that the key files are for ID
//	--server-id ID      client: the server identity expected (CS id_S; P2P id_S, required with --p2p-key)
//	--permits MODE      server: required (the default) or optional (--require-permits: required)
//	--clock-skew D      server: accepted CS client clock difference
//	--lockout-*         server: lockout after repeated failed CS proofs
//	--allow ID          server: admit only these peer identities (repeatable)
//	--renewal F         either side: stay current with the D-TAs (renewal_flag.go)
//	--pq MODE           either side: the post-quantum hybrid, off, prefer (default) or require
//
// The proxy defines --allow itself (its ACL, with --allow-prefix, …). Its
// flag builder keeps the first definition of a name, so ours is used there,
// with the same meaning; applyMilagro leaves the check to the proxy's ACL
// (which also applies --allow-prefix and --allow-file) there.

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/milagro-go/milagro/internal/admission"
	"github.com/milagro-go/milagro/mtls"
	"github.com/milagro-go/milagro/pairing"
	"github.com/milagro-go/milagro/proxy"
)

// The hooks are set during package variable initialization, which runs
// before every init(): client.go builds its command in an init() that runs
// before this file's would.
var _ = setMilagroHooks()

func setMilagroHooks() bool {
	milagroFlags = milagroCredentialFlags
	applyMilagro = applyMilagroFlags
	hasMilagroCredentials = func(c *cli.Context, server bool) bool {
		return c.IsSet("key") || c.IsSet("p2p-key")
	}
	return true
}

func milagroCredentialFlags(server bool) []cli.Flag {
	const cat = "Milagro credentials"
	if server {
		return []cli.Flag{
			&cli.StringSliceFlag{Name: "key", Category: cat, Usage: "Milagro CS server key `FILE` (from `mtls keys combine`); repeat for several server identities — a client's server_identity picks the key"},
			&cli.StringFlag{Name: "p2p-key", Category: cat, Usage: "Milagro P2P key `FILE` of this peer"},
			&cli.StringFlag{Name: "id", Category: cat, Usage: "check that --p2p-key is for `IDENTITY`"},
			&cli.StringFlag{Name: "permits", Category: cat, Value: "required", Usage: "Milagro CS time permits: `MODE` required (revocation works only then) or optional (migration: clients with or without a permit; \"off\" is the same)"},
			&cli.BoolFlag{Name: "require-permits", Category: cat, Usage: "same as --permits required (the default)"},
			&cli.DurationFlag{Name: "clock-skew", Category: cat, Value: pairing.DefaultClockSkew, Usage: "accepted difference between a CS client's clock and ours"},
			&cli.IntFlag{Name: "lockout-threshold", Category: cat, Value: admission.DefaultSourceThreshold, Usage: "refuse a CS identity from one source (an IPv4 address or IPv6 /64) after `N` consecutive failed proofs from it (wrong PIN or key); 0 disables the lockout"},
			&cli.IntFlag{Name: "lockout-identity-threshold", Category: cat, Value: admission.DefaultIdentityThreshold, Usage: "refuse a CS identity from every source after `N` consecutive failed proofs from all sources together"},
			&cli.DurationFlag{Name: "lockout-backoff", Category: cat, Value: admission.DefaultBackoff, Usage: "first lockout; each further one doubles it"},
			&cli.DurationFlag{Name: "lockout-max", Category: cat, Value: admission.DefaultMaxBackoff, Usage: "longest lockout"},
			&cli.StringSliceFlag{Name: "allow", Category: "access control", Usage: "admit only the authenticated peer identity `ID` (repeatable; default: every authenticated peer)"},
			&cli.BoolFlag{Name: "allow-all", Category: "access control", Usage: "admit every authenticated identity (exclusive with --allow)"},
			renewalFlag(),
			pqFlag(),
		}
	}
	return []cli.Flag{
		&cli.StringFlag{Name: "key", Category: cat, Usage: "Milagro CS client key or PIN token `FILE`"},
		&cli.StringFlag{Name: "pin", Category: cat, EnvVars: []string{"MTLS_PIN"}, Usage: "the `PIN` for a PIN token given as --key"},
		&cli.StringSliceFlag{Name: "permit", Category: cat, Usage: "Milagro time permit `FILE` (repeatable: give today's and tomorrow's, the one for the day by this machine's clock is used)"},
		&cli.StringFlag{Name: "p2p-key", Category: cat, Usage: "Milagro P2P key `FILE` of this peer"},
		&cli.StringFlag{Name: "id", Category: cat, Usage: "check that the key files are for `IDENTITY`"},
		&cli.StringFlag{Name: "server-id", Category: cat, Usage: "the server `IDENTITY` expected: the CS server identity (the server must hold its key) and the P2P server identity (required with --p2p-key); with it, no PSK suite is offered"},
		renewalFlag(),
		pqFlag(),
	}
}

// pqFlag is --pq, the post-quantum hybrid policy (mtls.Config.PostQuantum).
func pqFlag() cli.Flag {
	return &cli.StringFlag{Name: "pq", Category: "security", Value: "prefer",
		Usage: "post-quantum hybrid (ML-KEM-768 beside the Milagro key exchange, so recorded sessions stay confidential): `MODE` off, prefer (use it when the peer does) or require (refuse classic sessions and PSK suites)"}
}

// loadCombined loads a key file that must hold a combined key, with an
// error that says what to do when it holds one D-TA's share.
func loadCombined(flag, path string) (any, error) {
	k, err := mtls.LoadKey(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %s", flag, trimLibMsg(err))
	}
	if info, _ := mtls.DescribeKey(k); info.Share {
		zeroizeKey(k)
		return nil, fmt.Errorf("%s %s is one D-TA's share (D-TA %s), not a key: combine the shares of every D-TA first: mtls keys combine --out KEY SHARE-1 SHARE-2 …",
			flag, path, pairing.FormatFingerprints(info.DTAs))
	}
	return k, nil
}

// inProxy reports whether the command is one of `mtls proxy`'s.
func inProxy(c *cli.Context) bool {
	for _, x := range c.Lineage() {
		if x.Command != nil && x.Command.Name == "proxy" {
			return true
		}
	}
	return false
}

func applyMilagroFlags(c *cli.Context, cfg *mtls.Config, server bool) error {
	pq, err := mtls.ParsePostQuantumPolicy(c.String("pq"))
	if err != nil {
		return fmt.Errorf("invalid --pq %q: want off, prefer or require", c.String("pq"))
	}
	if pq == mtls.PostQuantumRequire && c.Bool("dtls") {
		// Refused rather than ignored: an operator who requires the
		// hybrid must not get classic DTLS sessions unawares.
		return errors.New("--pq require: DTLS sessions are not post-quantum hybrid (only TLS with Milagro suites is); use --pq prefer or off with --dtls")
	}
	cfg.PostQuantum = pq
	if server {
		return applyMilagroServer(c, cfg)
	}
	return applyMilagroClient(c, cfg)
}

// checkID checks --id against a key's identity.
func checkID(c *cli.Context, flag, path, id string) error {
	if want := c.String("id"); c.IsSet("id") && id != want {
		return fmt.Errorf("--id %q, but %s %s is for %q", want, flag, path, id)
	}
	return nil
}

func applyMilagroServer(c *cli.Context, cfg *mtls.Config) error {
	log := loggerOf(c)
	for _, f := range c.StringSlice("key") {
		k, err := loadCombined("--key", f)
		if err != nil {
			return err
		}
		s, ok := k.(*pairing.CSServerSecret)
		if !ok {
			info, _ := mtls.DescribeKey(k)
			zeroizeKey(k)
			return fmt.Errorf("--key %s holds a %s; a server needs a %s (mtls ta issue --kind server [--id NAME], then mtls keys combine)",
				f, info.Kind, mtls.KeyTypeCSServerSecret)
		}
		for _, o := range cfg.CSServerKeys {
			if o.ID() == s.ID() {
				return fmt.Errorf("--key %s: a second key for server identity %q", f, s.ID())
			}
		}
		cfg.CSServerKeys = append(cfg.CSServerKeys, s)
	}
	mode, err := pairing.ParsePermitMode(c.String("permits"))
	if err != nil {
		return fmt.Errorf("invalid --permits %q: want required or optional", c.String("permits"))
	}
	if c.Bool("require-permits") {
		if c.IsSet("permits") && mode != pairing.PermitsRequired {
			return fmt.Errorf("--require-permits and --permits %s disagree", mode)
		}
		mode = pairing.PermitsRequired
	}
	if (c.IsSet("permits") || c.IsSet("require-permits")) && len(cfg.CSServerKeys) == 0 {
		return errors.New("--permits/--require-permits need --key (a CS server key)")
	}
	cfg.PermitMode = mode
	skew := c.Duration("clock-skew")
	if skew <= 0 {
		return fmt.Errorf("invalid --clock-skew %v: must be positive", skew)
	}
	if skew > 24*time.Hour {
		return fmt.Errorf("invalid --clock-skew %v: at most 24h", skew)
	}
	cfg.ClockSkew = skew
	if n := c.Int("lockout-threshold"); n < 0 {
		return fmt.Errorf("invalid --lockout-threshold %d", n)
	} else if n == 0 {
		cfg.DisableCSLockout = true
	} else if len(cfg.CSServerKeys) > 0 {
		b, m := c.Duration("lockout-backoff"), c.Duration("lockout-max")
		if b <= 0 || m < b {
			return fmt.Errorf("invalid --lockout-backoff %v / --lockout-max %v: want 0 < backoff ≤ max", b, m)
		}
		all := c.Int("lockout-identity-threshold")
		if all < n {
			if c.IsSet("lockout-identity-threshold") {
				return fmt.Errorf("invalid --lockout-identity-threshold %d: at least --lockout-threshold (%d)", all, n)
			}
			all = n // a raised per-source threshold raises the identity-wide one
		}
		cfg.CSLockout = &mtls.Lockout{SourceThreshold: n, IdentityThreshold: all, Backoff: b, MaxBackoff: m,
			OnLock: func(ev mtls.LockEvent) {
				scope := "source " + ev.Source.String()
				if ev.AllSources {
					scope = "every source"
				}
				log.Warn("Milagro CS identity locked out after repeated failed proofs", "id", ev.ID, "for", scope, "until", ev.Until.UTC().Format(time.RFC3339))
			}}
	}
	if f := c.String("p2p-key"); f != "" {
		k, err := loadCombined("--p2p-key", f)
		if err != nil {
			return err
		}
		p, ok := k.(*pairing.P2PKey)
		if !ok {
			info, _ := mtls.DescribeKey(k)
			zeroizeKey(k)
			return fmt.Errorf("--p2p-key %s holds a %s, not a %s", f, info.Kind, mtls.KeyTypeP2PKey)
		}
		if err := checkID(c, "--p2p-key", f, p.ID()); err != nil {
			return err
		}
		cfg.P2PKey = p
	} else if c.IsSet("id") {
		return errors.New("--id checks the identity of --p2p-key; a CS server key has none")
	}
	if inProxy(c) {
		return nil // the proxy's ACL (--allow, --allow-prefix, --allow-file, --allow-all)
	}
	if c.Bool("allow-all") && len(c.StringSlice("allow")) > 0 {
		return errors.New("--allow-all cannot be combined with --allow")
	}
	if !c.IsSet("allow") {
		log.Info("access control", "acl", "every authenticated identity")
	}
	if allow := c.StringSlice("allow"); len(allow) > 0 {
		acl, err := proxy.NewACL(allow, nil) // the proxy's ACL: one rule for what --allow admits
		if err != nil {
			return fmt.Errorf("invalid --allow: %w", err)
		}
		log.Info("access control", "allow", strings.Join(allow, ","))
		inner := cfg.VerifyPeerIdentity
		cfg.VerifyPeerIdentity = func(id string) error {
			if err := acl.Check(id); err != nil {
				return err
			}
			if inner != nil {
				return inner(id)
			}
			return nil
		}
	}
	return nil
}

func applyMilagroClient(c *cli.Context, cfg *mtls.Config) error {
	var csID string
	if f := c.String("key"); f != "" {
		k, err := loadCombined("--key", f)
		if err != nil {
			return err
		}
		pinStr, pinFrom, havePIN, err := pinValue(c)
		if err != nil {
			zeroizeKey(k)
			return err
		}
		switch k := k.(type) {
		case *pairing.CSClientKey:
			if havePIN {
				k.Zeroize()
				return fmt.Errorf("--pin given, but --key %s is a %s, not a %s", f, mtls.KeyTypeCSClientKey, mtls.KeyTypePINToken)
			}
			cfg.CSKey, csID = k, k.ID()
		case *pairing.PINToken:
			if !havePIN {
				k.Zeroize()
				return fmt.Errorf("--key %s is a PIN token: give its PIN with --pin-file FILE, MTLS_PIN or --pin", f)
			}
			pin, err := parsePIN(pinFrom, pinStr)
			if err != nil {
				k.Zeroize()
				return err
			}
			cfg.CSToken, csID = k, k.ID()
			cfg.GetPIN = func() (uint32, error) { return pin, nil }
		default:
			info, _ := mtls.DescribeKey(k)
			zeroizeKey(k)
			return fmt.Errorf("--key %s holds a %s; a client needs a %s or a %s", f, info.Kind,
				mtls.KeyTypeCSClientKey, mtls.KeyTypePINToken)
		}
		if err := checkID(c, "--key", f, csID); err != nil {
			return err
		}
	} else if _, _, havePIN, err := pinValue(c); err != nil || havePIN {
		if err != nil {
			return err
		}
		return errors.New("--pin needs --key (a PIN token)")
	}
	for _, f := range c.StringSlice("permit") {
		if csID == "" {
			return errors.New("--permit needs --key (a CS client key or PIN token)")
		}
		k, err := loadCombined("--permit", f)
		if err != nil {
			return err
		}
		p, ok := k.(*pairing.TimePermit)
		if !ok {
			zeroizeKey(k)
			return fmt.Errorf("--permit %s is not a %s", f, mtls.KeyTypeTimePermit)
		}
		if p.ID() != csID {
			return fmt.Errorf("--permit %s is for %q, but --key %s is for %q", f, p.ID(), c.String("key"), csID)
		}
		if err := checkPermitDTAs(cfg, p, f); err != nil {
			return err
		}
		cfg.CSPermits = append(cfg.CSPermits, p)
	}
	if len(cfg.CSPermits) > 0 {
		today := pairing.Day(time.Now())
		if !slices.ContainsFunc(cfg.CSPermits, func(p *pairing.TimePermit) bool { return p.Day() == today }) {
			loggerOf(c).Warn("no time permit for today: servers that require permits will refuse this client",
				"today", pairing.FormatDay(today), "permits", permitDays(cfg.CSPermits))
		}
	}
	sid := c.String("server-id")
	if c.IsSet("server-id") {
		if err := pairing.CheckID(sid); err != nil {
			return fmt.Errorf("invalid --server-id %q: want 1..%d bytes of UTF-8 without control characters", sid, pairing.MaxIDLen)
		}
		cfg.ServerIdentity = sid
	}
	if f := c.String("p2p-key"); f != "" {
		k, err := loadCombined("--p2p-key", f)
		if err != nil {
			return err
		}
		p, ok := k.(*pairing.P2PKey)
		if !ok {
			info, _ := mtls.DescribeKey(k)
			zeroizeKey(k)
			return fmt.Errorf("--p2p-key %s holds a %s, not a %s", f, info.Kind, mtls.KeyTypeP2PKey)
		}
		if err := checkID(c, "--p2p-key", f, p.ID()); err != nil {
			return err
		}
		if sid == "" {
			return errors.New("--p2p-key needs --server-id: the identity of the P2P server you expect")
		}
		cfg.P2PKey = p
	} else if c.IsSet("server-id") && csID == "" {
		return errors.New("--server-id needs --key or --p2p-key (a server identity is proved only by the Milagro suites)")
	}
	if c.IsSet("id") && csID == "" && cfg.P2PKey == nil {
		return errors.New("--id checks the identity of --key or --p2p-key; give one")
	}
	return nil
}

// checkPermitDTAs refuses a permit combined from other D-TAs than the key.
func checkPermitDTAs(cfg *mtls.Config, p *pairing.TimePermit, path string) error {
	var kd []pairing.Fingerprint
	switch {
	case cfg.CSKey != nil:
		kd = cfg.CSKey.DTAs()
	case cfg.CSToken != nil:
		kd = cfg.CSToken.DTAs()
	}
	if !slices.Equal(kd, p.DTAs()) {
		return fmt.Errorf("--permit %s comes from D-TAs %s, but --key from %s: the permit shares must come from the key's D-TAs",
			path, pairing.FormatFingerprints(p.DTAs()), pairing.FormatFingerprints(kd))
	}
	return nil
}

func permitDays(ps []*pairing.TimePermit) string {
	var s []string
	for _, p := range ps {
		s = append(s, pairing.FormatDay(p.Day()))
	}
	return strings.Join(s, ",")
}

func trimLibMsg(err error) string { return strings.TrimPrefix(err.Error(), "mtls: ") }
