package main

// Command-line plumbing shared by every subcommand: --version, usage errors
// printed first with a one-line usage (never the whole help), --log-level
// and --log-format on every command, and the warnings for secrets given as
// flags.

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"

	"github.com/urfave/cli/v2"
)

// version and revision are set by the Makefile with -ldflags -X (from git
// describe and git rev-parse) for builds without VCS stamping
// (GOFLAGS=-buildvcs=false, or a source tarball). When empty, the module
// version and VCS revision the go command recorded are used.
var (
	version  string
	revision string
)

// versionString returns "mtls VERSION (revision REV[, modified]) GOVERSION OS/ARCH".
func versionString() string {
	v, rev, modified := version, revision, false
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v == "" && bi.Main.Version != "" {
			v = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if rev == "" {
					rev = s.Value
				}
			case "vcs.modified":
				modified = modified || s.Value == "true"
			}
		}
	}
	if v == "" {
		v = "(devel)"
	}
	if rev == "" {
		rev = "unknown"
	}
	if modified && !strings.HasSuffix(v, "-dirty") {
		rev += ", modified"
	}
	return fmt.Sprintf("mtls %s (revision %s) %s %s/%s", v, rev, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// usageError is a command-line mistake (unknown flag, missing required
// flag): printed as the error line, then one usage line; exit status 2.
type usageError struct {
	msg   string
	usage string
}

func (e *usageError) Error() string { return e.msg }

// exitUsage is the exit status of a usage error.
const exitUsage = 2

var prepareOnce sync.Once

// The help shows a flag's value as the first `WORD` of its usage, or
// "value" when there is none: durations and counts say what they take.
var defaultFlagStringer = cli.FlagStringer

func init() {
	cli.FlagStringer = func(f cli.Flag) string {
		s := defaultFlagStringer(f)
		name := ""
		switch f.(type) {
		case *cli.DurationFlag:
			name = "DURATION"
		case *cli.IntFlag, *cli.UintFlag, *cli.Int64Flag:
			name = "N"
		case *cli.StringFlag:
			name = "VALUE"
		}
		if name != "" {
			s = strings.Replace(s, " value\t", " "+name+"\t", 1)
		}
		return s
	}
}

// requiredFlags maps each command to the names of its required flags. The
// check is done here rather than by urfave/cli, which prints the whole help
// text before the error.
var requiredFlags = map[*cli.Command][]string{}

// prepareCommands adjusts every (sub)command once: flag errors and missing
// required flags become usageErrors, and each leaf command gets --log-level
// (and --log-format) that override the global ones.
func prepareCommands(cmds []*cli.Command) {
	prepareOnce.Do(func() {
		for _, c := range cmds {
			prepareCommand(c, "mtls "+c.Name)
		}
	})
}

func prepareCommand(c *cli.Command, full string) {
	c.OnUsageError = func(ctx *cli.Context, err error, _ bool) error {
		return &usageError{msg: full + ": " + err.Error(), usage: shortUsage(c, full)}
	}
	for _, sub := range c.Subcommands {
		prepareCommand(sub, full+" "+sub.Name)
	}
	if c.Action == nil {
		return
	}
	var req []string
	for _, f := range c.Flags {
		if unrequire(f) {
			req = append(req, f.Names()[0])
		}
	}
	requiredFlags[c] = req
	have := map[string]bool{}
	for _, f := range c.Flags {
		for _, n := range f.Names() {
			have[n] = true
		}
	}
	if !have["log-level"] {
		c.Flags = append(c.Flags, &cli.StringFlag{Name: "log-level", Category: "logging", Usage: "log `LEVEL`: debug, info, warn, error (overrides the global flag)"})
	}
	if !have["log-format"] {
		c.Flags = append(c.Flags, &cli.StringFlag{Name: "log-format", Category: "logging", Usage: "log `FORMAT`: text or json (overrides the global flag)"})
	}
	action := c.Action
	c.Action = func(ctx *cli.Context) error {
		var missing []string
		for _, n := range requiredFlags[c] {
			if !ctx.IsSet(n) {
				missing = append(missing, "--"+n)
			}
		}
		if len(missing) > 0 {
			what := "flag"
			if len(missing) > 1 {
				what = "flags"
			}
			return &usageError{msg: fmt.Sprintf("%s: missing required %s %s", full, what, strings.Join(missing, ", ")), usage: shortUsage(c, full)}
		}
		if ctx.IsSet("log-level") || ctx.IsSet("log-format") {
			l, err := newLogger(ctx.App.ErrWriter, localOrGlobal(ctx, "log-level"), localOrGlobal(ctx, "log-format"))
			if err != nil {
				return &usageError{msg: full + ": " + err.Error(), usage: shortUsage(c, full)}
			}
			withLogger(ctx, l)
		}
		return action(ctx)
	}
}

// localOrGlobal returns the command's own value of a string flag, else the
// global one (the app's flag of the same name).
func localOrGlobal(ctx *cli.Context, name string) string {
	for _, c := range ctx.Lineage() {
		if v := c.String(name); v != "" {
			return v
		}
	}
	return ""
}

// unrequire clears Required on f and reports whether it was set.
func unrequire(f cli.Flag) bool {
	switch f := f.(type) {
	case *cli.StringFlag:
		r := f.Required
		f.Required = false
		return r
	case *cli.StringSliceFlag:
		r := f.Required
		f.Required = false
		return r
	case *cli.IntFlag:
		r := f.Required
		f.Required = false
		return r
	case *cli.DurationFlag:
		r := f.Required
		f.Required = false
		return r
	case *cli.BoolFlag:
		r := f.Required
		f.Required = false
		return r
	case *cli.PathFlag:
		r := f.Required
		f.Required = false
		return r
	}
	return false
}

func shortUsage(c *cli.Command, full string) string {
	u := c.UsageText
	if u == "" {
		u = full + " [options]"
		for _, s := range c.Subcommands {
			if s.Name != "help" { // urfave/cli adds help to every command
				u = full + " COMMAND [options]"
				break
			}
		}
	}
	if i := strings.IndexByte(u, '\n'); i >= 0 {
		u = u[:i]
	}
	return "usage: " + u + "\n(" + full + " --help for all options)"
}

// appUsageError wraps a flag error of the top-level app.
func appUsageError(_ *cli.Context, err error, _ bool) error {
	return &usageError{msg: "mtls: " + err.Error(), usage: "usage: mtls [--log-level L] [--log-format F] COMMAND [options]\n(mtls --help for the commands)"}
}

// printUsageError prints the error first, then the short usage.
func printUsageError(w interface{ Write([]byte) (int, error) }, err error) bool {
	var ue *usageError
	if !errors.As(err, &ue) {
		return false
	}
	fmt.Fprintln(w, oneLine(ue.msg))
	fmt.Fprintln(w, ue.usage)
	return true
}

// warnSecretFlag logs a warning when a secret was given on the command line
// (visible to other users in ps and /proc, kept in shell history) rather
// than in a file or the environment variable env.
func warnSecretFlag(c *cli.Context, flag, env, instead string) {
	if !c.IsSet(flag) || (env != "" && os.Getenv(env) != "") {
		return
	}
	loggerOf(c).Warn("--"+flag+secretFlagWarning+"; use "+instead, "flag", flag)
}

const secretFlagWarning = " on the command line is visible to other local users (ps, /proc)"
