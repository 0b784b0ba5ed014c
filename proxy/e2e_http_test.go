package proxy

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/milagro-go/milagro/grpccreds"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/h2c"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
)

// HTTP identity mode end to end: real mtls proxy processes (server and
// client mode) between real HTTP peers - curl, grpc-go, a WebSocket client
// and server (github.com/coder/websocket).

// h2cBackend serves rec over HTTP/1.1 and HTTP/2 cleartext (prior knowledge
// and Upgrade: h2c), as golang.org/x/net/http2/h2c does.
func h2cBackend(t testing.TB, rec http.Handler) string {
	t.Helper()
	ln := listenLocal(t)
	hs := &http.Server{Handler: h2c.NewHandler(rec, &http2.Server{})}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	return ln.Addr().String()
}

// runCurl runs the real curl and returns its standard output.
func runCurl(t *testing.T, args ...string) (string, error) {
	t.Helper()
	bin, err := exec.LookPath("curl")
	if err != nil {
		t.Fatalf("curl is not installed (scripts/install-peers.sh installs it): %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"-sS", "--max-time", "20"}, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("curl %v: %v: %s", args, err, stderr.String())
	}
	return string(out), nil
}

// refusedMetric reads mtls_proxy_http_refused_total{reason} from a
// proxy's /metrics.
func refusedMetric(t *testing.T, status, reason string) int {
	t.Helper()
	resp, err := http.Get("http://" + status + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`(?m)^mtls_proxy_http_refused_total\{reason="` + reason + `"\} (\d+)`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("no mtls_proxy_http_refused_total{reason=%q} in /metrics", reason)
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}

// The reproduction of the identity spoofing through an h2c upgrade: curl
// --http2 (an Upgrade: h2c offer) with a spoofed identity header, through
// the proxy pair, to an h2c-capable back end. The offer is removed, both
// requests stay HTTP/1.1, and the back end sees only alice. HTTP/2 with
// prior knowledge works when the client-mode proxy offers h2 (--alpn h2),
// and is refused (400, counted) when it offers http/1.1.
func TestE2EHTTPIdentityCurlH2C(t *testing.T) {
	rec := newRecorder()
	back := h2cBackend(t, rec)
	srv, saddr, status := proxyServer(t, back, "--allow", "alice", "--http-identity-header", testHdr, "--status", "127.0.0.1:0")
	_, h1 := proxyClient(t, saddr, "alice")
	_, h2 := proxyClient(t, saddr, "alice", "--alpn", "h2")

	out, err := runCurl(t, "--http2", "-H", testHdr+": admin", "-H", "x_mtls_identity: root",
		"-w", " %{http_version}\n", "http://"+h1+"/a", "http://"+h1+"/b")
	if err != nil {
		t.Fatal(err)
	}
	if out != "ok 1.1\nok 1.1\n" {
		t.Fatalf("curl --http2 got %q, want both answers over HTTP/1.1", out)
	}
	reqs := rec.seen()
	if len(reqs) != 2 || reqs[0].path != "/a" || reqs[1].path != "/b" || reqs[1].proto != "HTTP/1.1" {
		t.Fatalf("back end saw %+v", reqs)
	}
	onlyID(t, reqs, "alice")
	if n := refusedMetric(t, status, refusedH2CUpgrade); n < 1 {
		t.Errorf("h2c upgrade offers counted %d", n)
	}

	// One URL per curl: curl 7.88.1 fails the second request it
	// multiplexes on a prior-knowledge connection ("Error in the HTTP2
	// framing layer") against any h2c server, proxied or not.
	for _, p := range []string{"/c", "/d"} {
		out, err = runCurl(t, "--http2-prior-knowledge", "-H", testHdr+": admin", "-w", " %{http_version}", "http://"+h2+p)
		if err != nil {
			t.Fatal(err)
		}
		if out != "ok 2" {
			t.Fatalf("curl --http2-prior-knowledge through --alpn h2 got %q", out)
		}
	}

	// HTTP/2 frames on a connection that chose http/1.1: refused.
	if out, err := runCurl(t, "--http2-prior-knowledge", "-H", testHdr+": admin", "http://"+h1+"/e"); err == nil {
		t.Fatalf("HTTP/2 preface through --alpn http/1.1 answered %q", out)
	}
	if n := refusedMetric(t, status, refusedH2Preface); n != 1 {
		t.Errorf("HTTP/2 prefaces refused: %d, want 1", n)
	}
	srv.waitLog(t, "HTTP request refused or its protocol switch removed", "reason", refusedH2Preface, "identity", "alice")
	reqs = rec.seen()
	if len(reqs) != 4 || reqs[2].path != "/c" || reqs[3].path != "/d" {
		t.Fatalf("back end saw %+v", reqs)
	}
	onlyID(t, reqs, "alice")
}

// An h2c target (--target-protocol h2c) gets HTTP/2 from the proxy,
// whatever the client speaks.
func TestE2EHTTPIdentityCurlH2CTarget(t *testing.T) {
	rec := newRecorder()
	back := h2cBackend(t, rec)
	_, saddr, _ := proxyServer(t, back, "--allow", "alice", "--http-identity-header", testHdr, "--target-protocol", "h2c")
	_, h1 := proxyClient(t, saddr, "alice")
	_, h2 := proxyClient(t, saddr, "alice", "--alpn", "h2")
	for _, args := range [][]string{
		{"--http2", "http://" + h1 + "/a"},
		{"--http2-prior-knowledge", "http://" + h2 + "/b"},
	} {
		out, err := runCurl(t, append([]string{"-H", testHdr + ": admin"}, args...)...)
		if err != nil || out != "ok" {
			t.Fatalf("curl %v: %q, %v", args, out, err)
		}
	}
	reqs := rec.seen()
	if len(reqs) != 2 || reqs[0].proto != "HTTP/2.0" || reqs[1].proto != "HTTP/2.0" {
		t.Fatalf("back end saw %+v", reqs)
	}
	onlyID(t, reqs, "alice")
}

// identityInterceptors record the identity metadata of every gRPC call.
type identityInterceptors struct {
	mu    sync.Mutex
	calls []string // "method=values"
}

func (ii *identityInterceptors) record(ctx context.Context, method string) {
	md, _ := metadata.FromIncomingContext(ctx)
	var vs []string
	for k, v := range md {
		if normHeaderName(k) == normHeaderName(testHdr) {
			vs = append(vs, v...)
		}
	}
	ii.mu.Lock()
	ii.calls = append(ii.calls, method+"="+strings.Join(vs, ","))
	ii.mu.Unlock()
}

func (ii *identityInterceptors) seen() []string {
	ii.mu.Lock()
	defer ii.mu.Unlock()
	return append([]string(nil), ii.calls...)
}

// A grpc-go server behind the proxy server (--target-protocol h2c)
// receives the authenticated identity as metadata on every call, unary and
// streaming, from a gRPC client behind the client-mode proxy (--alpn h2)
// and from one speaking mtls itself (grpccreds); the metadata a grpc-go
// client sets under that name never arrives.
func TestE2EHTTPIdentityGRPC(t *testing.T) {
	ii := &identityInterceptors{}
	gs := grpc.NewServer(
		grpc.UnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			ii.record(ctx, info.FullMethod)
			return h(ctx, req)
		}),
		grpc.StreamInterceptor(func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			ii.record(ss.Context(), info.FullMethod)
			return h(srv, ss)
		}))
	hs := health.NewServer()
	healthpb.RegisterHealthServer(gs, hs)
	ln := listenLocal(t)
	go gs.Serve(ln)
	t.Cleanup(gs.Stop)

	_, saddr, _ := proxyServer(t, ln.Addr().String(), "--allow", "alice", "--allow", "bob", "--http-identity-header", testHdr, "--target-protocol", "h2c")
	_, caddr := proxyClient(t, saddr, "alice", "--alpn", "h2")
	// alice's plaintext gRPC client behind the client-mode proxy; bob's
	// gRPC client speaks mtls itself (grpccreds offers h2 by ALPN).
	grpcCalls(t, hs, "passthrough:///"+caddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	grpcCalls(t, hs, "passthrough:///"+saddr, grpc.WithTransportCredentials(grpccreds.New(pskClientConfig("bob"))))
	var want []string
	for _, id := range []string{"alice", "bob"} {
		want = append(want, "/grpc.health.v1.Health/Check="+id, "/grpc.health.v1.Health/Check="+id, "/grpc.health.v1.Health/Watch="+id)
	}
	if got := ii.seen(); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("gRPC server saw %q, want %q", got, want)
	}
}

