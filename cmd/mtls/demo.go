package main

// `mtls demo`: the end-to-end story on loopback, with nothing to configure.
// It runs this very binary's own subcommands as child processes (printing
// each command line, so the output doubles as a walkthrough) and checks what
// happens, exiting non-zero if anything is not as it should be.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"
)

func init() {
	register(&cli.Command{
		Name:  "demo",
		Usage: "end-to-end run on loopback: three D-TAs, combined keys, a proxy pair in front of an HTTP service",
		Description: "Creates three trust authorities in a temporary directory, issues and combines\n" +
			"key shares, starts a plain HTTP service with `mtls proxy server` in front of it and\n" +
			"`mtls proxy client` for a client, sends a request through, and shows that a key\n" +
			"from only two D-TAs and a denied identity are both refused. Then stops everything.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "dir", Usage: "work in `DIR` (kept afterwards) instead of a temporary directory"},
			&cli.DurationFlag{Name: "timeout", Value: 60 * time.Second, Usage: "give up after this long"},
		},
		Action: runDemo,
	})
}

const (
	demoAlice   = "alice@example.com"
	demoMallory = "mallory@example.com"
	demoPIN     = "4711"
	demoHeader  = "X-Milagro-Identity"
)

type demoProc struct {
	cmd  *exec.Cmd
	done chan struct{}
}

type demo struct {
	exe   string
	dir   string
	out   io.Writer
	ctx   context.Context
	mu    sync.Mutex
	procs []demoProc
	fails []string
	ready chan string // a background process's log line saying it listens
}

func runDemo(c *cli.Context) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("demo: cannot find this binary: %w", err)
	}
	dir := c.String("dir")
	if dir == "" {
		if dir, err = os.MkdirTemp("", "mtls-demo-"); err != nil {
			return err
		}
		defer os.RemoveAll(dir)
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	// A signal (Ctrl-C, SIGTERM, SIGHUP) cancels the demo like the timeout:
	// the children are stopped and the directory, which holds master
	// shares, is removed by the defers above and below before exiting.
	sigCtx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	ctx, cancel := context.WithTimeout(sigCtx, c.Duration("timeout"))
	defer cancel()
	d := &demo{exe: exe, dir: dir, out: c.App.Writer, ctx: ctx, ready: make(chan string, 4)}
	defer d.stopAll()
	err = d.run()
	if sigCtx.Err() != nil {
		return errors.New("demo: interrupted; stopped everything and removed the temporary files")
	}
	if err != nil {
		return fmt.Errorf("demo failed: %w", err)
	}
	if len(d.fails) > 0 {
		return fmt.Errorf("demo: %d check(s) failed: %s", len(d.fails), strings.Join(d.fails, "; "))
	}
	d.say("\nAll checks passed; everything is stopped.")
	return nil
}

func (d *demo) say(format string, args ...any) {
	d.mu.Lock()
	defer d.mu.Unlock()
	fmt.Fprintf(d.out, format+"\n", args...)
}

func (d *demo) check(ok bool, good, bad string) {
	if ok {
		d.say("  ✔ %s", good)
		return
	}
	d.say("  ✘ %s", bad)
	d.fails = append(d.fails, bad)
}

func (d *demo) path(name string) string { return filepath.Join(d.dir, name) }

// mtls runs one subcommand to completion and returns its combined output.
func (d *demo) mtls(stdin string, args ...string) (string, error) {
	d.say("$ mtls %s", strings.Join(args, " "))
	cmd := exec.CommandContext(d.ctx, d.exe, args...)
	cmd.Dir = d.dir
	cmd.Stdin = strings.NewReader(stdin)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	err := cmd.Run()
	return buf.String(), err
}

// must runs a subcommand that has to succeed.
func (d *demo) must(args ...string) error {
	out, err := d.mtls("", args...)
	if err != nil {
		return fmt.Errorf("mtls %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

// start runs a long-lived subcommand in the background, its log prefixed.
func (d *demo) start(name string, args ...string) error {
	d.say("$ mtls %s &", strings.Join(args, " "))
	cmd := exec.Command(d.exe, args...)
	cmd.Dir = d.dir
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		return err
	}
	go func() {
		s := bufio.NewScanner(pr)
		for s.Scan() {
			if strings.Contains(s.Text(), `msg="proxy listening"`) {
				select {
				case d.ready <- name:
				default:
				}
			}
			d.mu.Lock()
			fmt.Fprintf(d.out, "    [%s] %s\n", name, s.Text())
			d.mu.Unlock()
		}
	}()
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); pw.Close(); close(done) }()
	d.procs = append(d.procs, demoProc{cmd, done})
	return nil
}

