package listen

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestParseActivation(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	got, err := parseActivation(env(map[string]string{"LISTEN_PID": "42", "LISTEN_FDS": "2", "LISTEN_FDNAMES": "proxy:status"}), 42)
	if err != nil || len(got) != 2 || got[0] != (passed{3, "proxy"}) || got[1] != (passed{4, "status"}) {
		t.Fatalf("got %v, %v", got, err)
	}
	got, err = parseActivation(env(map[string]string{"LISTEN_PID": "42", "LISTEN_FDS": "1"}), 42)
	if err != nil || len(got) != 1 || got[0] != (passed{3, "unknown"}) {
		t.Fatalf("no names: %v, %v", got, err)
	}
	if got, err := parseActivation(env(nil), 42); got != nil || err != nil {
		t.Fatalf("nothing passed: %v, %v", got, err)
	}
	for _, bad := range []map[string]string{
		{"LISTEN_PID": "41", "LISTEN_FDS": "1"},
		{"LISTEN_PID": "x", "LISTEN_FDS": "1"},
		{"LISTEN_PID": "42", "LISTEN_FDS": "-1"},
		{"LISTEN_PID": "42", "LISTEN_FDS": "99999"},
		{"LISTEN_PID": "42", "LISTEN_FDS": "2", "LISTEN_FDNAMES": "one"},
	} {
		if _, err := parseActivation(env(bad), 42); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

func TestListenUnixReplacesStaleSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.sock")
	ln, err := Listen("unix:" + path)
	if err != nil {
		t.Fatal(err)
	}
	// A second listener on a live socket is refused.
	if _, err := Listen("unix:" + path); err == nil || !strings.Contains(err.Error(), "another process") {
		t.Fatalf("second listen on a live socket: %v", err)
	}
	// A stale socket file (its listener gone without unlinking) is replaced.
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	if _, err := os.Lstat(path); err != nil {
		t.Fatal("stale socket file missing:", err)
	}
	ln, err = Listen("unix:" + path)
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	go func() {
		c, err := ln.Accept()
		if err == nil {
			c.Write([]byte("hi"))
			c.Close()
		}
	}()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 2)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(b); err != nil || string(b) != "hi" {
		t.Fatalf("read %q %v", b, err)
	}
	c.Close()
	ln.Close()
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("socket file left after Close: %v", err)
	}
	// A regular file there is never removed.
	os.WriteFile(path, []byte("data"), 0o600)
	if _, err := Listen("unix:" + path); err == nil {
		t.Fatal("listening over a regular file")
	}
	if _, err := Listen("unix:"); err == nil {
		t.Fatal("empty unix path accepted")
	}
}

func TestActivatedWithoutSockets(t *testing.T) {
	if _, err := Activated("proxy"); err == nil {
		t.Fatal("systemd:proxy without LISTEN_FDS succeeded")
	}
}

// TestReserveAtFDLimit runs in a child process (it lowers RLIMIT_NOFILE):
// with every descriptor used up, a plain listener fails to accept and a
// reserved one still serves, one connection at a time.
func TestReserveAtFDLimit(t *testing.T) {
	if os.Getenv("LISTEN_RESERVE_CHILD") == "1" {
		reserveChild(t)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestReserveAtFDLimit$", "-test.v")
	cmd.Env = append(os.Environ(), "LISTEN_RESERVE_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "reserve ok") {
		t.Fatalf("child: %v\n%s", err, out)
	}
}

func reserveChild(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := Reserve(ln)
	defer r.Close()
	// Connect before exhausting descriptors (the client side needs one).
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	var lim syscall.Rlimit
	syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
	lim.Cur = 64
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	var hog []*os.File
	for {
		f, err := os.Open(os.DevNull)
		if err != nil {
			if !errors.Is(err, syscall.EMFILE) {
				t.Fatal(err)
			}
			break
		}
		hog = append(hog, f)
	}
	defer func() {
		for _, f := range hog {
			f.Close()
		}
	}()
	if len(hog) == 0 {
		t.Fatal("no descriptor could be hogged")
	}
	done := make(chan error, 1)
	go func() {
		c, err := r.Accept()
		if err == nil {
			_, err = c.Write([]byte("ok"))
			c.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("accept at the fd limit: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("accept at the fd limit hung")
	}
	b := make([]byte, 2)
	client.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := client.Read(b); err != nil || string(b) != "ok" {
		t.Fatalf("client read %q %v", b, err)
	}
	t.Log("reserve ok")
}

func FuzzParseActivation(f *testing.F) {
	f.Add("42", "2", "proxy:status")
	f.Add("42", "1", "")
	f.Add("x", "-1", ":::")
	f.Fuzz(func(t *testing.T, pid, nfds, names string) {
		env := map[string]string{"LISTEN_PID": pid, "LISTEN_FDS": nfds, "LISTEN_FDNAMES": names}
		got, err := parseActivation(func(k string) string { return env[k] }, 42)
		if err != nil {
			return
		}
		if len(got) > 1024 {
			t.Fatalf("%d descriptors accepted", len(got))
		}
		for i, p := range got {
			if p.fd != fdsStart+i || p.name == "" && names == "" {
				t.Fatalf("descriptor %d: %+v", i, p)
			}
		}
	})
}
