package examples_test

// End-to-end runs of the example programs: built once, keys made with the
// library in a temporary directory, processes bounded and killed at cleanup.

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/milagro-go/milagro/mtls"
	"github.com/milagro-go/milagro/pairing"
)

var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "mtls-examples")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	out, err := exec.Command("go", "build", "-o", dir+string(os.PathSeparator), "./httpserver", "./httpclient", "./p2p", "./grpc").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
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

type proc struct {
	cmd            *exec.Cmd
	stdout, stderr *syncBuf
	done           chan struct{}
	err            error
}

// start runs an example binary, bounded to 30 s and killed at cleanup.
func start(t *testing.T, env []string, name string, args ...string) *proc {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, name), args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.WaitDelay = 2 * time.Second
	p := &proc{cmd: cmd, stdout: &syncBuf{}, stderr: &syncBuf{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.stdout, p.stderr
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		cancel()
		<-p.done
		if t.Failed() {
			t.Logf("%s %s\nstdout:\n%s\nstderr:\n%s", name, strings.Join(args, " "), p.stdout, p.stderr)
		}
	})
	return p
}

func (p *proc) wait(t *testing.T) error {
	t.Helper()
	select {
	case <-p.done:
		return p.err
	case <-time.After(25 * time.Second):
		t.Fatal("example did not exit within 25s")
		return nil
	}
}

var addrRE = regexp.MustCompile(`listening on (127\.0\.0\.1:\d+)`)

// startServer starts a listening example and returns its address.
func startServer(t *testing.T, name string, args ...string) (*proc, string) {
	t.Helper()
	p := start(t, nil, name, args...)
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if m := addrRE.FindStringSubmatch(p.stdout.String()); m != nil {
			return p, m[1]
		}
		select {
		case <-p.done:
			t.Fatalf("%s exited: %v\n%s", name, p.err, p.stderr)
		default:
		}
	}
	t.Fatalf("%s did not print its address", name)
	return nil, ""
}

