package main

// Milagro credential flags of `mtls server`, `mtls client` and `mtls proxy`
// (through credentialFlags in creds.go):
//
//	--key F             client: CS client key or PIN token; server: CS server secret
//	--pin N             client: the PIN for a PIN token (env MTLS_PIN)
//	--permit F          client: time permit for today
//	--p2p-key F         either side: P2P key
//	--id ID             either side: check that the key files are for ID
//	--server-id ID      client: the P2P server identity expected (required with --p2p-key)
//	--require-permits   server: CS clients must present today's permit
//	--clock-skew D      server: accepted CS client clock difference
//	--allow ID          server: admit only these peer identities (repeatable)
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

	"github.com/milagro-go/milagro/mtls"
	"github.com/milagro-go/milagro/pairing"
)

// The hooks are set during package variable initialization, which runs
// before every init(): client.go builds its command in an init() that runs
// before this file's would.
var _ = setMilagroHooks()

func setMilagroHooks() bool {
	milagroFlags = milagroCredentialFlags
	applyMilagro = applyMilagroFlags
	hasMilagroCredentials = func(c *cli.Context, server bool) bool {
		return c.String("key") != "" || c.String("p2p-key") != ""
	}
	return true
}

func milagroCredentialFlags(server bool) []cli.Flag {
	const cat = "milagro credentials"
	if server {
		return []cli.Flag{
			&cli.StringFlag{Name: "key", Category: cat, Usage: "Milagro CS server secret `FILE` (from `mtls keys combine`)"},
			&cli.StringFlag{Name: "p2p-key", Category: cat, Usage: "Milagro P2P key `FILE` of this peer"},
			&cli.StringFlag{Name: "id", Category: cat, Usage: "check that --p2p-key is for `IDENTITY`"},
			&cli.BoolFlag{Name: "require-permits", Category: cat, Usage: "Milagro CS clients must present a time permit for today"},
			&cli.DurationFlag{Name: "clock-skew", Category: cat, Value: pairing.DefaultSkew, Usage: "accepted difference between a CS client's clock and ours"},
			&cli.StringSliceFlag{Name: "allow", Category: "access control", Usage: "admit only the authenticated peer identity `ID` (repeatable; default: every authenticated peer)"},
		}
	}
	return []cli.Flag{
		&cli.StringFlag{Name: "key", Category: cat, Usage: "Milagro CS client key or PIN token `FILE`"},
		&cli.StringFlag{Name: "pin", Category: cat, EnvVars: []string{"MTLS_PIN"}, Usage: "the `PIN` for a PIN token given as --key"},
		&cli.StringFlag{Name: "permit", Category: cat, Usage: "Milagro time permit `FILE` for today (for servers with --require-permits)"},
		&cli.StringFlag{Name: "p2p-key", Category: cat, Usage: "Milagro P2P key `FILE` of this peer"},
		&cli.StringFlag{Name: "id", Category: cat, Usage: "check that the key files are for `IDENTITY`"},
		&cli.StringFlag{Name: "server-id", Category: cat, Usage: "the P2P server `IDENTITY` expected (required with --p2p-key)"},
	}
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
	if f := c.String("key"); f != "" {
		k, err := mtls.LoadKey(f)
		if err != nil {
			return fmt.Errorf("--key: %s", trimLibMsg(err))
		}
		s, ok := k.(*pairing.CSServerSecret)
		if !ok {
			info, _ := mtls.DescribeKey(k)
			zeroizeKey(k)
			return fmt.Errorf("--key %s holds a %s; a server needs a %s (mtls ta issue --kind server, then mtls keys combine)",
				f, info.Kind, mtls.KeyTypeCSServerSecret)
		}
		cfg.CSServerSecret = s
	}
	if c.Bool("require-permits") {
		if cfg.CSServerSecret == nil {
			return errors.New("--require-permits needs --key (a CS server secret)")
		}
		cfg.RequirePermits = true
	}
	skew := c.Duration("clock-skew")
	if skew <= 0 {
		return fmt.Errorf("invalid --clock-skew %v: must be positive", skew)
	}
	if skew > 24*time.Hour {
		return fmt.Errorf("invalid --clock-skew %v: at most 24h", skew)
	}
	cfg.ClockSkew = skew
	if f := c.String("p2p-key"); f != "" {
		k, err := mtls.LoadP2PKey(f)
		if err != nil {
			return fmt.Errorf("--p2p-key: %s", trimLibMsg(err))
		}
		if err := checkID(c, "--p2p-key", f, k.ID()); err != nil {
			return err
		}
		cfg.P2PKey = k
	} else if c.IsSet("id") {
		return errors.New("--id checks the identity of --p2p-key; a CS server secret has none")
	}
	if allow := c.StringSlice("allow"); len(allow) > 0 && !inProxy(c) {
		for _, id := range allow {
			if id == "" {
				return errors.New("invalid --allow: empty identity")
			}
		}
		allow = slices.Clone(allow)
		logger.Info("access control", "allow", strings.Join(allow, ","))
		inner := cfg.VerifyPeerIdentity
		cfg.VerifyPeerIdentity = func(id string) error {
			if !slices.Contains(allow, id) {
				return fmt.Errorf("identity %q is not allowed", id)
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
		k, err := mtls.LoadKey(f)
		if err != nil {
			return fmt.Errorf("--key: %s", trimLibMsg(err))
		}
		switch k := k.(type) {
		case *pairing.CSClientKey:
			if c.IsSet("pin") {
				k.Zeroize()
				return fmt.Errorf("--pin given, but --key %s is a %s, not a %s", f, mtls.KeyTypeCSClientKey, mtls.KeyTypePINToken)
			}
			cfg.CSKey, csID = k, k.ID()
		case *pairing.PINToken:
			if !c.IsSet("pin") {
				k.Zeroize()
				return fmt.Errorf("--key %s is a PIN token: give its PIN with --pin (or MTLS_PIN)", f)
			}
			pin, err := parsePIN("--pin", c.String("pin"))
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
	} else if c.IsSet("pin") {
		return errors.New("--pin needs --key (a PIN token)")
	}
	if f := c.String("permit"); f != "" {
		if csID == "" {
			return errors.New("--permit needs --key (a CS client key or PIN token)")
		}
		p, err := mtls.LoadTimePermit(f)
		if err != nil {
			return fmt.Errorf("--permit: %s", trimLibMsg(err))
		}
		if p.ID() != csID {
			return fmt.Errorf("--permit %s is for %q, but --key %s is for %q", f, p.ID(), c.String("key"), csID)
		}
		if today := pairing.Day(time.Now()); p.Day() != today {
			logger.Warn("the time permit is not for today: servers that require permits will refuse it",
				"permit", f, "day", mtls.FormatDay(p.Day()), "today", mtls.FormatDay(today))
		}
		cfg.CSPermit = p
	}
	if f := c.String("p2p-key"); f != "" {
		k, err := mtls.LoadP2PKey(f)
		if err != nil {
			return fmt.Errorf("--p2p-key: %s", trimLibMsg(err))
		}
		if err := checkID(c, "--p2p-key", f, k.ID()); err != nil {
			return err
		}
		sid := c.String("server-id")
		if sid == "" {
			return errors.New("--p2p-key needs --server-id: the identity of the P2P server you expect")
		}
		if err := pairing.CheckID(sid); err != nil {
			return fmt.Errorf("invalid --server-id %q: want 1..%d bytes of UTF-8", sid, pairing.MaxIDLen)
		}
		cfg.P2PKey, cfg.ExpectedServerIdentity = k, sid
	} else if c.IsSet("server-id") {
		return errors.New("--server-id needs --p2p-key")
	}
	if c.IsSet("id") && csID == "" && cfg.P2PKey == nil {
		return errors.New("--id checks the identity of --key or --p2p-key; give one")
	}
	return nil
}

func trimLibMsg(err error) string { return strings.TrimPrefix(err.Error(), "mtls: ") }
