package main

import (
	"bytes"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// The logging flags configure the logger of the app's own commands only:
// the process-wide slog default stays as it was, and two apps in one
// process (the in-process tests) log each to its own stderr in its own
// format.
func TestLoggerPerApp(t *testing.T) {
	before := slog.Default()
	probe := func() *cli.Command {
		c := &cli.Command{Name: "log-probe", Action: func(c *cli.Context) error {
			loggerOf(c).Info("probe")
			loggerOf(c).Debug("probe-debug")
			return nil
		}}
		prepareCommand(c, "log-probe")
		return c
	}
	run := func(args ...string) string {
		t.Helper()
		var errOut bytes.Buffer
		app := newApp(strings.NewReader(""), io.Discard, &errOut)
		app.Commands = append(app.Commands, probe())
		if err := app.Run(append([]string{"mtls"}, args...)); err != nil {
			t.Fatalf("mtls %s: %v", strings.Join(args, " "), err)
		}
		return errOut.String()
	}
	if got := run("--log-format", "json", "log-probe"); !strings.Contains(got, `"msg":"probe"`) || strings.Contains(got, "probe-debug") {
		t.Errorf("global --log-format json: the command logged %q", got)
	}
	if got := run("log-probe", "--log-format", "json", "--log-level", "debug"); !strings.Contains(got, `"msg":"probe-debug"`) {
		t.Errorf("the command's --log-format json --log-level debug: it logged %q", got)
	}
	if got := run("log-probe"); !strings.Contains(got, "level=INFO msg=probe") {
		t.Errorf("default logger: the command logged %q", got)
	}
	if slog.Default() != before {
		t.Error("running the app replaced slog.Default")
	}
}