func (d *demo) stopAll() {
	for _, p := range d.procs {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
	}
	deadline := time.After(5 * time.Second)
	for _, p := range d.procs {
		select {
		case <-p.done:
		case <-deadline:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
	d.procs = nil
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// waitReady waits until n background processes have logged that they
// listen (probing their ports instead would show up in their logs as
// aborted handshakes).
func (d *demo) waitReady(n int) error {
	for ; n > 0; n-- {
		select {
		case <-d.ready:
		case <-d.ctx.Done():
			return errors.New("the sidecars did not start listening in time")
		}
	}
	return nil
}

func (d *demo) run() error {
	d.say("milagro demo: certificate-less TLS with keys from three independent trust authorities")
	d.say("working directory: %s\n", d.dir)

	d.say("1. Three D-TAs each create a master share; the master secret exists nowhere.")
	for i := 1; i <= 3; i++ {
		if err := d.must("ta", "init", "--out", fmt.Sprintf("dta%d.share", i)); err != nil {
			return err
		}
	}
	today := time.Now().UTC().Format("2006-01-02")
	d.say("\n2. Each D-TA issues its share of every key: the server secret, alice's and mallory's")
	d.say("   client keys, and alice's time permit for today (%s).", today)
	for i := 1; i <= 3; i++ {
		m := fmt.Sprintf("dta%d.share", i)
		steps := [][]string{
			{"ta", "issue", "--master", m, "--kind", "server", "--out", fmt.Sprintf("server.%d", i)},
			{"ta", "issue", "--master", m, "--kind", "client", "--id", demoAlice, "--out", fmt.Sprintf("alice.%d", i)},
			{"ta", "issue", "--master", m, "--kind", "client", "--id", demoMallory, "--out", fmt.Sprintf("mallory.%d", i)},
			{"ta", "permit", "--master", m, "--id", demoAlice, "--day", today, "--out", fmt.Sprintf("alice-permit.%d", i)},
			{"ta", "permit", "--master", m, "--id", demoMallory, "--day", today, "--out", fmt.Sprintf("mallory-permit.%d", i)},
		}
		for _, s := range steps {
			if err := d.must(s...); err != nil {
				return err
			}
		}
	}
	d.say("\n3. Keys are combined by adding the shares; alice protects hers with a PIN (two factors).")
	for _, s := range [][]string{
		{"keys", "combine", "--out", "server.key", "server.1", "server.2", "server.3"},
		{"keys", "combine", "--out", "alice.key", "alice.1", "alice.2", "alice.3"},
		{"keys", "combine", "--out", "alice.permit", "alice-permit.1", "alice-permit.2", "alice-permit.3"},
		{"keys", "pin", "--in", "alice.key", "--pin", demoPIN, "--out", "alice.token"},
		{"keys", "combine", "--out", "alice-2of3.key", "alice.1", "alice.2"},
		{"keys", "combine", "--out", "alice-2of3.permit", "alice-permit.1", "alice-permit.2"},
		{"keys", "combine", "--out", "mallory.key", "mallory.1", "mallory.2", "mallory.3"},
		{"keys", "combine", "--out", "mallory.permit", "mallory-permit.1", "mallory-permit.2", "mallory-permit.3"},
	} {
		if err := d.must(s...); err != nil {
			return err
		}
	}

	d.say("\n4. A plain HTTP service (it knows nothing of TLS) on loopback.")
	var seenMu sync.Mutex
	var seen []string
	svc := &http.Server{
		ReadHeaderTimeout: 5 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			id := r.Header.Get(demoHeader)
			seenMu.Lock()
			seen = append(seen, id)
			seenMu.Unlock()
			fmt.Fprintf(w, "hello %s, from a service that never saw a certificate\n", id)
		}),
	}
	svcLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go func() { _ = svc.Serve(svcLn) }()
	defer svc.Close()
	d.say("   listening on %s", svcLn.Addr())

	serverAddr, err := freeAddr()
	if err != nil {
		return err
	}
	statusAddr, err := freeAddr()
	if err != nil {
		return err
	}
	clientAddr, err := freeAddr()
	if err != nil {
		return err
	}
	d.say("\n5. The sidecar in front of it: accepts Milagro TLS, requires permits, admits only alice,")
	d.say("   and tells the service who the client is in the %s header.", demoHeader)
	if err := d.start("proxy server", "proxy", "server", "--listen", serverAddr, "--target", svcLn.Addr().String(),
		"--key", "server.key", "--require-permits", "--allow", demoAlice,
		"--http-identity-header", demoHeader, "--status", statusAddr); err != nil {
		return err
	}
	d.say("\n6. A sidecar for the client: plain TCP in, Milagro TLS out, with alice's PIN token, PIN and permit.")
	if err := d.start("proxy client", "proxy", "client", "--listen", clientAddr, "--target", serverAddr,
		"--key", "alice.token", "--pin", demoPIN, "--permit", "alice.permit"); err != nil {
		return err
	}
	if err := d.waitReady(2); err != nil {
		return err
	}

	d.say("\n7. A plain HTTP request to the client sidecar goes through:")
	d.say("$ curl http://%s/", clientAddr)
	body, err := d.get("http://" + clientAddr + "/")
	if err != nil {
		d.check(false, "", "request through the proxy pair failed: "+err.Error())
	} else {
		d.say("  %s", strings.TrimSpace(body))
	}
	seenMu.Lock()
	sawAlice := len(seen) == 1 && seen[0] == demoAlice
	seenMu.Unlock()
	d.check(sawAlice, "the service saw the authenticated identity "+demoAlice,
		fmt.Sprintf("the service saw identities %q, want [%s]", seen, demoAlice))

	suite := d.suiteFromMetrics("http://" + statusAddr + "/metrics")
	d.check(strings.HasPrefix(suite, "TLS_MILAGRO_CS_"), "suite: "+suite+" (forward secret: a fresh key for every session)",
		"no successful Milagro CS handshake in the proxy's metrics (got "+suite+")")

	d.say("\n8. A client whose key was combined from only two of the three D-TAs is refused:")
	out, err := d.mtls("", "client", "--connect", serverAddr, "--key", "alice-2of3.key", "--permit", "alice-2of3.permit")
	d.say("  %s", strings.TrimSpace(lastLine(out)))
	d.check(err != nil && strings.Contains(out, "access_denied"), "refused with access_denied",
		"the 2-of-3 key was not refused with access_denied")

	d.say("\n9. Mallory has a complete, valid key, but the proxy's ACL does not admit her:")
	out, err = d.mtls("", "client", "--connect", serverAddr, "--key", "mallory.key", "--permit", "mallory.permit")
	d.say("  %s", strings.TrimSpace(lastLine(out)))
	d.check(err != nil && strings.Contains(out, "access_denied"), "refused with access_denied",
		"mallory was not refused with access_denied")
	seenMu.Lock()
	n := len(seen)
	seenMu.Unlock()
	d.check(n == 1, "neither refused client ever reached the service",
		fmt.Sprintf("the service saw %d requests, want 1", n))

	d.say("\n10. Stopping the sidecars.")
	d.stopAll()
	return nil
}

func (d *demo) get(url string) (string, error) {
	req, err := http.NewRequestWithContext(d.ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	// One connection per request, so that stopping the sidecars need not
	// wait for an idle keep-alive connection to drain.
	client := &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("HTTP %s: %s", resp.Status, b)
	}
	return string(b), nil
}

// suiteFromMetrics returns the suite label of a successful handshake counted
// in the proxy's Prometheus metrics.
func (d *demo) suiteFromMetrics(url string) string {
	body, err := d.get(url)
	if err != nil {
		return "(metrics unavailable: " + err.Error() + ")"
	}
	for _, line := range strings.Split(body, "\n") {
		if !strings.HasPrefix(line, "mtls_proxy_handshakes_total{") || !strings.Contains(line, `result="ok"`) {
			continue
		}
		if i := strings.Index(line, `suite="`); i >= 0 {
			rest := line[i+len(`suite="`):]
			if j := strings.IndexByte(rest, '"'); j >= 0 {
				return rest[:j]
			}
		}
	}
	return "(none)"
}

func lastLine(s string) string {
	s = strings.TrimRight(s, "\n")
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}
