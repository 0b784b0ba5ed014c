package main

// `mtls keys`: what a key holder does with the shares the D-TAs issued:
// combine them, protect a CS client key with a PIN, and look at a key file.

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/milagro-go/milagro/mtls"
	"github.com/milagro-go/milagro/pairing"
)

func init() { register(withSubcommands(keysCommand(), keysEnrollCommands()...)) }

func keysCommand() *cli.Command {
	return &cli.Command{
		Name:  "keys",
		Usage: "combine key shares, make a PIN token, show what a key file holds",
		Subcommands: []*cli.Command{
			{
				Name:      "combine",
				Usage:     "add the shares every D-TA issued into one key (CS client key, CS server secret, P2P key or time permit)",
				UsageText: "mtls keys combine --out FILE [--key alice.key] SHARE...",
				Description: "All shares must be of one kind, for one identity (and one day for permits), and\n" +
					"come from different D-TAs: give one share from every D-TA. Each share names its D-TA\n" +
					"(fingerprint); the combined key lists them. With --key, permit shares must come from\n" +
					"the same D-TAs as that key.",
				Flags: []cli.Flag{outFlag("the combined key"), forceFlag(),
					&cli.StringFlag{Name: "key", Usage: "when combining permit shares: the combined key (or PIN token) `FILE` they are for; refuse a different set of D-TAs"}},
				Action: keysCombine,
			},
			{
				Name:      "pin",
				Usage:     "turn a combined CS client key into a PIN token (the key minus the PIN: two factors)",
				UsageText: "mtls keys pin --in alice.key --pin N --out alice.token",
				Description: "The token alone cannot authenticate; the client adds the PIN when it connects\n" +
					"(`mtls client --key alice.token --pin N`). Delete the key file afterwards.",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "in", Required: true, Usage: "the combined CS client key `FILE`"},
					&cli.StringFlag{Name: "pin", Required: true, EnvVars: []string{"MTLS_PIN"}, Usage: fmt.Sprintf("the `PIN`: an integer 1..%d", pairing.MaxPIN)},
					outFlag("the PIN token"), forceFlag(),
				},
				Action: keysPIN,
			},
			{
				Name:      "show",
				Usage:     "print the kind, identity, day and D-TA set of key files (never the secret)",
				UsageText: "mtls keys show FILE...",
				Action:    keysShow,
			},
		},
	}
}

type share struct {
	path string
	key  any
	info mtls.KeyInfo
}

func keysCombine(c *cli.Context) error {
	const name = "keys combine"
	paths := c.Args().Slice()
	if len(paths) < 1 {
		return cmdError(name, "", errors.New("give the shares of every D-TA, one file each"))
	}
	shares := make([]share, 0, len(paths))
	defer func() {
		for _, s := range shares {
			zeroizeKey(s.key)
		}
	}()
	for _, p := range paths {
		k, err := mtls.LoadKey(p)
		if err != nil {
			return cmdError(name, "", err)
		}
		info, _ := mtls.DescribeKey(k)
		shares = append(shares, share{p, k, info})
	}
	if err := checkShares(shares); err != nil {
		return cmdError(name, "", err)
	}
	if kp := c.String("key"); kp != "" {
		if err := checkPermitAgainstKey(shares, kp); err != nil {
			return cmdError(name, "--key", err)
		}
	}
	combined, err := combine(shares)
	if err != nil {
		return cmdError(name, "", err)
	}
	defer zeroizeKey(combined)
	if err := writeKeyOut(c, name, combined); err != nil {
		return err
	}
	if len(shares) == 1 {
		fmt.Fprintf(c.App.ErrWriter, "mtls keys combine: note: combined from the share of one D-TA; a deployment with several D-TAs needs one share from each\n")
	}
	return nil
}

// checkPermitAgainstKey refuses permit shares whose D-TAs differ from the
// key's (docs/protocol.md §2: a permit and its key come from the same D-TA set).
func checkPermitAgainstKey(shares []share, keyPath string) error {
	if shares[0].info.Kind != mtls.KeyTypeTimePermit {
		return fmt.Errorf("--key is for combining time permits; %s is a %s", shares[0].path, shares[0].info.Kind)
	}
	k, err := mtls.LoadKey(keyPath)
	if err != nil {
		return err
	}
	defer zeroizeKey(k)
	info, _ := mtls.DescribeKey(k)
	if info.Kind != mtls.KeyTypeCSClientKey && info.Kind != mtls.KeyTypePINToken {
		return fmt.Errorf("%s is a %s, not a CS client key or PIN token", keyPath, info.Kind)
	}
	if info.Share {
		return fmt.Errorf("%s is a key share; give the combined key", keyPath)
	}
	if info.Identity != shares[0].info.Identity {
		return fmt.Errorf("the permit shares are for %q, the key %s for %q", shares[0].info.Identity, keyPath, info.Identity)
	}
	var fps []pairing.Fingerprint
	for _, s := range shares {
		fps = append(fps, s.info.DTAs...)
	}
	slices.SortFunc(fps, func(a, b pairing.Fingerprint) int { return bytes.Compare(a[:], b[:]) })
	if !slices.Equal(fps, info.DTAs) {
		return fmt.Errorf("the permit shares come from D-TAs %s, but the key %s from %s: get a permit share from each of the key's D-TAs",
			pairing.FormatFingerprints(fps), keyPath, pairing.FormatFingerprints(info.DTAs))
	}
	return nil
}

