package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/milagro-go/milagro/mtls"
)

func init() { register(serverCommand()) }

func serverCommand() *cli.Command {
	return &cli.Command{
		Name:      "server",
		Usage:     "TLS echo server (like openssl s_server): echoes everything each client sends",
		UsageText: "mtls server [--listen ADDR] (--psk-identity ID --psk HEX | --psk-file FILE | --key server.key ... | --p2p-key FILE) [--allow ID ... | --allow-all] [options]",
		Description: "Accepts connections concurrently, echoes each one's data back, and closes it after the\n" +
			"client's close_notify (half-close aware). Logs one line per connection. Stops on SIGINT/SIGTERM.",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "listen", Value: "127.0.0.1:4433", Usage: "TCP `ADDR` to listen on"},
			&cli.StringFlag{Name: "alpn", Usage: "comma-separated application `PROTOCOLS` (ALPN) in preference order, as openssl s_server -alpn; a client offering none of them is refused"},
			&cli.BoolFlag{Name: "once", Usage: "serve one connection, then exit (status 1 if it failed)"},
		}, append(credentialFlags(true), dtlsFlags()...)...),
		Action: serverAction,
	}
}

func serverAction(c *cli.Context) error {
	if c.NArg() > 0 {
		return cmdError("server", "", errors.New("unexpected arguments: "+c.Args().First()))
	}
	if c.Bool("dtls") {
		return dtlsServerAction(c)
	}
	cfg, err := configFromFlags(c, true)
	if err != nil {
		return cmdError("server", "", err)
	}
	if cfg.NextProtos, err = parseALPN(c.String("alpn")); err != nil {
		return cmdError("server", "", err)
	}
	raw, err := net.Listen("tcp", c.String("listen"))
	if err != nil {
		return cmdError("server", "", err)
	}
	// mtls.NewListener: a source whose Milagro CS proofs keep failing is
	// closed at accept, before any handshake work.
	ln := mtls.NewListener(raw, cfg)
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	if _, err := startRenewal(ctx, c, cfg, true, true, nil); err != nil {
		ln.Close()
		return cmdError("server", "", err)
	}
	s := &echoServer{cfg: cfg, log: loggerOf(c), conns: map[*mtls.Conn]struct{}{}}
	s.log.Info("listening", "addr", ln.Addr().String())
	err = s.serve(ctx, ln, c.Bool("once"))
	if err != nil {
		return cmdError("server", "", err)
	}
	return nil
}

type echoServer struct {
	cfg *mtls.Config
	log *slog.Logger

	mu       sync.Mutex
	conns    map[*mtls.Conn]struct{}
	shutdown bool
	wg       sync.WaitGroup
}

// serve accepts until ctx is done (or after one connection with once), then
// closes the active connections (each sends close_notify) and waits for them.
func (s *echoServer) serve(ctx context.Context, ln net.Listener, once bool) error {
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	var onceErr error
	for {
		nc, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			ln.Close()
			s.closeAll()
			return err
		}
		conn := nc.(*mtls.Conn)
		if !s.track(conn) {
			conn.Close()
			break
		}
		if once {
			ln.Close()
			onceErr = s.handle(ctx, conn)
			s.untrack(conn)
			return onceErr
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer s.untrack(conn)
			s.handle(ctx, conn)
		}()
	}
	s.log.Info("shutting down")
	s.closeAll()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		s.log.Warn("shutdown: connections still open after 5s")
	}
	return nil
}

func (s *echoServer) track(c *mtls.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shutdown {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *echoServer) untrack(c *mtls.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

func (s *echoServer) closeAll() {
	s.mu.Lock()
	s.shutdown = true
	var cs []*mtls.Conn
	for c := range s.conns {
		cs = append(cs, c)
	}
	s.mu.Unlock()
	for _, c := range cs {
		c.Close()
	}
}

type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (r *countingReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.n.Add(int64(n))
	return n, err
}

// handle runs the handshake, echoes until the peer's close_notify, and logs
// one line. It returns the connection's error (nil for a clean close).
func (s *echoServer) handle(ctx context.Context, c *mtls.Conn) error {
	start := time.Now()
	remote := c.RemoteAddr().String()
	hctx := ctx
	if s.cfg.HandshakeTimeout > 0 {
		var cancel context.CancelFunc
		hctx, cancel = context.WithTimeout(ctx, s.cfg.HandshakeTimeout)
		defer cancel()
	}
	if err := c.HandshakeContext(hctx); err != nil {
		c.Close()
		s.log.Warn("connection", "remote", remote, "error", "handshake failed: "+trimLib(err), "duration", time.Since(start).Round(time.Millisecond))
		return wrap("handshake failed", err)
	}
	st := c.ConnectionState()
	in := &countingReader{r: c}
	out, err := io.Copy(c, in)
	if err == nil {
		// The peer sent close_notify and everything read has been echoed:
		// close our side (close_notify) too. The peer may already be gone
		// (s_client exits right after its close_notify): not a failure.
		if cerr := c.Close(); cerr != nil {
			s.log.Debug("close after the peer's close_notify", "remote", remote, "error", trimLib(cerr))
		}
	} else {
		c.Close()
	}
	attrs := []any{"remote", remote, "peer", st.PeerIdentity, "suite", st.CipherSuiteName, "pq", st.PostQuantum,
		"in", in.n.Load(), "out", out, "duration", time.Since(start).Round(time.Millisecond)}
	if err != nil {
		s.log.Warn("connection", append(attrs, "error", trimLib(err))...)
		return err
	}
	s.log.Info("connection", attrs...)
	return nil
}

func trimLib(err error) string {
	s := err.Error()
	if len(s) > 6 && s[:6] == "mtls: " {
		return s[6:]
	}
	return s
}

// wrap prefixes err with what, keeping it unwrappable.
func wrap(what string, err error) error {
	return &commandError{msg: what + ": " + trimLib(err), err: err}
}
