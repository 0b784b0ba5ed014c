package proxy

import (
	"context"
	"crypto/tls"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// BenchmarkProxyHTTPRequests: requests/s through the proxy pair (both as
// the built binary, PSK suite) to a Go HTTP service, in plain TCP mode and
// in HTTP identity mode, in the same run:
//
//	tcp-h1    TCP mode, HTTP/1.1 keep-alive, 8 connections
//	ident-h1  HTTP identity mode, HTTP/1.1 keep-alive, 8 connections
//	tcp-h2    TCP mode, HTTP/2 prior knowledge (h2c service), 8 streams on one connection
//	ident-h2  HTTP identity mode, client --alpn h2, h2c target, 8 streams on one connection
//
// Each request is a GET answered with 2 bytes, so the figure is the
// per-request cost of each mode.
func BenchmarkProxyHTTPRequests(b *testing.B) {
	svc := h2cBackend(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	for _, tc := range []struct {
		name       string
		serverArgs []string
		clientArgs []string
		h2         bool
	}{
		{"tcp-h1", nil, nil, false},
		{"ident-h1", []string{"--http-identity-header", testHdr}, nil, false},
		{"tcp-h2", nil, []string{"--alpn", "none"}, true},
		{"ident-h2", []string{"--http-identity-header", testHdr, "--target-protocol", "h2c"}, []string{"--alpn", "h2"}, true},
	} {
		b.Run(tc.name, func(b *testing.B) {
			saddr, caddr := freePort(b), freePort(b)
			startQuiet(b, saddr, append([]string{"--log-level", "warn", "proxy", "server", "--listen", saddr, "--target", svc,
				"--psk-file", writePSKFile(b), "--suites", "PSK-AES128-GCM-SHA256", "--allow", "alice"}, tc.serverArgs...)...)
			startQuiet(b, caddr, append([]string{"--log-level", "warn", "proxy", "client", "--listen", caddr, "--target", saddr,
				"--psk-identity", "alice", "--psk", hex.EncodeToString(testKeys["alice"]), "--suites", "PSK-AES128-GCM-SHA256"}, tc.clientArgs...)...)
			var rt http.RoundTripper
			if tc.h2 {
				t2 := &http2.Transport{AllowHTTP: true, DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
					return (&net.Dialer{}).DialContext(ctx, network, addr)
				}}
				defer t2.CloseIdleConnections()
				rt = t2
			} else {
				t1 := &http.Transport{MaxIdleConnsPerHost: 8, MaxConnsPerHost: 8}
				defer t1.CloseIdleConnections()
				rt = t1
			}
			client := &http.Client{Transport: rt, Timeout: 20 * time.Second}
			get := func() error {
				resp, err := client.Get("http://" + caddr + "/")
				if err != nil {
					return err
				}
				_, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if err == nil && resp.StatusCode != 200 {
					err = &net.OpError{Op: resp.Status}
				}
				return err
			}
			if err := get(); err != nil { // connections and sessions up first
				b.Fatal(err)
			}
			var failed atomic.Value
			b.SetParallelism(max(1, 8/runtime.GOMAXPROCS(0)))
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := get(); err != nil {
						failed.Store(err)
						return
					}
				}
			})
			el := time.Since(start)
			b.StopTimer()
			if err, _ := failed.Load().(error); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/el.Seconds(), "req/s")
		})
	}
}
