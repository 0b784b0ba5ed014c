package dta

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/milagro-go/milagro/dta/dtaclient"
	"github.com/milagro-go/milagro/dta/dtawire"
)

func toolPath(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("missing %s (package systemd; scripts/install-peers.sh installs it): %v", name, err)
	}
	return p
}

// TestSystemdUnitVerifies: deploy/systemd/mtls-ta.{service,socket} pass
// systemd-analyze verify (with the built binary in place of
// /usr/local/bin/mtls).
func TestSystemdUnitVerifies(t *testing.T) {
	analyze := toolPath(t, "systemd-analyze")
	dir := t.TempDir()
	for _, f := range []string{"mtls-ta.service", "mtls-ta.socket"} {
		b, err := os.ReadFile(filepath.Join("..", "deploy", "systemd", f))
		if err != nil {
			t.Fatal(err)
		}
		s := strings.ReplaceAll(string(b), "/usr/local/bin/mtls", mtlsBin(t))
		if err := os.WriteFile(filepath.Join(dir, f), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		if f == "mtls-ta.service" {
			for _, want := range []string{"--db %S/mtls-ta/dta.db", "StateDirectory=mtls-ta", "--listen systemd:mtls-ta", "Type=notify", "WatchdogSec="} {
				if !strings.Contains(s, want) {
					t.Errorf("mtls-ta.service lacks %q", want)
				}
			}
		}
	}
	cmd := exec.Command(analyze, "verify", "./mtls-ta.socket", "./mtls-ta.service")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// TestSocketActivatedServe: `ta serve --listen systemd:mtls-ta` started by
// systemd-socket-activate serves an enrollment on the passed socket and
// speaks sd_notify: READY=1, WATCHDOG=1 pings, STOPPING=1 on SIGTERM.
func TestSocketActivatedServe(t *testing.T) {
	activate := toolPath(t, "systemd-socket-activate")
	root := t.TempDir()
	d := newDTADir(t, root, 1)
	code, err := dtawire.ParseEnrollCode(d.code(t, "p2p", "sock"))
	if err != nil {
		t.Fatal(err)
	}
	notifyPath := filepath.Join(root, "notify.sock")
	nc, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notifyPath, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	msgs := make(chan string, 64)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, _, err := nc.ReadFromUnix(buf)
			if err != nil {
				close(msgs)
				return
			}
			msgs <- string(buf[:n])
		}
	}()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(activate, "-l", addr, "--fdname=mtls-ta", "-E", "NOTIFY_SOCKET="+notifyPath, "-E", "WATCHDOG_USEC=200000",
		mtlsBin(t), "ta", "serve", "--listen", "systemd:mtls-ta", "--master", d.share, "--db", d.db)
	out := &syncBuf{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		select {
		case <-done:
		default:
			cmd.Process.Kill()
			<-done
		}
	})
	// systemd-socket-activate execs the service on the first connection:
	// the enrollment is that connection.
	waitFor := func(what string) {
		t.Helper()
		for deadline := time.After(30 * time.Second); ; {
			select {
			case m, ok := <-msgs:
				if !ok {
					t.Fatalf("notify socket closed before %s", what)
				}
				if strings.Contains(m, what) {
					return
				}
			case <-deadline:
				t.Fatalf("no %s from ta serve:\n%s", what, out.String())
			}
		}
	}
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(out.String(), "Listening on"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("systemd-socket-activate did not listen:\n%s", out.String())
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := dtaclient.Enroll(ctx, nil, []dtaclient.DTACode{{Address: addr, Code: code}}); err != nil {
		t.Fatalf("enrollment over the activated socket: %v\n%s", err, out.String())
	}
	waitFor("READY=1")
	waitFor("WATCHDOG=1")
	cmd.Process.Signal(syscall.SIGTERM)
	waitFor("STOPPING=1")
	select {
	case <-done:
		if waitErr != nil {
			t.Fatalf("ta serve after SIGTERM: %v\n%s", waitErr, out.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("ta serve did not stop after SIGTERM")
	}
}