// grpcCalls makes two unary calls and one streaming call (two messages)
// to target, each with a spoofed identity in its metadata.
func grpcCalls(t *testing.T, hs *health.Server, target string, opts ...grpc.DialOption) {
	t.Helper()
	hs.SetServingStatus("svc", healthpb.HealthCheckResponse_SERVING)
	cc, err := grpc.NewClient(target, opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	client := healthpb.NewHealthClient(cc)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ctx = metadata.AppendToOutgoingContext(ctx, "x-mtls-identity", "admin", "x_mtls_identity", "root")
	for i := 0; i < 2; i++ {
		resp, err := client.Check(ctx, &healthpb.HealthCheckRequest{Service: "svc"})
		if err != nil || resp.Status != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("unary call %d: %v, %v", i, resp, err)
		}
	}
	stream, err := client.Watch(ctx, &healthpb.HealthCheckRequest{Service: "svc"})
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := stream.Recv(); err != nil || resp.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("streaming call: %v, %v", resp, err)
	}
	hs.SetServingStatus("svc", healthpb.HealthCheckResponse_NOT_SERVING)
	if resp, err := stream.Recv(); err != nil || resp.Status != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("streaming call, second message: %v, %v", resp, err)
	}
}

// A WebSocket upgrade (on the default allow list) works end to end with a
// real WebSocket client and server; the server sees alice's identity on
// the upgrade request. With the allow list empty the offer is removed and
// the handshake fails.
func TestE2EHTTPIdentityWebSocket(t *testing.T) {
	var mu sync.Mutex
	var upgrades []string
	ws := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ids := identityValues(r.Header)
		mu.Lock()
		upgrades = append(upgrades, r.Header.Get("Upgrade")+"="+strings.Join(ids, ","))
		mu.Unlock()
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		c.SetReadLimit(1 << 20)
		ctx := r.Context()
		if err := c.Write(ctx, websocket.MessageText, []byte(strings.Join(ids, ","))); err != nil {
			return
		}
		typ, msg, err := c.Read(ctx)
		if err != nil {
			return
		}
		c.Write(ctx, typ, msg)
		c.Close(websocket.StatusNormalClosure, "")
	})
	ln := listenLocal(t)
	hsrv := &http.Server{Handler: ws}
	go hsrv.Serve(ln)
	t.Cleanup(func() { hsrv.Close() })

	_, saddr, _ := proxyServer(t, ln.Addr().String(), "--allow", "alice", "--http-identity-header", testHdr)
	_, caddr := proxyClient(t, saddr, "alice")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	hdr := http.Header{testHdr: {"admin"}}
	c, _, err := websocket.Dial(ctx, "ws://"+caddr+"/ws", &websocket.DialOptions{HTTPHeader: hdr})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	c.SetReadLimit(1 << 20)
	if _, msg, err := c.Read(ctx); err != nil || string(msg) != "alice" {
		t.Fatalf("server saw identity %q (%v), want alice", msg, err)
	}
	big := strings.Repeat("frame ", 20000)
	if err := c.Write(ctx, websocket.MessageText, []byte(big)); err != nil {
		t.Fatal(err)
	}
	if _, msg, err := c.Read(ctx); err != nil || string(msg) != big {
		t.Fatalf("echo: %d bytes, %v", len(msg), err)
	}
	c.Close(websocket.StatusNormalClosure, "")

	_, saddr2, status := proxyServer(t, ln.Addr().String(), "--allow", "alice", "--http-identity-header", testHdr,
		"--http-allow-upgrade", "none", "--status", "127.0.0.1:0")
	_, caddr2 := proxyClient(t, saddr2, "alice")
	if c, _, err := websocket.Dial(ctx, "ws://"+caddr2+"/ws", &websocket.DialOptions{HTTPHeader: hdr}); err == nil {
		c.CloseNow()
		t.Fatal("WebSocket upgrade passed with an empty allow list")
	}
	mu.Lock()
	got := strings.Join(upgrades, " ")
	mu.Unlock()
	if got != "websocket=alice =alice" {
		t.Fatalf("WebSocket server saw upgrades %q", got)
	}
	if n := refusedMetric(t, status, refusedUpgrade); n != 1 {
		t.Errorf("refused upgrades counted %d", n)
	}
}
