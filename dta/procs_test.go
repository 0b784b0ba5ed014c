package dta

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The end-to-end tests run the real mtls binary: built once (lazily, by the
// first test that needs it) into the directory TestMain creates.
var (
	binDir   string
	binOnce  sync.Once
	binPath  string
	binError error
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "dta-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	stopPG()
	os.RemoveAll(dir)
	os.Exit(code)
}

func mtlsBin(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() {
		// DTA_TEST_MTLS_BIN runs the tests against another build (to
		// check that a test fails against an older version).
		if p := os.Getenv("DTA_TEST_MTLS_BIN"); p != "" {
			binPath = p
			return
		}
		binPath = filepath.Join(binDir, "mtls")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, "go", "build", "-o", binPath, "github.com/milagro-go/milagro/cmd/mtls").CombinedOutput()
		if err != nil {
			binError = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binError != nil {
		t.Fatal(binError)
	}
	return binPath
}

// runMtls runs one mtls command to completion (at most 60 s).
func runMtls(t testing.TB, dir string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, mtlsBin(t), args...)
	cmd.Dir = dir
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

func mustMtls(t testing.TB, dir string, args ...string) string {
	t.Helper()
	out, errOut, err := runMtls(t, dir, args...)
	if err != nil {
		t.Fatalf("mtls %s: %v\n%s%s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// serveProc is a running `mtls ta serve`.
type serveProc struct {
	cmd    *exec.Cmd
	log    *syncBuf
	addr   string
	status string
	done   chan struct{}
	err    error
}

// dtaDir holds one D-TA's files: share and store.
type dtaDir struct {
	dir, share, db string
	fp             string
}

func newDTADir(t testing.TB, root string, i int) *dtaDir {
	d := &dtaDir{dir: filepath.Join(root, fmt.Sprintf("dta%d", i))}
	if err := os.MkdirAll(d.dir, 0o700); err != nil {
		t.Fatal(err)
	}
	d.share, d.db = filepath.Join(d.dir, "dta.share"), filepath.Join(d.dir, "dta.db")
	mustMtls(t, d.dir, "ta", "init", "--out", d.share)
	out := mustMtls(t, d.dir, "ta", "init-db", "--master", d.share, "--db", d.db)
	f := strings.Fields(out)
	d.fp = f[len(f)-1]
	return d
}

// serve starts `ta serve` on a free loopback port and waits for its address.
func (d *dtaDir) serve(t testing.TB, extra ...string) *serveProc {
	t.Helper()
	addrFile := filepath.Join(d.dir, fmt.Sprintf("addr-%d", time.Now().UnixNano()))
	args := append([]string{"ta", "serve", "--master", d.share, "--db", d.db, "--listen", "127.0.0.1:0",
		"--addr-file", addrFile, "--status", "127.0.0.1:0", "--synchronous", "NORMAL"}, extra...)
	p := &serveProc{log: &syncBuf{}, done: make(chan struct{})}
	p.cmd = exec.Command(mtlsBin(t), args...)
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { p.kill() })
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(addrFile); err == nil && len(b) > 0 {
			p.addr = strings.TrimSpace(string(b))
			break
		}
		select {
		case <-p.done:
			t.Fatalf("ta serve exited: %v\n%s", p.err, p.log.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	if p.addr == "" {
		t.Fatalf("ta serve did not start in 30 s:\n%s", p.log.String())
	}
	for _, line := range strings.Split(p.log.String(), "\n") {
		if strings.Contains(line, "status listener") {
			if i := strings.Index(line, "addr="); i >= 0 {
				p.status = strings.Fields(line[i+5:])[0]
			}
		}
	}
	return p
}

func (p *serveProc) kill() {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Kill()
	<-p.done
}

// term sends SIGTERM and waits (at most 15 s) for a clean exit.
func (p *serveProc) term(t testing.TB) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		if p.err != nil {
			t.Fatalf("ta serve after SIGTERM: %v\n%s", p.err, p.log.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("ta serve did not stop within 15 s of SIGTERM")
	}
}

// code asks the D-TA's operator command for an enrollment code.
func (d *dtaDir) code(t testing.TB, kind, id string, extra ...string) string {
	t.Helper()
	args := append([]string{"ta", "enroll", "--db", d.db, "--kind", kind}, extra...)
	if id != "" || kind != "server" {
		args = append(args, "--id", id)
	}
	return strings.TrimSpace(mustMtls(t, d.dir, args...))
}
