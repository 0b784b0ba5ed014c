package proxy

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// An allow file emptied before a SIGHUP fails the reload: the previous ACL
// stays, /healthz says degraded, the reload metrics count it; SIGTERM then
// turns /healthz to 503 draining while a live connection finishes.
func TestE2EEmptyAllowFileReloadAndDraining(t *testing.T) {
	up := startUpstream(t, nil)
	allow := filepath.Join(t.TempDir(), "allow")
	os.WriteFile(allow, []byte("alice\n"), 0o600)
	srv, saddr, status := proxyServer(t, up.addr(), "--allow-file", allow, "--status", "127.0.0.1:0", "--shutdown-timeout", "20s")

	os.WriteFile(allow, []byte("# emptied by a broken deploy\n"), 0o600)
	srv.cmd.Process.Signal(syscall.SIGHUP)
	srv.waitLog(t, "reload failed; keeping the previous configuration")
	if code, body := httpGet(t, "http://"+status+"/healthz"); code != 503 || !strings.HasPrefix(body, "degraded:") || !strings.Contains(body, "lists no identity") {
		t.Fatalf("/healthz after a failed reload: %d %q", code, body)
	}
	_, metrics := httpGet(t, "http://"+status+"/metrics")
	for _, want := range []string{`mtls_proxy_reloads_total{result="failed"} 1`, "mtls_proxy_last_reload_success 0"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	live, err := dialMTLS(t, saddr, "alice")
	if err != nil {
		t.Fatalf("alice refused after a failed reload (the previous ACL must stay): %v", err)
	}
	defer live.Close()
	live.SetDeadline(time.Now().Add(10 * time.Second))
	live.Write([]byte("1"))
	if _, err := io.ReadFull(live, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}

	srv.cmd.Process.Signal(syscall.SIGTERM)
	srv.waitLog(t, "shutting down")
	if code, body := httpGet(t, "http://"+status+"/healthz"); code != 503 || body != "draining\n" {
		t.Fatalf("/healthz while draining: %d %q", code, body)
	}
	// The live connection still works during the drain.
	live.Write([]byte("2"))
	if _, err := io.ReadFull(live, make([]byte, 1)); err != nil {
		t.Fatalf("live connection during the drain: %v", err)
	}
}

// A client-mode proxy whose server-mode peer cannot reach its target counts
// the connection as an error, not as ok; the server does not count the
// client's health probes as failed handshakes.
func TestClientCountsUpstreamFailure(t *testing.T) {
	ln := listenLocal(t)
	dead := ln.Addr().String()
	ln.Close()
	sm := NewMetrics()
	saddr := startServer(t, &Server{Target: dead, ConnectTimeout: time.Second, Metrics: sm}, AllowAll())
	cm := NewMetrics()
	caddr := startClient(t, &Client{Target: saddr, Metrics: cm}, "alice")
	dialRefused(t, caddr, []byte("hello"))
	if !waitFor(5*time.Second, func() bool { return metricValue(cm.connections.WithLabelValues("closed_with_error")) == 1 }) {
		t.Fatalf("client proxy: closed_with_error = %v, ok = %v; want the upstream failure counted as an error",
			metricValue(cm.connections.WithLabelValues("closed_with_error")), metricValue(cm.connections.WithLabelValues(resultOK)))
	}
	if v := metricValue(cm.connections.WithLabelValues(resultOK)); v != 0 {
		t.Fatalf("client proxy counted %v ok connections", v)
	}
	// The client proxy's /healthz probes the server proxy with a TCP connect.
	h := &StatusHandler{Target: saddr, Metrics: cm}
	for i := 0; i < 3; i++ {
		h.checked = time.Time{}
		if err := h.health(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if !waitFor(5*time.Second, func() bool {
		return metricValue(sm.connections.WithLabelValues("closed_before_handshake")) == 3
	}) {
		t.Fatalf("server: %v probes seen", metricValue(sm.connections.WithLabelValues("closed_before_handshake")))
	}
	if v := metricValue(sm.handshakes.WithLabelValues("unknown", resultError, "false")); v != 0 {
		t.Fatalf("server counted %v failed handshakes for health probes", v)
	}
}
