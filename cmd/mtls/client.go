package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/milagro-go/milagro/mtls"
)

func init() { register(clientCommand()) }

func clientCommand() *cli.Command {
	return &cli.Command{
		Name:  "client",
		Usage: "TLS client (like openssl s_client): stdin to the connection, the connection to stdout",
		Description: "After the handshake prints one line `suite=<name> peer=<identity>` on stderr. On stdin EOF\n" +
			"sends close_notify and keeps reading until the server closes. Exit status 1 on any failure.",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "connect", Value: "127.0.0.1:4433", Usage: "server `HOST:PORT`"},
			&cli.StringFlag{Name: "server-name", Usage: "server_name `NAME` to send (default: the host of --connect unless it is an IP)"},
		}, append(credentialFlags(false), dtlsClientFlags()...)...),
		Action: clientAction,
	}
}

func clientAction(c *cli.Context) error {
	if c.NArg() > 0 {
		return cmdError("client", "", errors.New("unexpected arguments: "+c.Args().First()))
	}
	if c.Bool("dtls") {
		return dtlsClientAction(c)
	}
	cfg, err := configFromFlags(c, false)
	if err != nil {
		return cmdError("client", "", err)
	}
	addr := c.String("connect")
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return cmdError("client", "", fmt.Errorf("invalid --connect %q: %w", addr, err))
	}
	cfg.ServerName = c.String("server-name")
	if cfg.ServerName == "" && net.ParseIP(host) == nil {
		cfg.ServerName = host
	}

	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	ren, err := startRenewal(ctx, c, cfg, false, false, nil)
	if err != nil {
		return cmdError("client", "", err)
	}
	ren.apply(cfg)
	hctx := ctx
	if cfg.HandshakeTimeout > 0 {
		var cancel context.CancelFunc
		hctx, cancel = context.WithTimeout(ctx, cfg.HandshakeTimeout)
		defer cancel()
	}
	var d net.Dialer
	raw, err := d.DialContext(hctx, "tcp", addr)
	if err != nil {
		return cmdError("client", "", err)
	}
	conn := mtls.Client(raw, cfg)
	defer conn.Close()
	if err := conn.HandshakeContext(hctx); err != nil {
		return withHint(cfg, cmdError("client", "handshake failed", err))
	}
	st := conn.ConnectionState()
	if st.PSKIdentityHint != "" {
		// The hint is not authenticated: printed apart from peer=.
		fmt.Fprintf(c.App.ErrWriter, "suite=%s peer=%s psk_hint=%q\n", st.CipherSuiteName, st.PeerIdentity, st.PSKIdentityHint)
	} else {
		fmt.Fprintf(c.App.ErrWriter, "suite=%s peer=%s\n", st.CipherSuiteName, st.PeerIdentity)
	}

	// A signal ends the session: close the connection (close_notify).
	go func() {
		<-ctx.Done()
		conn.Close()
	}()

	wErr := make(chan error, 1)
	go func() {
		_, err := io.Copy(conn, c.App.Reader)
		if err == nil {
			err = conn.CloseWrite()
		}
		wErr <- err
	}()
	_, rerr := io.Copy(c.App.Writer, conn)
	if ctx.Err() != nil {
		return nil // interrupted
	}
	if rerr != nil {
		return cmdError("client", "connection failed", rerr)
	}
	select {
	case err := <-wErr:
		if err != nil {
			return cmdError("client", "write failed", err)
		}
	default:
		// The server closed before stdin ended: done, like s_client.
	}
	if err := conn.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		logger.Debug("close", "error", err)
	}
	return nil
}
