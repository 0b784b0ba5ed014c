package main

import (
	"context"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/milagro-go/milagro/internal/sdnotify"
	"github.com/milagro-go/milagro/proxy"
)

// proxyLoop is the life of a proxy command once it listens, the same for
// TCP and DTLS: SIGHUP reloads (counted in the reload metrics, /healthz
// "degraded" while the previous configuration stays in use), SIGTERM and
// SIGINT drain (/healthz 503 "draining" first), sd_notify throughout.
type proxyLoop struct {
	name, addr string // "proxy server", and the address in sd_notify's status
	log        *slog.Logger
	metrics    *proxy.Metrics
	listening  []any                // attributes of the "proxy listening" line
	health     *proxy.StatusHandler // nil without --status
	status     *http.Server         // nil without --status

	serve    func() error // runs until shutdown
	shutdown func(context.Context) error
	// waitServe: shutdown only tells serve to stop; wait for it to return.
	waitServe bool
	reload    func() error
	drain     time.Duration // --shutdown-timeout
	what      string        // what a timed-out drain closed: "connections", "sessions"
}

func (p *proxyLoop) run() error {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	errc := make(chan error, 1)
	go func() { errc <- p.serve() }()
	p.log.Info("proxy listening", p.listening...)
	notify(p.log, sdnotify.Ready(p.name+" on "+p.addr))
	wdCtx, wdStop := context.WithCancel(context.Background())
	defer wdStop()
	go func() { notify(p.log, sdnotify.Watchdog(wdCtx, nil)) }()

	for {
		select {
		case err := <-errc:
			p.closeStatus()
			return cmdError(p.name, "serve", err)
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				p.reloadNow()
				continue
			}
			// /healthz says "draining" before the log line does, so that
			// whoever reads the log (or load balancers) sees the same state.
			if p.health != nil {
				p.health.SetDraining()
			}
			p.log.Info("shutting down", "signal", sig.String(), "drain", p.drain)
			notify(p.log, sdnotify.Stopping("draining"))
			ctx, cancel := context.WithTimeout(context.Background(), p.drain)
			err := p.shutdown(ctx)
			cancel()
			if p.waitServe {
				<-errc
			}
			p.closeStatus()
			if err != nil {
				p.log.Warn("drain timed out; closed the remaining " + p.what)
			}
			p.log.Info("stopped")
			return nil
		}
	}
}

func (p *proxyLoop) reloadNow() {
	notify(p.log, sdnotify.Reloading())
	err := p.reload()
	p.metrics.Reloaded(err)
	if err != nil {
		p.log.Error("reload failed; keeping the previous configuration", "err", err)
		notify(p.log, sdnotify.Ready("reload failed; previous configuration in use: "+oneLine(err.Error())))
		return
	}
	notify(p.log, sdnotify.Ready(p.name+" on "+p.addr))
}

func (p *proxyLoop) closeStatus() {
	if p.status != nil {
		p.status.Close()
	}
}

// notify logs a failure to reach the service manager (never fatal).
func notify(log *slog.Logger, err error) {
	if err != nil {
		log.Warn("sd_notify failed", "err", err)
	}
}
