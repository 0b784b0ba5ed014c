package dta

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/milagro-go/milagro/dta/dtaclient"
	"github.com/milagro-go/milagro/dta/dtawire"
	"github.com/milagro-go/milagro/mtls"
)

// infoFrom runs GET /v1/info with credential d from local address src
// ("" for any) and returns the HTTP status (0 when the connection or
// handshake failed) and the error.
func infoFrom(src, addr string, d *dtaclient.RenewalDTA, now func() time.Time, timeout time.Duration) (int, error) {
	cr, err := d.Credential(false)
	if err != nil {
		return 0, err
	}
	dl := net.Dialer{Timeout: timeout}
	if src != "" {
		dl.LocalAddr = &net.TCPAddr{IP: net.ParseIP(src)}
	}
	raw, err := dl.Dial("tcp", addr)
	if err != nil {
		return 0, err
	}
	return infoOver(raw, cr, now, timeout)
}

func infoOver(raw net.Conn, cr dtaclient.Credential, now func() time.Time, timeout time.Duration) (int, error) {
	defer raw.Close()
	raw.SetDeadline(time.Now().Add(timeout))
	c := mtls.Client(raw, &mtls.Config{CipherSuites: dtawire.Suites, PSKIdentity: cr.Identity, PSK: cr.PSK, ServerName: cr.ServerName, Time: now})
	if _, err := c.Write([]byte("GET /v1/info HTTP/1.1\r\nHost: dta\r\nConnection: close\r\n\r\n")); err != nil {
		return 0, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// waitMetric polls reg until metric{label} reaches want (the server counts
// just after the client sees the outcome).
func waitMetric(t *testing.T, d *testDTA, name, label string, want float64) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if metricValueOr(d.srv.reg, name, label) >= want {
			return
		}
	}
	t.Fatalf("%s{%s} = %v, want ≥ %v", name, label, metricValueOr(d.srv.reg, name, label), want)
}

// TestFailingSourceRefusedAtAccept: a source that spent its failure budget
// is refused before its handshake, holds no slot, and a successful
// handshake from it (even with a used code) does not wash its record;
// another source is unaffected.
func TestFailingSourceRefusedAtAccept(t *testing.T) {
	var clock atomic.Int64
	clock.Store(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()) }
	d := startDTACfg(t, now, "NORMAL", ServerConfig{FailureBurst: 3, FailureRate: 0.001})
	ctx := context.Background()
	codes := codesFor(t, []*testDTA{d}, dtawire.KindClient, "ok")
	e, err := dtaclient.Enroll(ctx, &dtaclient.ClientOptions{Now: now}, codes)
	if err != nil {
		t.Fatal(err)
	}
	good := &e.Renewal.DTAs[0]
	bogus := &dtaclient.RenewalDTA{Address: d.addr, Kind: dtawire.KindClient, Identity: "nobody", Secret: strings.Repeat("A", 43)}
	fails := 0
	fail := func() {
		t.Helper()
		if st, err := infoFrom("127.0.0.1", d.addr, bogus, now, 5*time.Second); err == nil || st != 0 {
			t.Fatalf("an unknown identity was served: %d %v", st, err)
		}
		fails++
		waitMetric(t, d, "mtls_dta_handshake_failures_total", "unknown_psk_identity", float64(fails))
	}
	fail()
	fail()
	// A successful handshake with a used code: refused by the endpoint,
	// and it must not reset the source's record.
	usedCode := dtaclient.Credential{Identity: "enroll:" + codes[0].Code.ID.String(), PSK: codes[0].Code.Secret[:]}
	raw, err := net.Dial("tcp", d.addr)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := infoOver(raw, usedCode, now, 5*time.Second); err != nil || st != http.StatusForbidden {
		t.Fatalf("used code on /v1/info: %d %v", st, err)
	}
	fail() // the third failure spends the budget
	if st, err := infoFrom("127.0.0.1", d.addr, good, now, 500*time.Millisecond); err == nil {
		t.Fatalf("a source that spent its budget was served (%d)", st)
	}
	waitMetric(t, d, "mtls_dta_slowed_connections_total", "", 1)
	if n := d.srv.adm.slots.Len(); n != 0 {
		t.Fatalf("a refused source holds %d handshake slots", n)
	}
	// Another source is served.
	if st, err := infoFrom("127.0.0.2", d.addr, good, now, 5*time.Second); err != nil || st != 200 {
		t.Fatalf("another source: %d %v", st, err)
	}
}

