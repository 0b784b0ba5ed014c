// Package sdnotify tells systemd (or any service manager speaking its
// notify protocol) how a long-running command is doing: Ready once it
// serves, Reloading and Ready around a configuration reload, Stopping when
// shutdown starts, and watchdog keep-alives. Each is one datagram to the
// UNIX socket named by $NOTIFY_SOCKET; without that variable every call is
// a no-op, so commands call them unconditionally.
//
// It is used by `mtls proxy` (and meant for `mtls ta serve`) with
// Type=notify or Type=notify-reload units (deploy/systemd).
package sdnotify

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// Notify sends state (newline-separated VAR=value assignments) to
// $NOTIFY_SOCKET. It reports false, nil when the variable is unset. An
// address starting with '@' is in the abstract namespace.
func Notify(state string) (bool, error) {
	addr := os.Getenv("NOTIFY_SOCKET")
	if addr == "" {
		return false, nil
	}
	if addr[0] != '/' && addr[0] != '@' {
		return false, fmt.Errorf("sdnotify: NOTIFY_SOCKET %q: want an absolute path or @abstract name", addr)
	}
	if addr[0] == '@' {
		addr = "\x00" + addr[1:]
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		return false, fmt.Errorf("sdnotify: %w", err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(state)); err != nil {
		return false, fmt.Errorf("sdnotify: %w", err)
	}
	return true, nil
}

// Ready reports that start-up (or a reload) finished; status, if not
// empty, is shown by systemctl status.
func Ready(status string) error { return send("READY=1", status) }

// Reloading reports that a reload started. It carries MONOTONIC_USEC, which
// Type=notify-reload units require; call Ready when the reload is done,
// whether it succeeded or not.
func Reloading() error {
	return send("RELOADING=1\nMONOTONIC_USEC="+strconv.FormatInt(monotonicUsec(), 10), "reloading")
}

// Stopping reports that shutdown started.
func Stopping(status string) error { return send("STOPPING=1", status) }

// Status sets the free-form status line.
func Status(status string) error { return send("", status) }

func send(state, status string) error {
	if status != "" {
		status = "STATUS=" + strings.ReplaceAll(status, "\n", " ")
		if state != "" {
			state += "\n"
		}
		state += status
	}
	_, err := Notify(state)
	return err
}

// WatchdogInterval returns the watchdog timeout the service manager set
// ($WATCHDOG_USEC, for this process if $WATCHDOG_PID is set), or false.
func WatchdogInterval() (time.Duration, bool, error) {
	us := os.Getenv("WATCHDOG_USEC")
	if us == "" {
		return 0, false, nil
	}
	if p := os.Getenv("WATCHDOG_PID"); p != "" && p != strconv.Itoa(os.Getpid()) {
		return 0, false, nil
	}
	n, err := strconv.ParseInt(us, 10, 64)
	if err != nil || n <= 0 {
		return 0, false, fmt.Errorf("sdnotify: invalid WATCHDOG_USEC %q", us)
	}
	return time.Duration(n) * time.Microsecond, true, nil
}

// Watchdog sends WATCHDOG=1 at half the watchdog interval until ctx is
// done, while alive returns nil (a failing check lets the watchdog fire).
// Without a watchdog it returns at once.
func Watchdog(ctx context.Context, alive func() error) error {
	d, ok, err := WatchdogInterval()
	if err != nil || !ok {
		return err
	}
	t := time.NewTicker(d / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if alive != nil && alive() != nil {
				continue
			}
			if _, err := Notify("WATCHDOG=1"); err != nil && !errors.Is(err, context.Canceled) {
				return err
			}
		}
	}
}
