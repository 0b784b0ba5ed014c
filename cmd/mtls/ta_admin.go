package main

// Operator commands on a D-TA store; they work while `ta serve` runs.

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/user"
	"regexp"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/milagro-go/milagro/dta"
	"github.com/milagro-go/milagro/dta/dtaclient"
	"github.com/milagro-go/milagro/dta/dtawire"
	"github.com/milagro-go/milagro/mtls"
	"github.com/milagro-go/milagro/pairing"
)

func taAdminCommands() []*cli.Command {
	kind := &cli.StringFlag{Name: "kind", Required: true, Usage: "`KIND`: client, server or p2p"}
	id := &cli.StringFlag{Name: "id", Usage: "the `IDENTITY` (a server may have none: the deployment-wide key)"}
	return []*cli.Command{
		{
			Name:      "enroll",
			Usage:     "create a one-time enrollment code for an identity (give it to the endpoint over a trusted channel)",
			UsageText: "mtls ta enroll --db dta1.db --kind client|server|p2p --id ID [--ttl 72h] [--out FILE]",
			Flags: []cli.Flag{dbFlag(), kind, id,
				&cli.DurationFlag{Name: "ttl", Value: 72 * time.Hour, Usage: "the code expires after `DURATION`"},
				&cli.StringFlag{Name: "out", Usage: "write the code to `FILE` (mode 0600) instead of printing it"},
				&cli.StringFlag{Name: "master", Usage: "the master share `FILE`, only if the store is new (not yet opened by ta serve / ta init-db)"},
			},
			Action: taEnroll,
		},
		{
			Name:      "revoke",
			Usage:     "stop issuing permits, shares and renewals to an identity (from the next permit on)",
			UsageText: "mtls ta revoke --db dta1.db --kind client --id ID [--reason TEXT]",
			Flags:     []cli.Flag{dbFlag(), kind, id, &cli.StringFlag{Name: "reason", Usage: "why (recorded in the audit log)"}},
			Action:    taRevoke,
		},
		{
			Name:      "reinstate",
			Usage:     "undo a revocation; the old renewal secret stays dead: give the identity a fresh code (ta enroll)",
			UsageText: "mtls ta reinstate --db dta1.db --kind client --id ID",
			Flags:     []cli.Flag{dbFlag(), kind, id},
			Action:    taRevoke,
		},
		{
			Name:  "deployment",
			Usage: "write the public deployment file (every D-TA's fingerprint and address) for `keys enroll --deployment`",
			UsageText: "mtls ta deployment --dta FINGERPRINT=HOST:PORT --dta … --out deployment.json\n" +
				"   (each operator's fingerprint is printed by `mtls ta init-db` and `mtls ta list`)",
			Flags: []cli.Flag{
				&cli.StringSliceFlag{Name: "dta", Required: true, Usage: "`FINGERPRINT=HOST:PORT` of one D-TA (once per D-TA)"},
				&cli.StringFlag{Name: "out", Aliases: []string{"o"}, Required: true, Usage: "write the file to `FILE` (mode 0644: it is public); - for stdout"},
				forceFlag(),
			},
			Action: taDeployment,
		},
		{
			Name:      "list",
			Usage:     "list enrolled identities and enrollment codes",
			UsageText: "mtls ta list --db dta1.db [--json]",
			Flags:     []cli.Flag{dbFlag(), &cli.BoolFlag{Name: "json", Usage: "print JSON"}},
			Action:    taList,
		},
		{
			Name:      "audit",
			Usage:     "print the audit log",
			UsageText: "mtls ta audit --db dta1.db [--since 24h|2026-11-22T00:00:00Z] [--json]",
			Flags: []cli.Flag{dbFlag(),
				&cli.StringFlag{Name: "since", Usage: "only entries after `DURATION` ago or an RFC 3339 `TIME`"},
				&cli.BoolFlag{Name: "json", Usage: "print JSON lines"},
				&cli.BoolFlag{Name: "verify", Usage: "check the audit chain and that identities and codes agree with it; exit 1 on any problem"},
				&cli.StringFlag{Name: "head", Usage: "with --verify: a head `N:HASH` kept outside the database (logged by ta serve) that must still be in the chain"}},
			Action: taAudit,
		},
	}
}

// operator names who ran an operator command, for the audit log.
func operator() string {
	if u, err := user.Current(); err == nil {
		return "cli:" + u.Username
	}
	return "cli"
}

