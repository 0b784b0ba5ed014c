package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/milagro-go/milagro/dtls"
)

// --dtls for `mtls server`, `mtls client` and `mtls proxy server|client`:
// Milagro P2P or static PSK over DTLS 1.2 (package dtls) on UDP. The
// credential flags are the TLS ones (--p2p-key/--server-id, --psk-identity/
// --psk, --psk-file, --psk-hint); Milagro CS keys are TLS only.

// dtlsFlags are added to the commands that accept --dtls.
func dtlsFlags() []cli.Flag {
	return []cli.Flag{
		&cli.BoolFlag{Name: "dtls", Category: "dtls", Usage: "speak DTLS 1.2 over UDP (Milagro P2P with --p2p-key, or PSK) instead of TLS over TCP"},
		&cli.StringFlag{Name: "dtls-suites", Category: "dtls", Usage: "with --dtls: comma-separated suite `NAMES` (TLS_PSK_WITH_AES_128_GCM_SHA256 / PSK-AES128-GCM-SHA256, TLS_PSK_WITH_CHACHA20_POLY1305_SHA256 / PSK-CHACHA20-POLY1305, TLS_PSK_WITH_AES_128_CCM_8 / PSK-AES128-CCM8); default all three"},
		&cli.BoolFlag{Name: "dtls-no-cid", Category: "dtls", Usage: "with --dtls: do not negotiate RFC 9146 connection IDs"},
	}
}

var dtlsSuiteNames = map[string]uint16{
	"TLS_PSK_WITH_AES_128_GCM_SHA256":       dtls.TLS_PSK_WITH_AES_128_GCM_SHA256,
	"PSK-AES128-GCM-SHA256":                 dtls.TLS_PSK_WITH_AES_128_GCM_SHA256,
	"TLS_PSK_WITH_CHACHA20_POLY1305_SHA256": dtls.TLS_PSK_WITH_CHACHA20_POLY1305_SHA256,
	"PSK-CHACHA20-POLY1305":                 dtls.TLS_PSK_WITH_CHACHA20_POLY1305_SHA256,
	"TLS_PSK_WITH_AES_128_CCM_8":            dtls.TLS_PSK_WITH_AES_128_CCM_8,
	"PSK-AES128-CCM8":                       dtls.TLS_PSK_WITH_AES_128_CCM_8,
}

// dtlsConfigFromFlags builds a dtls.Config from the credential flags (read
// by configFromFlags, so they mean exactly what they mean for TLS).
func dtlsConfigFromFlags(c *cli.Context, server bool) (*dtls.Config, error) {
	if c.String("suites") != "" {
		return nil, errors.New("--suites names TLS suites; with --dtls use --dtls-suites")
	}
	if c.Bool("allow-no-ems") {
		return nil, errors.New("--allow-no-ems: DTLS here always requires the extended master secret")
	}
	if c.IsSet("ticket-key-file") || c.IsSet("no-tickets") {
		return nil, errors.New("--ticket-key-file and --no-tickets apply to TLS; --dtls issues no session tickets")
	}
	if c.String("renewal") != "" {
		return nil, errors.New("--renewal keeps Milagro CS time permits and credentials current; it works over TLS only")
	}
	m, err := configFromFlags(c, server)
	if err != nil {
		return nil, err
	}
	if m.CSKey != nil || m.CSToken != nil || len(m.CSServerKeys) > 0 {
		return nil, errors.New("--dtls speaks Milagro P2P (--p2p-key) and PSK; Milagro CS keys work over TLS only")
	}
	d := &dtls.Config{
		P2PKey: m.P2PKey, ServerIdentity: m.ServerIdentity,
		VerifyPeerIdentity: m.VerifyPeerIdentity, HandshakeTimeout: m.HandshakeTimeout,
		KeyLogWriter: m.KeyLogWriter, DisableConnectionID: c.Bool("dtls-no-cid"),
	}
	switch {
	case m.P2PKey != nil && (m.PSK != nil || m.GetServerPSK != nil):
		return nil, errors.New("--dtls: give either --p2p-key or PSK credentials, not both")
	case m.P2PKey != nil:
	case server:
		d.GetPSK = m.GetServerPSK
		if m.PSKIdentityHint != "" {
			d.PSKIdentityHint = []byte(m.PSKIdentityHint)
		}
	default:
		d.PSK, d.PSKIdentity = m.PSK, m.PSKIdentity
	}
	if s := c.String("dtls-suites"); s != "" {
		for _, n := range strings.Split(s, ",") {
			id, ok := dtlsSuiteNames[strings.TrimSpace(n)]
			if !ok {
				return nil, fmt.Errorf("--dtls-suites: unknown DTLS suite %q", strings.TrimSpace(n))
			}
			d.CipherSuites = append(d.CipherSuites, id)
		}
	}
	return d, nil
}

