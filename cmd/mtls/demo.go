package main

// `mtls demo`: the end-to-end story on loopback, with nothing to configure.
// It runs this very binary's own subcommands as child processes (printing
// each command line, so the output doubles as a walkthrough) and checks what
// happens, exiting non-zero if anything is not as it should be. Every child
// process is stopped and the temporary directory removed on any exit,
// including Ctrl-C.

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

	"github.com/milagro-go/milagro/dta/dtawire"
)

func init() {
	register(&cli.Command{
		Name:  "demo",
		Usage: "end-to-end run on loopback: three D-TA services, enrollment, a proxy pair that renews its permits, revocation",
		Description: "Starts three trust authorities (`mtls ta serve`, each with its own store), enrolls a\n" +
			"server and clients with one-time codes (`mtls ta enroll`, `mtls keys enroll`), starts a\n" +
			"plain HTTP service with `mtls proxy server` in front of it and `mtls proxy client\n" +
			"--renewal` for a client, sends a request through, shows that a key from only two D-TAs\n" +
			"and a denied identity are refused, then revokes the client at one D-TA and shows its\n" +
			"renewal refused by that D-TA. Then stops everything.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "dir", Usage: "work in `DIR` (kept afterwards) instead of a temporary directory"},
			&cli.DurationFlag{Name: "timeout", Value: 120 * time.Second, Usage: "give up after this long"},
		},
		Action: runDemo,
	})
}

const (
	demoAlice   = "alice@example.com"
	demoMallory = "mallory@example.com"
	demoServer  = "api.example.com"
	demoPIN     = "4711"
	demoHeader  = "X-Milagro-Identity"
)

type demoProc struct {
	cmd  *exec.Cmd
	done chan struct{}
}

// demoReady is a background process's log line saying it is ready.
type demoReady struct{ name, line string }

type demo struct {
	exe   string
	dir   string
	out   io.Writer
	ctx   context.Context
	mu    sync.Mutex
	procs []demoProc
	fails []string
	ready chan demoReady
	codes int // enrollment code files written
}

