package main

// `mtls ta`: one distributed trust authority (D-TA). Each D-TA keeps its own
// master share; every key is issued by every D-TA and combined by the
// holder (`mtls keys combine`), so no single D-TA can forge a key.

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/milagro-go/milagro/mtls"
	"github.com/milagro-go/milagro/pairing"
)

func init() { register(withSubcommands(taCommand(), taServiceCommands()...)) }

func forceFlag() cli.Flag {
	return &cli.BoolFlag{Name: "force", Usage: "replace --out if it exists"}
}

func outFlag(what string) cli.Flag {
	return &cli.StringFlag{Name: "out", Aliases: []string{"o"}, Required: true, Usage: "write " + what + " to `FILE` (mode 0600); - writes a time permit, which is not secret, to stdout"}
}

func taCommand() *cli.Command {
	master := &cli.StringFlag{Name: "master", Required: true, Usage: "this D-TA's master share `FILE` (from `mtls ta init`)"}
	return &cli.Command{
		Name:  "ta",
		Usage: "distributed trust authority: create a master share, issue key shares and time permits",
		Description: "Every D-TA runs `ta init` once and keeps its share secret. To give a client, server or peer\n" +
			"its key, every D-TA issues a share with `ta issue`; the holder adds the shares with\n" +
			"`mtls keys combine`. A key combined from fewer than all D-TAs does not work.",
		Subcommands: []*cli.Command{
			{
				Name:      "init",
				Usage:     "create a new random master share",
				UsageText: "mtls ta init --out dta1.share",
				Flags:     []cli.Flag{outFlag("the master share"), forceFlag()},
				Action:    taInit,
			},
			{
				Name:      "issue",
				Usage:     "issue this D-TA's share of a CS client key, a CS server key, or a P2P key",
				UsageText: "mtls ta issue --master dta1.share --kind client|server|p2p [--id ID] --out FILE",
				Flags: []cli.Flag{master,
					&cli.StringFlag{Name: "kind", Required: true, Usage: "`KIND` of key: client (CS client key), server (CS server key) or p2p (P2P key)"},
					&cli.StringFlag{Name: "id", Usage: "the `IDENTITY` the key is for (client and p2p: required; server: the server identity, e.g. api.example.com — without it, the deployment-wide server key)"},
					outFlag("the key share"), forceFlag()},
				Action: taIssue,
			},
			{
				Name:      "permit",
				Usage:     "issue this D-TA's share of a time permit for one identity and one day",
				UsageText: "mtls ta permit --master dta1.share --id ID [--day YYYY-MM-DD] --out FILE",
				Flags: []cli.Flag{master,
					&cli.StringFlag{Name: "id", Required: true, Usage: "the client `IDENTITY`"},
					&cli.StringFlag{Name: "day", Value: "today", Usage: "the `DAY` (UTC) as YYYY-MM-DD, today or tomorrow"},
					outFlag("the permit share"), forceFlag()},
				Action: taPermit,
			},
		},
	}
}

func taInit(c *cli.Context) error {
	if c.NArg() > 0 {
		return cmdError("ta init", "", errors.New("unexpected arguments: "+c.Args().First()))
	}
	m, err := pairing.NewMasterShare(rand.Reader)
	if err != nil {
		return cmdError("ta init", "", err)
	}
	defer m.Zeroize()
	return writeKeyOut(c, "ta init", m)
}

