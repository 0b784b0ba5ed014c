package main

// `mtls keys enroll` and `mtls keys renew`: an endpoint enrolls with every
// D-TA over the network and keeps its permits current (package dta).

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/milagro-go/milagro/dta/dtaclient"
	"github.com/milagro-go/milagro/dta/dtawire"
	"github.com/milagro-go/milagro/mtls"
	"github.com/milagro-go/milagro/pairing"
)

func keysEnrollCommands() []*cli.Command {
	return []*cli.Command{
		{
			Name:  "enroll",
			Usage: "enroll with every D-TA using one-time codes: fetch the shares, check them, combine them locally",
			UsageText: "mtls keys enroll --dta ADDR=@CODEFILE --dta ADDR=@CODEFILE … --out alice.key --renewal alice.renewal [--pin PIN]\n" +
				"   [--out-dir DIR] [--out-shares DIR]",
			Description: "Each --dta names a D-TA's address and the code its operator gave (mtls1-enroll:…). The\n" +
				"shares are checked against the D-TA fingerprints in the codes and added here; only the\n" +
				"combined key is written (the shares too with --out-shares). A client also gets its time\n" +
				"permits for today and tomorrow (in --out-dir, default the directory of --out); with --pin\n" +
				"its key is written as a PIN token. The renewal file (0600) lets `keys renew` and\n" +
				"--renewal fetch later permits.",
			Flags: []cli.Flag{
				&cli.StringSliceFlag{Name: "dta", Required: true, Usage: "`ADDR=@FILE`: a D-TA's host:port and its enrollment code, read from FILE, from standard input (ADDR=@-, one line each, in order), from an environment variable (ADDR=env:NAME), or given inline (ADDR=CODE: visible to other local users); once per D-TA"},
				&cli.StringFlag{Name: "out", Aliases: []string{"o"}, Required: true, Usage: "write the combined key to `FILE` (mode 0600)"},
				&cli.StringFlag{Name: "renewal", Required: true, Usage: "write the renewal credentials to `FILE` (mode 0600)"},
				&cli.StringFlag{Name: "pin", EnvVars: []string{"MTLS_PIN"}, Usage: fmt.Sprintf("client only: write a PIN token for `PIN` (1..%d) instead of the key", pairing.MaxPIN)},
				&cli.StringFlag{Name: "out-dir", Usage: "client only: write the time permits into `DIR` (default: the directory of --out)"},
				&cli.StringFlag{Name: "out-shares", Usage: "also write each D-TA's share into `DIR` (normally not needed)"},
				&cli.StringFlag{Name: "deployment", Usage: "the deployment `FILE` the D-TA operators publish (`mtls ta deployment`): refuse to start, using no code, unless there is a code for every D-TA it lists"},
				&cli.BoolFlag{Name: "force", Usage: "replace existing files"},
				&cli.DurationFlag{Name: "timeout", Value: 30 * time.Second, Usage: "per D-TA `DURATION`"},
			},
			Action: keysEnroll,
		},
		{
			Name:      "renew",
			Usage:     "fetch the combined time permits for today and tomorrow from every D-TA",
			UsageText: "mtls keys renew --renewal alice.renewal --out-dir DIR",
			Description: "A permit is combined only from the shares of all D-TAs; if one D-TA fails, the permits\n" +
				"already in DIR are kept and the command fails naming that D-TA.",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "renewal", Required: true, Usage: "the renewal `FILE` from `keys enroll`"},
				&cli.StringFlag{Name: "out-dir", Required: true, Usage: "write the permits into `DIR`"},
				&cli.BoolFlag{Name: "rotate", Usage: "also rotate the renewal secrets (the file is updated)"},
				&cli.DurationFlag{Name: "timeout", Value: 30 * time.Second, Usage: "per D-TA `DURATION`"},
			},
			Action: keysRenew,
		},
	}
}

// PermitFileName is the file name `keys enroll` and `keys renew` give the
// permit for day d.
func permitFileName(d uint64) string { return "permit-" + pairing.FormatDay(d) + ".pem" }

