package sdnotify

import (
	"context"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func listenNotify(t *testing.T, name string) *net.UnixConn {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func recv(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b := make([]byte, 4096)
	n, err := c.Read(b)
	if err != nil {
		t.Fatalf("no notification: %v", err)
	}
	return string(b[:n])
}

func TestNotifyStates(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notify")
	c := listenNotify(t, path)
	t.Setenv("NOTIFY_SOCKET", path)

	if err := Ready("serving on 127.0.0.1:1"); err != nil {
		t.Fatal(err)
	}
	if got := recv(t, c); got != "READY=1\nSTATUS=serving on 127.0.0.1:1" {
		t.Fatalf("ready: %q", got)
	}
	if err := Reloading(); err != nil {
		t.Fatal(err)
	}
	got := recv(t, c)
	lines := strings.Split(got, "\n")
	if lines[0] != "RELOADING=1" || !strings.HasPrefix(lines[1], "MONOTONIC_USEC=") {
		t.Fatalf("reloading: %q", got)
	}
	if us, err := strconv.ParseInt(strings.TrimPrefix(lines[1], "MONOTONIC_USEC="), 10, 64); err != nil || us <= 0 {
		t.Fatalf("MONOTONIC_USEC: %q", lines[1])
	}
	if err := Stopping("draining\nnow"); err != nil {
		t.Fatal(err)
	}
	if got := recv(t, c); got != "STOPPING=1\nSTATUS=draining now" {
		t.Fatalf("stopping: %q", got)
	}
}

func TestNotifyAbstractAndUnset(t *testing.T) {
	name := "mtls-sdnotify-test-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	c := listenNotify(t, "@"+name)
	t.Setenv("NOTIFY_SOCKET", "@"+name)
	if ok, err := Notify("READY=1"); !ok || err != nil {
		t.Fatalf("abstract: %v %v", ok, err)
	}
	if got := recv(t, c); got != "READY=1" {
		t.Fatalf("abstract: %q", got)
	}
	t.Setenv("NOTIFY_SOCKET", "")
	if ok, err := Notify("READY=1"); ok || err != nil {
		t.Fatalf("unset: %v %v, want a no-op", ok, err)
	}
	t.Setenv("NOTIFY_SOCKET", "relative")
	if _, err := Notify("READY=1"); err == nil {
		t.Fatal("a relative NOTIFY_SOCKET was accepted")
	}
}

func TestWatchdog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notify")
	c := listenNotify(t, path)
	t.Setenv("NOTIFY_SOCKET", path)
	t.Setenv("WATCHDOG_USEC", "40000")
	t.Setenv("WATCHDOG_PID", "")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Watchdog(ctx, nil) }()
	for i := 0; i < 2; i++ {
		if got := recv(t, c); got != "WATCHDOG=1" {
			t.Fatalf("watchdog: %q", got)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	t.Setenv("WATCHDOG_PID", "1")
	if _, ok, _ := WatchdogInterval(); ok {
		t.Fatal("a watchdog for another pid applied")
	}
	t.Setenv("WATCHDOG_PID", "")
	t.Setenv("WATCHDOG_USEC", "soon")
	if _, _, err := WatchdogInterval(); err == nil {
		t.Fatal("invalid WATCHDOG_USEC accepted")
	}
}
