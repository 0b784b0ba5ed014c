package main

// `mtls keys`: what a key holder does with the shares the D-TAs issued:
// combine them, protect a CS client key with a PIN, and look at a key file.

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/milagro-go/milagro/dta/dtaclient"
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

func keysCombine(c *cli.Context) error {
	const name = "keys combine"
	paths := c.Args().Slice()
	if len(paths) < 1 {
		return cmdError(name, "", errors.New("give the shares of every D-TA, one file each"))
	}
	shares := make([]pairing.LabeledKey, 0, len(paths))
	defer func() {
		for _, s := range shares {
			zeroizeKey(s.Key)
		}
	}()
	for _, p := range paths {
		k, err := mtls.LoadKey(p)
		if err != nil {
			return cmdError(name, "", err)
		}
		shares = append(shares, pairing.LabeledKey{Label: p, Key: k})
	}
	if err := pairing.CheckShares(shares); err != nil {
		return cmdError(name, "", err)
	}
	if kp := c.String("key"); kp != "" {
		if err := checkPermitAgainstKey(shares, kp); err != nil {
			return cmdError(name, "--key", err)
		}
	}
	combined, err := pairing.CombineShares(shares)
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
func checkPermitAgainstKey(shares []pairing.LabeledKey, keyPath string) error {
	if _, ok := shares[0].Key.(*pairing.TimePermit); !ok {
		return fmt.Errorf("--key is for combining time permits; %s is a %s", shares[0].Label, pairing.Kind(shares[0].Key))
	}
	k, err := mtls.LoadKey(keyPath)
	if err != nil {
		return err
	}
	defer zeroizeKey(k)
	return pairing.CheckPermitsForKey(shares, pairing.LabeledKey{Label: keyPath, Key: k})
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
			if r, rerr := dtaclient.LoadRenewal(p); rerr == nil {
				// Not a key: say what the file is and what it is for.
				fps := make([]string, len(r.DTAs))
				for i, d := range r.DTAs {
					fps[i] = d.Fingerprint + "@" + d.Address
				}
				fmt.Fprintf(c.App.Writer, "%s: renewal file (not a key) of %s %q for %d D-TAs: %s; use it with --renewal %s, or fetch permits with mtls keys renew --renewal %s --out-dir DIR\n",
					p, r.Kind, r.Identity, len(r.DTAs), strings.Join(fps, ","), p, p)
				continue
			}
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
