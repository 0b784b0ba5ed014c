package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/milagro-go/milagro/handshake"
	"github.com/milagro-go/milagro/mtls"
)

func init() { register(clientCommand()) }

func clientCommand() *cli.Command {
	return &cli.Command{
		Name:      "client",
		Usage:     "TLS client (like openssl s_client): stdin to the connection, the connection to stdout",
		UsageText: "mtls client --connect HOST:PORT (--psk-identity ID --psk HEX | --psk-file FILE | --key FILE (--permit FILE | --renewal FILE) [--server-id ID] | --p2p-key FILE --server-id ID) [options]",
		Description: "After the handshake prints one line `suite=<name> peer=<identity>` on stderr. On stdin EOF\n" +
			"sends close_notify and keeps reading until the server closes. Exit status 1 on any failure.",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "connect", Value: "127.0.0.1:4433", Usage: "server `HOST:PORT`"},
			&cli.StringFlag{Name: "server-name", Usage: "server_name `NAME` to send (default: the host of --connect unless it is an IP)"},
			&cli.StringFlag{Name: "alpn", Usage: "comma-separated application `PROTOCOLS` to offer (ALPN), as openssl s_client -alpn; the one agreed is printed as alpn="},
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
	if cfg.NextProtos, err = parseALPN(c.String("alpn")); err != nil {
		return cmdError("client", "", err)
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
	line := fmt.Sprintf("suite=%s peer=%s", st.CipherSuiteName, st.PeerIdentity)
	if st.NegotiatedProtocol != "" {
		line += " alpn=" + st.NegotiatedProtocol
	}
	if st.PSKIdentityHint != "" {
		// The hint is not authenticated: printed apart from peer=.
		line += fmt.Sprintf(" psk_hint=%q", st.PSKIdentityHint)
	}
	fmt.Fprintln(c.App.ErrWriter, line)

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
		loggerOf(c).Debug("close", "error", err)
	}
	return nil
}

// parseALPN parses --alpn: comma-separated protocol names ("" : none).
func parseALPN(s string) ([]string, error) {
	if s == "" {
		return nil, nil
	}
	protos := strings.Split(s, ",")
	if err := handshake.CheckNextProtos(protos); err != nil {
		return nil, fmt.Errorf("invalid --alpn %q: %w", s, err)
	}
	return protos, nil
}
