package main

// `mtls ta serve` and `mtls ta init-db`: a D-TA as a network service
// (docs/protocol.md §7, package dta).

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/urfave/cli/v2"

	"github.com/milagro-go/milagro/dta"
	"github.com/milagro-go/milagro/mtls"
)

// withSubcommands appends subcommands to a command (ta.go and keys.go use
// it to add the service commands of ta_serve.go, ta_admin.go and
// keys_enroll.go).
func withSubcommands(c *cli.Command, sub ...*cli.Command) *cli.Command {
	c.Subcommands = append(c.Subcommands, sub...)
	return c
}

func dbFlag() cli.Flag {
	return &cli.StringFlag{Name: "db", Required: true, Usage: "the D-TA's store `FILE` (SQLite, mode 0600)"}
}

// taServiceCommands are the `ta` subcommands of the D-TA service.
func taServiceCommands() []*cli.Command {
	master := func() cli.Flag {
		return &cli.StringFlag{Name: "master", Required: true, Usage: "this D-TA's master share `FILE` (from `mtls ta init`; never stored in the database)"}
	}
	return append([]*cli.Command{
		{
			Name:      "serve",
			Usage:     "serve key shares and daily time permits over TLS-ECDHE_PSK (enrollment codes, renewal credentials)",
			UsageText: "mtls ta serve --master dta1.share --db dta1.db --listen ADDR [--status ADDR] [--permit-ahead 1]",
			Flags: []cli.Flag{master(), dbFlag(),
				&cli.StringFlag{Name: "listen", Required: true, Usage: "`ADDR` (host:port) of the API; port 0 picks a free one"},
				&cli.StringFlag{Name: "status", Usage: "`ADDR` of the plain-HTTP status listener (/healthz, /metrics); off by default"},
				&cli.IntFlag{Name: "permit-ahead", Value: 1, Usage: "issue permits up to `N` days after today (1..7)"},
				&cli.StringFlag{Name: "addr-file", Usage: "write the bound API address to `FILE` once listening"},
				&cli.DurationFlag{Name: "drain-timeout", Value: 10 * time.Second, Usage: "on SIGTERM, wait up to `DURATION` for requests in progress"},
				&cli.StringFlag{Name: "synchronous", Value: "FULL", Usage: "SQLite synchronous `MODE`: FULL (an issuance survives a power loss) or NORMAL (a process crash)"},
			},
			Action: taServe,
		},
		{
			Name:      "init-db",
			Usage:     "create a D-TA store and bind it to the master share (ta serve does this on first start)",
			UsageText: "mtls ta init-db --master dta1.share --db dta1.db",
			Flags:     []cli.Flag{master(), dbFlag()},
			Action:    taInitDB,
		},
	}, taAdminCommands()...)
}

func noArgs(c *cli.Context, name string) error {
	if c.NArg() > 0 {
		return cmdError(name, "", errors.New("unexpected arguments: "+c.Args().First()))
	}
	return nil
}

func taInitDB(c *cli.Context) error {
	const name = "ta init-db"
	if err := noArgs(c, name); err != nil {
		return err
	}
	m, err := mtls.LoadMasterShare(c.String("master"))
	if err != nil {
		return cmdError(name, "--master", err)
	}
	defer m.Zeroize()
	st, err := dta.OpenStore(c.String("db"), nil)
	if err != nil {
		return cmdError(name, "--db", err)
	}
	defer st.Close()
	if _, err := st.Bind(m); err != nil {
		return cmdError(name, "", err)
	}
	fmt.Fprintf(c.App.Writer, "store %s belongs to D-TA %s\n", c.String("db"), m.Fingerprint())
	return nil
}

func taServe(c *cli.Context) error {
	log := loggerOf(c)
	const name = "ta serve"
	if err := noArgs(c, name); err != nil {
		return err
	}
	m, err := mtls.LoadMasterShare(c.String("master"))
	if err != nil {
		return cmdError(name, "--master", err)
	}
	defer m.Zeroize()
	st, err := dta.OpenStore(c.String("db"), &dta.StoreOptions{Synchronous: c.String("synchronous")})
	if err != nil {
		return cmdError(name, "--db", err)
	}
	defer st.Close()
	if err := st.QuickCheck(); err != nil {
		return cmdError(name, "--db", err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	srv, err := dta.NewServer(dta.ServerConfig{Master: m, Store: st, PermitAhead: c.Int("permit-ahead"), Logger: log, Registerer: reg})
	if err != nil {
		return cmdError(name, "", err)
	}
	ln, err := net.Listen("tcp", c.String("listen"))
	if err != nil {
		return cmdError(name, "--listen", err)
	}
	var status *http.Server
	if a := c.String("status"); a != "" {
		sl, err := net.Listen("tcp", a)
		if err != nil {
			ln.Close()
			return cmdError(name, "--status", err)
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
			if _, err := st.Fingerprint(); err != nil {
				http.Error(w, "unhealthy: "+err.Error(), http.StatusServiceUnavailable)
				return
			}
			if _, _, err := st.List(); err != nil {
				http.Error(w, "unhealthy: store: "+err.Error(), http.StatusServiceUnavailable)
				return
			}
			fmt.Fprintln(w, "ok")
		})
		status = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go status.Serve(sl)
		log.Info("status listener", "addr", sl.Addr().String())
	}
	addr := ln.Addr().String()
	if f := c.String("addr-file"); f != "" {
		tmp := f + ".tmp"
		if err := os.WriteFile(tmp, []byte(addr+"\n"), 0o644); err != nil {
			ln.Close()
			return cmdError(name, "--addr-file", err)
		}
		if err := os.Rename(tmp, f); err != nil {
			ln.Close()
			return cmdError(name, "--addr-file", err)
		}
	}
	log.Info("D-TA serving", "dta", srv.Fingerprint().String(), "addr", addr, "db", c.String("db"), "permit_ahead", c.Int("permit-ahead"))

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sig)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return cmdError(name, "", err)
	case s := <-sig:
		log.Info("draining", "signal", s.String())
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.Duration("drain-timeout"))
	defer cancel()
	if status != nil {
		status.Shutdown(ctx)
	}
	if err := srv.Shutdown(ctx); err != nil {
		log.Warn("drain incomplete", "err", err)
	}
	log.Info("stopped")
	return nil
}