// pipeListener hands out in-memory connections with the remote addresses
// the test chooses: IPv6 sources without configuring any interface.
type pipeListener struct {
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
}

type addrConn struct {
	net.Conn
	remote net.Addr
}

func (a addrConn) RemoteAddr() net.Addr { return a.remote }

func newPipeListener() *pipeListener {
	return &pipeListener{ch: make(chan net.Conn), done: make(chan struct{})}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}
func (l *pipeListener) Close() error   { l.once.Do(func() { close(l.done) }); return nil }
func (l *pipeListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv6loopback, Port: 1} }

// dial returns the client end of a connection arriving from remote.
func (l *pipeListener) dial(remote string) (net.Conn, error) {
	cl, sv := net.Pipe()
	select {
	case l.ch <- addrConn{Conn: sv, remote: &net.TCPAddr{IP: net.ParseIP(remote), Port: 40000}}:
		return cl, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// TestIPv6SlashSixtyFourFlood: 256 silent connections from 256 addresses
// of one IPv6 /64 count as one source: they get at most its share of the
// handshake slots, and a renewal from another /64 completes.
func TestIPv6SlashSixtyFourFlood(t *testing.T) {
	d := startDTA(t, nil)
	e, err := dtaclient.Enroll(context.Background(), nil, codesFor(t, []*testDTA{d}, dtawire.KindClient, "v6"))
	if err != nil {
		t.Fatal(err)
	}
	pl := newPipeListener()
	go d.srv.Serve(pl)
	t.Cleanup(func() { pl.Close() })
	var silent []net.Conn
	t.Cleanup(func() {
		for _, c := range silent {
			c.Close()
		}
	})
	for i := range 256 {
		c, err := pl.dial(fmt.Sprintf("2001:db8:0:1::%x", i+1))
		if err != nil {
			t.Fatal(err)
		}
		silent = append(silent, c)
	}
	if held := d.srv.adm.slots.Len(); held > 64 {
		t.Fatalf("one /64 holds %d handshake slots, want ≤ 64", held)
	}
	c, err := pl.dial("2001:db8:0:2::1")
	if err != nil {
		t.Fatal(err)
	}
	cr, _ := e.Renewal.DTAs[0].Credential(false)
	if st, err := infoOver(c, cr, nil, 30*time.Second); err != nil || st != 200 {
		t.Fatalf("renewal credential from another /64 under the flood: %d %v", st, err)
	}
}

// silentFlood keeps n connections per source address open to addr without
// ever sending a byte, reconnecting whenever the D-TA closes one, until
// stop is closed. up is done once every connection was tried once.
func silentFlood(addr string, sources []string, n int, stop <-chan struct{}) *sync.WaitGroup {
	wg, _ := silentFloodUp(addr, sources, n, stop)
	return wg
}

func silentFloodUp(addr string, sources []string, n int, stop <-chan struct{}) (*sync.WaitGroup, *sync.WaitGroup) {
	var wg, up sync.WaitGroup
	for _, src := range sources {
		for range n {
			up.Add(1)
			first := true
			wg.Go(func() {
				dl := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
				buf := make([]byte, 1)
				for {
					select {
					case <-stop:
						return
					default:
					}
					c, err := dl.Dial("tcp", addr)
					if first {
						first = false
						up.Done()
					}
					if err != nil {
						select {
						case <-stop:
							return
						case <-time.After(10 * time.Millisecond):
						}
						continue
					}
					go func() { <-stop; c.Close() }()
					c.Read(buf) // returns when the D-TA closes it
					c.Close()
				}
			})
		}
	}
	return &wg, &up
}

// TestSilentFloodRealServe: 256 silent connections (kept up) from
// 127.0.0.2-5 against a real `mtls ta serve`; `mtls keys renew` from
// 127.0.0.1 completes.
func TestSilentFloodRealServe(t *testing.T) {
	root := t.TempDir()
	d := newDTADir(t, root, 1)
	p := d.serve(t)
	ep := filepath.Join(root, "ep")
	os.Mkdir(ep, 0o700)
	mustMtls(t, ep, "keys", "enroll", "--out", "a.key", "--renewal", "a.renewal", "--dta", p.addr+"="+d.code(t, "client", "alice"))
	stop := make(chan struct{})
	wg, up := silentFloodUp(p.addr, []string{"127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"}, 64, stop)
	defer func() { close(stop); wg.Wait() }()
	// Every flooding connection is up (the kernel accepted it), and the
	// D-TA has admitted all of them: they hold every handshake slot.
	up.Wait()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if statusMetric(t, p, "mtls_dta_handshakes_in_progress") >= 256 || os.Getenv("DTA_TEST_MTLS_BIN") != "" {
			break // an older build (DTA_TEST_MTLS_BIN) has no such metric
		}
		if time.Now().After(deadline) {
			t.Fatalf("the flood never held every slot (%v)", statusMetric(t, p, "mtls_dta_handshakes_in_progress"))
		}
	}
	for i := range 3 {
		if out, errOut, err := runMtls(t, ep, "keys", "renew", "--renewal", "a.renewal", "--out-dir", "."); err != nil {
			t.Fatalf("renewal %d under the flood: %v\n%s%s", i, err, out, errOut)
		}
	}
}

// statusMetric reads one unlabelled metric from a serveProc's /metrics.
func statusMetric(t *testing.T, p *serveProc, name string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + p.status + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		var v float64
		if f := strings.Fields(sc.Text()); len(f) == 2 && f[0] == name {
			if _, err := fmt.Sscan(f[1], &v); err == nil {
				return v
			}
		}
	}
	return 0
}