func taIssue(c *cli.Context) error {
	const name = "ta issue"
	if c.NArg() > 0 {
		return cmdError(name, "", errors.New("unexpected arguments: "+c.Args().First()))
	}
	kind, id := strings.ToLower(c.String("kind")), c.String("id")
	switch kind {
	case "client", "p2p":
		if !c.IsSet("id") {
			return cmdError(name, "", fmt.Errorf("--kind %s needs --id: the identity the key is for", kind))
		}
		if err := pairing.CheckID(id); err != nil {
			return cmdError(name, "", fmt.Errorf("invalid --id %q: want 1..%d bytes of UTF-8 without control characters", id, pairing.MaxIDLen))
		}
	case "server":
		if c.IsSet("id") {
			if err := pairing.CheckID(id); err != nil {
				return cmdError(name, "", fmt.Errorf("invalid --id %q: want 1..%d bytes of UTF-8 without control characters", id, pairing.MaxIDLen))
			}
		}
	default:
		return cmdError(name, "", fmt.Errorf("invalid --kind %q: want client, server or p2p", c.String("kind")))
	}
	m, err := mtls.LoadMasterShare(c.String("master"))
	if err != nil {
		return cmdError(name, "--master", err)
	}
	defer m.Zeroize()
	var key interface{ Zeroize() }
	switch kind {
	case "client":
		key, err = m.IssueCSClientKey(id)
	case "p2p":
		key, err = m.IssueP2PKey(id)
	default:
		key, err = m.IssueCSServerKey(id)
	}
	if err != nil {
		return cmdError(name, "", err)
	}
	defer key.Zeroize()
	return writeKeyOut(c, name, key)
}

func taPermit(c *cli.Context) error {
	const name = "ta permit"
	if c.NArg() > 0 {
		return cmdError(name, "", errors.New("unexpected arguments: "+c.Args().First()))
	}
	id := c.String("id")
	if err := pairing.CheckID(id); err != nil {
		return cmdError(name, "", fmt.Errorf("invalid --id %q: want 1..%d bytes of UTF-8 without control characters", id, pairing.MaxIDLen))
	}
	day, err := parseDay(c.String("day"), time.Now())
	if err != nil {
		return cmdError(name, "", err)
	}
	m, err := mtls.LoadMasterShare(c.String("master"))
	if err != nil {
		return cmdError(name, "--master", err)
	}
	defer m.Zeroize()
	p, err := m.IssueTimePermit(id, day)
	if err != nil {
		return cmdError(name, "", err)
	}
	defer p.Zeroize()
	return writeKeyOut(c, name, p)
}

// parseDay parses --day: YYYY-MM-DD (UTC), "today" or "tomorrow" relative
// to now, into a permit day (days since 1970-01-01).
func parseDay(s string, now time.Time) (uint64, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "today", "":
		return pairing.Day(now), nil
	case "tomorrow":
		return pairing.Day(now) + 1, nil
	}
	t, err := time.Parse(time.DateOnly, strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("invalid --day %q: want YYYY-MM-DD, today or tomorrow", s)
	}
	if t.Unix() < 86400 {
		return 0, fmt.Errorf("invalid --day %q: must be after 1970-01-01", s)
	}
	return pairing.Day(t), nil
}

// writeKeyOut writes key to --out (replacing it only with --force) and
// prints one line saying what was written.
func writeKeyOut(c *cli.Context, name string, key any) error {
	out := c.String("out")
	if out == "-" {
		return writeKeyStdout(c, name, key)
	}
	write := mtls.WriteKey
	if c.Bool("force") {
		write = mtls.OverwriteKey
	}
	if err := write(out, key); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return cmdError(name, "", fmt.Errorf("%s exists; give --force to replace it", out))
		}
		return cmdError(name, "", err)
	}
	info, err := mtls.DescribeKey(key)
	if err != nil {
		return cmdError(name, "", err)
	}
	fmt.Fprintf(c.App.Writer, "wrote %s: %s\n", out, info)
	return nil
}

// writeKeyStdout writes a non-secret key (a time permit or permit share) as
// PEM to stdout; a secret one is refused (it would end up in a terminal, a
// pipe or a log).
func writeKeyStdout(c *cli.Context, name string, key any) error {
	info, err := mtls.DescribeKey(key)
	if err != nil {
		return cmdError(name, "", err)
	}
	if info.Kind != mtls.KeyTypeTimePermit {
		return cmdError(name, "", fmt.Errorf("--out -: refusing to write a %s (a secret) to stdout; give a file name", info.Kind))
	}
	pem, err := mtls.MarshalKeyPEM(key)
	if err != nil {
		return cmdError(name, "", err)
	}
	if _, err := c.App.Writer.Write(pem); err != nil {
		return cmdError(name, "", err)
	}
	fmt.Fprintf(c.App.ErrWriter, "wrote %s to stdout\n", info)
	return nil
}
