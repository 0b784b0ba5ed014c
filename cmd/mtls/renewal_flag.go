package main

// --renewal FILE on `mtls client`, `mtls server` and both proxy modes: the
// endpoint stays current with its D-TAs on its own (package dta).
//
//   - A CS client (renewal file of kind client, from `mtls keys enroll`)
//     keeps the combined time permits for today and tomorrow in memory
//     (dtaclient.PermitSource → mtls.Config.GetCSPermit), fetching the next day's
//     from every D-TA in the background, and switches at midnight by its
//     own clock. --permit is then not needed (and not allowed).
//   - A server or P2P peer (kind server or p2p) gets no permits; --renewal
//     keeps its renewal credential alive: it checks at start that every
//     D-TA still accepts it (a revoked identity is logged by D-TA) and
//     rotates the secrets once a day (dtaclient.CredentialKeeper), saving the file.
//
// In the proxy the metrics go on its status registry and /healthz reports:
//
//	503 "degraded: no time permit for today…"      the client cannot do its job
//	200 "degraded: tomorrow's time permit is still missing…" (from an hour
//	    before midnight) or "degraded: renewal credential refused…": still
//	    serving — a load balancer keeps it, an operator must act.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/urfave/cli/v2"

	"github.com/milagro-go/milagro/dta/dtaclient"
	"github.com/milagro-go/milagro/dta/dtawire"
	"github.com/milagro-go/milagro/mtls"
)

func renewalFlag() cli.Flag {
	return &cli.StringFlag{Name: "renewal", Category: "Milagro credentials",
		Usage: "the renewal `FILE` of `mtls keys enroll`: a CS client keeps today's and tomorrow's time permits current from every D-TA (instead of --permit); a server or P2P peer keeps its renewal credential rotated"}
}

// renewal is what --renewal started: a permit source (CS client) or a
// credential keeper (server, P2P peer).
type renewal struct {
	src    *dtaclient.PermitSource
	keeper *dtaclient.CredentialKeeper
}

// startRenewal starts what --renewal asks for, checked against the keys in
// cfg (built by configFromFlags), and runs it until ctx ends. It returns
// nil without --renewal. With background (servers, proxies) a first
// renewal that fails is logged, not fatal: the background loop keeps
// trying; without (one connection) a client without today's permit fails
// here. reg may be nil.
func startRenewal(ctx context.Context, c *cli.Context, cfg *mtls.Config, server, background bool, reg prometheus.Registerer) (*renewal, error) {
	path := c.String("renewal")
	if path == "" {
		return nil, nil
	}
	log := loggerOf(c)
	r, err := dtaclient.LoadRenewal(path)
	if err != nil {
		return nil, fmt.Errorf("--renewal: %w", err)
	}
	if err := checkRenewalKeys(c, cfg, r, server); err != nil {
		return nil, fmt.Errorf("--renewal %s: %w", path, err)
	}
	if r.Kind == dtawire.KindClient {
		if !background {
			// One connection (mtls client): fetch once; without today's
			// permit there is no point in connecting.
			src, err := dtaclient.OpenPermitSource(ctx, path, dtaclient.PermitSourceConfig{Logger: log, Registerer: reg})
			if src == nil {
				return nil, fmt.Errorf("--renewal: %w", err)
			}
			if src.Horizon() < 0 {
				return nil, fmt.Errorf("--renewal: no time permit for today: %w", err)
			}
			if err != nil {
				log.Warn("time permits: today's held, the renewal failed", "err", err)
			}
			return &renewal{src: src}, nil
		}
		src, err := startPermitSource(ctx, log, path, reg)
		if err != nil {
			return nil, err
		}
		return &renewal{src: src}, nil
	}
	k, err := dtaclient.OpenCredentialKeeper(ctx, path, dtaclient.KeeperConfig{Logger: log, Registerer: reg})
	if k == nil {
		return nil, fmt.Errorf("--renewal: %w", err)
	}
	if err != nil {
		log.Warn("renewal credential: a D-TA refused it or could not be reached; retrying in the background", "err", err)
	} else {
		log.Info("renewal credential accepted by every D-TA", "kind", r.Kind, "identity", r.Identity, "dtas", len(r.DTAs))
	}
	if background {
		go k.Run(ctx)
	}
	return &renewal{keeper: k}, nil
}

// checkRenewalKeys checks that the renewal file belongs to the keys given
// (dtaclient.Renewal.CheckConfig: same kind of endpoint, same identity, same
// D-TAs), and that a client's file does not come with --permit.
func checkRenewalKeys(c *cli.Context, cfg *mtls.Config, r *dtaclient.Renewal, server bool) error {
	if r.Kind == dtawire.KindClient && !server && c.IsSet("permit") {
		return errors.New("--renewal and --permit: give one (--renewal keeps the permits itself)")
	}
	return r.CheckConfig(cfg, server)
}

// apply plugs the permit source into a Config (after every reload too).
func (r *renewal) apply(cfg *mtls.Config) {
	if r != nil && r.src != nil {
		cfg.GetCSPermit = r.src.GetCSPermit
	}
}

// statusCheck is the proxy's /healthz hook (proxy.StatusHandler.Degraded):
// an error (503) when the client has no permit for today, a warning (200)
// when tomorrow's is still missing an hour before midnight or a D-TA
// refuses the renewal credential. nil without --renewal.
func (r *renewal) statusCheck() func() (string, error) {
	switch {
	case r == nil:
		return nil
	case r.src != nil:
		return func() (string, error) {
			err := r.src.Health()
			if err == nil {
				return "", nil
			}
			if r.src.Horizon() < 0 {
				return "", err
			}
			return err.Error(), nil
		}
	default:
		return func() (string, error) {
			if err := r.keeper.Health(); err != nil {
				return "degraded: renewal credential: " + err.Error(), nil
			}
			return "", nil
		}
	}
}

// startPermitSource loads the renewal file, fetches the missing permits
// once (a failure is logged, not fatal: the refresher keeps trying) and
// runs the refresher until ctx ends. reg may be nil.
func startPermitSource(ctx context.Context, log *slog.Logger, path string, reg prometheus.Registerer) (*dtaclient.PermitSource, error) {
	src, err := dtaclient.OpenPermitSource(ctx, path, dtaclient.PermitSourceConfig{Logger: log, Registerer: reg})
	if src == nil {
		return nil, fmt.Errorf("--renewal: %w", err)
	}
	if err != nil {
		log.Warn("time permits: first renewal failed; retrying in the background", "horizon_days", src.Horizon())
	} else {
		log.Info("time permits held", "horizon_days", src.Horizon())
	}
	go src.Run(ctx)
	return src, nil
}