// dtlsServerAction is `mtls server --dtls`: echoes every datagram.
func dtlsServerAction(c *cli.Context) error {
	log := loggerOf(c)
	cfg, err := dtlsConfigFromFlags(c, true)
	if err != nil {
		return cmdError("server", "", err)
	}
	ln, err := dtls.Listen("udp", c.String("listen"), cfg)
	if err != nil {
		return cmdError("server", "", err)
	}
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	log.Info("listening", "addr", ln.Addr().String(), "proto", "dtls")
	var (
		mu    sync.Mutex
		conns = map[*dtls.Conn]struct{}{}
		wg    sync.WaitGroup
	)
	defer func() {
		mu.Lock()
		for cn := range conns {
			cn.Close()
		}
		mu.Unlock()
		wg.Wait()
	}()
	for {
		cn, err := ln.AcceptDTLS()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return cmdError("server", "", err)
		}
		mu.Lock()
		conns[cn] = struct{}{}
		mu.Unlock()
		handle := func() error {
			defer func() {
				cn.Close()
				mu.Lock()
				delete(conns, cn)
				mu.Unlock()
			}()
			return echoDatagrams(log, cn)
		}
		if c.Bool("once") {
			ln.Close()
			if err := handle(); err != nil {
				return cmdError("server", "", err)
			}
			return nil
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = handle()
		}()
	}
}

// echoDatagrams handshakes and echoes datagrams until the peer's
// close_notify, logging one line.
func echoDatagrams(log *slog.Logger, cn *dtls.Conn) error {
	start := time.Now()
	remote := cn.RemoteAddr().String()
	if err := cn.Handshake(); err != nil {
		log.Warn("connection", "remote", remote, "error", "handshake failed: "+err.Error(), "duration", time.Since(start).Round(time.Millisecond))
		return wrap("handshake failed", err)
	}
	st := cn.ConnectionState()
	buf := make([]byte, 1<<14)
	var n, bytes int
	var rerr error
	for {
		k, err := cn.Read(buf)
		if err != nil {
			if !errors.Is(err, io.EOF) {
				rerr = err
			}
			break
		}
		if _, err := cn.Write(buf[:k]); err != nil {
			rerr = err
			break
		}
		n++
		bytes += k
	}
	attrs := []any{"remote", remote, "peer", st.PeerIdentity, "suite", dtls.CipherSuiteName(st.CipherSuite),
		"datagrams", n, "bytes", bytes, "duration", time.Since(start).Round(time.Millisecond)}
	if rerr != nil {
		log.Warn("connection", append(attrs, "error", rerr.Error())...)
		return rerr
	}
	log.Info("connection", attrs...)
	return nil
}

// dtlsClientAction is `mtls client --dtls`: each stdin line (with its
// newline) is one datagram; each datagram received is written to stdout.
// On stdin EOF it waits up to --dtls-linger for the replies, then sends
// close_notify.
func dtlsClientAction(c *cli.Context) error {
	cfg, err := dtlsConfigFromFlags(c, false)
	if err != nil {
		return cmdError("client", "", err)
	}
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	conn, err := dtls.DialContext(ctx, "udp", c.String("connect"), cfg)
	if err != nil {
		return cmdError("client", "handshake failed", err)
	}
	defer conn.Close()
	st := conn.ConnectionState()
	fmt.Fprintf(c.App.ErrWriter, "suite=%s peer=%s\n", dtls.CipherSuiteName(st.CipherSuite), st.PeerIdentity)
	go func() {
		<-ctx.Done()
		conn.Close()
	}()

	var (
		mu         sync.Mutex
		sent, recv int
		sentAll    = make(chan struct{})
		allBack    = make(chan struct{}, 1)
	)
	werr := make(chan error, 1)
	go func() {
		r := bufio.NewReaderSize(c.App.Reader, 1<<14)
		for {
			line, err := r.ReadSlice('\n')
			if len(line) > 0 {
				if _, werr2 := conn.Write(line); werr2 != nil {
					werr <- werr2
					return
				}
				mu.Lock()
				sent++
				mu.Unlock()
			}
			if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
				close(sentAll)
				if !errors.Is(err, io.EOF) {
					werr <- err // only failures: the select below treats any value as one
				}
				return
			}
		}
	}()
	rdone := make(chan error, 1)
	go func() {
		buf := make([]byte, 1<<14)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				rdone <- err
				return
			}
			if _, err := c.App.Writer.Write(buf[:n]); err != nil {
				rdone <- err
				return
			}
			mu.Lock()
			recv++
			done := recv >= sent
			mu.Unlock()
			if done {
				select {
				case allBack <- struct{}{}:
				default:
				}
			}
		}
	}()
	linger := c.Duration("dtls-linger")
	select {
	case <-sentAll:
	case err := <-werr:
		return cmdError("client", "write failed", err)
	case err := <-rdone:
		if ctx.Err() != nil || errors.Is(err, io.EOF) {
			return nil
		}
		return cmdError("client", "connection failed", err)
	}
	timer := time.NewTimer(linger)
	defer timer.Stop()
	for {
		mu.Lock()
		done := recv >= sent
		mu.Unlock()
		if done {
			break
		}
		select {
		case <-allBack:
			continue
		case <-timer.C:
		case err := <-rdone:
			if !errors.Is(err, io.EOF) && ctx.Err() == nil {
				return cmdError("client", "connection failed", err)
			}
		}
		break
	}
	select {
	case err := <-werr: // a failure reading stdin, if any (EOF sends nothing)
		return cmdError("client", "read stdin", err)
	default:
	}
	if err := conn.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		loggerOf(c).Debug("close", "error", err)
	}
	return nil
}

// dtlsClientFlags are the client's extra --dtls flags.
func dtlsClientFlags() []cli.Flag {
	return append(dtlsFlags(), &cli.DurationFlag{Name: "dtls-linger", Category: "dtls", Value: 2 * time.Second,
		Usage: "with --dtls: after stdin ends, wait this long for replies to the datagrams sent"})
}