func openStoreFlag(c *cli.Context, name string) (*dta.Store, error) {
	db := c.String("db")
	warnDBPasswordInArgv(loggerOf(c), "--db", db)
	if !dta.IsDatabaseURL(db) {
		if _, err := os.Stat(db); err != nil {
			return nil, cmdError(name, "--db", err)
		}
	}
	st, err := dta.OpenStore(db, nil)
	if err != nil {
		return nil, cmdError(name, "--db", err)
	}
	return st, nil
}

func kindFlag(c *cli.Context, name string) (dtawire.Kind, string, error) {
	k, err := dtawire.ParseKind(strings.ToLower(c.String("kind")))
	if err != nil {
		return "", "", cmdError(name, "--kind", err)
	}
	id := c.String("id")
	if k != dtawire.KindServer && !c.IsSet("id") {
		return "", "", cmdError(name, "", fmt.Errorf("--kind %s needs --id", k))
	}
	if err := dtawire.CheckIdentity(k, id); err != nil {
		return "", "", cmdError(name, "--id", err)
	}
	return k, id, nil
}

func taEnroll(c *cli.Context) error {
	const name = "ta enroll"
	if err := noArgs(c, name); err != nil {
		return err
	}
	k, id, err := kindFlag(c, name)
	if err != nil {
		return err
	}
	db := c.String("db")
	if c.IsSet("master") {
		st, err := dta.OpenStore(db, nil)
		if err != nil {
			return cmdError(name, "--db", err)
		}
		m, err := mtls.LoadMasterShare(c.String("master"))
		if err != nil {
			st.Close()
			return cmdError(name, "--master", err)
		}
		_, err = st.Bind(m)
		m.Zeroize()
		st.Close()
		if err != nil {
			return cmdError(name, "", err)
		}
	}
	st, err := openStoreFlag(c, name)
	if err != nil {
		return err
	}
	defer st.Close()
	code, err := st.CreateCode(k, id, c.Duration("ttl"), operator())
	if err != nil {
		return cmdError(name, "", err)
	}
	if showID(id) != strconv.Quote(id) {
		fmt.Fprintf(c.App.ErrWriter, "note: the identity contains non-ASCII characters; it is %s\n", showID(id))
	}
	line := code.String() + "\n"
	if out := c.String("out"); out != "" {
		f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return cmdError(name, "--out", err)
		}
		_, err = f.WriteString(line)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return cmdError(name, "--out", err)
		}
		fmt.Fprintf(c.App.ErrWriter, "enrollment code for %s %q written to %s (expires in %v)\n", k, id, out, c.Duration("ttl"))
		return nil
	}
	fmt.Fprint(c.App.Writer, line)
	return nil
}

func taRevoke(c *cli.Context) error {
	name := "ta " + c.Command.Name
	if err := noArgs(c, name); err != nil {
		return err
	}
	k, id, err := kindFlag(c, name)
	if err != nil {
		return err
	}
	st, err := openStoreFlag(c, name)
	if err != nil {
		return err
	}
	defer st.Close()
	if c.Command.Name == "revoke" {
		err = st.Revoke(k, id, c.String("reason"), operator())
	} else {
		err = st.Reinstate(k, id, operator())
	}
	if err != nil {
		return cmdError(name, "", err)
	}
	fmt.Fprintf(c.App.Writer, "%s %s: %sd\n", k, showID(id), c.Command.Name)
	if c.Command.Name == "reinstate" {
		fmt.Fprintf(c.App.Writer, "its old renewal secret no longer works; give it a fresh code: mtls ta enroll --db %s --kind %s --id %s\n",
			c.String("db"), k, showID(id))
	}
	return nil
}

func taDeployment(c *cli.Context) error {
	const name = "ta deployment"
	if err := noArgs(c, name); err != nil {
		return err
	}
	m := map[string]string{}
	for _, v := range c.StringSlice("dta") {
		fp, addr, ok := strings.Cut(v, "=")
		if !ok {
			return cmdError(name, "--dta", fmt.Errorf("%q: want FINGERPRINT=HOST:PORT", v))
		}
		if _, dup := m[strings.ToLower(fp)]; dup {
			return cmdError(name, "--dta", fmt.Errorf("D-TA %s given twice", fp))
		}
		m[strings.ToLower(fp)] = addr
	}
	dep, err := dtaclient.NewDeployment(m)
	if err != nil {
		return cmdError(name, "--dta", err)
	}
	data, err := dep.Marshal()
	if err != nil {
		return cmdError(name, "", err)
	}
	out := c.String("out")
	if out == "-" {
		_, err := c.App.Writer.Write(data)
		return err
	}
	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if c.Bool("force") {
		flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	}
	f, err := os.OpenFile(out, flags, 0o644)
	if err != nil {
		return cmdError(name, "--out", err)
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return cmdError(name, "--out", err)
	}
	fmt.Fprintf(c.App.Writer, "wrote %s: %d D-TAs; give it to endpoints with their codes (keys enroll --deployment %s)\n", out, len(dep.DTAs), out)
	return nil
}

