package proxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/milagro-go/milagro/mtls"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// PSK test credentials.
var (
	testSuite = uint16(0x00A8) // TLS_PSK_WITH_AES_128_GCM_SHA256
	testKeys  = map[string][]byte{
		"alice":   bytes.Repeat([]byte{0xA1}, 32),
		"bob":     bytes.Repeat([]byte{0xB0}, 32),
		"mallory": bytes.Repeat([]byte{0x66}, 32),
	}
)

func pskServerConfig() *mtls.Config {
	return &mtls.Config{
		CipherSuites: []uint16{testSuite},
		GetServerPSK: func(id string) ([]byte, error) {
			if k, ok := testKeys[id]; ok {
				return k, nil
			}
			return nil, fmt.Errorf("unknown identity %q", id)
		},
	}
}

func pskClientConfig(id string) *mtls.Config {
	return &mtls.Config{CipherSuites: []uint16{testSuite}, PSKIdentity: id, PSK: testKeys[id]}
}

// quietLogger returns a logger for in-process proxies: with -v it writes to
// stderr; otherwise it keeps warnings and errors and prints them if the
// test fails.
func quietLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	w := &tailBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("proxy warnings:\n%s", w.String())
		}
	})
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// tailBuffer keeps the last 32 KiB written to it.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if n := len(b.buf) - 32<<10; n > 0 {
		b.buf = append(b.buf[:0], b.buf[n:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}

func listenLocal(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// upstream is a test service: it counts connections and echoes (or runs
// serve) on each, half-closing after EOF.
type upstream struct {
	ln    net.Listener
	count atomic.Int64
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[net.Conn]struct{}
	serve func(net.Conn)
}

func startUpstream(t testing.TB, serve func(net.Conn)) *upstream {
	u := &upstream{ln: listenLocal(t), conns: map[net.Conn]struct{}{}, serve: serve}
	if u.serve == nil {
		u.serve = echo
	}
	u.wg.Add(1)
	go func() {
		defer u.wg.Done()
		for {
			c, err := u.ln.Accept()
			if err != nil {
				return
			}
			u.count.Add(1)
			u.mu.Lock()
			u.conns[c] = struct{}{}
			u.mu.Unlock()
			u.wg.Add(1)
			go func() {
				defer u.wg.Done()
				defer func() {
					c.Close()
					u.mu.Lock()
					delete(u.conns, c)
					u.mu.Unlock()
				}()
				u.serve(c)
			}()
		}
	}()
	t.Cleanup(u.close)
	return u
}

func (u *upstream) addr() string { return u.ln.Addr().String() }

func (u *upstream) close() {
	u.ln.Close()
	u.mu.Lock()
	for c := range u.conns {
		c.Close()
	}
	u.mu.Unlock()
	u.wg.Wait()
}

func echo(c net.Conn) {
	io.Copy(c, c)
	c.(*net.TCPConn).CloseWrite()
	io.Copy(io.Discard, c)
}

func startServer(t testing.TB, s *Server, acl *ACL) string {
	t.Helper()
	if s.Logger == nil {
		s.Logger = quietLogger(t)
	}
	if err := s.SetConfig(pskServerConfig(), acl); err != nil {
		t.Fatal(err)
	}
	ln := listenLocal(t)
	done := make(chan error, 1)
	go func() { done <- s.Serve(context.Background(), ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
		if err := <-done; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	})
	return ln.Addr().String()
}

func startClient(t testing.TB, c *Client, id string) string {
	t.Helper()
	if c.Logger == nil {
		c.Logger = quietLogger(t)
	}
	if err := c.SetConfig(pskClientConfig(id)); err != nil {
		t.Fatal(err)
	}
	ln := listenLocal(t)
	done := make(chan error, 1)
	go func() { done <- c.Serve(context.Background(), ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c.Shutdown(ctx)
		<-done
	})
	return ln.Addr().String()
}

func dialMTLS(t testing.TB, addr, id string) (*mtls.Conn, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	d := mtls.Dialer{Config: pskClientConfig(id)}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	return c.(*mtls.Conn), nil
}

// roundTrip writes msg, half-closes and reads everything back.
func roundTrip(t testing.TB, c net.Conn, msg []byte) []byte {
	t.Helper()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	errc := make(chan error, 1)
	go func() {
		_, err := c.Write(msg)
		if err == nil {
			err = c.(interface{ CloseWrite() error }).CloseWrite()
		}
		errc <- err
	}()
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("write: %v", err)
	}
	return got
}

// countFDs returns the number of open file descriptors of this process.
func countFDs(t testing.TB) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	return len(ents)
}

// waitFor polls cond until it holds or d passes.
func waitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return cond()
}

func goroutineDump() string {
	buf := make([]byte, 1<<20)
	return string(buf[:runtime.Stack(buf, true)])
}

// metricValue returns the value of a counter or gauge.
func metricValue(c prometheus.Collector) float64 {
	ch := make(chan prometheus.Metric, 1)
	c.Collect(ch)
	close(ch)
	var v float64
	for m := range ch {
		var d dto.Metric
		if err := m.Write(&d); err != nil {
			panic(err)
		}
		switch {
		case d.Counter != nil:
			v += d.Counter.GetValue()
		case d.Gauge != nil:
			v += d.Gauge.GetValue()
		}
	}
	return v
}

// dialRefused connects to a client proxy expected to refuse the
// connection (its upstream handshake or target fails), writes msg and
// reads to the end. The client proxy resets the local connection as soon
// as its upstream fails, which can already reach connect(2): a reset on
// dial is the same refusal as one on read, and is returned as the read
// error with nothing read.
func dialRefused(t *testing.T, addr string, msg []byte) ([]byte, error) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		if errors.Is(err, syscall.ECONNRESET) {
			return nil, err
		}
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if msg != nil {
		c.Write(msg)
	}
	return io.ReadAll(c)
}