// keys makes a deployment with two D-TAs and writes the combined keys.
func keys(t *testing.T) func(string) string {
	t.Helper()
	dir := t.TempDir()
	f := func(name string) string { return filepath.Join(dir, name) }
	var ms []*pairing.MasterShare
	for i := 0; i < 2; i++ {
		m, err := pairing.NewMasterShare(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		ms = append(ms, m)
	}
	var (
		srv    []*pairing.CSServerSecret
		alice  []*pairing.CSClientKey
		permit []*pairing.TimePermit
		nodeA  []*pairing.P2PKey
		nodeB  []*pairing.P2PKey
	)
	today := pairing.Day(time.Now())
	for _, m := range ms {
		srv = append(srv, m.IssueCSServerSecret())
		a, err := m.IssueCSClientKey("alice@example.com")
		if err != nil {
			t.Fatal(err)
		}
		alice = append(alice, a)
		p, err := m.IssueTimePermit("alice@example.com", today)
		if err != nil {
			t.Fatal(err)
		}
		permit = append(permit, p)
		na, err := m.IssueP2PKey("node-a")
		if err != nil {
			t.Fatal(err)
		}
		nb, err := m.IssueP2PKey("node-b")
		if err != nil {
			t.Fatal(err)
		}
		nodeA, nodeB = append(nodeA, na), append(nodeB, nb)
	}
	must := func(k any, err error) any {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	ak := must(pairing.CombineCSClientKeys(alice...)).(*pairing.CSClientKey)
	tok := must(ak.ExtractPIN(4711))
	files := map[string]any{
		"server.key":   must(pairing.CombineCSServerSecrets(srv...)),
		"alice.key":    ak,
		"alice.token":  tok,
		"alice.permit": must(pairing.CombineTimePermits(permit...)),
		"alice-1of2":   must(pairing.CombineCSClientKeys(alice[0])),
		"permit-1of2":  must(pairing.CombineTimePermits(permit[0])),
		"node-a.key":   must(pairing.CombineP2PKeys(nodeA...)),
		"node-b.key":   must(pairing.CombineP2PKeys(nodeB...)),
	}
	for name, k := range files {
		if err := mtls.WriteKey(f(name), k); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func TestHTTPServerAndClient(t *testing.T) {
	f := keys(t)
	srv, addr := startServer(t, "httpserver", "-listen", "127.0.0.1:0", "-key", f("server.key"), "-require-permits", "-p2p-key", f("node-a.key"))
	url := "https://" + addr + "/whoami"

	cases := []struct {
		name string
		env  []string
		args []string
		want string // stdout on success, or "" for a failure
		fail string // stderr on failure
	}{
		{"PIN token and permit", []string{"MTLS_PIN=4711"}, []string{"-key", f("alice.token"), "-permit", f("alice.permit")},
			"hello alice@example.com (TLS_MILAGRO_CS_WITH_AES_128_GCM_SHA256)\n", ""},
		{"full key and permit", nil, []string{"-key", f("alice.key"), "-permit", f("alice.permit")},
			"hello alice@example.com (TLS_MILAGRO_CS_WITH_AES_128_GCM_SHA256)\n", ""},
		{"P2P", nil, []string{"-p2p-key", f("node-b.key"), "-server-id", "node-a"},
			"hello node-b (TLS_MILAGRO_P2P_WITH_AES_128_GCM_SHA256)\n", ""},
		{"HTTP/2", nil, []string{"-h2", "-key", f("alice.key"), "-permit", f("alice.permit")},
			"hello alice@example.com (TLS_MILAGRO_CS_WITH_AES_128_GCM_SHA256)\n", ""},
		{"HTTP/2 P2P", nil, []string{"-h2", "-p2p-key", f("node-b.key"), "-server-id", "node-a"},
			"hello node-b (TLS_MILAGRO_P2P_WITH_AES_128_GCM_SHA256)\n", ""},
		{"HTTP/2 no permit", nil, []string{"-h2", "-key", f("alice.key")}, "", "access_denied"},
		{"wrong PIN", []string{"MTLS_PIN=4712"}, []string{"-key", f("alice.token"), "-permit", f("alice.permit")}, "", "access_denied"},
		{"no permit", nil, []string{"-key", f("alice.key")}, "", "access_denied"},
		{"key from 1 of 2 D-TAs", nil, []string{"-key", f("alice-1of2"), "-permit", f("permit-1of2")}, "", "access_denied"},
		{"token without PIN", []string{"MTLS_PIN="}, []string{"-key", f("alice.token")}, "", "set MTLS_PIN"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := start(t, c.env, "httpclient", append(c.args, url)...)
			err := p.wait(t)
			if c.want != "" {
				if err != nil {
					t.Fatalf("httpclient: %v\n%s", err, p.stderr)
				}
				if got := p.stdout.String(); got != c.want {
					t.Fatalf("httpclient printed %q, want %q", got, c.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("httpclient succeeded: %q", p.stdout)
			}
			if !strings.Contains(p.stderr.String(), c.fail) {
				t.Fatalf("httpclient stderr %q lacks %q", p.stderr, c.fail)
			}
		})
	}
	srv.cmd.Process.Signal(os.Interrupt)
	if err := srv.wait(t); err != nil {
		t.Fatalf("httpserver after SIGINT: %v\n%s", err, srv.stderr)
	}
}

func TestP2PPair(t *testing.T) {
	f := keys(t)
	a, addr := startServer(t, "p2p", "-key", f("node-a.key"), "-listen", "127.0.0.1:0")
	if !strings.HasPrefix(a.stdout.String(), "node-a listening on ") {
		t.Fatalf("p2p server printed %q", a.stdout)
	}
	b := start(t, nil, "p2p", "-key", f("node-b.key"), "-connect", addr, "-peer", "node-a", "-msg", "ping over P2P")
	if err := b.wait(t); err != nil {
		t.Fatalf("p2p client: %v\n%s", err, b.stderr)
	}
	out := b.stdout.String()
	want := regexp.MustCompile(`^connected to node-a \(TLS_MILAGRO_P2P_WITH_\S+\)\nhello node-b, this is node-a\nnode-a got: ping over P2P\n$`)
	if !want.MatchString(out) {
		t.Fatalf("p2p client printed %q, want %v", out, want)
	}

	// A peer that expects someone else at that address refuses to talk.
	c := start(t, nil, "p2p", "-key", f("node-b.key"), "-connect", addr, "-peer", "node-c")
	if err := c.wait(t); err == nil || !strings.Contains(c.stderr.String(), "access_denied") {
		t.Fatalf("p2p client expecting node-c: %v, stderr %q; want access_denied", err, c.stderr)
	}
	// A CS key is not a P2P key.
	d := start(t, nil, "p2p", "-key", f("alice.key"), "-connect", addr, "-peer", "node-a")
	if err := d.wait(t); err == nil || !strings.Contains(d.stderr.String(), "want a MILAGRO P2P KEY") {
		t.Fatalf("p2p with a CS key: %v, stderr %q", err, d.stderr)
	}

	a.cmd.Process.Signal(os.Interrupt)
	if err := a.wait(t); err != nil {
		t.Fatalf("p2p server after SIGINT: %v", err)
	}
	if !strings.Contains(a.stdout.String(), "peer node-b connected\n") {
		t.Fatalf("p2p server output %q lacks the peer", a.stdout)
	}
}

func TestGRPC(t *testing.T) {
	f := keys(t)
	srv, addr := startServer(t, "grpc", "-listen", "127.0.0.1:0", "-key", f("server.key"), "-require-permits",
		"-p2p-key", f("node-a.key"), "-allow", "alice@example.com,node-b")
	cases := []struct {
		name string
		args []string
		want *regexp.Regexp
		fail string
	}{
		{"CS", []string{"-key", f("alice.key"), "-permit", f("alice.permit"), "-msg", "hi"},
			regexp.MustCompile(`^server says: hello alice@example.com, you said "hi" \(TLS_MILAGRO_CS_WITH_\S+\)\nstream: alice@example.com: one\nstream: alice@example.com: two\n$`), ""},
		{"P2P", []string{"-p2p-key", f("node-b.key"), "-server-id", "node-a"},
			regexp.MustCompile(`^server says: hello node-b, you said "hello" \(TLS_MILAGRO_P2P_WITH_\S+\)\nstream: node-b: one\n`), ""},
		// node-a is authenticated but not on the -allow list.
		{"denied by the interceptor", []string{"-p2p-key", f("node-a.key"), "-server-id", "node-a"}, nil, "PermissionDenied"},
		{"no permit", []string{"-key", f("alice.key")}, nil, "access_denied"},
		{"key from 1 of 2 D-TAs", []string{"-key", f("alice-1of2"), "-permit", f("permit-1of2")}, nil, "access_denied"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := start(t, nil, "grpc", append([]string{"-connect", addr}, c.args...)...)
			err := p.wait(t)
			if c.want != nil {
				if err != nil {
					t.Fatalf("grpc client: %v\n%s", err, p.stderr)
				}
				if got := p.stdout.String(); !c.want.MatchString(got) {
					t.Fatalf("grpc client printed %q, want %v", got, c.want)
				}
				return
			}
			if err == nil || !strings.Contains(p.stderr.String(), c.fail) {
				t.Fatalf("grpc client: %v, stderr %q; want a failure with %q", err, p.stderr, c.fail)
			}
		})
	}
	srv.cmd.Process.Signal(os.Interrupt)
	if err := srv.wait(t); err != nil {
		t.Fatalf("grpc server after SIGINT: %v\n%s", err, srv.stderr)
	}
}
