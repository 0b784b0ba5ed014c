package mtls_test

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
	go mtls.ServeHTTP(srv, ln)
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

	client := &http.Client{Transport: mtls.NewHTTP2Transport(cfg)}
	resp, err := client.Get(url)
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	st, ok := mtls.ResponseConnectionState(resp)
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
		GotConn: func(info httptrace.GotConnInfo) { st, _ = mtls.ConnectionStateOf(info.Conn) },
	})
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	client := &http.Client{Transport: mtls.NewHTTPTransport(cfg)}
	resp, err := client.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	fmt.Println(st.PeerIdentity, resp.Proto)
	// Output: api.example.com HTTP/1.1
}
