package mtlshttp_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptrace"
	"time"

	"github.com/milagro-go/milagro/mtls"
	"github.com/milagro-go/milagro/mtlshttp"
	"github.com/milagro-go/milagro/pairing"
)

// exampleHTTPServer starts an HTTP/2 and HTTP/1.1 server for
// api.example.com; it returns its URL and the client's Config (today's
// permit included: servers require one by default).
func exampleHTTPServer() (url string, client *mtls.Config, stop func()) {
	ta, _ := pairing.NewMasterShare(rand.Reader)
	apiShare, _ := ta.IssueCSServerKey("api.example.com")
	apiKey, _ := pairing.CombineCSServerSecrets(apiShare)
	keyShare, _ := ta.IssueCSClientKey("alice@example.com")
	key, _ := pairing.CombineCSClientKeys(keyShare)
	permitShare, _ := ta.IssueTimePermit("alice@example.com", pairing.Day(time.Now()))
	permit, _ := pairing.CombineTimePermits(permitShare)

	ln, err := mtls.Listen("tcp", "127.0.0.1:0", &mtls.Config{
		CSServerKeys: []*pairing.CSServerSecret{apiKey},
		NextProtos:   []string{"h2", "http/1.1"},
	})
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello")
	})}
	go mtlshttp.Serve(srv, ln)
	return "https://" + ln.Addr().String() + "/", &mtls.Config{
		CSKey:          key,
		CSPermits:      []*pairing.TimePermit{permit},
		ServerIdentity: "api.example.com", // the server must prove it
	}, func() { srv.Close() }
}

// An HTTP client reads which server answered, and how, from the response:
// the server identity it proved (ServerIdentity asked for it) and the suite.
func ExampleResponseConnectionState() {
	url, cfg, stop := exampleHTTPServer()
	defer stop()

	client := &http.Client{Transport: mtlshttp.NewHTTP2Transport(cfg)}
	resp, err := client.Get(url)
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	st, ok := mtlshttp.ResponseConnectionState(resp)
	fmt.Println(ok, st.PeerIdentity, st.CipherSuiteName, resp.Proto)
	// Output: true api.example.com TLS_MILAGRO_CS_WITH_AES_128_GCM_SHA256 HTTP/2.0
}

// Over HTTP/1.1, net/http does not link a response to its connection; an
// httptrace.ClientTrace sees the connection of each request.
func ExampleConnectionStateOf() {
	url, cfg, stop := exampleHTTPServer()
	defer stop()

	var st mtls.ConnectionState
	ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		GotConn: func(info httptrace.GotConnInfo) { st, _ = mtlshttp.ConnectionStateOf(info.Conn) },
	})
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	client := &http.Client{Transport: mtlshttp.NewTransport(cfg)}
	resp, err := client.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	fmt.Println(st.PeerIdentity, resp.Proto)
	// Output: api.example.com HTTP/1.1
}

// HTTP/2 and HTTP/1.1 on one listener, chosen by ALPN; handlers read the
// authenticated client from the request.
func ExampleServe() {
	ta, _ := pairing.NewMasterShare(rand.Reader)
	serverKey, _ := pairing.CombineCSServerSecrets(ta.IssueCSServerSecret())
	aliceKeyShare, _ := ta.IssueCSClientKey("alice@example.com")
	aliceKey, _ := pairing.CombineCSClientKeys(aliceKeyShare) // one share from each D-TA

	// A server that does not ask for time permits (they are required by
	// default; see ExampleDial for a client with one).
	ln, err := mtls.Listen("tcp", "127.0.0.1:0", &mtls.Config{
		CSServerKeys: []*pairing.CSServerSecret{serverKey},
		PermitMode:   pairing.PermitsOptional,
		NextProtos:   []string{"h2", "http/1.1"},
	})
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, _ := mtls.PeerIdentity(r.Context())
		fmt.Fprintf(w, "%s over %s", id, r.Proto)
	})}
	go mtlshttp.Serve(srv, ln)
	defer srv.Close()

	url := "https://" + ln.Addr().String() + "/"
	for _, rt := range []http.RoundTripper{
		mtlshttp.NewHTTP2Transport(&mtls.Config{CSKey: aliceKey}),
		mtlshttp.NewTransport(&mtls.Config{CSKey: aliceKey}),
	} {
		client := &http.Client{Transport: rt}
		resp, err := client.Get(url)
		if err != nil {
			log.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		client.CloseIdleConnections()
		fmt.Println(string(body))
	}
	// Output:
	// alice@example.com over HTTP/2.0
	// alice@example.com over HTTP/1.1
}