// parseDTAFlags reads the --dta values: ADDR=CODE (visible to other local
// users in the process list: warned about), ADDR=@FILE (the code in a
// file), ADDR=@- (the next line of standard input) or ADDR=env:NAME (the
// environment variable NAME).
func parseDTAFlags(log *slog.Logger, vals []string, stdin io.Reader) ([]dtaclient.DTACode, error) {
	var out []dtaclient.DTACode
	var lines *bufio.Scanner
	for _, v := range vals {
		addr, src, ok := strings.Cut(v, "=")
		if !ok || addr == "" {
			return nil, fmt.Errorf("--dta %q: want ADDR=CODE, ADDR=@FILE, ADDR=@- or ADDR=env:NAME", strings.SplitN(v, "=", 2)[0]+"=…")
		}
		var code string
		switch {
		case src == "@-":
			if lines == nil {
				lines = bufio.NewScanner(io.LimitReader(stdin, 64<<10))
			}
			if !lines.Scan() {
				return nil, fmt.Errorf("--dta %s=@-: no code left on standard input (one line per @-, in order)", addr)
			}
			code = lines.Text()
		case strings.HasPrefix(src, "@"):
			data, err := readSecretFile(log, "dta", src[1:])
			if err != nil {
				return nil, err
			}
			code = string(data)
			clear(data)
		case strings.HasPrefix(src, "env:"):
			name := src[len("env:"):]
			code = os.Getenv(name)
			if code == "" {
				return nil, fmt.Errorf("--dta %s=env:%s: the environment variable is empty or unset", addr, name)
			}
		default:
			code = src
			log.Warn("--dta ADDR=CODE"+secretFlagWarning+"; use --dta ADDR=@FILE, ADDR=@- (stdin) or ADDR=env:NAME", "dta", addr)
		}
		c, err := dtawire.ParseEnrollCode(strings.TrimSpace(code))
		if err != nil {
			return nil, fmt.Errorf("--dta %s: %w", addr, err)
		}
		out = append(out, dtaclient.DTACode{Address: addr, Code: c})
	}
	return out, nil
}

func writeKeyFile(path string, key any, force bool) error {
	if force {
		return mtls.OverwriteKey(path, key)
	}
	return mtls.WriteKey(path, key)
}

func keysEnroll(c *cli.Context) error {
	const name = "keys enroll"
	if err := noArgs(c, name); err != nil {
		return err
	}
	codes, err := parseDTAFlags(loggerOf(c), c.StringSlice("dta"), os.Stdin)
	if err != nil {
		return cmdError(name, "", err)
	}
	var dep *dtaclient.Deployment
	if f := c.String("deployment"); f != "" {
		if dep, err = dtaclient.LoadDeployment(f); err != nil {
			return cmdError(name, "--deployment", err)
		}
		if err := dep.CheckCodes(codes); err != nil {
			return cmdError(name, "--deployment", err)
		}
	}
	var pin uint32
	if c.IsSet("pin") {
		v, err := strconv.ParseUint(strings.TrimSpace(c.String("pin")), 10, 32)
		if err != nil || v < 1 || v > pairing.MaxPIN {
			return cmdError(name, "", fmt.Errorf("invalid --pin: want an integer 1..%d", pairing.MaxPIN))
		}
		pin = uint32(v)
	}
	force := c.Bool("force")
	for _, f := range []string{c.String("out"), c.String("renewal")} {
		if _, err := os.Stat(f); err == nil && !force {
			return cmdError(name, "", fmt.Errorf("%s exists (use --force to replace it)", f))
		}
	}
	ctx, cancel := context.WithTimeout(c.Context, c.Duration("timeout"))
	defer cancel()
	e, err := dtaclient.Enroll(ctx, &dtaclient.ClientOptions{Timeout: c.Duration("timeout")}, codes)
	if err != nil {
		return cmdError(name, "", err)
	}
	defer zeroizeAll(e)
	if pin != 0 && e.Kind != dtawire.KindClient {
		return cmdError(name, "", fmt.Errorf("--pin is for CS client keys; this enrollment is a %s key", e.Kind))
	}
	if dir := c.String("out-shares"); dir != "" {
		for i, s := range e.Shares {
			p := filepath.Join(dir, fmt.Sprintf("share-%s.pem", e.Renewal.DTAs[i].Fingerprint))
			if err := writeKeyFile(p, s, force); err != nil {
				return cmdError(name, "--out-shares", err)
			}
		}
	}
	key := e.Key
	if pin != 0 {
		tok, err := e.Key.(*pairing.CSClientKey).ExtractPIN(pin)
		if err != nil {
			return cmdError(name, "", err)
		}
		defer tok.Zeroize()
		key = tok
	}
	if err := writeKeyFile(c.String("out"), key, force); err != nil {
		return cmdError(name, "--out", err)
	}
	e.Renewal.Deployment = dep
	if err := dtaclient.WriteRenewal(c.String("renewal"), e.Renewal, force); err != nil {
		return cmdError(name, "--renewal", err)
	}
	info, _ := mtls.DescribeKey(key)
	fmt.Fprintf(c.App.Writer, "enrolled %s %q with %d D-TAs (%s): %s written to %s\n", e.Kind, e.Identity, len(codes),
		dtaList(e.Renewal), info.Kind, c.String("out"))
	if e.Kind == dtawire.KindClient {
		dir := c.String("out-dir")
		if dir == "" {
			dir = filepath.Dir(c.String("out"))
		}
		if err := writePermits(c, dir, e.Permits); err != nil {
			return cmdError(name, "--out-dir", err)
		}
	}
	return nil
}

