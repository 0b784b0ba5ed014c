// Command mtls is the milagro command line: trust authorities, key issuance,
// an echo server, a client, the sidecar proxy and a demo.
//
// Every subcommand lives in its own file and registers itself from init()
// with register, so commands can be added without editing this file.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"

	"github.com/urfave/cli/v2"
)

// commands holds every registered subcommand.
var commands []*cli.Command

// register adds a subcommand to the app. Call it from init() in the file that
// defines the command; main sorts the commands by name.
func register(c *cli.Command) {
	commands = append(commands, c)
}

// loggerKey is the context key of the logger the --log-level and
// --log-format flags configured: the app's Before stores it in the
// cli.Context's Context, a command with its own flags replaces it, and
// commands read it with loggerOf and hand it on explicitly. There is no
// package-level logger (an in-process test runs several apps at once).
type loggerKey struct{}

// withLogger makes l the logger of c and of the commands under it.
func withLogger(c *cli.Context, l *slog.Logger) {
	parent := c.Context
	if parent == nil {
		parent = context.Background()
	}
	c.Context = context.WithValue(parent, loggerKey{}, l)
}

// loggerOf returns the logger configured for c's command: info level, text,
// on the app's standard error when no flag configured one.
func loggerOf(c *cli.Context) *slog.Logger {
	if c != nil && c.Context != nil {
		if l, ok := c.Context.Value(loggerKey{}).(*slog.Logger); ok {
			return l
		}
	}
	var w io.Writer = os.Stderr
	if c != nil && c.App != nil && c.App.ErrWriter != nil {
		w = c.App.ErrWriter
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo, ReplaceAttr: durationsAsText}))
}

// newApp builds the CLI app; stdin/stdout/stderr are parameters so tests can run it
// in-process.
func newApp(stdin io.Reader, stdout, stderr io.Writer) *cli.App {
	cmds := append([]*cli.Command(nil), commands...)
	sort.Slice(cmds, func(i, j int) bool { return cmds[i].Name < cmds[j].Name })
	prepareCommands(cmds)
	cli.VersionFlag = &cli.BoolFlag{Name: "version", Usage: "print the version and VCS revision"}
	cli.VersionPrinter = func(c *cli.Context) { fmt.Fprintln(c.App.Writer, c.App.Version) }
	return &cli.App{
		Name:                 "mtls",
		Usage:                "certificate-less TLS 1.2: identity-based (Milagro) and PSK suites",
		Version:              versionString(),
		OnUsageError:         appUsageError,
		EnableBashCompletion: true,
		Reader:               stdin,
		Writer:               stdout,
		ErrWriter:            stderr,
		Commands:             cmds,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "log-level", Value: "info", Usage: "log `LEVEL`: debug, info, warn, error", EnvVars: []string{"MTLS_LOG_LEVEL"}},
			&cli.StringFlag{Name: "log-format", Value: "text", Usage: "log `FORMAT`: text or json", EnvVars: []string{"MTLS_LOG_FORMAT"}},
		},
		Before: func(c *cli.Context) error {
			l, err := newLogger(stderr, c.String("log-level"), c.String("log-format"))
			if err != nil {
				return err
			}
			withLogger(c, l)
			return nil
		},
		// Errors are printed once, by main, as one line.
		ExitErrHandler: func(*cli.Context, error) {},
	}
}

// newLogger returns a slog logger writing to w with the given level and format.
func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("invalid --log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv, ReplaceAttr: durationsAsText}
	switch strings.ToLower(format) {
	case "text", "":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("invalid --log-format %q: want text or json", format)
}

// durationsAsText logs durations as "1.5s", not as nanoseconds (what the
// JSON handler would print).
func durationsAsText(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		a.Value = slog.StringValue(a.Value.Duration().String())
	}
	return a
}

// cmdError prefixes err with "mtls <command>: " unless it already carries a
// prefix, and strips the library's own "mtls: " prefix so the line reads
// "mtls client: handshake failed: remote error: unknown_psk_identity".
func cmdError(cmd, what string, err error) error {
	msg := strings.TrimPrefix(err.Error(), "mtls: ")
	if what != "" {
		msg = what + ": " + msg
	}
	return &commandError{msg: "mtls " + cmd + ": " + msg, err: err}
}

type commandError struct {
	msg    string
	detail string // printed as is on the lines after msg (what to check)
	err    error
}

func (e *commandError) Error() string { return e.msg }
func (e *commandError) Unwrap() error { return e.err }

// run runs the app and returns the process exit status.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	err := newApp(stdin, stdout, stderr).Run(args)
	if err == nil {
		return 0
	}
	var ce *commandError
	var ec cli.ExitCoder
	switch {
	case printUsageError(stderr, err):
		return exitUsage
	case errors.As(err, &ce):
		fmt.Fprintln(stderr, oneLine(ce.Error()))
		if ce.detail != "" {
			fmt.Fprintln(stderr, ce.detail)
		}
	case errors.As(err, &ec):
		if s := ec.Error(); s != "" {
			fmt.Fprintln(stderr, oneLine(s))
		}
		if ec.ExitCode() != 0 {
			return ec.ExitCode()
		}
	default:
		fmt.Fprintln(stderr, "mtls: "+oneLine(err.Error()))
	}
	return 1
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " ")), " ")
}

func main() {
	os.Exit(run(os.Args, os.Stdin, os.Stdout, os.Stderr))
}
