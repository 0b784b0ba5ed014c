// Command httpserver is an HTTP server on an mtls listener: no certificates,
// the clients authenticate with Milagro CS keys (or P2P keys), and each
// handler learns the authenticated identity from the request context. It
// speaks HTTP/2 to clients that choose "h2" by ALPN and HTTP/1.1 to the
// others (mtlshttp.Serve).
//
//	go run ./examples/httpserver -listen 127.0.0.1:8443 -key server.key
//
// curl cannot talk to it (it speaks X.509 TLS): use ./examples/httpclient.
//
// The key files are made with the mtls CLI (mtls ta init / ta issue /
// keys combine); see examples/README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/milagro-go/milagro/mtls"
	"github.com/milagro-go/milagro/mtlshttp"
	"github.com/milagro-go/milagro/pairing"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "httpserver:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("httpserver", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:8443", "address to listen on")
	keyFile := fs.String("key", "", "Milagro CS server secret file")
	p2pFile := fs.String("p2p-key", "", "Milagro P2P key file (optional: also accept P2P clients)")
	permits := fs.String("permits", "required", "time permit policy, required or optional (clients without a permit)")
	fs.Bool("require-permits", true, "CS clients must present today's time permit (the default)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *keyFile == "" && *p2pFile == "" {
		return errors.New("give -key (a CS server secret) and/or -p2p-key")
	}
	mode, err := pairing.ParsePermitMode(*permits)
	if err != nil {
		return err
	}
	cfg := &mtls.Config{
		PermitMode:       mode,
		HandshakeTimeout: 10 * time.Second,
		NextProtos:       []string{"h2", "http/1.1"}, // ALPN: HTTP/2 preferred
	}
	if *keyFile != "" {
		k, err := mtls.LoadCSServerSecret(*keyFile)
		if err != nil {
			return err
		}
		cfg.CSServerKeys = []*pairing.CSServerSecret{k}
	}
	if *p2pFile != "" {
		k, err := mtls.LoadP2PKey(*p2pFile)
		if err != nil {
			return err
		}
		cfg.P2PKey = k
	}

	inner, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	ln := mtls.NewListener(inner, cfg)

	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		// The handshake has completed before net/http parsed the request,
		// so the identity is the authenticated one.
		id, ok := mtls.PeerIdentity(r.Context())
		if !ok {
			http.Error(w, "no authenticated identity", http.StatusForbidden)
			return
		}
		cs, _ := mtlshttp.RequestConnectionState(r)
		fmt.Fprintf(w, "hello %s (%s)\n", id, cs.CipherSuiteName)
	})
	// mtlshttp.Serve hands the *mtls.Conn to handlers (mtls.ConnContext)
	// over HTTP/1.1 and HTTP/2 alike.
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          log.New(os.Stderr, "httpserver: ", 0), // failed handshakes
	}
	fmt.Fprintf(stdout, "listening on %s\n", inner.Addr())

	errc := make(chan error, 1)
	go func() { errc <- mtlshttp.Serve(srv, ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}