func dtaList(r *dtaclient.Renewal) string {
	s := make([]string, len(r.DTAs))
	for i, d := range r.DTAs {
		s[i] = d.Fingerprint
	}
	return strings.Join(s, ",")
}

func zeroizeAll(e *dtaclient.Enrollment) {
	for _, s := range e.Shares {
		if z, ok := s.(interface{ Zeroize() }); ok {
			z.Zeroize()
		}
	}
	if z, ok := e.Key.(interface{ Zeroize() }); ok {
		z.Zeroize()
	}
}

// makeOutDir makes sure dir is a directory, creating it (and its parents)
// private to the user (0700) if it does not exist: it will hold permits.
func makeOutDir(dir string) error {
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return os.MkdirAll(dir, 0o700)
	case err != nil:
		return err
	case !fi.IsDir():
		return fmt.Errorf("%s exists and is not a directory", dir)
	}
	return nil
}

func writePermits(c *cli.Context, dir string, permits map[uint64]*pairing.TimePermit) error {
	if err := makeOutDir(dir); err != nil {
		return err
	}
	days := make([]uint64, 0, len(permits))
	for d := range permits {
		days = append(days, d)
	}
	slices.Sort(days)
	for _, d := range days {
		tp := permits[d]
		p := filepath.Join(dir, permitFileName(d))
		if err := mtls.OverwriteKey(p, tp); err != nil {
			return err
		}
		fmt.Fprintf(c.App.Writer, "time permit for %s written to %s\n", pairing.FormatDay(d), p)
	}
	return nil
}

func keysRenew(c *cli.Context) error {
	const name = "keys renew"
	if err := noArgs(c, name); err != nil {
		return err
	}
	path := c.String("renewal")
	r, err := dtaclient.LoadRenewal(path)
	if err != nil {
		return cmdError(name, "--renewal", err)
	}
	if err := makeOutDir(c.String("out-dir")); err != nil {
		return cmdError(name, "--out-dir", err)
	}
	opt := &dtaclient.ClientOptions{Timeout: c.Duration("timeout")}
	today := pairing.Day(time.Now())
	permits, changed, err := dtaclient.FetchPermits(c.Context, opt, r, []uint64{today, today + 1})
	if err != nil && dtaclient.IsCode(err, dtawire.CodeDayOutOfRange) {
		// The D-TAs issue tomorrow's permit only in the last hours of
		// today (their permit_ahead_hours): fetch today's alone.
		var ch bool
		permits, ch, err = dtaclient.FetchPermits(c.Context, opt, r, []uint64{today})
		changed = changed || ch
		if err == nil {
			fmt.Fprintf(c.App.Writer, "tomorrow's (%s) permit is not issued yet: the D-TAs issue it in the last hours of today; run keys renew again then\n", pairing.FormatDay(today+1))
		}
	}
	if changed {
		if werr := dtaclient.WriteRenewal(path, r, true); werr != nil {
			return cmdError(name, "--renewal", werr)
		}
	}
	if err != nil {
		var me dtaclient.MultiError
		if errors.As(err, &me) {
			return cmdError(name, "", fmt.Errorf("kept the permits in %s; no new permit without every D-TA; failed: %w", c.String("out-dir"), err))
		}
		return cmdError(name, "", err)
	}
	if err := writePermits(c, c.String("out-dir"), permits); err != nil {
		return cmdError(name, "--out-dir", err)
	}
	if c.Bool("rotate") {
		rerr := dtaclient.Rotate(c.Context, opt, r)
		if werr := dtaclient.WriteRenewal(path, r, true); werr != nil {
			return cmdError(name, "--renewal", werr)
		}
		if rerr != nil {
			return cmdError(name, "rotate", rerr)
		}
		fmt.Fprintln(c.App.Writer, "renewal secrets rotated")
	}
	return nil
}