// TestRefusalLogBounded: a flood of refused connections, each naming a
// 60 KB PSK identity, writes a bounded log against a real `mtls ta serve`:
// a few lines per message and interval, a summary with the counts, and no
// more than 64 bytes of any identity.
func TestRefusalLogBounded(t *testing.T) {
	root := t.TempDir()
	d := newDTADir(t, root, 1)
	p := d.serve(t)
	startLog := len(p.log.String())
	long := "renew:client:" + strings.Repeat("x", 60000)
	const attempts = 400
	var wg sync.WaitGroup
	var refused atomic.Int64
	for i := range attempts {
		wg.Go(func() {
			src := fmt.Sprintf("127.0.0.%d", 2+i%4)
			dl := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 10 * time.Second}
			raw, err := dl.Dial("tcp", p.addr)
			if err != nil {
				refused.Add(1)
				return
			}
			defer raw.Close()
			raw.SetDeadline(time.Now().Add(20 * time.Second))
			c := mtls.Client(raw, &mtls.Config{CipherSuites: dtawire.Suites, PSKIdentity: long, PSK: make([]byte, 32)})
			if c.Handshake() == nil {
				t.Error("a 60 KB unknown identity was accepted")
			}
			refused.Add(1)
		})
	}
	wg.Wait()
	if refused.Load() != attempts {
		t.Fatalf("%d of %d attempts refused", refused.Load(), attempts)
	}
	p.term(t) // the summaries are flushed on shutdown
	log := p.log.String()[startLog:]
	if len(log) > 64<<10 {
		t.Fatalf("%d attempts wrote %d bytes of log, want ≤ 64 KB", attempts, len(log))
	}
	if strings.Contains(log, strings.Repeat("x", dtawire.MaxLoggedID+1)) {
		t.Fatal("a log line carries more than 64 bytes of a peer's identity")
	}
	if !strings.Contains(log, "repeated lines left out") || !strings.Contains(log, "count=") {
		t.Fatalf("no summary line with counts:\n%s", log)
	}
}