// oldDays matches the permit days of audit details written before they
// were written as dates: "days [20000 20001]", "days 20000..20001".
var (
	oldDays  = regexp.MustCompile(`\bdays (\[[0-9]+(?: [0-9]+)*\]|[0-9]+\.\.[0-9]+)`)
	dayCount = regexp.MustCompile(`[0-9]+`)
)

// humanDays rewrites permit days (days since 1970-01-01) in an audit
// detail as dates.
func humanDays(detail string) string {
	return oldDays.ReplaceAllStringFunc(detail, func(m string) string {
		return dayCount.ReplaceAllStringFunc(strings.NewReplacer("[", "", "]", "").Replace(m), func(n string) string {
			d, err := strconv.ParseUint(n, 10, 64)
			if err != nil || d > 1<<20 {
				return n
			}
			return pairing.FormatDay(d)
		})
	})
}

// showID writes an identity for an operator's screen: quoted, and with
// every non-ASCII character as its code point (\u0430 for a Cyrillic а),
// so that a look-alike cannot pass for the identity it imitates.
func showID(id string) string { return strconv.QuoteToASCII(id) }

func fmtTime(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func taList(c *cli.Context) error {
	const name = "ta list"
	if err := noArgs(c, name); err != nil {
		return err
	}
	st, err := openStoreReadOnly(c, name)
	if err != nil {
		return err
	}
	defer st.Close()
	ids, codes, err := st.List()
	if err != nil {
		return cmdError(name, "", err)
	}
	fp, _ := st.Fingerprint()
	if c.Bool("json") {
		return json.NewEncoder(c.App.Writer).Encode(map[string]any{"fingerprint": fp.String(), "identities": ids, "codes": codes})
	}
	w := tabwriter.NewWriter(c.App.Writer, 2, 4, 2, ' ', 0)
	fmt.Fprintf(w, "D-TA %s\n\nKIND\tIDENTITY\tENROLLED\tREVOKED\tREASON\n", fp)
	for _, i := range ids {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", i.Kind, showID(i.Identity), fmtTime(i.EnrolledAt), fmtTime(i.RevokedAt), i.Reason)
	}
	fmt.Fprintf(w, "\nCODE\tKIND\tIDENTITY\tEXPIRES\tUSED\n")
	for _, k := range codes {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", k.ID, k.Kind, showID(k.Identity), k.ExpiresAt.Format(time.RFC3339), fmtTime(k.UsedAt))
	}
	return w.Flush()
}

// parseSince parses a duration ago or an RFC 3339 time.
func parseSince(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, errors.New("--since: a negative duration")
		}
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("--since %q: want a duration (24h) or an RFC 3339 time (2026-11-22T00:00:00Z)", s)
}

func taAudit(c *cli.Context) error {
	const name = "ta audit"
	if err := noArgs(c, name); err != nil {
		return err
	}
	if c.Bool("verify") {
		return taAuditVerify(c, name)
	}
	since, err := parseSince(c.String("since"), time.Now())
	if err != nil {
		return cmdError(name, "", err)
	}
	st, err := openStoreReadOnly(c, name)
	if err != nil {
		return err
	}
	defer st.Close()
	es, err := st.AuditLog(since)
	if err != nil {
		return cmdError(name, "", err)
	}
	if c.Bool("json") {
		enc := json.NewEncoder(c.App.Writer)
		for _, e := range es {
			if err := enc.Encode(e); err != nil {
				return err
			}
		}
		return nil
	}
	w := tabwriter.NewWriter(c.App.Writer, 2, 4, 2, ' ', 0)
	fmt.Fprintln(w, "TIME\tACTION\tKIND\tIDENTITY\tREMOTE\tRESULT\tDETAIL")
	for _, e := range es {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Time.Format(time.RFC3339Nano), e.Action, e.Kind, showID(e.Identity), e.Remote, e.Result, humanDays(e.Detail))
	}
	return w.Flush()
}
