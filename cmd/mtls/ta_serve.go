package main

// `mtls ta serve` and `mtls ta init-db`: a D-TA as a network service
// (docs/protocol.md §7, package dta).

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/urfave/cli/v2"

	"github.com/milagro-go/milagro/dta"
	"github.com/milagro-go/milagro/dta/dtawire"
	"github.com/milagro-go/milagro/internal/listen"
	"github.com/milagro-go/milagro/internal/sdnotify"
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
	return &cli.StringFlag{Name: "db", Required: true, EnvVars: []string{"MTLS_DTA_DB"},
		Usage: "the D-TA's store: an SQLite `FILE` (mode 0600) or a postgres:// URL (replicas; give a URL with a password through $MTLS_DTA_DB, not argv)"}
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
				&cli.StringFlag{Name: "listen", Required: true, Usage: "`ADDR` of the API: HOST:PORT (port 0 picks a free one), unix:/path or systemd:NAME (socket activation)"},
				&cli.StringFlag{Name: "status", Usage: "`ADDR` of the plain-HTTP status listener (/healthz, /metrics): HOST:PORT, unix:/path or systemd:NAME; off by default"},
				&cli.BoolFlag{Name: "status-pprof", Usage: "also serve Go's runtime profiles (CPU, heap, goroutines) under /debug/pprof/ on --status; for profiling only: they expose the process's internals"},
				&cli.IntFlag{Name: "permit-ahead", Value: 1, Usage: "issue permits up to `N` days after today (1..7)"},
				&cli.IntFlag{Name: "permit-ahead-hours", Value: dtawire.DefaultPermitAheadHours, Usage: "issue a day's permit only from `H` hours before it starts (1..168): an identity revoked before 24−H o'clock UTC is refused from the next midnight, any revocation within 24 h + H"},
				&cli.StringFlag{Name: "addr-file", Usage: "write the bound API address to `FILE` once listening"},
				&cli.DurationFlag{Name: "drain-timeout", Value: 10 * time.Second, Usage: "on SIGTERM, wait up to `DURATION` for requests in progress"},
				&cli.DurationFlag{Name: "audit-seal-interval", Value: 2 * time.Second, Usage: "chain new audit rows under a new head every `DURATION` (the longest a fresh row stays unprovable; each replica does it)"},
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
	}, append(taAdminCommands(), taStoreCommands()...)...)
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
	warnDBPasswordInArgv(loggerOf(c), "--db", c.String("db"))
	st, err := dta.OpenStore(c.String("db"), &dta.StoreOptions{Synchronous: c.String("synchronous")})
	if err != nil {
		return cmdError(name, "--db", err)
	}
	defer st.Close()
	if err := st.QuickCheck(); err != nil {
		return cmdError(name, "--db", err)
	}
	ahead, aheadHours := c.Int("permit-ahead"), c.Int("permit-ahead-hours")
	if ahead < 1 || ahead > 7 {
		return cmdError(name, "--permit-ahead", fmt.Errorf("%d is outside 1..7 (with 0, clients could not fetch tomorrow's permit before midnight)", ahead))
	}
	if aheadHours < 1 || aheadHours > 168 {
		return cmdError(name, "--permit-ahead-hours", fmt.Errorf("%d is outside 1..168", aheadHours))
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	srv, err := dta.NewServer(dta.ServerConfig{Master: m, Store: st, PermitAhead: ahead, PermitAheadHours: aheadHours, Logger: log, Registerer: reg,
		AuditSealInterval: c.Duration("audit-seal-interval")})
	if err != nil {
		return cmdError(name, "", err)
	}
	ln, err := listen.Listen(c.String("listen"))
	if err != nil {
		return cmdError(name, "--listen", err)
	}
	var status *http.Server
	if c.Bool("status-pprof") && c.String("status") == "" {
		return cmdError(name, "--status-pprof", errors.New("needs --status (the profiles are served on the status listener)"))
	}
	if a := c.String("status"); a != "" {
		sl, err := listen.Listen(a)
		if err != nil {
			ln.Close()
			return cmdError(name, "--status", err)
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		mux.Handle("/healthz", srv.HealthHandler())
		if c.Bool("status-pprof") {
			mux.HandleFunc("/debug/pprof/", pprof.Index)
			mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
			mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
			mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
			mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		}
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
	log.Info("D-TA serving", "dta", srv.Fingerprint().String(), "addr", addr, "db", st.Name(), "engine", st.Engine(), "permit_ahead", ahead, "permit_ahead_hours", aheadHours)

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sig)
	// SIGHUP (a reflexive `systemctl reload`) must not kill the D-TA: the
	// store is read per request, so there is nothing to reload.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for range hup {
			log.Info("SIGHUP: nothing to reload (the store is read on every request)")
		}
	}()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	// Under systemd (Type=notify): ready once listening, a watchdog ping
	// while the store answers, stopping when draining.
	notify(log, sdnotify.Ready("D-TA "+srv.Fingerprint().String()+" on "+addr))
	wdCtx, wdStop := context.WithCancel(context.Background())
	defer wdStop()
	go func() {
		if err := sdnotify.Watchdog(wdCtx, func() error {
			ctx, cancel := context.WithTimeout(wdCtx, 5*time.Second)
			defer cancel()
			return st.Ping(ctx)
		}); err != nil {
			log.Warn("sd_notify watchdog", "err", err)
		}
	}()
	select {
	case err := <-errc:
		return cmdError(name, "", err)
	case s := <-sig:
		log.Info("draining", "signal", s.String())
		notify(log, sdnotify.Stopping("draining"))
	}
	wdStop()
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
