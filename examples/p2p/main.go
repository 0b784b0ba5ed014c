// Command p2p is a Milagro P2P pair: two peers, each holding only a P2P key
// for its own identity, authenticate each other with no server secret and
// no certificate. Either peer can be the TLS server.
//
//	go run ./examples/p2p -key node-a.key -listen 127.0.0.1:9000
//	go run ./examples/p2p -key node-b.key -connect 127.0.0.1:9000 -peer node-a -msg "hi"
//
// The listening peer greets every peer by its authenticated identity and
// answers one line; the connecting peer checks that it reached -peer (a
// different server identity is refused with access_denied).
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/milagro-go/milagro/mtls"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "p2p:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("p2p", flag.ContinueOnError)
	keyFile := fs.String("key", "", "this peer's Milagro P2P key file")
	listen := fs.String("listen", "", "act as the TLS server on this address")
	connect := fs.String("connect", "", "act as the TLS client and connect to this address")
	peer := fs.String("peer", "", "with -connect: the identity of the peer expected there")
	msg := fs.String("msg", "hello", "with -connect: the line to send")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *keyFile == "" || (*listen == "") == (*connect == "") {
		return errors.New("usage: p2p -key F (-listen ADDR | -connect ADDR -peer ID [-msg TEXT])")
	}
	key, err := mtls.LoadP2PKey(*keyFile)
	if err != nil {
		return err
	}
	cfg := &mtls.Config{P2PKey: key, HandshakeTimeout: 10 * time.Second}
	if *listen != "" {
		return serve(ctx, cfg, *listen, stdout)
	}
	if *peer == "" {
		return errors.New("-connect needs -peer: the identity you expect to reach")
	}
	cfg.ServerIdentity = *peer
	return dial(ctx, cfg, *connect, *msg, stdout)
}

func serve(ctx context.Context, cfg *mtls.Config, addr string, stdout io.Writer) error {
	ln, err := mtls.Listen("tcp", addr, cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s listening on %s\n", cfg.P2PKey.ID(), ln.Addr())
	go func() { <-ctx.Done(); ln.Close() }()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		go func() {
			if err := answer(c.(*mtls.Conn), cfg.P2PKey.ID(), stdout); err != nil {
				fmt.Fprintf(os.Stderr, "p2p: %s: %v\n", c.RemoteAddr(), err)
			}
		}()
	}
}

// answer greets the peer by its authenticated identity and answers one line.
func answer(c *mtls.Conn, self string, stdout io.Writer) error {
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	if err := c.Handshake(); err != nil {
		return err
	}
	peer := c.ConnectionState().PeerIdentity
	fmt.Fprintf(stdout, "peer %s connected\n", peer)
	if _, err := fmt.Fprintf(c, "hello %s, this is %s\n", peer, self); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(c, "%s got: %s\n", self, strings.TrimSpace(line))
	return err
}

func dial(ctx context.Context, cfg *mtls.Config, addr, msg string, stdout io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	d := &mtls.Dialer{Config: cfg}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	c := nc.(*mtls.Conn)
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	st := c.ConnectionState()
	fmt.Fprintf(stdout, "connected to %s (%s)\n", st.PeerIdentity, st.CipherSuiteName)
	r := bufio.NewReader(c)
	greeting, err := r.ReadString('\n')
	if err != nil {
		return err
	}
	fmt.Fprint(stdout, greeting)
	if _, err := fmt.Fprintf(c, "%s\n", msg); err != nil {
		return err
	}
	reply, err := r.ReadString('\n')
	if err != nil {
		return err
	}
	fmt.Fprint(stdout, reply)
	return nil
}