// checkShares refuses shares that cannot be combined, naming the files.
func checkShares(shares []share) error {
	first := shares[0]
	switch first.info.Kind {
	case mtls.KeyTypeMasterShare:
		return fmt.Errorf("%s is a %s: master shares are never combined (the master secret must exist nowhere); combine the keys they issue", first.path, first.info.Kind)
	case mtls.KeyTypePINToken:
		return fmt.Errorf("%s is a %s: combine the key shares first, then make the token with `mtls keys pin`", first.path, first.info.Kind)
	}
	seen := map[pairing.Fingerprint]string{}
	for _, s := range shares {
		if !s.info.Share {
			return fmt.Errorf("%s is already a combined key (of D-TAs %s), not one D-TA's share", s.path, pairing.FormatFingerprints(s.info.DTAs))
		}
		for _, fp := range s.info.DTAs {
			if prev, ok := seen[fp]; ok {
				return fmt.Errorf("%s and %s are both from D-TA %s: give one share from each D-TA", prev, s.path, fp)
			}
			seen[fp] = s.path
		}
	}
	for i, s := range shares[1:] {
		switch {
		case s.info.Kind != first.info.Kind:
			return fmt.Errorf("cannot combine different kinds of keys: %s is a %s, %s is a %s", first.path, first.info.Kind, s.path, s.info.Kind)
		case s.info.Identity != first.info.Identity:
			return fmt.Errorf("cannot combine keys of different identities: %s is for %q, %s is for %q", first.path, first.info.Identity, s.path, s.info.Identity)
		case s.info.Day != first.info.Day:
			return fmt.Errorf("cannot combine permits for different days: %s is for %s, %s is for %s", first.path, mtls.FormatDay(first.info.Day), s.path, mtls.FormatDay(s.info.Day))
		}
		for _, o := range shares[:i+1] {
			if sameKey(o.key, s.key) {
				return fmt.Errorf("%s and %s hold the same share: give one share from each D-TA", o.path, s.path)
			}
		}
	}
	return nil
}

func sameKey(a, b any) bool {
	switch x := a.(type) {
	case *pairing.CSClientKey:
		return x.Equal(b.(*pairing.CSClientKey))
	case *pairing.CSServerSecret:
		return x.Equal(b.(*pairing.CSServerSecret))
	case *pairing.P2PKey:
		return x.Equal(b.(*pairing.P2PKey))
	case *pairing.TimePermit:
		return x.Equal(b.(*pairing.TimePermit))
	}
	return false
}

// combine adds shares of one kind (checked by checkShares).
func combine(shares []share) (any, error) {
	switch shares[0].key.(type) {
	case *pairing.CSClientKey:
		return pairing.CombineCSClientKeys(typed[*pairing.CSClientKey](shares)...)
	case *pairing.CSServerSecret:
		return pairing.CombineCSServerSecrets(typed[*pairing.CSServerSecret](shares)...)
	case *pairing.P2PKey:
		return pairing.CombineP2PKeys(typed[*pairing.P2PKey](shares)...)
	case *pairing.TimePermit:
		return pairing.CombineTimePermits(typed[*pairing.TimePermit](shares)...)
	}
	return nil, fmt.Errorf("%s: cannot combine a %s", shares[0].path, shares[0].info.Kind)
}

func typed[T any](shares []share) []T {
	out := make([]T, len(shares))
	for i, s := range shares {
		out[i] = s.key.(T)
	}
	return out
}

func zeroizeKey(k any) {
	if z, ok := k.(interface{ Zeroize() }); ok && z != nil {
		z.Zeroize()
	}
}

// parsePIN parses a decimal PIN in 1..pairing.MaxPIN (0 would make the
// token the key). The error never repeats the value.
func parsePIN(flag, s string) (uint32, error) {
	s = strings.TrimSpace(s)
	v, err := strconv.ParseUint(s, 10, 32)
	if err != nil || v == 0 || v > pairing.MaxPIN || s == "" || s[0] == '+' {
		return 0, fmt.Errorf("invalid %s: want an integer 1..%d", flag, pairing.MaxPIN)
	}
	return uint32(v), nil
}

func keysPIN(c *cli.Context) error {
	const name = "keys pin"
	if c.NArg() > 0 {
		return cmdError(name, "", errors.New("unexpected arguments: "+c.Args().First()))
	}
	pin, err := parsePIN("--pin", c.String("pin"))
	if err != nil {
		return cmdError(name, "", err)
	}
	k, err := mtls.LoadCSClientKey(c.String("in"))
	if err != nil {
		return cmdError(name, "--in", err)
	}
	defer k.Zeroize()
	tok, err := k.ExtractPIN(pin)
	if err != nil {
		return cmdError(name, "", err)
	}
	defer tok.Zeroize()
	if err := writeKeyOut(c, name, tok); err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "keep the PIN in your head and delete %s: the token without the PIN cannot connect\n", c.String("in"))
	return nil
}

func keysShow(c *cli.Context) error {
	if c.NArg() == 0 {
		return cmdError("keys show", "", errors.New("give one or more key files"))
	}
	failed := false
	for _, p := range c.Args().Slice() {
		k, err := mtls.LoadKey(p)
		if err != nil {
			fmt.Fprintf(c.App.ErrWriter, "mtls keys show: %s\n", strings.TrimPrefix(err.Error(), "mtls: "))
			failed = true
			continue
		}
		info, _ := mtls.DescribeKey(k)
		zeroizeKey(k)
		fmt.Fprintf(c.App.Writer, "%s: %s\n", p, info)
	}
	if failed {
		return cli.Exit("", 1)
	}
	return nil
}