func runDemo(c *cli.Context) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("demo: cannot find this binary: %w", err)
	}
	// A signal (Ctrl-C, SIGTERM, SIGHUP) ends the demo through its context,
	// like the timeout: the children are stopped and the directory, which
	// holds master shares and D-TA stores, is removed by the defers before
	// exiting (the default would exit at once).
	sctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	dir := c.String("dir")
	if dir == "" {
		if dir, err = os.MkdirTemp("", "mtls-demo-"); err != nil {
			return err
		}
		defer os.RemoveAll(dir)
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(sctx, c.Duration("timeout"))
	defer cancel()
	d := &demo{exe: exe, dir: dir, out: c.App.Writer, ctx: ctx, ready: make(chan demoReady, 8)}
	defer d.stopAll()
	err = d.run()
	if sctx.Err() != nil {
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

// run1 runs one subcommand to completion; show replaces the printed
// arguments (to keep secrets out of the walkthrough).
func (d *demo) run1(show []string, args ...string) (stdout, all string, err error) {
	if show == nil {
		show = args
	}
	d.say("$ mtls %s", shellJoin(show))
	cmd := exec.CommandContext(d.ctx, d.exe, args...)
	cmd.Dir = d.dir
	var o, a bytes.Buffer
	cmd.Stdout, cmd.Stderr = io.MultiWriter(&o, &a), &a
	err = cmd.Run()
	return o.String(), a.String(), err
}

// mtls runs one subcommand to completion and returns its combined output.
func (d *demo) mtls(args ...string) (string, error) {
	_, all, err := d.run1(nil, args...)
	return all, err
}

// must runs a subcommand that has to succeed and returns its stdout.
func (d *demo) must(args ...string) (string, error) {
	return d.mustShow(nil, args...)
}

func (d *demo) mustShow(show []string, args ...string) (string, error) {
	out, all, err := d.run1(show, args...)
	if err != nil {
		return "", fmt.Errorf("mtls %s: %v\n%s", strings.Join(args, " "), err, all)
	}
	return out, nil
}

// start runs a long-lived subcommand in the background, its log prefixed;
// a log line containing readyMsg is sent to d.ready.
func (d *demo) start(name, readyMsg string, args ...string) error {
	d.say("$ mtls %s &", shellJoin(args))
	cmd := exec.Command(d.exe, args...)
	cmd.Dir = d.dir
	// Its own process group: a Ctrl-C reaches the demo, which stops the
	// children itself, in order.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		return err
	}
	go func() {
		s := bufio.NewScanner(pr)
		for s.Scan() {
			if strings.Contains(s.Text(), readyMsg) {
				select {
				case d.ready <- demoReady{name, s.Text()}:
				default:
				}
			}
			d.mu.Lock()
			fmt.Fprintf(d.out, "    [%s] %s\n", name, s.Text())
			d.mu.Unlock()
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); pw.Close(); close(done) }()
	d.procs = append(d.procs, demoProc{cmd, done})
	return nil
}

// stopAll stops the background processes, the last started first.
func (d *demo) stopAll() {
	for i := len(d.procs) - 1; i >= 0; i-- {
		_ = d.procs[i].cmd.Process.Signal(syscall.SIGTERM)
	}
	deadline := time.After(10 * time.Second)
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

// waitReady waits until n background processes have logged that they are
// ready (probing their ports instead would show up in their logs as
// aborted handshakes) and returns those lines by process name.
func (d *demo) waitReady(n int) (map[string]string, error) {
	got := map[string]string{}
	for ; n > 0; n-- {
		select {
		case r := <-d.ready:
			got[r.name] = r.line
		case <-d.ctx.Done():
			return nil, errors.New("the background processes did not start in time")
		}
	}
	return got, nil
}

// logField returns the value of key=value in a text log line.
func logField(line, key string) string {
	i := strings.Index(line, " "+key+"=")
	if i < 0 {
		return ""
	}
	f := strings.Fields(line[i+len(key)+2:])
	if len(f) == 0 {
		return ""
	}
	return strings.Trim(f[0], `"`)
}

// dtaInfo is one running D-TA of the demo.
type dtaInfo struct{ name, db, addr, fp string }

// code asks a D-TA's operator for a one-time enrollment code, written to
// a 0600 file (a code on a command line is visible to other local users).
func (d *demo) code(t dtaInfo, kind, id string) (string, error) {
	d.codes++
	file := fmt.Sprintf("code%d-%s.txt", d.codes, t.name)
	if _, err := d.must("ta", "enroll", "--db", t.db, "--kind", kind, "--id", id, "--out", file); err != nil {
		return "", err
	}
	b, err := os.ReadFile(d.path(file))
	if err != nil {
		return "", err
	}
	code := strings.TrimSpace(string(b))
	d.say("  %s: %s…  (one-time code, valid 72h; the operator hands it to the endpoint)", file, code[:min(len(code), 48)])
	return file, nil
}

// enroll runs `keys enroll` with one fresh code from every D-TA.
func (d *demo) enroll(dtas []dtaInfo, kind, id string, extra ...string) error {
	args := []string{"keys", "enroll"}
	for _, t := range dtas {
		f, err := d.code(t, kind, id)
		if err != nil {
			return err
		}
		args = append(args, "--dta", t.addr+"=@"+f)
	}
	show := args
	args, show = append(args, extra...), append(show, extra...)
	out, err := d.mustShow(show, args...)
	if err == nil {
		d.say("  %s", strings.ReplaceAll(strings.TrimSpace(out), "\n", "\n  "))
	}
	return err
}

func (d *demo) run() error {
	d.say("milagro demo: certificate-less TLS with keys from three independent trust authorities")
	d.say("working directory: %s\n", d.dir)

	d.say("1. Three organisations each run a D-TA service with its own master share and store;")
	d.say("   the master secret exists nowhere.")
	var dtas []dtaInfo
	for i := 1; i <= 3; i++ {
		t := dtaInfo{name: fmt.Sprintf("dta%d", i), db: fmt.Sprintf("dta%d.db", i)}
		if _, err := d.must("ta", "init", "--out", t.name+".share"); err != nil {
			return err
		}
		if err := d.start(t.name, `msg="D-TA serving"`, "ta", "serve", "--master", t.name+".share", "--db", t.db, "--listen", "127.0.0.1:0"); err != nil {
			return err
		}
		dtas = append(dtas, t)
	}
	lines, err := d.waitReady(3)
	if err != nil {
		return err
	}
	for i := range dtas {
		l := lines[dtas[i].name]
		dtas[i].addr, dtas[i].fp = logField(l, "addr"), logField(l, "dta")
		if dtas[i].addr == "" || dtas[i].fp == "" {
			return fmt.Errorf("%s: no address or fingerprint in %q", dtas[i].name, l)
		}
	}

	d.say("\n2. The server enrolls as %q with a one-time code from each D-TA: the shares are", demoServer)
	d.say("   checked against the D-TA fingerprints in the codes and added on the server only.")
	if err := d.enroll(dtas, "server", demoServer, "--out", "api.key", "--renewal", "api.renewal"); err != nil {
		return err
	}
	d.say("\n3. Alice enrolls as a client with a PIN (two factors) and gets today's time permit")
	d.say("   (and tomorrow's after 18:00 UTC); her shares are kept only for step 8. Mallory enrolls too.")
	for _, dir := range []string{"alice", "mallory", "alice-shares"} {
		if err := os.Mkdir(d.path(dir), 0o700); err != nil {
			return err
		}
	}
	if err := d.enroll(dtas, "client", demoAlice, "--out", "alice/alice.token", "--renewal", "alice/alice.renewal",
		"--pin", demoPIN, "--out-shares", "alice-shares"); err != nil {
		return err
	}
	if err := d.enroll(dtas, "client", demoMallory, "--out", "mallory/mallory.key", "--renewal", "mallory/mallory.renewal"); err != nil {
		return err
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

	var addrs [4]string
	for i := range addrs {
		if addrs[i], err = freeAddr(); err != nil {
			return err
		}
	}
	serverAddr, statusAddr, clientAddr, clientStatus := addrs[0], addrs[1], addrs[2], addrs[3]
	d.say("\n5. The sidecar in front of it proves %q, requires time permits, admits only alice,", demoServer)
	d.say("   tells the service who the client is in the %s header, and keeps its renewal", demoHeader)
	d.say("   credential current (--renewal).")
	if err := d.start("proxy server", `msg="proxy listening"`, "proxy", "server", "--listen", serverAddr, "--target", svcLn.Addr().String(),
		"--key", "api.key", "--renewal", "api.renewal", "--require-permits", "--allow", demoAlice,
		"--http-identity-header", demoHeader, "--status", statusAddr); err != nil {
		return err
	}
	d.say("\n6. A sidecar for alice: plain TCP in, Milagro TLS out to %q, with her PIN token;", demoServer)
	d.say("   --renewal keeps today's and tomorrow's permits in memory and fetches the next day's")
	d.say("   from every D-TA once they issue it (from 18:00 UTC), switching at midnight by its own clock.")
	if err := d.start("proxy client", `msg="proxy listening"`, "proxy", "client", "--listen", clientAddr, "--target", serverAddr,
		"--key", "alice/alice.token", "--pin", demoPIN, "--renewal", "alice/alice.renewal", "--server-id", demoServer,
		"--status", clientStatus); err != nil {
		return err
	}
	if _, err := d.waitReady(2); err != nil {
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
	d.say("$ curl http://%s/healthz; curl http://%s/metrics | grep mtls_permit_horizon_days", clientStatus, clientStatus)
	health, herr := d.get("http://" + clientStatus + "/healthz")
	horizon := d.metric("http://"+clientStatus+"/metrics", "mtls_permit_horizon_days")
	// Tomorrow's permit exists only from 18:00 UTC (the D-TAs' window).
	wantHorizon, nowUTC := "0", time.Now().UTC()
	if nowUTC.Hour() >= 24-dtawire.DefaultPermitAheadHours {
		wantHorizon = "1"
	}
	// Just after 18:00 the sidecar may not have fetched tomorrow's yet.
	justOpened := wantHorizon == "1" && nowUTC.Hour() == 24-dtawire.DefaultPermitAheadHours && nowUTC.Minute() < 5
	d.check(herr == nil && strings.TrimSpace(health) == "ok" && (horizon == wantHorizon || (justOpened && horizon == "0")),
		"client sidecar healthy, permits held for today"+map[string]string{"0": " (tomorrow's is issued from 18:00 UTC)", "1": " and tomorrow"}[horizon]+" (mtls_permit_horizon_days "+horizon+")",
		fmt.Sprintf("client sidecar /healthz %q (%v), mtls_permit_horizon_days %q; want ok and %s", health, herr, horizon, wantHorizon))

	d.say("\n8. A key combined from only two of the three D-TAs (two organisations colluding, with")
	d.say("   a permit from the same two) is refused:")
	var shares2, permits2 []string
	for _, t := range dtas[:2] {
		shares2 = append(shares2, filepath.Join("alice-shares", "share-"+t.fp+".pem"))
		p := "alice-2of3-permit." + t.name
		if _, err := d.must("ta", "permit", "--master", t.name+".share", "--id", demoAlice, "--day", time.Now().UTC().Format("2006-01-02"), "--out", p); err != nil {
			return err
		}
		permits2 = append(permits2, p)
	}
	for _, s := range [][]string{
		append([]string{"keys", "combine", "--out", "alice-2of3.key"}, shares2...),
		append([]string{"keys", "combine", "--out", "alice-2of3.permit"}, permits2...),
	} {
		if _, err := d.must(s...); err != nil {
			return err
		}
	}
	out, err := d.mtls("client", "--connect", serverAddr, "--key", "alice-2of3.key", "--permit", "alice-2of3.permit", "--server-id", demoServer)
	d.say("%s", indentLines(out, "  "))
	d.check(err != nil && strings.Contains(out, "access_denied"), "refused with access_denied",
		"the 2-of-3 key was not refused with access_denied")

	d.say("\n9. Mallory has a complete, valid key and current permits (--renewal), but the proxy's")
	d.say("   ACL does not admit her:")
	out, err = d.mtls("client", "--connect", serverAddr, "--key", "mallory/mallory.key", "--renewal", "mallory/mallory.renewal", "--server-id", demoServer)
	d.say("%s", indentLines(out, "  "))
	d.check(err != nil && strings.Contains(out, "access_denied"), "refused with access_denied",
		"mallory was not refused with access_denied")
	seenMu.Lock()
	n := len(seen)
	seenMu.Unlock()
	d.check(n == 1, "neither refused client ever reached the service",
		fmt.Sprintf("the service saw %d requests, want 1", n))

	d.say("\n10. Alice's laptop is lost: the operator of %s revokes her there. Her renewal is", dtas[1].name)
	d.say("    refused by that D-TA, and no permit is ever combined from fewer than all D-TAs.")
	if _, err := d.must("ta", "revoke", "--db", dtas[1].db, "--kind", "client", "--id", demoAlice, "--reason", "laptop lost"); err != nil {
		return err
	}
	out, err = d.mtls("keys", "renew", "--renewal", "alice/alice.renewal", "--out-dir", "alice")
	d.say("  %s", strings.TrimSpace(firstLineWith(out, "revoked")))
	d.check(err != nil && strings.Contains(out, "revoked") && strings.Contains(out, dtas[1].fp),
		"renewal refused: revoked at D-TA "+dtas[1].fp+" ("+dtas[1].name+")",
		"alice's renewal after the revocation was not refused naming D-TA "+dtas[1].fp+": "+lastLine(out))
	audit, _ := d.must("ta", "audit", "--db", dtas[1].db, "--since", "1h")
	d.check(strings.Contains(audit, "laptop lost") && strings.Contains(audit, "revoked"),
		"the revocation and the refused renewal are in "+dtas[1].name+"'s audit log",
		dtas[1].name+"'s audit log lacks the revocation or the refusal")
	d.say("    The D-TAs issue a day's permit only from 18:00 UTC the day before (--permit-ahead-hours 6):")
	d.say("    revoked before 18:00, alice is refused from the next midnight; any revocation bites")
	d.say("    within 24 h + 6 h. Checked on an injected clock (an in-process D-TA):")
	if err := d.revocationOnClock(); err != nil {
		d.check(false, "", "the revocation check on an injected clock failed: "+err.Error())
	}

	d.say("\n11. Stopping the sidecars and the D-TAs.")
	d.stopAll()
	return nil
}

// firstLineWith returns the first line of s containing sub, else its last line.
func firstLineWith(s, sub string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			return l
		}
	}
	return lastLine(s)
}

// metric returns the value of an unlabelled metric at a /metrics URL.
func (d *demo) metric(url, name string) string {
	body, err := d.get(url)
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(body, "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == name {
			return f[1]
		}
	}
	return ""
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

// shellJoin joins args for display as a command line that works when
// pasted into a POSIX shell: arguments with spaces or shell characters are
// single-quoted.
func shellJoin(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = shellQuote(a)
	}
	return strings.Join(out, " ")
}

func shellQuote(s string) string {
	if s == "" {
		return "''"
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("@%+=:,./_-", r)) {
			return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
		}
	}
	return s
}

// indentLines indents every non-empty line of s.
func indentLines(s, indent string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = indent + l
		}
	}
	return strings.Join(lines, "\n")
}
