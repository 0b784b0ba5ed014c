// Command httpclient fetches a URL over mtls: a standard net/http client
// whose Transport dials with mtls.Dialer, authenticating with a Milagro CS
// key (or PIN token and PIN, with an optional time permit) or a P2P key.
// With -h2 it speaks HTTP/2 (mtlshttp.NewHTTP2Transport, "h2" by ALPN).
//
//	MTLS_PIN=4711 go run ./examples/httpclient -key alice.token -permit alice.permit https://127.0.0.1:8443/
//	go run ./examples/httpclient -p2p-key node-b.key -server-id node-a https://127.0.0.1:8443/
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/milagro-go/milagro/mtls"
	"github.com/milagro-go/milagro/mtlshttp"
	"github.com/milagro-go/milagro/pairing"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "httpclient:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("httpclient", flag.ContinueOnError)
	keyFile := fs.String("key", "", "Milagro CS client key or PIN token file")
	permitFile := fs.String("permit", "", "time permit file for today (optional)")
	p2pFile := fs.String("p2p-key", "", "Milagro P2P key file (instead of -key)")
	serverID := fs.String("server-id", "", "the P2P server identity expected (with -p2p-key)")
	h2 := fs.Bool("h2", false, "speak HTTP/2 (the server must choose h2 by ALPN)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("usage: httpclient [flags] https://HOST:PORT/PATH")
	}
	cfg, err := config(*keyFile, *permitFile, *p2pFile, *serverID)
	if err != nil {
		return err
	}

	dialer := &mtls.Dialer{Config: cfg, NetDialer: &net.Dialer{Timeout: 10 * time.Second}}
	var rt http.RoundTripper = &http.Transport{
		// https:// URLs are dialled here: TCP plus the mtls handshake.
		DialTLSContext: dialer.DialContext,
	}
	if *h2 {
		rt = mtlshttp.NewHTTP2Transport(cfg)
	}
	client := &http.Client{Timeout: 30 * time.Second, Transport: rt}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fs.Arg(0), nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if *h2 && resp.ProtoMajor != 2 {
		return fmt.Errorf("got %s, not HTTP/2", resp.Proto)
	}
	if _, err := io.Copy(stdout, io.LimitReader(resp.Body, 1<<20)); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s", resp.Status)
	}
	return nil
}

// config builds the client Config from the key files. The PIN of a PIN
// token comes from $MTLS_PIN (not a flag: flags show up in ps).
func config(keyFile, permitFile, p2pFile, serverID string) (*mtls.Config, error) {
	cfg := &mtls.Config{}
	switch {
	case keyFile != "":
		key, err := mtls.LoadKey(keyFile)
		if err != nil {
			return nil, err
		}
		switch k := key.(type) {
		case *pairing.CSClientKey:
			cfg.CSKey = k
		case *pairing.PINToken:
			pin, err := strconv.ParseUint(os.Getenv("MTLS_PIN"), 10, 32)
			if err != nil || pin > pairing.MaxPIN {
				return nil, fmt.Errorf("%s is a PIN token: set MTLS_PIN to its PIN", keyFile)
			}
			cfg.CSToken = k
			cfg.GetPIN = func() (uint32, error) { return uint32(pin), nil }
		default:
			return nil, fmt.Errorf("%s is not a CS client key or PIN token", keyFile)
		}
		if permitFile != "" {
			p, err := mtls.LoadTimePermit(permitFile)
			if err != nil {
				return nil, err
			}
			cfg.CSPermits = []*pairing.TimePermit{p}
		}
	case p2pFile != "":
		k, err := mtls.LoadP2PKey(p2pFile)
		if err != nil {
			return nil, err
		}
		if serverID == "" {
			return nil, errors.New("-p2p-key needs -server-id")
		}
		cfg.P2PKey, cfg.ServerIdentity = k, serverID
	default:
		return nil, errors.New("give -key (CS) or -p2p-key and -server-id (P2P)")
	}
	return cfg, nil
}
