package main

// `mtls ta migrate-db`, `ta audit --verify` and the read-only opening of a
// D-TA store (SQLite file or PostgreSQL URL).

import (
	"context"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/milagro-go/milagro/dta"
)

// openStoreReadOnly opens the --db store without write access (`ta list`,
// `ta audit`: an auditor needs no write access).
func openStoreReadOnly(c *cli.Context, name string) (*dta.Store, error) {
	db := c.String("db")
	warnDBPasswordInArgv(loggerOf(c), "--db", db)
	if !dta.IsDatabaseURL(db) {
		if _, err := os.Stat(db); err != nil {
			return nil, cmdError(name, "--db", err)
		}
	}
	st, err := dta.OpenStore(db, &dta.StoreOptions{ReadOnly: true})
	if err != nil {
		return nil, cmdError(name, "--db", err)
	}
	return st, nil
}

// parseHead parses N:HASH (as `ta serve` logs it).
func parseHead(s string) (*dta.AuditHead, error) {
	ns, hs, ok := strings.Cut(s, ":")
	n, err := strconv.ParseInt(ns, 10, 64)
	if !ok || err != nil || n < 1 {
		return nil, fmt.Errorf("--head %q: want N:HASH (N ≥ 1, HASH 64 hex digits)", s)
	}
	h, err := hex.DecodeString(hs)
	if err != nil || len(h) != 32 {
		return nil, fmt.Errorf("--head %q: want N:HASH (N ≥ 1, HASH 64 hex digits)", s)
	}
	return &dta.AuditHead{N: n, Hash: h}, nil
}

func printVerification(c *cli.Context, what string, v *dta.AuditVerification) {
	fmt.Fprintf(c.App.Writer, "%s: %d rows in %d heads, %d rows after the last head (not yet chained)\n", what, v.Sealed, v.Heads, v.Unsealed)
	if v.Heads > 0 {
		fmt.Fprintf(c.App.Writer, "head %d:%s (last row %d)\n", v.Head.N, v.Head.HashHex(), v.Head.LastSeq)
	}
	for _, p := range v.Problems {
		fmt.Fprintln(c.App.Writer, "PROBLEM: "+p)
	}
}

func taAuditVerify(c *cli.Context, name string) error {
	var pinned *dta.AuditHead
	if s := c.String("head"); s != "" {
		var err error
		if pinned, err = parseHead(s); err != nil {
			return cmdError(name, "--head", err)
		}
	}
	st, err := openStoreReadOnly(c, name)
	if err != nil {
		return err
	}
	defer st.Close()
	v, err := st.VerifyAudit(context.Background(), pinned)
	if err != nil {
		return cmdError(name, "", err)
	}
	printVerification(c, "audit log", v)
	if !v.OK() {
		return cli.Exit(fmt.Sprintf("mtls %s: the audit log does not verify (%d problems)", name, len(v.Problems)), 1)
	}
	fmt.Fprintln(c.App.Writer, "audit log verified")
	return nil
}

func taStoreCommands() []*cli.Command {
	return []*cli.Command{{
		Name:      "migrate-db",
		Usage:     "copy a D-TA's SQLite store into a new PostgreSQL database (stop ta serve first), then verify both audit logs",
		UsageText: "mtls ta migrate-db --from dta1.db --to postgres://dta@db.example/dta1   (or --to from $MTLS_DTA_DB)",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "from", Required: true, Usage: "the existing store `FILE` (SQLite)"},
			&cli.StringFlag{Name: "to", Required: true, EnvVars: []string{"MTLS_DTA_DB"}, Usage: "the new store `URL` (postgres://…; must be empty)"},
		},
		Action: taMigrateDB,
	}}
}

func taMigrateDB(c *cli.Context) error {
	const name = "ta migrate-db"
	if err := noArgs(c, name); err != nil {
		return err
	}
	ctx := context.Background()
	if _, err := os.Stat(c.String("from")); err != nil {
		return cmdError(name, "--from", err)
	}
	// The source is opened for writing only to chain its last rows, so
	// that the copy carries a complete chain.
	src, err := dta.OpenStore(c.String("from"), nil)
	if err != nil {
		return cmdError(name, "--from", err)
	}
	if _, _, err := src.SealAudit(ctx); err != nil {
		src.Close()
		return cmdError(name, "--from", err)
	}
	src.Close()
	src, err = dta.OpenStore(c.String("from"), &dta.StoreOptions{ReadOnly: true})
	if err != nil {
		return cmdError(name, "--from", err)
	}
	defer src.Close()
	vs, err := src.VerifyAudit(ctx, nil)
	if err != nil {
		return cmdError(name, "--from", err)
	}
	printVerification(c, "source", vs)
	if !vs.OK() {
		return cli.Exit("mtls "+name+": the source's audit log does not verify; not copying it", 1)
	}
	warnDBPasswordInArgv(loggerOf(c), "--to", c.String("to"))
	dst, err := dta.OpenStore(c.String("to"), nil)
	if err != nil {
		return cmdError(name, "--to", err)
	}
	defer dst.Close()
	if err := dta.CopyStore(ctx, src, dst); err != nil {
		return cmdError(name, "", err)
	}
	vd, err := dst.VerifyAudit(ctx, &vs.Head)
	if vs.Heads == 0 && err == nil {
		vd, err = dst.VerifyAudit(ctx, nil)
	}
	if err != nil {
		return cmdError(name, "--to", err)
	}
	printVerification(c, "destination", vd)
	if !vd.OK() || vd.Sealed != vs.Sealed {
		return cli.Exit("mtls "+name+": the copy's audit log does not verify", 1)
	}
	fp, _ := dst.Fingerprint()
	fmt.Fprintf(c.App.Writer, "D-TA %s copied to %s; the audit chain verifies on both with the same head\n", fp, dst.Name())
	return nil
}

// warnDBPasswordInArgv warns when --db (or --to) carries a PostgreSQL
// password on the command line, where any local user reads it from
// /proc/PID/cmdline; $MTLS_DTA_DB or a ~/.pgpass file keeps it out.
func warnDBPasswordInArgv(log *slog.Logger, flag, db string) {
	if !dta.IsDatabaseURL(db) {
		return
	}
	u, err := url.Parse(db)
	if err != nil || u.User == nil {
		return
	}
	if _, has := u.User.Password(); !has {
		return
	}
	for _, a := range os.Args[1:] {
		if strings.Contains(a, db) {
			log.Warn("the database password is on the command line, readable by every local user: give the URL in $MTLS_DTA_DB (or use ~/.pgpass) instead", "flag", flag)
			return
		}
	}
}
